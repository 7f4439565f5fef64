"""`sunbeam demo`: the headline, live. A run on main; then a branch that adds a dependency to the
pipeline's lock, run on the same agent without rebuilding or restarting anything.

The branch is made in a scratch copy of this repository (under the state folder), never in the
user's own checkout.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

from sunbeam_contracts import run_labels
from sunbeam_contracts.naming import MAIN_FULL_NAME
from sunbeam_stack.demo.baseline import compare, read_baseline
from sunbeam_stack.errors import StackError
from sunbeam_stack.local.stack import LocalStack, Say
from sunbeam_stack.orchestration.flow_runs import RunReport, run_and_wait

DEMO_BRANCH = "demo/new-dependency"
GIT_ID = ["-c", "user.name=Sunbeam demo", "-c", "user.email=demo@sunbeam.invalid"]


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def scratch_remote(checkout: Path, scratch: Path) -> Path:
    """A bare copy of the checkout's repository: the demo pushes its branch there."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    bare = scratch / "pipeline.git"
    _git("clone", "-q", "--bare", str(checkout), str(bare), cwd=scratch)
    # A clone made from a branch other than main has no local main: the demo runs main, so it
    # stands for what is checked out.
    if (
        subprocess.run(
            ["git", "rev-parse", "-q", "--verify", "refs/heads/main"], cwd=bare, capture_output=True
        ).returncode
        != 0
    ):
        _git("branch", "main", _git("rev-parse", "HEAD", cwd=checkout), cwd=bare)
    return bare


def new_lock_requirement(package: str) -> str:
    """`package` with a specifier no release has (`!=0.0.<random>`): it resolves as a plain
    `uv add package` does, but the lock's bytes, hence its env key, are new to this cache, so
    the demo measures a new env whatever earlier demos built."""
    return f"{package}!=0.0.{secrets.randbelow(10**9)}"


def commit_dependency_branch(bare: Path, project_dir: str, requirement: str, say: Say) -> Path:
    """The demo branch, committed in a scratch clone (not pushed yet); the clone."""
    work = bare.parent / "work"
    _git("clone", "-q", str(bare), str(work), cwd=bare.parent)
    _git("checkout", "-q", "-b", DEMO_BRANCH, cwd=work)
    say(f"     uv add '{requirement}' (a scratch clone, branch {DEMO_BRANCH}; a lock new here)")
    done = subprocess.run(
        ["uv", "add", "--no-sync", requirement],
        cwd=work / project_dir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise StackError(f"uv add {requirement} failed: {done.stderr.strip()[-800:]}")
    _git("add", "-A", cwd=work)
    _git(*GIT_ID, "commit", "-q", "-m", f"Add {requirement}", cwd=work)
    return work


def _describe(report: RunReport) -> str:
    how = "built" if report.built else "cache hit"
    to_running = report.seconds_to_running or 0.0
    return (
        f"{report.state} in {report.seconds_total:.1f}s (running after {to_running:.1f}s; "
        f"env {report.labels.get(run_labels.ENV_KEY, '?')[:12]} {how}, "
        f"sync {report.sync_seconds}s)"
    )


def run_demo(stack: LocalStack, bare: Path, package: str, say: Say, checkout: Path) -> bool:
    cfg = stack.config
    agent_pid = stack.child("agent").pid
    say("\n1/3  run the pipeline on main")
    main = run_and_wait(cfg.prefect_api, MAIN_FULL_NAME)
    say(f"     main: {_describe(main)}")

    say(f"\n2/3  commit a branch that adds a dependency ({package}) to the pipeline's lock")
    work = commit_dependency_branch(bare, cfg.project_dir, new_lock_requirement(package), say)

    say(f"\n3/3  push it and run {DEMO_BRANCH} at once on the same agent (no image, no restart)")
    # Timed from the push, as the original's way is (its image build starts at the push).
    pushed_at = time.monotonic()
    _git("push", "-q", "origin", DEMO_BRANCH, cwd=work)
    pushed = time.monotonic() - pushed_at
    branch = run_and_wait(cfg.prefect_api, MAIN_FULL_NAME, job_variables={"ref": DEMO_BRANCH})
    say(f"     {DEMO_BRANCH}: {_describe(branch)}")
    stack.check_alive()
    same_agent = stack.child("agent").pid == agent_pid
    push_to_running = pushed + (branch.seconds_to_running or branch.seconds_total)
    say(
        f"\nfrom push to flow running: {push_to_running:.1f}s; agent process "
        f"{agent_pid} {'never restarted' if same_agent else 'CHANGED'}"
    )
    say(compare(push_to_running, read_baseline(checkout), new_env=branch.built))
    ok = main.state == branch.state == "COMPLETED" and same_agent
    if not ok:
        say(
            f"demo failed: main {main.message or main.state}; branch {branch.message or branch.state}"
        )
    return ok
