"""Where a run's seconds go between "Synced" and the flow's first line, new env vs cached env.

One Prefect server (PostgreSQL when the machine has one), one `sunbeam-agent` with the shipped
settings (Prefect's default 10 s poll; runs are picked up from the events stream), a local git
repository whose `main` locks Prefect and whose branches `new-<i>` each add a package of their
own (so each is a lock new to the cache). Installs come from a local wheelhouse (the platform
venv repacked), so only the agent's work is measured. For every run, from its log's timestamps:

  claim     created → the worker's "submitting" line
  sync      launcher start-up + sync (→ "Synced ...")
  record    "Synced" → "Starting flow" (labels, name, tags, schema; the launcher's own work)
  engine    "Starting flow" → Prefect's "Beginning flow run" (interpreter, `import prefect`,
            the run read from the API, the flow imported, Running proposed); on a warm start
            split at "Flow process N forked": to_fork (the interpreter found, or started and
            waited for) and fork_to_beginning
  first     "Beginning flow run" → the flow's first line

plus `python -c "import prefect"` in each env right after its run (how warm its bytecode was).
Four kinds of run, interleaved: `cached` (main's env, shipped settings: the env's warm
interpreter forks the flow), `cached_cold` (the same with `SUNBEAM_WARM_INTERPRETERS=0`: the
launcher execs a new interpreter, as before warm interpreters), `new` (a new lock: its first
run, which builds the env, is forked from main's env's interpreter, lent: the branch only adds a
package) and `new_cold` (a new lock, started cold).

    uv run python benchmarks/bench_flow_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefect.client.orchestration import SyncPrefectClient  # noqa: E402
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId  # noqa: E402
from prefect.client.schemas.sorting import LogSort  # noqa: E402

from tests.support.agent_stack import Agent  # noqa: E402
from tests.support.bytecode import compile_platform  # noqa: E402
from tests.support.pipeline_repo import ProjectRepo, pyproject  # noqa: E402
from tests.support.prefect_server import (  # noqa: E402
    deploy,
    postgres_database,
    start_prefect_server,
)
from tests.support.wheelhouse import build_wheelhouse  # noqa: E402
from tests.support.wheels import build_wheel  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
PREFECT_PIN = f"prefect=={__import__('prefect').__version__}"
FLOW = """
{imports}
from prefect import flow, get_run_logger


@flow(name="bench")
def bench():
    get_run_logger().info("first line of the flow")
"""
MARKS = {
    "submitting": "submitting flow run",
    "synced": "Synced ",
    "starting": "Starting flow ",
    "beginning": "Beginning flow run",
    "first": "first line of the flow",
}
# A package of a realistic shape for the new lock: modules the flow imports (their bytecode is
# the new env's to compile).
EXTRA_MODULES = 40


def extra_wheel(wheelhouse: Path, i: int) -> str:
    name = f"bench-extra-{i}"
    module = name.replace("-", "_")
    body = "\n".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(200))
    files = {f"{module}/m{j}.py": body for j in range(EXTRA_MODULES)}
    imports = "".join(f"from {module} import m{j}  # noqa: F401\n" for j in range(EXTRA_MODULES))
    files[f"{module}/__init__.py"] = f'__version__ = "1.0"\n{imports}'
    build_wheel(wheelhouse, name, "1.0", files=files)
    return name


def phases(client: SyncPrefectClient, run_id: UUID) -> dict[str, float]:
    logs = client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
        limit=200,
        sort=LogSort.TIMESTAMP_ASC,
    )
    seen: dict[str, datetime] = {}
    for log in logs:
        for mark, text in MARKS.items():
            if text in log.message and mark not in seen:
                seen[mark] = log.timestamp
    run = client.read_flow_run(run_id)
    assert run.created is not None and len(seen) == len(MARKS), (run.state, sorted(seen))
    order = [("claim", None, "submitting"), ("sync", "submitting", "synced")]
    order += [("record", "synced", "starting"), ("engine", "starting", "beginning")]
    order += [("first", "beginning", "first")]
    out = {}
    for name, a, b in order:
        start = run.created if a is None else seen[a]
        out[name] = round((seen[b] - start).total_seconds(), 3)
    forked = next((log.timestamp for log in logs if "Flow process" in log.message), None)
    if forked is not None:  # warm: "Starting flow" → forked → "Beginning flow run"
        out["to_fork"] = round((forked - seen["starting"]).total_seconds(), 3)
        out["fork_to_beginning"] = round((seen["beginning"] - forked).total_seconds(), 3)
    out["created_to_first"] = round((seen["first"] - run.created).total_seconds(), 3)
    out["created_to_running"] = round((run.start_time - run.created).total_seconds(), 3)
    return out


def import_prefect_s(python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", "import prefect"], check=True, env={"PATH": "/usr/bin:/bin"})
    return round(time.perf_counter() - started, 3)


def run_and_wait(client: SyncPrefectClient, deployment: UUID, ref: str) -> UUID:
    run = client.create_flow_run_from_deployment(deployment, job_variables={"ref": ref})
    deadline = time.monotonic() + 300
    while True:
        state = client.read_flow_run(run.id).state
        if state is not None and state.is_final():
            assert state.is_completed(), state
            time.sleep(1.5)  # the last log batch
            return run.id
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rows if k in r), 3) for k in rows[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_platform()
    with tempfile.TemporaryDirectory(prefix="bench-flow-start-") as tmp_name:
        tmp = Path(tmp_name)
        wheelhouse = build_wheelhouse(tmp / "wheelhouse")
        repo = ProjectRepo(tmp / "repo")
        files = {
            "pyproject.toml": pyproject("bench", [PREFECT_PIN]),
            "flows/bench.py": FLOW.format(imports=""),
        }
        repo.push_branch("main", files, lock_from=(wheelhouse,))
        for i in range(2 * args.runs):  # new-0.. for warm starts, new-cold-0.. for cold ones
            name = extra_wheel(wheelhouse, i)
            module = name.replace("-", "_")
            branch_files = {
                "pyproject.toml": pyproject("bench", [PREFECT_PIN, name]),
                "flows/bench.py": FLOW.format(imports=f"import {module}  # noqa: F401"),
            }
            branch = f"new-{i}" if i < args.runs else f"new-cold-{i - args.runs}"
            repo.push_branch(branch, branch_files, lock_from=(wheelhouse,))
        with postgres_database("sunbeam_bench_flow_start") as database_url:
            server = start_prefect_server(tmp / "prefect", database_url)
            try:
                report = measure(server, repo, tmp, args.runs)
            finally:
                server.stop()
    report["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"bench_flow_start-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0


def measure(server, repo: ProjectRepo, tmp: Path, runs: int) -> dict:
    env = server.env()
    env.update(
        SUNBEAM_WORK_POOL="bench",
        SUNBEAM_CACHE_DIR=str(tmp / "cache"),
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    agent = Agent(env, tmp / "agent.log").start()
    try:
        agent.wait_for_line("Following new flow runs", timeout=60)
        with SyncPrefectClient(server.api_url) as client:
            job_variables = {"repo_url": repo.url, "ref": "main", "project_dir": "pipeline"}
            deployment = deploy(
                client, "bench", "bench", "bench", "flows/bench.py:bench", job_variables
            )
            # The same flow with warm interpreters off: every run a cold start (the baseline).
            cold_variables = {**job_variables, "env": {"SUNBEAM_WARM_INTERPRETERS": "0"}}
            cold = deploy(
                client, "bench", "bench-cold", "bench", "flows/bench.py:bench", cold_variables
            )
            run_and_wait(client, deployment, "main")  # main's env built, its interpreter started
            rows: dict[str, list[dict[str, float]]] = {
                "cached": [], "cached_cold": [], "new": [], "new_cold": []
            }  # fmt: skip
            cases = (("cached", deployment, "main"), ("cached_cold", cold, "main"))
            for i in range(runs):  # interleaved, so load drifts alike
                news = (("new", deployment, f"new-{i}"), ("new_cold", cold, f"new-cold-{i}"))
                for kind, which, ref in (*cases, *news):
                    run_id = run_and_wait(client, which, ref)
                    row = phases(client, run_id)
                    key = client.read_flow_run(run_id).labels["sunbeam.env_key"]
                    python = tmp / "cache" / "envs" / str(key) / "bin" / "python"
                    row["import_prefect_after"] = import_prefect_s(str(python))
                    rows[kind].append(row)
    finally:
        agent.stop()
    return {
        "poll_seconds": "Prefect default (10), events stream on",
        "warm_interpreters": "shipped default (2); cached_cold: the same runs with "
        "SUNBEAM_WARM_INTERPRETERS=0 (every run a cold start); new_cold: likewise",
        "median": {kind: summarize(r) for kind, r in rows.items()},
        "runs": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
