"""Pipeline repositories shaped like the public ones teams run Prefect from, built hermetically.

Each shape writes a project into a `PipelineRepo` (packages from a `LocalIndex` of wheels built in
the test, git sources from a local git server), locks it with the real uv, and says where its flow
is and what the flow prints when its imports work. `tests/sync/test_corpus.py` prepares, verifies,
hits and runs each; `benchmarks/bench_corpus.py` times each against a bare `uv sync --frozen`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_sync import PrepareResult
from tests.support.gated_sdist import backend_py, waiting_sdist
from tests.support.gitrepo import PipelineRepo
from tests.support.pipeline_repo import project_toml
from tests.support.pyindex import LocalIndex
from tests.support.wheels import build_wheel

# An in-tree build backend (`backend.py`): run only for what uv builds (git sources, sdists). The
# project and its workspace members stay out of the env (`--no-install-local`) and are locked from
# the static metadata of their pyproject.toml.
IN_TREE_BACKEND = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'

# dbt-core's namespace file is long, each adapter's is short, as in the real wheels.
DBT_CORE_INIT = (
    "# dbt-core\n"
    + "from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n" * 4
)
DBT_ADAPTERS = ("duckdb", "sqlite")


def dbt_adapter_init(name: str) -> str:
    return f"# dbt-{name}\n"


def dbt_wheels(dest: Path) -> list[Path]:
    """dbt-core and two adapters, each shipping its own dbt/__init__.py (and adapters/__init__)."""
    built = [build_wheel(dest, "dbt-core", "1.0", files={"dbt/__init__.py": DBT_CORE_INIT})]
    for name in DBT_ADAPTERS:
        files = {
            "dbt/__init__.py": dbt_adapter_init(name),
            "dbt/adapters/__init__.py": f"# adapters of dbt-{name}\n",
            f"dbt/adapters/{name}/__init__.py": f"NAME = {name!r}\n",
        }
        built.append(build_wheel(dest, f"dbt-{name}", "1.0", requires=["dbt-core"], files=files))
    return built


def pyproject(
    name: str,
    deps: Sequence[str],
    *,
    index_url: str | None = None,
    sources: Sequence[str] = (),
    workspace: Sequence[str] = (),
    package: bool = False,
    requires_python: str = ">=3.11",
) -> str:
    """A pyproject.toml (`project_toml`'s), with the in-tree build backend when `package`."""
    text = project_toml(
        name,
        deps,
        requires_python=requires_python,
        sources=sources,
        workspace=workspace,
        index_url=index_url,
    )
    return text + ("\n" + IN_TREE_BACKEND if package else "")


def lock(folder: Path, *args: str) -> None:
    out = subprocess.run(
        ["uv", "lock", "-q", "--project", str(folder), *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise AssertionError(f"uv lock failed in {folder}: {out.stderr[-2000:]}")


@dataclass
class Shape:
    """A repository shape: where its project is, its flow, and what the flow prints."""

    name: str
    project_dir: str
    flow: str  # relative to the project folder
    prints: str
    prepare: dict[str, object] = field(default_factory=dict)  # more PrepareRequest fields


# ---------------------------------------------------------------------------- shapes
def workspace(repo: PipelineRepo, index: LocalIndex) -> list[Shape]:
    """A uv workspace: a virtual root project whose flows import a member, and two members with
    their own dependencies (one src layout, one flat), one of them with flows of its own."""
    w = repo.work
    w.mkdir(parents=True, exist_ok=True)
    (w / "pyproject.toml").write_text(
        pyproject(
            "climate-flows",
            ["climate-core"],
            index_url=index.url,
            sources=["climate-core"],
            workspace=["packages/*"],
        )
    )
    core = w / "packages" / "climate-core"
    repo.write(
        "packages/climate-core/pyproject.toml",
        pyproject("climate-core", ["alpha==1.0"], package=True),
    )
    repo.write(
        "packages/climate-core/src/climate_core/__init__.py",
        "import alpha\nVERSION = alpha.__version__\n",
    )
    repo.write(
        "packages/prefect-climate/pyproject.toml",
        pyproject(
            "prefect-climate", ["beta==1.0", "climate-core"], sources=["climate-core"], package=True
        ),
    )
    repo.write(
        "packages/prefect-climate/prefect_climate/__init__.py",
        "import beta, climate_core\nSOURCE = 'prefect-climate'\n",
    )
    repo.write("flows/daily.py", "import climate_core\nprint('daily', climate_core.VERSION)\n")
    repo.write(
        "packages/prefect-climate/flows/hourly.py",
        "import prefect_climate, climate_core, beta\n"
        "print('hourly', prefect_climate.SOURCE, climate_core.VERSION, beta.__version__)\n",
    )
    assert core.is_dir()
    lock(w)
    return [
        Shape("workspace root", ".", "flows/daily.py", "daily 1.0"),
        Shape(
            "workspace member",
            "packages/prefect-climate",
            "flows/hourly.py",
            "hourly prefect-climate 1.0 1.0",
        ),
    ]


def dbt_namespace(repo: PipelineRepo, index: LocalIndex) -> list[Shape]:
    """dbt-core and two adapters: `dbt/__init__.py` and `dbt/adapters/__init__.py` installed by
    several distributions (needs `dbt_wheels` on the index)."""
    deps = [f"dbt-{name}==1.0" for name in DBT_ADAPTERS]
    repo.write("pyproject.toml", pyproject("dbt-flows", deps, index_url=index.url))
    imports = ", ".join(f"dbt.adapters.{name} as {name}" for name in DBT_ADAPTERS)
    names = ", ".join(f"{name}.NAME" for name in DBT_ADAPTERS)
    repo.write("flows/models.py", f"import {imports}\nprint('models', {names})\n")
    lock(repo.work)
    return [
        Shape("overlapping namespace files (dbt)", ".", "flows/models.py", "models duckdb sqlite")
    ]


def python_pinned(repo: PipelineRepo, index: LocalIndex, version: str) -> list[Shape]:
    """A project whose `.python-version` pins an exact interpreter version."""
    repo.write("pyproject.toml", pyproject("pinned-flows", ["alpha==1.0"], index_url=index.url))
    repo.write(".python-version", version + "\n")
    repo.write(
        "flows/check.py",
        "import platform, alpha\nprint('python', platform.python_version(), alpha.__version__)\n",
    )
    lock(repo.work)
    return [Shape(".python-version", ".", "flows/check.py", f"python {version} 1.0")]


def virtual_subfolder(repo: PipelineRepo, index: LocalIndex) -> list[Shape]:
    """A virtual project (no build system) in a sub-folder, whose flows import its own modules."""
    folder = "orchestration/prefect"
    repo.write(
        f"{folder}/pyproject.toml", pyproject("prefect-flows", ["beta==1.0"], index_url=index.url)
    )
    repo.write(f"{folder}/etl/__init__.py", "import beta\nSTEPS = ('extract', 'load')\n")
    repo.write(f"{folder}/flows/run.py", "import etl, alpha\nprint('run', '+'.join(etl.STEPS))\n")
    repo.write("README.md", "the flows live in orchestration/prefect\n")
    lock(repo.work / folder)
    return [Shape("virtual project in a sub-folder", folder, "flows/run.py", "run extract+load")]


def sdist_only(repo: PipelineRepo, index: LocalIndex) -> list[Shape]:
    """A package the index has only as an sdist: uv builds it (needs `sdist_packages`)."""
    repo.write(
        "pyproject.toml",
        pyproject("sdist-flows", ["sdistonly==0.3", "alpha==1.0"], index_url=index.url),
    )
    repo.write("flows/build.py", "import sdistonly\nprint('built', sdistonly.__version__)\n")
    lock(repo.work)
    return [Shape("sdist-only package", ".", "flows/build.py", "built 0.3")]


def corpus_dists(dest: Path) -> list[Path]:
    """Every distribution the shapes need, for an index of their own (tests share theirs)."""
    base = [
        build_wheel(dest, "alpha", "1.0"),
        build_wheel(dest, "beta", "1.0", requires=["alpha>=1"]),
    ]
    return base + dbt_wheels(dest) + sdist_packages(dest)


def sdist_packages(dest: Path) -> list[Path]:
    """`sdistonly` 0.3 as an sdist only (its in-tree backend builds a one-module wheel)."""
    return [waiting_sdist(dest, "sdistonly", "0.3", "    pass")]


def git_package(root: Path, name: str) -> PipelineRepo:
    """A repository holding the package `name` (its build backend in-tree), pushed to `main`."""
    repo = PipelineRepo(root)
    repo.write(
        "pyproject.toml",
        f'[project]\nname = "{name}"\nversion = "0.1.0"\n\n' + IN_TREE_BACKEND,
    )
    repo.write("backend.py", backend_py(name, "0.1.0"))
    repo.commit(f"{name} 0.1.0")
    return repo


def git_source(repo: PipelineRepo, index: LocalIndex, url: str, commit: str) -> list[Shape]:
    """A project whose lock pins a package to a commit of a git repository (uv builds it)."""
    repo.write(
        "pyproject.toml",
        pyproject("git-flows", ["alpha==1.0", f"gitdep @ git+{url}@{commit}"], index_url=index.url),
    )
    repo.write("flows/etl.py", "import alpha, gitdep\nprint('etl', gitdep.__version__)\n")
    lock(repo.work)
    return [Shape("git source", ".", "flows/etl.py", "etl 0.1.0")]


def run_flow(result: PrepareResult, flow: str, env: dict[str, str] | None = None) -> str:
    """Run a flow file as the agent does: the env's python, the result's path, its folder."""
    env = env or {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(result.pythonpath)}
    out = subprocess.run(
        [result.python, str(Path(result.checkout) / flow)],
        capture_output=True,
        text=True,
        cwd=result.checkout,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-1500:]
    return out.stdout.strip()


def write_shape(
    build: Callable[[PipelineRepo, LocalIndex], list[Shape]], repo: PipelineRepo, index: LocalIndex
) -> list[Shape]:
    shapes = build(repo, index)
    repo.commit(f"shape: {shapes[0].name}")
    return shapes
