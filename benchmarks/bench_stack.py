"""The whole Compose stack (`bash .ci/stack-up.sh`): time to all-healthy, and push → running.

1. `stack-up` cold (every image built with --no-cache, empty volumes) and warm (images cached,
   empty volumes): seconds to all five services healthy, and the `docker compose up --wait` part.
2. On the running stack, the real pipeline (this checkout's `pipeline/`, PyPI):
   - baseline: a run on `main` whose env is already cached (POST /runs → Running);
   - a pushed branch whose lock adds one package: POST /runs (right after the push) → Running;
   - the same after the GitHub push webhook's prewarm run has synced the new lock (a branch that
     pins the same package differently, so its lock is new too).

Needs the Docker harness (root) and PyPI. Ports, project and env file are the benchmark's own.

    uv run python benchmarks/bench_stack.py [--skip-cold] [--packages tabulate,toolz]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.containers.dockerkit import wait_for  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
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
        "SUNBEAM_STACK_PROJECT": "sunbeam-bench-stack",
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


def push_branch_adding(work: Path, branch: str, package: str) -> str:
    git(work, "checkout", "-q", "-B", branch, "main")
    subprocess.run(
        ["uv", "add", "--quiet", "--no-sync", "--project", str(work / "pipeline"), package],
        check=True,
    )
    git(work, "commit", "-q", "-am", f"add {package}")
    git(work, "push", "-q", "-f", "origin", f"{branch}:{branch}")
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

    def state(self, run_id: str) -> dict[str, Any]:
        return self.http.get(f"/runs/{run_id}").json()

    def until(self, run_id: str, states: set[str], timeout: float = 900) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            run = self.state(run_id)
            return run if run["state"] in states else None

        return wait_for(f"run {run_id} in {states}", reached, timeout, every=0.2)

    def to_running(self, ref: str) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        run_id = self.start(ref)
        self.until(run_id, {"RUNNING", "COMPLETED", "FAILED", "CRASHED"})
        took = time.monotonic() - started
        return took, self.until(run_id, {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

    def prewarm(self, branch: str, sha: str) -> str:
        body = json.dumps({"ref": f"refs/heads/{branch}", "after": sha}).encode()
        sig = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        resp = self.http.post(
            "/hooks/github",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig},
        )
        resp.raise_for_status()
        return resp.json()["runs"][0]


def push_to_running(
    values: dict[str, str], env_file: Path, work: Path, packages: list[str]
) -> dict:
    secret = next(
        line.split("=", 1)[1]
        for line in env_file.read_text().splitlines()
        if line.startswith("SUNBEAM_GITHUB_WEBHOOK_SECRET=")
    )
    api = Api(values["SUNBEAM_API_URL"], values["SUNBEAM_API_KEY"], secret)
    api.to_running("main")  # builds main's env: everything after this is warm
    hit, _ = api.to_running("main")
    out: dict[str, Any] = {"baseline_cache_hit_to_running_s": round(hit, 2)}
    new_lock, prewarmed, prewarm_s = [], [], []
    for package in packages:
        push_branch_adding(work, f"bench-{package}", package)
        took, run = api.to_running(f"bench-{package}")
        assert run["built"], run
        new_lock.append(round(took, 2))
        sha = push_branch_adding(work, f"bench-warm-{package}", f"{package}<99")
        started = time.monotonic()
        api.until(api.prewarm(f"bench-warm-{package}", sha), {"COMPLETED"})
        prewarm_s.append(round(time.monotonic() - started, 2))
        took, run = api.to_running(f"bench-warm-{package}")
        assert run["cache_hit"], run
        prewarmed.append(round(took, 2))
    out.update(
        new_lock_post_to_running_s=new_lock,
        prewarm_run_s=prewarm_s,
        prewarmed_post_to_running_s=prewarmed,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--packages", default="tabulate,toolz,more-itertools")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        work_dir = Path(tmp)
        bare = work_dir / "pipeline.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(bare)], check=True)
        work = work_dir / "work"
        subprocess.run(["git", "clone", "-q", "-b", "main", str(bare), str(work)], check=True)
        env = script_env(work_dir, bare)
        report: dict[str, Any] = {}
        try:
            if not args.skip_cold:
                report["cold"] = stack_up(env, cold=True)
                stack_down(env)
            warm = stack_up(env, cold=False)
            report["warm"] = {k: v for k, v in warm.items() if not k.startswith("SUNBEAM_API_K")}
            report["push"] = push_to_running(
                warm, work_dir / "stack.env", work, args.packages.split(",")
            )
        finally:
            stack_down(env)
    for part in ("cold", "warm"):
        report.get(part, {}).pop("SUNBEAM_API_KEY", None)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_stack.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
