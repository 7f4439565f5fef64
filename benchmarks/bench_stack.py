"""The whole Compose stack as shipped (`bash .ci/stack-up.sh`): start-up, and run start-up times.

Nothing is tuned: the Compose file's settings, so the agent polls every 10 s (Prefect's default;
PREFECT_WORKER_QUERY_SECONDS unset) and takes new runs from the events stream. One run, side by
side, on the real pipeline (this checkout's `pipeline/`, PyPI):

1. `stack-up` cold (every image built with --no-cache, empty volumes; skip with --skip-cold) and
   warm (images cached, empty volumes): seconds to all five services healthy.
2. POST /runs on main whose env is cached → Running, 5 runs (median, worst), beside
   `python -c "import prefect"` inside the agent container, 5 times (median).
3. A pushed branch whose lock adds a package (new to the cache), the run asked for the moment
   the push lands, push → Running: without any prewarm; with the signed GitHub push webhook;
   with `POST /prewarm` (the way without GitHub). Each beside the original's way for the same
   branch in the same run: a per-branch image (clone + `uv sync --locked`) built, then a
   container from it importing prefect and the package (bench_dependency_change.py's baseline).

Needs the Docker harness (root) and PyPI. Ports, project and env file are the benchmark's own.

    uv run python benchmarks/bench_stack.py [--skip-cold] [--hits 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_dependency_change import original_way  # noqa: E402
from tests.containers.dockerkit import connect, wait_for  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PROJECT = "sunbeam-bench-stack"
PORTS = ("PREFECT", "API", "POSTGRES", "MONGO", "GIT", "AGENT", "AGENT_2", "AGENT_3")
TAGS = {
    "SUNBEAM_IMAGE": "sunbeam-agent:bench-stack",
    "POSTGRES_IMAGE": "sunbeam-stand-in-postgres:bench-stack",
    "MONGO_IMAGE": "sunbeam-stand-in-mongodb:bench-stack",
}


def script_env(work: Path, repo: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "SUNBEAM_STACK_ENV_FILE": str(work / "stack.env"),
        "SUNBEAM_STACK_PROJECT": PROJECT,
        "SUNBEAM_STACK_GIT_DIR": str(repo),
        **TAGS,
    }
    env.update({f"SUNBEAM_STACK_{p}_PORT": str(free_port()) for p in PORTS})
    return env


def stack_up(env: dict[str, str], *, cold: bool) -> dict[str, Any]:
    if cold:
        subprocess.run(["docker", "image", "rm", "-f", *TAGS.values()], capture_output=True)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci/stack-up.sh")],
        capture_output=True,
        text=True,
        env={**env, "SUNBEAM_STACK_NO_CACHE": "1" if cold else ""},
    )
    total = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"stack-up failed:\n{proc.stderr[-4000:]}")
    up = re.search(r"all services healthy in (\d+) s", proc.stderr)
    values = dict(line.split("=", 1) for line in proc.stdout.strip().splitlines()[-3:])
    return {"total_s": round(total, 1), "compose_up_s": int(up.group(1)) if up else None, **values}


def stack_down(env: dict[str, str]) -> None:
    subprocess.run(["bash", str(ROOT / ".ci/stack-down.sh")], env=env, capture_output=True)


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=bench", "-c", "user.email=bench@sunbeam.invalid", "-C"]
    return subprocess.run(
        [*cmd, str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_branch_adding(work: Path, branch: str, package: str) -> str:
    """Commit (not yet push) `branch` whose pipeline lock adds `package`; its commit."""
    git(work, "checkout", "-q", "-B", branch, "main")
    subprocess.run(
        ["uv", "add", "--quiet", "--no-sync", "--project", str(work / "pipeline"), package],
        check=True,
    )
    git(work, "commit", "-q", "-am", f"add {package}")
    return git(work, "rev-parse", "HEAD")


class Api:
    def __init__(self, url: str, key: str, secret: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self.secret = secret

    def start(self, ref: str) -> str:
        resp = self.http.post("/runs", json={"ref": ref})
        resp.raise_for_status()
        return resp.json()["id"]

    def until(self, run_id: str, states: set[str], timeout: float = 900) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            run = self.http.get(f"/runs/{run_id}").json()
            return run if run["state"] in states else None

        return wait_for(f"run {run_id} in {states}", reached, timeout, every=0.1)

    def to_running(self, ref: str, since: float | None = None) -> tuple[float, dict[str, Any]]:
        """Seconds from `since` (default: the POST) until the run is seen Running; its end."""
        started = time.monotonic() if since is None else since
        run_id = self.start(ref)
        self.until(run_id, {"RUNNING", "COMPLETED", "FAILED", "CRASHED"})
        took = time.monotonic() - started
        return took, self.until(run_id, {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

    def webhook(self, branch: str, sha: str) -> None:
        body = json.dumps({"ref": f"refs/heads/{branch}", "after": sha}).encode()
        sig = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        self.http.post(
            "/hooks/github",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig},
        ).raise_for_status()

    def prewarm(self, branch: str) -> None:
        self.http.post("/prewarm", json={"ref": branch}).raise_for_status()


def agent_container(project: str) -> Any:
    (container,) = connect().containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={project}",
                "com.docker.compose.service=agent",
            ]
        }
    )
    return container


IMPORT_PREFECT = (
    "import subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run([sys.executable, '-c', 'import prefect'], check=True); "
    "print(time.perf_counter() - t)"
)


def import_prefect_in(container: Any) -> float:
    """`python -c "import prefect"` with the agent container's Python, timed inside it."""
    code, out = container.exec_run(["python", "-c", IMPORT_PREFECT])
    assert code == 0, out
    return float(out.decode().strip().splitlines()[-1])


def hits(api: Api, container: Any, count: int) -> dict[str, Any]:
    """POST → Running on main's cached env, interleaved with the import-prefect baseline."""
    running, baseline = [], []
    for _ in range(count):
        took, run = api.to_running("main")
        assert run["state"] == "COMPLETED" and run["cache_hit"], run
        running.append(round(took, 2))
        baseline.append(round(import_prefect_in(container), 2))
    floor = statistics.median(baseline)
    return {
        "post_to_running_s": running,
        "import_prefect_in_agent_container_s": baseline,
        "median_s": statistics.median(running),
        "worst_s": max(running),
        "median_over_import_prefect": round(statistics.median(running) / floor, 2),
        "worst_over_import_prefect": round(max(running) / floor, 2),
        "targets": "median <= 1.5x, worst <= 2x",
    }


def push_to_running(api: Api, work: Path, git_url: str, package: str, how: str) -> dict[str, Any]:
    """A branch adding `package`, pushed; `how` asks for its prewarm ("none", "webhook",
    "prewarm"); a run asked for at once → Running. Then the original's way, same branch."""
    branch = f"bench-{how}-{package}"
    sha = commit_branch_adding(work, branch, package)
    started = time.monotonic()
    git(work, "push", "-q", "-f", "origin", f"{branch}:{branch}")
    if how == "webhook":
        api.webhook(branch, sha)
    elif how == "prewarm":
        api.prewarm(branch)
    took, run = api.to_running(branch, since=started)
    assert run["state"] == "COMPLETED" and run["commit"] == sha, run
    original = original_way(connect(), work.parent, git_url, branch, package)
    ratio = original["seconds_to_flow_running"] / took
    return {
        "package": package,
        "prewarm": how,
        "push_to_running_s": round(took, 2),
        "run_built_env": run["built"],
        "original_image_build_and_start_s": round(original["seconds_to_flow_running"], 2),
        "original_over_ours": round(ratio, 2),
        "target": "original_over_ours >= 5",
    }


# One package new to the cache per case and round (none is in pipeline/uv.lock).
ROUNDS = [
    [("none", "tabulate"), ("webhook", "toolz"), ("prewarm", "more-itertools")],
    [("none", "xmltodict"), ("webhook", "inflection"), ("prewarm", "jmespath")],
    [("none", "sortedcontainers"), ("webhook", "tomlkit"), ("prewarm", "wcwidth")],
]


def measure(
    values: dict[str, str], env_file: Path, work: Path, git_url: str, hits_n: int, rounds: int
) -> dict:
    secret = next(
        line.split("=", 1)[1]
        for line in env_file.read_text().splitlines()
        if line.startswith("SUNBEAM_GITHUB_WEBHOOK_SECRET=")
    )
    api = Api(values["SUNBEAM_API_URL"], values["SUNBEAM_API_KEY"], secret)
    container = agent_container(PROJECT)
    # Warm-up, not timed: main's env (everything after this is a hit on it), and one branch
    # image of the original's so its base layers are cached, as on a real build machine.
    api.to_running("main")
    original_way(connect(), work.parent, git_url, "main", "prefect")
    out: dict[str, Any] = {"hit": hits(api, container, hits_n)}
    cases = [case for batch in ROUNDS[:rounds] for case in batch]
    out["new_lock"] = [push_to_running(api, work, git_url, pkg, how) for how, pkg in cases]
    out["new_lock_median_by_prewarm"] = {
        how: {
            "push_to_running_s": statistics.median(r["push_to_running_s"] for r in rows),
            "original_over_ours": statistics.median(r["original_over_ours"] for r in rows),
        }
        for how in ("none", "webhook", "prewarm")
        if (rows := [r for r in out["new_lock"] if r["prewarm"] == how])
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--hits", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=1, choices=range(1, len(ROUNDS) + 1),
        help="new-lock cases per prewarm way (each a package new to the cache)",
    )  # fmt: skip
    args = parser.parse_args()
    report: dict[str, Any] = {
        "settings": "the Compose file's: agent poll PREFECT_WORKER_QUERY_SECONDS unset (10 s), "
        "events stream on; one agent",
        "load_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        work_dir = Path(tmp)
        os.chmod(work_dir, 0o755)
        bare = work_dir / "pipeline.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(bare)], check=True)
        work = work_dir / "work"
        subprocess.run(["git", "clone", "-q", "-b", "main", str(bare), str(work)], check=True)
        env = script_env(work_dir, bare)
        git_url = f"git://127.0.0.1:{env['SUNBEAM_STACK_GIT_PORT']}/{bare.name}"
        try:
            if not args.skip_cold:
                report["cold"] = stack_up(env, cold=True)
                stack_down(env)
            warm = stack_up(env, cold=False)
            report["warm"] = {k: v for k, v in warm.items() if not k.startswith("SUNBEAM_API_K")}
            report.update(
                measure(warm, work_dir / "stack.env", work, git_url, args.hits, args.rounds)
            )
        finally:
            stack_down(env)
    report["load_after"] = os.getloadavg()
    for part in ("cold", "warm"):
        report.get(part, {}).pop("SUNBEAM_API_KEY", None)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS / f"bench_stack-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
