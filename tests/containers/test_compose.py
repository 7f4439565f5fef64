"""docker-compose.yml, validated by the real Compose v2 binary (never brought up: no registry).

The tests that run the binary are marked `docker`; the static checks of the files run anywhere.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.containers.dockerkit import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"prefect-server", "postgres", "agent", "mongodb", "api"}


def compose(
    compose_cmd: list[str], env_file: Path, *args: str, project: str = "sunbeam-test"
) -> subprocess.CompletedProcess[str]:
    # An explicit env file keeps a developer's own .env (and the shell) out of the test.
    return subprocess.run(
        [
            *compose_cmd,
            "--project-name",
            project,
            "--project-directory",
            str(ROOT),
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env_file.parent)},
    )


@pytest.fixture
def secrets_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    values = {
        "SUNBEAM_PIPELINE_REPO": "https://git.invalid/team/pipeline.git",
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "MONGO_PASSWORD": secrets.token_hex(12),
        "SUNBEAM_GIT_TOKEN": secrets.token_hex(12),
    }
    path = tmp_path / "test.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path, values


def rendered(compose_cmd: list[str], env_file: Path) -> dict:
    proc = compose(compose_cmd, env_file, "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.docker
def test_five_services_with_real_health_checks(compose_cmd, secrets_env) -> None:
    env_file, values = secrets_env
    config = rendered(compose_cmd, env_file)
    services = config["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        assert svc["restart"] == "unless-stopped", name
        assert "container_name" not in svc, name
    # Prefect's health check asks the server's own /api/health, not `echo ready`.
    server = services["prefect-server"]
    assert server["environment"]["SUNBEAM_HEALTHCHECK_URL"].endswith(":4200/api/health")
    assert "healthcheck.py" in " ".join(server["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["mongodb"]["healthcheck"]["test"])
    assert services["api"]["environment"]["SUNBEAM_HEALTHCHECK_URL"].endswith("/health")
    # The agent gets the image's HEALTHCHECK (its worker's endpoint): compose must not disable it.
    assert not services["agent"].get("healthcheck", {}).get("disable", False)
    # Start order waits for health, not for a container merely existing.
    assert services["agent"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(services["api"]["depends_on"]) == {"mongodb", "prefect-server", "agent"}
    # The API registers the default ref's deployment before serving.
    assert "sunbeam deploy" in " ".join(services["api"]["command"])
    assert services["agent"]["stop_grace_period"] not in (None, "10s")
    # Services find each other by name; the UI and API are published on loopback by default.
    assert services["agent"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert "@mongodb:27017" in services["api"]["environment"]["MONGODB_URI"]
    for name in ("prefect-server", "api"):
        assert all(p["host_ip"] == "127.0.0.1" for p in services[name]["ports"]), name
    # Secrets come from the env file, and the agent's token reaches the agent only.
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert services["agent"]["environment"]["SUNBEAM_GIT_TOKEN"] == values["SUNBEAM_GIT_TOKEN"]
    assert "SUNBEAM_GIT_TOKEN" not in services["api"]["environment"]


@pytest.mark.docker
def test_data_lives_on_named_volumes_and_agents_share_one_cache(compose_cmd, secrets_env) -> None:
    config = rendered(compose_cmd, secrets_env[0])
    mounts = {
        name: {(v["type"], v["source"], v["target"]) for v in svc.get("volumes", [])}
        for name, svc in config["services"].items()
    }
    assert ("volume", "postgres-data", "/var/lib/postgresql/data") in mounts["postgres"]
    assert ("volume", "mongo-data", "/data/db") in mounts["mongodb"]
    assert ("volume", "agent-cache", "/cache") in mounts["agent"]
    # No bind mounts of the checkout or the Docker socket anywhere.
    assert all(kind == "volume" for vols in mounts.values() for kind, _, _ in vols)
    assert {"postgres-data", "mongo-data", "agent-cache"} <= set(config["volumes"])


@pytest.mark.docker
def test_agent_scales_to_three_without_clashes(compose_cmd, secrets_env) -> None:
    # --dry-run plans the whole `up` against the engine without creating anything.
    proc = compose(
        compose_cmd,
        secrets_env[0],
        "--dry-run",
        "up",
        "--detach",
        "--no-build",
        "--pull",
        "never",
        "--scale",
        "agent=3",
        project="sunbeam-scale-test",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for i in (1, 2, 3):
        assert re.search(rf"sunbeam-scale-test-agent-{i}\s+Started", out), out[-2000:]


@pytest.mark.docker
@pytest.mark.parametrize(
    "missing", ["POSTGRES_PASSWORD", "MONGO_PASSWORD", "SUNBEAM_PIPELINE_REPO"]
)
def test_a_missing_required_value_stops_compose_with_its_name(
    compose_cmd, tmp_path: Path, missing: str
) -> None:
    values = {
        "SUNBEAM_PIPELINE_REPO": "https://git.invalid/p.git",
        "POSTGRES_PASSWORD": "x" * 16,
        "MONGO_PASSWORD": "y" * 16,
    }
    values[missing] = ""
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    proc = compose(compose_cmd, env_file, "config", "--quiet")
    assert proc.returncode != 0
    assert f"set {missing} in .env" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_secret_or_ip_is_committed() -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"(PASSWORD|TOKEN|SECRET|API_KEY):\s*[\"']?[A-Za-z0-9]", text)
    ips = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    assert ips <= {"127.0.0.1", "0.0.0.0"}, ips
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        if re.match(r"^[A-Z_]*(PASSWORD|TOKEN|SECRET|API_KEY)=", line):
            assert line.endswith("="), f".env.example carries a secret: {line}"


def test_env_example_documents_every_variable() -> None:
    # `$${X}` is the container's own variable (escaped from Compose), not a setting of .env.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert used - {"COMPOSE_PROJECT_NAME"} <= documented, used - documented


@pytest.mark.docker
def test_the_agent_alone_reads_its_own_optional_env_file(
    compose_cmd, secrets_env, tmp_path: Path
) -> None:
    """A private index's credentials go in the agent's env file; without one, all still runs."""
    env_file, values = secrets_env
    assert "UV_INDEX_TEAM_PASSWORD" not in rendered(compose_cmd, env_file)["services"]["agent"].get(
        "environment", {}
    )  # no such file: nothing read, nothing missing
    agent_env = tmp_path / "agent.env"
    agent_env.write_text("UV_INDEX_TEAM_USERNAME=bot\nUV_INDEX_TEAM_PASSWORD=pw-5a6b\n")
    with env_file.open("a") as fh:
        fh.write(f"SUNBEAM_AGENT_ENV_FILE={agent_env}\n")
    services = rendered(compose_cmd, env_file)["services"]
    assert services["agent"]["environment"]["UV_INDEX_TEAM_PASSWORD"] == "pw-5a6b"
    assert services["agent"]["environment"]["SUNBEAM_GIT_TOKEN"] == values["SUNBEAM_GIT_TOKEN"]
    for other in SERVICES - {"agent"}:
        assert "UV_INDEX_TEAM_PASSWORD" not in services[other].get("environment", {}), other
