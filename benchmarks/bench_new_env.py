"""Issue 25 §6: what a new env costs over a bare `uv sync --frozen`, and where the difference goes.

Measured as it ships: `prepare()` in a fresh process, as `sunbeam-run` calls it once per flow run
(the whole process's time is reported beside it), default settings (link mode auto, bytecode
compiled in the background after the publish), against a bare `uv sync --frozen --no-install-project` of the same lock into a fresh folder with
the same interpreter (`--python`), in the same run, interleaved, with uv's cache warm for both. Each round pushes a commit whose lock
has the same packages but other bytes: a new env key, a fetch and a checkout, as after a push.

    uv run python benchmarks/bench_new_env.py --shape pipeline   # our own lock
    uv run python benchmarks/bench_new_env.py --shape dbt        # prefect + prefect-dbt + dbt-duckdb
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "pipeline": ROOT / "pipeline",  # our own pipeline's lock
    "dbt": ROOT / "benchmarks" / "shapes" / "dbt",  # a public shape: dbt adapters, 139 packages
}


def sh(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {out.stderr[-2000:]}")
    return out.stdout


def make_repo(work: Path, source: Path) -> Path:
    repo = work / "repo"
    (repo / "project").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(source / name, repo / "project" / name)
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    commit(repo, "lock")
    return repo


def commit(repo: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", message, cwd=repo)


def new_key(repo: Path, n: int) -> None:
    """A commit whose lock has the same packages but other bytes: a new env key."""
    lock = repo / "project" / "uv.lock"
    lock.write_text(lock.read_text() + f"\n# variant {n}\n")
    commit(repo, f"variant {n}")


# What `sunbeam-run` does for a flow run, in a fresh process: `prepare()` (the build path's modules
# load on first use, as in the launcher), timed from the call to the ready env.
_DRIVER = """
import json, sys, time
from pathlib import Path
from sunbeam_sync import PrepareRequest, SyncSettings, prepare
repo, cache = sys.argv[1:3]
start = time.perf_counter()
request = PrepareRequest(repo=repo, ref="main", project_dir="project")
with prepare(request, settings=SyncSettings(cache_dir=Path(cache))) as prepared:
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, **prepared.result.as_dict()}))
"""


def ours(repo: Path, cache: Path, python: str = sys.executable) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """(prepare() seconds, the whole process's seconds, phases) of one new env."""
    settle()
    start = time.perf_counter()
    out = sh(python, "-c", _DRIVER, str(repo), str(cache))
    process = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    manifest = json.loads((Path(result["env"]) / "sunbeam-manifest.json").read_text())
    compiled = cache / "state" / f"{result['env_key']}.compiled"
    deadline = time.monotonic() + 600
    while not compiled.exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the background compile would steal the CPU of the next measurement
    build = manifest.get("build_phases", {})
    # The manifest is written before the seal, the interpreter check and the index: their time
    # (and the build log's comparison) is what the build took beyond its recorded phases.
    # Phases "(beside …)" ran in parallel with the others: not summed.
    rest = result["timings"].get("build", 0.0) - sum(
        v for k, v in build.items() if "(beside" not in k
    )
    phases = {
        **result["timings"],
        **build,
        "seal, interpreter check, index, build log": round(rest, 4),
        "python": manifest["python"],
    }
    return result["seconds"], process, phases


def settle() -> None:
    """Each measurement starts with the disk written back: the one before it (tens of thousands
    of metadata writes, either side) would otherwise be paid for by whichever runs next."""
    os.sync()


def raw(repo: Path, work: Path, n: int, python: str | None) -> float:
    """A bare `uv sync --frozen` into a fresh folder; with `python`, no interpreter discovery."""
    target = work / f"raw-{n}-{'python' if python else 'typed'}"
    settle()
    start = time.perf_counter()
    sh(
        "uv", "sync", "-q", "--frozen", "--no-install-project", *(["--python", python] if python else []),
        cwd=repo / "project", env={"UV_PROJECT_ENVIRONMENT": str(target)},
    )  # fmt: skip
    # Kept until the end: deleting ~9,000 links here would slow the next measurement (the
    # filesystem frees and discards them meanwhile), whichever side it is.
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), default="pipeline")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument(
        "--before",
        metavar="PYTHON",
        help="also time the sync installed for this interpreter (e.g. a checkout of main's venv), "
        "interleaved in the same rounds",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sunbeam-bench-new-env-"))
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    repo = make_repo(work, SHAPES[args.shape])
    cache = work / "sunbeam-cache"
    # Warms uv's cache, the mirror and the interpreter memo, as on an agent; the bare sync gets the
    # same interpreter (`--python`): discovery through pyenv's shims here would slow it down.
    python = str(ours(repo, cache)[2].pop("python"))
    raw(repo, work, -1, python)
    if args.before:
        ours(repo, work / "before-cache", args.before)
    mine, process, theirs, typed, phases, before = [], [], [], [], [], []
    for n in range(args.repeat):  # interleaved: load changes hit all alike
        new_key(repo, n)
        seconds, whole, split = ours(repo, cache)
        mine.append(seconds)
        process.append(whole)
        split.pop("python")
        phases.append(split)
        if args.before:
            before.append(ours(repo, work / "before-cache", args.before)[0])
        theirs.append(raw(repo, work, n, python))
        typed.append(raw(repo, work, n, None))
    bare = statistics.median(theirs)
    floor = statistics.median(
        sum(p.get(k, 0.0) for k in ("fetch", "checkout", "uv venv", "uv sync")) for p in phases
    )
    result = {
        "shape": args.shape,
        "packages": sh(
            "grep", "-c", r"^\[\[package\]\]", str(repo / "project" / "uv.lock")
        ).strip(),
        "new env: prepare(), as sunbeam-run calls it (median s)": statistics.median(mine),
        "bare uv sync --frozen --python <the same interpreter>, fresh folder (median s)": bare,
        "ratio, target <= 1.5": statistics.median(mine) / bare,
        "the whole process around prepare(), Python's start and exit included (median s)": (
            statistics.median(process)
        ),
        "ratio of the whole process": statistics.median(process) / bare,
        "bare uv sync --frozen as typed, uv discovering the interpreter (median s)": (
            statistics.median(typed)
        ),
        "ratio to it (discovery here goes through pyenv's shims)": (
            statistics.median(mine) / statistics.median(typed)
        ),
        # What any design pays that fetches the ref and installs its lock with uv: no check,
        # no seal, no index. Beside the target it says how much room the rest has.
        "floor: fetch + checkout + uv venv + uv sync of the new env (median s)": floor,
        "ratio of the floor": floor / bare,
        "phases of the new env (median s)": {
            k: round(statistics.median(p.get(k, 0.0) for p in phases), 4) for k in phases[0]
        },
        "load average (1, 5, 15 min)": os.getloadavg(),
    }
    if before:
        result["before: prepare() of --before's sync (median s)"] = statistics.median(before)
        result["before: ratio"] = statistics.median(before) / bare
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / f"sync-new-env-{args.shape}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
