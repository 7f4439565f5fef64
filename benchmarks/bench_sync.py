"""Sync core benchmark: one run, side by side, on the real pipeline lock (PyPI allowed here).

Measures: cold (empty uv cache), new env from a warm uv cache (hardlink and copy), cache hit,
8 concurrent prepares of a new key (threads in one agent, and separate processes), and the
baselines: `python -m venv` + `pip install -r` of the same pins, and a fresh clone + `uv sync`
into its `.venv` (what Prefect's own uv launcher does per run).

    uv run python benchmarks/bench_sync.py [--project-dir pipeline] [--repeat 5] [--skip-pip]
    uv run python benchmarks/bench_sync.py --only-hit-check   # issue 11 §3: the hit path's check
    ... --only-hit-check --cache-dir DIR   # keep the env in DIR: later runs only measure it
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sunbeam_sync import PrepareRequest, SyncSettings, prepare

ROOT = Path(__file__).resolve().parent.parent
SUNBEAM_SYNC = str(Path(sys.executable).with_name("sunbeam-sync"))
FALLBACK_DEPS = ["prefect==3.9.1", "pymongo", "numpy", "pandas"]


def sh(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, check=True, capture_output=True, text=True
    ).stdout


def make_repo(work: Path, project_dir: str) -> tuple[str, Path]:
    """A git repo holding the pipeline project (pyproject + lock), as the agent would see it."""
    repo = work / "repo"
    proj = repo / "pipeline"
    proj.mkdir(parents=True)
    src = ROOT / project_dir
    if (src / "uv.lock").is_file():
        shutil.copy(src / "pyproject.toml", proj)
        shutil.copy(src / "uv.lock", proj)
        source = f"{project_dir}/uv.lock"
    else:
        deps = ", ".join(f'"{d}"' for d in FALLBACK_DEPS)
        (proj / "pyproject.toml").write_text(
            f'[project]\nname = "bench"\nversion = "0"\nrequires-python = ">=3.11"\n'
            f"dependencies = [{deps}]\n"
        )
        sh("uv", "lock", "-q", cwd=proj)
        source = "prefect + pymongo + numpy + pandas (PyPI)"
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "lock", cwd=repo)
    return source, repo


def relock_variant(repo: Path, n: int) -> None:
    """A commit whose lock has the same packages but different bytes: a new env key."""
    lock = repo / "pipeline" / "uv.lock"
    lock.write_text(lock.read_text() + f"\n# variant {n}\n")
    sh("git", "commit", "-qam", f"variant {n}", cwd=repo)


def cli_prepare(repo: Path, cache: Path) -> list[str]:
    return [
        SUNBEAM_SYNC,
        "-q",
        "prepare",
        str(repo),
        "--ref",
        "main",
        "--project-dir",
        "pipeline",
        "--cache-dir",
        str(cache),
    ]


def wait_for_bytecode() -> None:
    # Background .pyc compilation would steal CPU from the next measurement.
    while (
        subprocess.run(
            ["pgrep", "-f", "sunbeam_sync.envs.bytecode"], capture_output=True
        ).returncode
        == 0
    ):
        time.sleep(0.2)


def timed_prepare(repo: Path, cache: Path, **settings: object) -> tuple[float, dict]:  # type: ignore[type-arg]
    s = SyncSettings(cache_dir=cache, **settings)  # type: ignore[arg-type]
    start = time.perf_counter()
    with prepare(
        PrepareRequest(repo=str(repo), ref="main", project_dir="pipeline"), settings=s
    ) as p:
        elapsed = time.perf_counter() - start
        result = p.result.as_dict()
    wait_for_bytecode()
    return elapsed, result


def hit_check_seconds(env: Path, key: str, repeat: int) -> dict[str, object]:
    """Issue 11 §3: the hit path's verification of one env, against the full check in the same run.

    The full check (`quick=False`) is what every hit ran before the index: every RECORD parsed,
    every folder walked, the env's interpreter started for its prefix.
    """
    from sunbeam_sync import verify_env

    quick, full, full_files, quick_cpu, full_cpu = [], [], [], [], []
    for _ in range(max(repeat, 9)):  # interleaved, so load changes hit both alike
        start, cpu = time.perf_counter(), time.process_time()
        assert verify_env(env, key) is None
        quick.append(time.perf_counter() - start)
        quick_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        assert verify_env(env, key, quick=False) is None
        full.append(time.perf_counter() - start)
        full_cpu.append(time.process_time() - cpu)
        start = time.perf_counter()
        assert verify_env(env, key, quick=False, check_prefix=False) is None
        full_files.append(time.perf_counter() - start)
    # The files the check covers: every installed file, bytecode caches aside.
    files = sum(len(names) for folder, _dirs, names in os.walk(env) if "__pycache__" not in folder)
    hit = statistics.median(quick)
    return {
        "files checked": files,
        "hit check, index (median s)": hit,
        "hit check, full check as before (median s)": statistics.median(full),
        "hit check, full check without the interpreter start (median s)": statistics.median(
            full_files
        ),
        "hit check per 6,000 files (s), target < 0.1": hit * 6000 / files,
        # CPU seconds of this process (user + system: the stats are system time): on a machine
        # whose other work moves the wall-clock figures several times over, these barely move.
        "hit check, index (median CPU s)": statistics.median(quick_cpu),
        "hit check, full check as before (median CPU s, interpreter start aside)": (
            statistics.median(full_cpu)
        ),
        "full / index": statistics.median(full) / hit,
        "load average (1 min)": os.getloadavg()[0],
    }


def speed(repo: Path, work: Path, repeat: int) -> dict[str, object]:
    """Issue 11 §6: a new env from a warm uv cache against raw `uv sync` into a fresh venv."""
    # One sunbeam cache, as an agent has: each round is a new lock (new key) of the same packages.
    timed_prepare(repo, work / "s-cache", bytecode="off")  # fills uv's cache and the mirror
    ours, phases = [], []
    for i in range(repeat):
        relock_variant(repo, 100 + i)
        t, res = timed_prepare(repo, work / "s-cache", bytecode="off", link_mode="hardlink")
        ours.append(t)
        manifest = json.loads((Path(res["env"]) / "sunbeam-manifest.json").read_text())
        phases.append({**res["timings"], **manifest.get("build_phases", {})})
    raw = []
    for i in range(repeat):
        venv = work / f"raw-venv-{i}"
        start = time.perf_counter()
        sh("uv", "venv", "-q", str(venv))
        sh(
            "uv", "sync", "-q", "--frozen", "--no-install-project", "--link-mode", "hardlink",
            cwd=repo / "pipeline", env={"UV_PROJECT_ENVIRONMENT": str(venv)},
        )  # fmt: skip
        raw.append(time.perf_counter() - start)
    split = {k: statistics.median(p.get(k, 0.0) for p in phases) for k in phases[0]}
    hit = hit_check_seconds(Path(res["env"]), res["env_key"], repeat)
    return {
        "new env, warm uv cache (median s)": statistics.median(ours),
        "raw uv venv + uv sync, warm uv cache (median s)": statistics.median(raw),
        "ratio ours / raw, target <= 2": statistics.median(ours) / statistics.median(raw),
        "phases of our new env (median s)": split,
        **hit,
    }


def only_hit_check(project_dir: str, repeat: int, keep: Path | None = None) -> int:
    """One env of the lock (default link mode and bytecode), then its hit-path check.

    `keep`: build in (or reuse) that folder and leave it, printing only. Two versions of the
    sync (PYTHONPATH=<other checkout>/sync/src), each with its own folder, can then be measured
    in alternation on a machine whose load moves, each on an env its own code built.
    """
    work = keep or Path(tempfile.mkdtemp(prefix="sunbeam-bench-"))
    repo = work / "repo"
    if repo.is_dir():
        source = f"{project_dir}/uv.lock (kept)"
    else:
        work.mkdir(parents=True, exist_ok=True)
        source, repo = make_repo(work, project_dir)
    _t, res = timed_prepare(repo, work / "cache")
    result = {"lock": source, **hit_check_seconds(Path(res["env"]), res["env_key"], repeat)}
    print(json.dumps(result, indent=2))
    if keep is None:
        out = ROOT / "benchmarks" / "results" / "sync-hit-check.json"
        out.write_text(json.dumps(result, indent=2))
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project-dir", default="pipeline")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-pip", action="store_true")
    ap.add_argument("--only-speed", action="store_true", help="only the issue 11 §6 comparison")
    ap.add_argument("--only-hit-check", action="store_true", help="only the issue 11 §3 check")
    ap.add_argument(
        "--cache-dir", type=Path, help="--only-hit-check: keep (and reuse) the env here"
    )
    args = ap.parse_args()
    if args.only_hit_check:
        return only_hit_check(args.project_dir, args.repeat, args.cache_dir)
    if args.only_speed:
        work = Path(tempfile.mkdtemp(prefix="sunbeam-bench-"))
        os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
        source, repo = make_repo(work, args.project_dir)
        result = {"lock": source, **speed(repo, work, args.repeat)}
        print(json.dumps(result, indent=2))
        out = ROOT / "benchmarks" / "results" / "sync-speed.json"
        out.write_text(json.dumps(result, indent=2))
        shutil.rmtree(work, ignore_errors=True)
        return 0

    work = Path(tempfile.mkdtemp(prefix="sunbeam-bench-"))
    uv_cache = work / "uv-cache"
    os.environ["UV_CACHE_DIR"] = str(uv_cache)
    source, repo = make_repo(work, args.project_dir)
    rows: dict[str, float] = {}
    notes: dict[str, object] = {"lock": source}

    # 1. cold: empty uv cache, empty sunbeam cache
    t, res = timed_prepare(repo, work / "c-cold")
    rows["cold (empty uv cache)"] = t
    packages = len(
        json.loads((Path(res["env"]) / "sunbeam-manifest.json").read_text())["distributions"]
    )
    notes["packages"] = packages
    notes["link_mode_default"] = res["link_mode"]

    # 2. cache hit, in-process (what the agent pays) and through the CLI (includes interpreter start)
    hits = [timed_prepare(repo, work / "c-cold")[0] for _ in range(max(args.repeat, 5))]
    rows["cache hit, in-process (median)"] = statistics.median(hits)
    cli = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        sh(*cli_prepare(repo, work / "c-cold"))
        cli.append(time.perf_counter() - start)
    rows["cache hit, sunbeam-sync CLI (median)"] = statistics.median(cli)

    # 3. new env from a warm uv cache: hardlink (+ read-only) and copy
    for mode in ("hardlink", "copy"):
        times = []
        for i in range(args.repeat):
            times.append(timed_prepare(repo, work / f"c-{mode}-{i}", link_mode=mode)[0])
        rows[f"new env, warm uv cache, {mode} (median)"] = statistics.median(times)
    one_new = rows["new env, warm uv cache, hardlink (median)"]

    # 4. 8 concurrent prepares of one new key
    relock_variant(repo, 1)
    cache8 = work / "c-threads"
    errors: list[BaseException] = []

    def one() -> None:
        try:
            s = SyncSettings(cache_dir=cache8)
            with prepare(
                PrepareRequest(repo=str(repo), ref="main", project_dir="pipeline"), settings=s
            ):
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows["8 concurrent prepares, new key, threads"] = time.perf_counter() - start
    wait_for_bytecode()
    assert not errors, errors

    relock_variant(repo, 2)
    start = time.perf_counter()
    sh(*cli_prepare(repo, work / "c-proc1"))
    rows["1 prepare, new key, CLI process"] = time.perf_counter() - start
    wait_for_bytecode()
    relock_variant(repo, 3)
    cmd = cli_prepare(repo, work / "c-proc8")
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(8)]
    assert all(p.wait() == 0 for p in procs)
    rows["8 concurrent prepares, new key, CLI processes"] = time.perf_counter() - start
    wait_for_bytecode()

    # 5. baseline: fresh clone + uv sync into its .venv (Prefect's auto-install does this per run)
    clone_times = []
    for i in range(args.repeat):
        dest = work / f"clone-{i}"
        start = time.perf_counter()
        sh("git", "clone", "-q", str(repo), str(dest))
        sh("uv", "sync", "-q", "--frozen", "--no-install-project", cwd=dest / "pipeline")
        clone_times.append(time.perf_counter() - start)
    rows["baseline: fresh clone + uv sync .venv (median)"] = statistics.median(clone_times)

    # 6. baseline: python -m venv + pip install -r of the same pins
    if not args.skip_pip:
        reqs = work / "requirements.txt"
        sh(
            "uv",
            "export",
            "-q",
            "--frozen",
            "--no-hashes",
            "--no-emit-project",
            "-o",
            str(reqs),
            cwd=repo / "pipeline",
        )
        venv = work / "pip-venv"
        start = time.perf_counter()
        sh(sys.base_prefix + "/bin/python3", "-m", "venv", str(venv))
        sh(
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(reqs),
            env={"PIP_CACHE_DIR": str(work / "pip-cache")},
        )
        rows["baseline: python -m venv + pip install -r (cold pip cache)"] = (
            time.perf_counter() - start
        )

    ratios = {
        "hit overhead (s), target <= 0.3": rows["cache hit, in-process (median)"],
        "new env warm (s), target <= 1.5": one_new,
        "8 threads / 1 new env, target <= 1.3": rows["8 concurrent prepares, new key, threads"]
        / one_new,
        "8 processes / 1 process, target <= 1.3": rows[
            "8 concurrent prepares, new key, CLI processes"
        ]
        / rows["1 prepare, new key, CLI process"],
        "copy / hardlink new env (cost of copy isolation)": rows[
            "new env, warm uv cache, copy (median)"
        ]
        / one_new,
        "fresh clone + uv sync / our new env": rows[
            "baseline: fresh clone + uv sync .venv (median)"
        ]
        / one_new,
        "fresh clone + uv sync / our hit": rows["baseline: fresh clone + uv sync .venv (median)"]
        / rows["cache hit, in-process (median)"],
    }
    pip_key = "baseline: python -m venv + pip install -r (cold pip cache)"
    if pip_key in rows:
        ratios["pip / our cold, target >= 20"] = rows[pip_key] / rows["cold (empty uv cache)"]
        ratios["pip / our new env warm"] = rows[pip_key] / one_new

    print(f"\nSync benchmark — lock: {source}, {packages} packages, {os.cpu_count()} cores")
    print(f"{'measurement':62} {'seconds':>9}")
    for name, value in rows.items():
        print(f"{name:62} {value:9.3f}")
    print(f"\n{'ratio':62} {'value':>9}")
    for name, value in ratios.items():
        print(f"{name:62} {value:9.2f}")
    out = ROOT / "benchmarks" / "results" / "sync.json"
    out.write_text(
        json.dumps(
            {
                "notes": notes,
                "seconds": rows,
                "ratios": ratios,
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
