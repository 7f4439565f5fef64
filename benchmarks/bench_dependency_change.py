"""Shipping a one-package dependency change: the original's per-branch image vs our running agent.

Both start from the same moment, "the branch that adds the package is pushed", with the real
pipeline lock (PyPI) and everything else warm:

- original: `docker build` of an image for the branch (a Dockerfile that clones the branch and
  runs `uv sync` into the image, as the original's compiled.Dockerfile did, minus its bytecode
  compilation, which would only make it slower), then a container from it importing the package;
- ours: the already-running agent container (warmed by one run on main) gets a flow run for the
  branch; it syncs the branch's lock into a new cached env and runs the flow. No image, no restart.

Measured: seconds from push to "flow running with the new package", packages uv fetched, and the
growth of uv's cache in bytes. Needs the Docker harness (`bash .ci/docker-setup.sh`) and PyPI.

    uv run python benchmarks/bench_dependency_change.py [--packages tabulate,toolz,more-itertools]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sunbeam_contracts import run_labels  # noqa: E402
from sunbeam_contracts.naming import FLOW_NAME, ref_slug  # noqa: E402
from sunbeam_stack.orchestration.flow_runs import run_and_wait  # noqa: E402
from tests.containers.dockerkit import BASE_IMAGE, build_agent_image, connect, wait_for  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.prefect_server import start_prefect_server  # noqa: E402

UV_VERSION = "0.13.9"
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@sunbeam.invalid"]

FLOW = """
import importlib
from prefect import flow


@flow(name="bench-dependency")
def bench(module: str = "") -> str:
    return importlib.import_module(module).__name__ if module else "main"
"""

# The original's way (its compiled.Dockerfile), cloning from a git daemon on loopback instead of
# GitHub. The clone layer is never cached (CACHE_DATE), so `uv sync` runs in full every build.
BRANCH_DOCKERFILE = """
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir uv==%(uv)s
ARG CACHE_DATE
ARG BRANCH
ARG REPO
RUN git clone --branch "$BRANCH" --single-branch "$REPO" /app
WORKDIR /app/pipeline
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_CACHE_DIR=/tmp/uv-cache UV_PYTHON_DOWNLOADS=never
RUN /opt/uv/bin/uv sync --locked --no-install-project --no-dev \\
    && echo "uv-cache-bytes $(du -sb /tmp/uv-cache | cut -f1)" && rm -rf /tmp/uv-cache
"""


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def sh(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(work: Path) -> Path:
    """A bare repo whose main holds the real pipeline's pyproject + uv.lock and a tiny flow."""
    bare = work / "pipeline.git"
    clone = work / "clone"
    sh("git", "init", "-q", "--bare", "-b", "main", str(bare))
    sh("git", "init", "-q", "-b", "main", str(clone))
    proj = clone / "pipeline"
    (proj / "flows").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / "pipeline" / name, proj / name)
    (proj / "flows" / "bench.py").write_text(FLOW)
    sh("git", "add", "-A", cwd=clone)
    sh("git", *GIT_ID, "commit", "-qm", "pipeline lock", cwd=clone)
    sh("git", "remote", "add", "origin", bare.as_uri(), cwd=clone)
    sh("git", "push", "-q", "origin", "main", cwd=clone)
    return bare


def commit_branch(bare: Path, branch: str, package: str) -> Path:
    """Commit (not yet push) a branch adding `package` to the pipeline's lock."""
    clone = bare.parent / "clone"
    sh("git", "checkout", "-q", "-B", branch, "main", cwd=clone)
    sh("uv", "add", "--no-sync", "--quiet", package, cwd=clone / "pipeline")
    sh("git", "add", "-A", cwd=clone)
    sh("git", *GIT_ID, "commit", "-qm", f"add {package}", cwd=clone)
    return clone


def git_daemon(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"git://127.0.0.1:{port}/pipeline.git"


def original_way(client: docker.DockerClient, work: Path, repo: str, branch: str, pkg: str) -> dict:
    ctx = work / "branch-image"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(BRANCH_DOCKERFILE % {"uv": UV_VERSION})
    module = pkg.replace("-", "_")
    tag = f"{FLOW_NAME}:{ref_slug(branch)}"
    start = time.monotonic()
    build = subprocess.run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "-t",
            tag,
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--build-arg",
            f"BRANCH={branch}",
            "--build-arg",
            f"REPO={repo}",
            "--build-arg",
            f"CACHE_DATE={time.time()}",
            str(ctx),
        ],
        capture_output=True,
        text=True,
    )
    built = time.monotonic() - start
    if build.returncode != 0:
        raise SystemExit(
            f"branch image build failed:\n{build.stdout[-2000:]}{build.stderr[-2000:]}"
        )
    # "Flow running": a process in the new environment has imported Prefect and the package.
    client.containers.run(
        tag,
        ["/opt/venv/bin/python", "-c", f"import prefect, {module}"],
        remove=True,
        network_mode="none",
    )
    total = time.monotonic() - start
    prepared = re.search(r"Prepared (\d+) packages?", strip_ansi(build.stdout + build.stderr))
    cache = re.search(r"uv-cache-bytes (\d+)", build.stdout)
    size = client.images.get(tag).attrs["Size"]
    client.images.remove(tag, force=True)
    return {
        "seconds_to_flow_running": total,
        "image_build_seconds": built,
        "packages_fetched": int(prepared.group(1)) if prepared else None,
        "uv_cache_bytes_added": int(cache.group(1)) if cache else None,
        "image_bytes": size,
    }


def uv_cache_bytes(container) -> int:  # type: ignore[no-untyped-def]
    code, out = container.exec_run(["du", "-sb", "/cache/uv"])
    return int(out.split()[0]) if code == 0 else 0


def state_times(api: str, run_id: str) -> dict[str, float]:
    """Seconds from the run's creation to the first time it entered each state type."""
    with httpx.Client(base_url=api, timeout=30) as client:
        states = client.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
    stamps = sorted((s["timestamp"], s["type"]) for s in states)
    if not stamps:
        return {}
    from datetime import datetime

    first = datetime.fromisoformat(stamps[0][0])
    out: dict[str, float] = {}
    for stamp, kind in stamps:
        out.setdefault(kind, (datetime.fromisoformat(stamp) - first).total_seconds())
    return out


def packages_fetched(api: str, run_id: str) -> int | None:
    with httpx.Client(base_url=api, timeout=30) as client:
        logs = client.post(
            "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
        ).json()
    for line in logs:
        found = re.search(r"Prepared (\d+) packages?", strip_ansi(line["message"]))
        if found:
            return int(found.group(1))
    return 0 if logs else None


def our_way(stack: dict, clone: Path, branch: str, pkg: str) -> dict:
    container = stack["container"]
    container.reload()
    before = (container.id, container.attrs["State"]["StartedAt"], uv_cache_bytes(container))
    start = time.monotonic()
    sh("git", "push", "-q", "origin", branch, cwd=clone)
    report = run_and_wait(
        stack["api"],
        "bench-dependency/bench",
        job_variables={"ref": branch},
        timeout=600,
    )
    pushed = time.monotonic() - start - report.seconds_total
    if report.state != "COMPLETED":
        raise SystemExit(f"our run on {branch}: {report.state} {report.message}")
    container.reload()
    after = (container.id, container.attrs["State"]["StartedAt"], uv_cache_bytes(container))
    phases = state_times(stack["api"], report.run_id)
    return {
        "seconds_created_to_pending": phases.get("PENDING"),
        "seconds_created_to_running": phases.get("RUNNING"),
        "seconds_to_flow_running": pushed + (report.seconds_to_running or report.seconds_total),
        "seconds_to_completed": pushed + report.seconds_total,
        "sync_seconds": float(report.labels.get(run_labels.SYNC_SECONDS, "nan")),
        "built_new_env": report.built,
        "packages_fetched": packages_fetched(stack["api"], report.run_id),
        "uv_cache_bytes_added": after[2] - before[2],
        "same_container_never_restarted": before[:2] == after[:2],
    }


def start_agent(client: docker.DockerClient, image: str, api: str, bare: Path) -> dict:
    volume = f"sunbeam-bench-cache-{secrets.token_hex(4)}"
    client.volumes.create(volume)
    gitconfig = bare.parent / "gitconfig"
    gitconfig.write_text(f"[safe]\n\tdirectory = {bare}\n")
    container = client.containers.run(
        image,
        detach=True,
        network_mode="host",
        init=True,
        environment={
            "PREFECT_API_URL": api,
            "SUNBEAM_WORK_POOL": "bench",
            "PREFECT_WORKER_WEBSERVER_PORT": str(free_port()),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        },
        volumes={
            volume: {"bind": "/cache", "mode": "rw"},
            str(bare): {"bind": str(bare), "mode": "ro"},
            str(gitconfig): {"bind": "/home/sunbeam/.gitconfig", "mode": "ro"},
        },
    )

    def healthy() -> bool:
        return container.exec_run(["python3", "/opt/sunbeam/healthcheck.py"])[0] == 0

    wait_for("the agent", healthy, 180, every=1)
    with httpx.Client(base_url=api, timeout=30) as http:
        flow_id = http.post("/flows/", json={"name": "bench-dependency"}).json()["id"]
        http.post(
            "/deployments/",
            json={
                "name": "bench",
                "flow_id": flow_id,
                "work_pool_name": "bench",
                "entrypoint": "flows/bench.py:bench",
                "job_variables": {"repo_url": bare.as_uri(), "project_dir": "pipeline"},
            },
        ).raise_for_status()
    return {"container": container, "volume": volume, "api": api}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--packages",
        default="tabulate,toolz,more-itertools",
        help="comma-separated packages not in the lock; one new lock (and env) per package",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/dependency_change.json"))
    args = parser.parse_args()

    client = connect()
    print("building the agent image (once; not timed) …", flush=True)
    image = build_agent_image(client, ROOT, tag="sunbeam-agent:bench", base=BASE_IMAGE)
    work = Path(tempfile.mkdtemp(prefix="sunbeam-bench-"))
    os.chmod(work, 0o755)
    server = start_prefect_server(work / "prefect")
    daemon = None
    stack: dict = {}
    results: dict = {"original": [], "ours": []}
    try:
        bare = make_repo(work)
        daemon, git_url = git_daemon(work)
        stack = start_agent(client, image, server.api_url, bare)
        print("warming: a run on main (agent) and one branch image build (original) …", flush=True)
        warm = run_and_wait(server.api_url, "bench-dependency/bench", timeout=600)
        if warm.state != "COMPLETED":
            raise SystemExit(f"warm-up run on main: {warm.state} {warm.message}")
        original_way(client, work, git_url, "main", "prefect")  # base layers cached, like theirs
        for package in args.packages.split(","):
            branch = f"add-{package}"
            clone = commit_branch(bare, branch, package)
            ours = our_way(stack, clone, branch, package)
            print(f"ours     [{branch}]: {json.dumps(ours)}", flush=True)
            orig = original_way(client, work, git_url, branch, package)
            print(f"original [{branch}]: {json.dumps(orig)}", flush=True)
            results["ours"].append(ours)
            results["original"].append(orig)
    finally:
        if stack:
            stack["container"].remove(force=True)
            client.volumes.get(stack["volume"]).remove(force=True)
        if daemon:
            daemon.terminate()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    def median(side: str, key: str) -> float:
        values = sorted(r[key] for r in results[side])
        return values[len(values) // 2]

    ratio = median("original", "seconds_to_flow_running") / median(
        "ours", "seconds_to_flow_running"
    )
    summary = {
        "notes": {
            "lock": "pipeline/uv.lock (PyPI) + one package",
            "packages": args.packages.split(","),
            "baseline_endpoint": "branch image built + a container from it imports prefect and the package (no Prefect worker overhead counted for the original)",
        },
        "runs": results,
        "ratios": {"original / ours, push to flow running (target >= 5)": ratio},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\noriginal / ours (push → flow running): {ratio:.1f}x  (target ≥ 5x)")
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
