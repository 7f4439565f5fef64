"""Launcher benchmark: what `sunbeam-run` itself costs per flow run on a cache hit.

Side by side, in one run, interleaved: a bare interpreter start (`python -c pass`, the floor of
any Python command), `python -c "import prefect"` (what any launcher importing Prefect pays),
`sunbeam-sync prepare` on a hit (the CLI), `sunbeam-run`'s own start-up plus the cache hit
without the Prefect API (its imports and the very `prepare` call it makes, in a fresh process),
and `sunbeam-run` on a hit: start-up, reading the run and deployment from the API, the sync
(verified hit), recording labels, name and tags, and its log lines sent, ending with `sync_only`
(everything but the final exec into the engine). Median of N runs each: wall time of the process,
and its CPU time (user + system, children included), which a busy machine sways less.

    uv run python benchmarks/bench_launcher.py [--runs 15] [--before /work/main/.venv/bin]

The venv and the workspace's sources are compiled to bytecode first, as the agent image has
them (tests/support/bytecode.py): with PYTHONDONTWRITEBYTECODE set, every start would otherwise
recompile the sync and the launcher from source (~0.15 s here), which no deployed launcher does.

`--before BIN` adds that installation's `sunbeam-sync` and `sunbeam-run` (e.g. main's venv) as
baselines in the same run, on the same cache, server and deployment.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefect.client.orchestration import SyncPrefectClient  # noqa: E402
from prefect.states import Pending  # noqa: E402

from benchmarks.results_file import write_report  # noqa: E402
from tests.support.bytecode import compile_platform  # noqa: E402
from tests.support.pipeline_repo import ProjectRepo, pyproject  # noqa: E402
from tests.support.prefect_server import deploy, start_prefect_server  # noqa: E402
from tests.support.wheelhouse import build_wheelhouse  # noqa: E402

BIN = Path(sys.executable).parent
# sunbeam-run minus the Prefect API: its own imports, then the prepare call it makes (launcher.py).
SYNC_PART = """
import sys, logging
import sunbeam_agent.launch.launcher, sunbeam_agent.launch.run_log
from sunbeam_sync import PrepareRequest, SyncSettings, prepare
request = PrepareRequest(repo=sys.argv[1], ref="main", project_dir=".", required=["prefect"])
with prepare(request, settings=SyncSettings(), logger=logging.getLogger("bench")) as held:
    assert held.result.cache_hit
"""
FLOW = "from prefect import flow\n\n\n@flow(name='bench-launcher')\ndef bench():\n    pass\n"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def children_cpu() -> float:
    """User + system seconds of every finished child so far (less swayed by the load than wall)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--before", type=Path, help="bin folder of the implementation to beat")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-launcher-"))
    compile_platform()
    wheelhouse = build_wheelhouse(tmp / "wheelhouse")
    repo = ProjectRepo(tmp / "repo", project_dir=".")
    files = {"pyproject.toml": pyproject("bench", ["prefect==3.9.1"]), "flows/bench.py": FLOW}
    repo.push_branch("main", files, lock_from=(wheelhouse,))
    server = start_prefect_server(tmp / "prefect")
    try:
        env = server.env()
        env.update(SUNBEAM_CACHE_DIR=str(tmp / "cache"), UV_CACHE_DIR=str(tmp / "uv-cache"))
        subprocess.run(
            [str(BIN / "sunbeam-pool"), "create", "bench", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
        )
        with SyncPrefectClient(server.api_url) as client:
            job_variables = {"repo_url": repo.url, "ref": "main", "sync_only": True}
            deployment = deploy(
                client, "bench-launcher", "bench", "bench", "flows/bench.py:bench", job_variables
            )

            def launcher(bin_dir: Path = BIN) -> float:
                run = client.create_flow_run_from_deployment(deployment)
                client.set_flow_run_state(run.id, Pending(), force=True)
                seconds = timed(
                    [str(bin_dir / "sunbeam-run")], {**env, "PREFECT__FLOW_RUN_ID": str(run.id)}
                )
                state = client.read_flow_run(run.id).state
                assert state is not None and state.is_completed(), state
                return seconds

            sync_cli = [str(BIN / "sunbeam-sync"), "-q", "prepare", repo.url, "--ref", "main"]
            launcher()  # the first run builds the env
            timed(sync_cli, env)
            time.sleep(5)  # let the background bytecode compile settle
            load_before = os.getloadavg()
            variants = {
                "python -c pass": lambda: timed([sys.executable, "-c", "pass"], env),
                "python -c 'import prefect'": lambda: timed(
                    [sys.executable, "-c", "import prefect"], env
                ),
                "sunbeam-sync prepare (hit)": lambda: timed(sync_cli, env),
                "sunbeam-run start-up + hit, no API": lambda: timed(
                    [sys.executable, "-c", SYNC_PART, repo.url], env
                ),
                "sunbeam-run (hit, sync_only)": launcher,
            }
            if args.before:
                before_cli = [str(args.before / "sunbeam-sync"), *sync_cli[1:]]
                variants["before: sunbeam-sync prepare (hit)"] = lambda: timed(before_cli, env)
                variants["before: sunbeam-run (hit, sync_only)"] = lambda: launcher(args.before)
            samples: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.runs):  # interleaved, so load changes hit every variant alike
                for name, measure in variants.items():
                    cpu_before = children_cpu()
                    samples[name].append(measure())
                    cpu[name].append(children_cpu() - cpu_before)
    finally:
        server.stop()
    results = {name: round(statistics.median(v), 3) for name, v in samples.items()}
    cpu_results = {name: round(statistics.median(v), 3) for name, v in cpu.items()}
    report = {
        "benchmark": "bench_launcher",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": args.runs,
        "bytecode": "venv and workspace compiled first, as in the agent image",
        "load_avg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "median_seconds": results,
        "median_cpu_seconds": cpu_results,  # user + system of the process and its children
        "targets": {
            "sunbeam_run_hit_at_most_0_3s": results["sunbeam-run (hit, sync_only)"] <= 0.3,
            "own_start_up_plus_hit_at_most_0_3s": results["sunbeam-run start-up + hit, no API"]
            <= 0.3,
            "own_start_up_plus_hit_cpu_at_most_0_3s": cpu_results[
                "sunbeam-run start-up + hit, no API"
            ]
            <= 0.3,
        },
        "ratios_to_python_c_pass": {
            name: round(seconds / results["python -c pass"], 1) for name, seconds in results.items()
        },
    }
    print(f"{'':40s} {'wall':>7s} {'cpu':>7s}")
    for name, seconds in results.items():
        print(f"{name:40s} {seconds:6.3f}s {cpu_results[name]:6.3f}s")
    write_report("bench_launcher", report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
