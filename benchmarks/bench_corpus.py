"""Issue 25 §5-6: the corpus of repository shapes, each a new env against a bare uv sync, and a hit.

Every shape of `tests/support/corpus.py` (hermetic: a local index, a local git server), per round
a commit whose lock has other bytes (a new env key): `prepare()` in this process, default settings,
against a bare `uv sync --frozen --no-install-local` of the same lock into a fresh folder, with the
same interpreter (`--python`, so that neither pays interpreter discovery) and uv's cache warm for
both, then a hit. The shapes are small (2-5 packages): the ratio is almost all
fixed cost; `bench_new_env.py` measures real locks.

    uv run python benchmarks/bench_corpus.py [--repeat 5]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sunbeam_sync import PrepareRequest, PrepareResult, SyncSettings, prepare  # noqa: E402
from tests.support import corpus  # noqa: E402
from tests.support.gitrepo import PipelineRepo  # noqa: E402
from tests.support.gitserver import PrivateGitServer  # noqa: E402
from tests.support.pyindex import LocalIndex  # noqa: E402


def _settle() -> None:
    """Each measurement starts with the disk written back: the writes of the one before (either
    side) would otherwise be paid for by whichever runs next."""
    os.sync()


def _prepare(repo: PipelineRepo, shape: corpus.Shape, cache: Path) -> tuple[float, PrepareResult]:
    _settle()
    start = time.perf_counter()
    request = PrepareRequest(repo=repo.url, ref="main", project_dir=shape.project_dir)
    with prepare(request, settings=SyncSettings(cache_dir=cache)) as prepared:
        return time.perf_counter() - start, prepared.result


def _raw(repo: PipelineRepo, shape: corpus.Shape, target: Path, python: str) -> float:
    _settle()
    start = time.perf_counter()
    subprocess.run(
        ["uv", "sync", "-q", "--frozen", "--no-install-local", "--python", python],
        cwd=repo.work / shape.project_dir,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(target)},
        check=True,
    )
    return time.perf_counter() - start  # the folder stays until the end (a deletion costs later)


def _base_python(result: PrepareResult) -> str:
    return json.loads((Path(result.env) / "sunbeam-manifest.json").read_text())["python"]


def _new_key(repo: PipelineRepo, shape: corpus.Shape, n: int) -> None:
    lock = next(p for p in (repo.work / shape.project_dir, repo.work) if (p / "uv.lock").is_file())
    (lock / "uv.lock").write_text((lock / "uv.lock").read_text() + f"\n# variant {n}\n")
    repo.commit(f"variant {n}")


def measure(
    name: str, build: Callable[[PipelineRepo, LocalIndex], list[corpus.Shape]], work: Path,
    index: LocalIndex, repeat: int,
) -> dict[str, object]:  # fmt: skip
    repo = PipelineRepo(work / name.replace(" ", "-"))
    (shape,) = build(repo, index)
    repo.commit(shape.name)
    cache = work / "sunbeam-cache"
    _seconds, first = _prepare(repo, shape, cache)  # uv's cache warm for both
    python = _base_python(first)  # the same interpreter for both (no discovery in either)
    mine, theirs, hits = [], [], []
    for n in range(repeat):
        _new_key(repo, shape, n)
        seconds, result = _prepare(repo, shape, cache)
        assert result.built, name
        assert corpus.run_flow(result, shape.flow) == shape.prints, name
        mine.append(seconds)
        theirs.append(_raw(repo, shape, repo.work.parent / f"raw-{n}", python))
        seconds, hit = _prepare(repo, shape, cache)
        assert hit.cache_hit, name
        hits.append(seconds)
    bare = statistics.median(theirs)
    return {
        "shape": shape.name,
        "result": "prepared, verified, hit, flow imported",
        "new env (median s)": round(statistics.median(mine), 3),
        "bare uv sync (median s)": round(bare, 3),
        "new env / bare uv sync": round(statistics.median(mine) / bare, 2),
        "hit (median s)": round(statistics.median(hits), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sunbeam-bench-corpus-"))
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    index = LocalIndex(work / "index").start()
    index.add_all(corpus.corpus_dists(work / "dists"))
    git = corpus.git_package(work / "gitdep", "gitdep")
    server = PrivateGitServer(work / "gitdep", None).start()
    url, commit = server.url("remote.git"), git.git("rev-parse", "HEAD")
    host = subprocess.run(
        ["uv", "python", "find", "--system"], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.strip()
    version = subprocess.run(
        [host, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    shapes = {
        "dbt": corpus.dbt_namespace,
        "workspace root": lambda r, i: corpus.workspace(r, i)[:1],
        "workspace member": lambda r, i: corpus.workspace(r, i)[1:],
        "python-version": lambda r, i: corpus.python_pinned(r, i, version),
        "git source": lambda r, i: corpus.git_source(r, i, url, commit),
        "virtual sub-folder": corpus.virtual_subfolder,
        "sdist-only": corpus.sdist_only,
    }
    try:
        rows = [measure(name, build, work, index, args.repeat) for name, build in shapes.items()]
    finally:
        server.stop()
        index.stop()
    result = {"rows": rows, "load average (1, 5, 15 min)": os.getloadavg()}
    print(json.dumps(result, indent=2))
    (ROOT / "benchmarks" / "results" / "sync-corpus.json").write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
