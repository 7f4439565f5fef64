"""Agent benchmark: how long until a flow runs, side by side, in one run on one machine.

Variants (same server, same flow, same 1 s worker poll interval, runs interleaved):
  prefect-floor     Prefect's floor: the stock process worker, flow code already on disk (the
                    deployment's path), no pull step, deps in the worker's venv
  prefect-engine    the same worker and code told its command, `python -m prefect.engine`: one
                    interpreter instead of Prefect 3.9's default workspace supervisor + engine
                    (two Prefect imports); the stricter floor
  stock-sunbeam-run the stock process worker, pool from `sunbeam-pool create --type process`:
                    `sunbeam-run` on a hit
  stock-git-clone   Prefect's process worker, `git_clone` pull step, deps from the worker's venv
  stock-auto-uv     the same with PREFECT_RUNNER_AUTO_INSTALL_DEPENDENCIES=true (uv run per run)
  sunbeam-hit       our worker, the ref's env already built (cache hit)
  sunbeam-new-lock  our worker, a lock never seen before (new env), uv's cache warm
  docker-sunbeam-run prefect-docker's worker, pool from `sunbeam-pool create --type docker`: each
                    run its own agent-image container running `sunbeam-run`, the env cache on a
                    named volume, on a hit (skipped with --no-docker or without a Docker engine)

The platform venv is compiled to bytecode first (tests/support/bytecode.py), as the image's is:
uncompiled, every stock-worker process paid Prefect's compile (the floor measured 9.1 s, 2.6 x
our hit, whose env the sync compiles).

Measures flow-run created → Running (start_time) and created → end (end_time) from the API,
median of N runs each, plus our sync's own time on a hit. Installs come from a local wheelhouse
(the platform venv repacked) so that only the workers' strategies differ.

    uv run python benchmarks/bench_agent.py [--runs 5] [--no-docker]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefect.client.orchestration import SyncPrefectClient  # noqa: E402
from prefect.client.schemas.objects import FlowRun  # noqa: E402

from benchmarks.results_file import write_report  # noqa: E402
from sunbeam_contracts import run_labels  # noqa: E402
from tests.support.bytecode import compile_platform  # noqa: E402
from tests.support.pipeline_repo import ProjectRepo, pyproject  # noqa: E402
from tests.support.prefect_server import PrefectServer, start_prefect_server  # noqa: E402
from tests.support.wheelhouse import build_wheelhouse  # noqa: E402
from tests.support.wheels import build_wheel  # noqa: E402

BIN = Path(sys.executable).parent
QUERY_SECONDS = "1"
FLOW = """
import sys
from prefect import flow, get_run_logger


@flow(name="bench")
def bench():
    get_run_logger().info("running on %s", sys.executable)
"""


@dataclass
class Variant:
    name: str
    deployment: UUID
    job_variables: Callable[[int], dict[str, object] | None] = lambda i: None
    running: list[float] = field(default_factory=list)
    completed: list[float] = field(default_factory=list)
    sync_seconds: list[float] = field(default_factory=list)


def start_worker(
    server: PrefectServer,
    pool: str,
    kind: str,
    extra: dict[str, str],
    log: Path,
    create: list[str] | None = None,
):
    env = server.env()
    env.update(PREFECT_WORKER_QUERY_SECONDS=QUERY_SECONDS, **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        create or [str(BIN / "prefect"), "work-pool", "create", pool, "--type", kind],
        env=env,
        check=True,
        capture_output=True,
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", kind],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class DockerSide:
    """What the Docker variant needs: the agent image, its cache volume, the worker's mounts."""

    image: str
    volume: str
    mounts: list[str]


def docker_side(tmp: Path, wheelhouse: Path, repo: ProjectRepo) -> DockerSide | None:
    """Build the agent image on the local base image; None (variant skipped) without an engine."""
    from tests.containers.dockerkit import BASE_IMAGE, DockerUnavailable, build_agent_image, connect

    try:
        client = connect()
        print("building the agent image (Dockerfile.agent)", flush=True)
        build_agent_image(client, ROOT, tag="sunbeam-agent:bench", base=BASE_IMAGE)
    except DockerUnavailable as exc:
        print(f"docker variant skipped: {exc}", flush=True)
        return None
    volume = f"sunbeam-bench-agent-cache-{os.getpid()}"
    client.volumes.create(volume)
    gitconfig = tmp / "gitconfig"  # the container's user does not own the repository
    gitconfig.write_text(f"[safe]\n\tdirectory = {repo.remote}\n")
    tmp.chmod(0o755)
    mounts = [
        f"{volume}:/cache",
        f"{repo.remote}:{repo.remote}:ro",
        f"{wheelhouse}:{wheelhouse}:ro",
        f"{gitconfig}:/home/sunbeam/.gitconfig:ro",
    ]
    return DockerSide("sunbeam-agent:bench", volume, mounts)


def remove_docker_side(side: DockerSide) -> None:
    import docker

    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"volume": side.volume}):
        container.remove(force=True)
    client.volumes.get(side.volume).remove(force=True)


def run_once(client: SyncPrefectClient, variant: Variant, i: int, timeout: float = 300) -> FlowRun:
    run = client.create_flow_run_from_deployment(
        variant.deployment, job_variables=variant.job_variables(i)
    )
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run.id)
        if run.state is not None and run.state.is_final():
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{variant.name}: run {run.id} stuck in {run.state_name}")
        time.sleep(0.1)
    if not run.state.is_completed():
        raise RuntimeError(f"{variant.name}: run ended {run.state.name}: {run.state.message}")
    return run


def bench_pyproject(name: str) -> str:
    """The bench project; any 3.11, since the agent image's Python (Debian 12's) is 3.11.2."""
    text = pyproject(name, ["prefect==3.9.1"])
    return re.sub(r'requires-python = ".*"', 'requires-python = ">=3.11,<3.12"', text)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-docker", action="store_true", help="skip the Docker worker variant")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    print(f"work folder {tmp}", flush=True)
    compile_platform()  # the floor's processes start from this venv: compiled, as in the image
    wheelhouse = build_wheelhouse(tmp / "wheelhouse")
    # The agent image's Python is Debian 12's 3.11.2, for which the lock also needs async-timeout
    # (a stand-in: the stdlib has it), as in tests/containers/test_docker_pool.py.
    build_wheel(
        wheelhouse,
        "async-timeout",
        "4.0.3",
        files={"async_timeout/__init__.py": "from asyncio import Timeout, timeout\n"},
    )
    repo = ProjectRepo(tmp / "repo", project_dir=".")
    files = {"pyproject.toml": bench_pyproject("bench"), "flows/bench.py": FLOW}
    repo.push_branch("main", files, lock_from=(wheelhouse,))
    for i in range(args.runs + 1):  # one lock per new-lock run, plus a warm-up
        files = {"pyproject.toml": bench_pyproject(f"bench-new-{i}")}
        repo.push_branch(f"new-{i}", files, lock_from=(wheelhouse,))

    floor_code = tmp / "floor-code"  # the flow alone, already on disk (no .git to copy)
    (floor_code / "flows").mkdir(parents=True)
    (floor_code / "flows" / "bench.py").write_text(FLOW)

    side = None if args.no_docker else docker_side(tmp, wheelhouse, repo)
    try:
        return measure(args, tmp, wheelhouse, repo, floor_code, side)
    finally:
        if side is not None:
            remove_docker_side(side)


def measure(
    args: argparse.Namespace,
    tmp: Path,
    wheelhouse: Path,
    repo: ProjectRepo,
    floor_code: Path,
    side: DockerSide | None,
) -> int:
    server = start_prefect_server(tmp / "prefect")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        uv_cache = tmp / "uv-cache"
        common = {"UV_CACHE_DIR": str(uv_cache)}
        workers.append(start_worker(server, "stock", "process", common, tmp / "stock.log"))
        auto = {**common, "PREFECT_RUNNER_AUTO_INSTALL_DEPENDENCIES": "true", "UV_FROZEN": "1"}
        workers.append(start_worker(server, "stock-auto", "process", auto, tmp / "auto.log"))
        ours = {**common, "SUNBEAM_CACHE_DIR": str(tmp / "sunbeam-cache")}
        workers.append(start_worker(server, "sunbeam", "sunbeam", ours, tmp / "sunbeam.log"))
        workers.append(start_worker(server, "floor", "process", common, tmp / "floor.log"))
        workers.append(
            start_worker(
                server,
                "stock-run",
                "process",
                ours,
                tmp / "stock-run.log",
                create=[str(BIN / "sunbeam-pool"), "create", "stock-run", "--type", "process"],
            )
        )

        if side is not None:
            create = [str(BIN / "sunbeam-pool"), "create", "docker", "--type", "docker"]
            create += ["--image", side.image, "--volume", f"{side.volume}:/cache"]
            workers.append(start_worker(server, "docker", "docker", {}, tmp / "docker.log", create))

        with SyncPrefectClient(server.api_url) as client:
            flow_id = client.create_flow_from_name("bench")
            clone = [
                {"prefect.deployments.steps.git_clone": {"repository": repo.url, "branch": "main"}}
            ]

            def deploy(name: str, pool: str, **kw: object) -> UUID:
                return client.create_deployment(
                    flow_id=flow_id,
                    name=name,
                    work_pool_name=pool,
                    entrypoint="flows/bench.py:bench",
                    **kw,  # type: ignore[arg-type]
                )

            ours_vars = {"repo_url": repo.url, "ref": "main", "project_dir": "."}
            engine_vars = {"command": f"{sys.executable} -m prefect.engine"}
            variants = [
                Variant("prefect-floor", deploy("floor", "floor", path=str(floor_code))),
                Variant(
                    "prefect-engine",
                    deploy("engine", "floor", path=str(floor_code), job_variables=engine_vars),
                ),
                Variant(
                    "stock-sunbeam-run", deploy("stock-run", "stock-run", job_variables=ours_vars)
                ),
                Variant("stock-git-clone", deploy("stock", "stock", pull_steps=clone)),
                Variant("stock-auto-uv", deploy("auto", "stock-auto", pull_steps=clone)),
                Variant("sunbeam-hit", deploy("hit", "sunbeam", job_variables=ours_vars)),
            ]
            if side is not None:
                docker_vars = {**ours_vars, "volumes": side.mounts}
                deployment = deploy("docker", "docker", job_variables=docker_vars)
                variants.append(Variant("docker-sunbeam-run", deployment))
            by_name = {v.name: v for v in variants}
            new_lock = Variant(
                "sunbeam-new-lock",
                by_name["sunbeam-hit"].deployment,
                lambda i: {"ref": f"new-{i + 1}"},
            )
            variants.append(new_lock)

            print("warming up (first run of each variant, not measured)", flush=True)
            for v in variants:
                run_once(client, v, -1)
            warm = Variant("warm", by_name["sunbeam-hit"].deployment, lambda i: {"ref": "new-0"})
            run_once(client, warm, 0)
            time.sleep(5)  # let the background bytecode compile of the warm-up envs settle

            for i in range(args.runs):
                for v in variants:
                    run = run_once(client, v, i)
                    v.running.append((run.start_time - run.created).total_seconds())
                    v.completed.append((run.end_time - run.created).total_seconds())
                    seconds = (run.labels or {}).get(run_labels.SYNC_SECONDS)
                    if seconds is not None:
                        v.sync_seconds.append(float(seconds))
                    print(
                        f"  {v.name:17s} run {i + 1}: running {v.running[-1]:6.2f}s "
                        f"completed {v.completed[-1]:6.2f}s",
                        flush=True,
                    )
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        server.stop()

    results = {
        v.name: {
            "created_to_running_median_s": median(v.running),
            "created_to_completed_median_s": median(v.completed),
            "sync_seconds_median_s": median(v.sync_seconds),
            "created_to_running_s": v.running,
            "created_to_completed_s": v.completed,
        }
        for v in variants
    }
    by = {v.name: v for v in variants}
    hit = statistics.median(by["sunbeam-hit"].running)
    floor = statistics.median(by["prefect-floor"].running)
    engine = statistics.median(by["prefect-engine"].running)
    ratios = {
        "sunbeam_hit_over_prefect_floor": round(hit / floor, 2),
        "sunbeam_hit_over_prefect_engine": round(hit / engine, 2),
        "stock_sunbeam_run_over_prefect_engine": round(
            statistics.median(by["stock-sunbeam-run"].running) / engine, 2
        ),
        "stock_sunbeam_run_over_prefect_floor": round(
            statistics.median(by["stock-sunbeam-run"].running) / floor, 2
        ),
        "docker_sunbeam_run_over_prefect_floor": (
            round(statistics.median(by["docker-sunbeam-run"].running) / floor, 2)
            if "docker-sunbeam-run" in by
            else None
        ),
        "stock_git_clone_over_sunbeam_hit": round(
            statistics.median(by["stock-git-clone"].running) / hit, 2
        ),
        "stock_auto_uv_over_sunbeam_hit": round(
            statistics.median(by["stock-auto-uv"].running) / hit, 2
        ),
        "stock_auto_uv_over_sunbeam_new_lock": round(
            statistics.median(by["stock-auto-uv"].running)
            / statistics.median(by["sunbeam-new-lock"].running),
            2,
        ),
    }
    report = {
        "benchmark": "bench_agent",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": args.runs,
        "worker_query_seconds": float(QUERY_SECONDS),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "results": results,
        "ratios_created_to_running": ratios,
        "targets": {
            "sunbeam_hit_within_1_2x_of_floor": ratios["sunbeam_hit_over_prefect_floor"] <= 1.2,
            "sunbeam_hit_within_1_2x_of_engine_floor": (
                ratios["sunbeam_hit_over_prefect_engine"] <= 1.2
            ),
            "stock_sunbeam_run_within_1_2x_of_floor": (
                ratios["stock_sunbeam_run_over_prefect_floor"] <= 1.2
            ),
            "sunbeam_hit_beats_stock": ratios["stock_git_clone_over_sunbeam_hit"] > 1,
            "sunbeam_hit_2x_faster_than_auto_uv": ratios["stock_auto_uv_over_sunbeam_hit"] >= 2,
            "sync_on_hit_at_most_0_3s": (median(by["sunbeam-hit"].sync_seconds) or 99) <= 0.3,
        },
    }
    print()
    print(f"{'variant':18s} {'created→Running':>16s} {'created→Completed':>18s} {'sync':>7s}")
    for name, r in results.items():
        sync = r["sync_seconds_median_s"]
        print(
            f"{name:18s} {r['created_to_running_median_s']:>15.2f}s "
            f"{r['created_to_completed_median_s']:>17.2f}s "
            f"{'' if sync is None else f'{sync:.2f}s':>7s}"
        )
    print("ratios (created→Running):", json.dumps(ratios))
    print("targets:", json.dumps(report["targets"]))
    write_report("bench_agent", report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
