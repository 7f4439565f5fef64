"""A pipeline project (pyproject.toml + uv.lock) inside a real git repo with a file:// remote."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.gitrepo import PipelineRepo


def pinned_python_range() -> str:
    """`requires-python` for this exact interpreter, so locks resolve from local wheels only."""
    v = sys.version_info
    return f">={v.major}.{v.minor}.{v.micro},<{v.major}.{v.minor + 1}"


def project_toml(
    name: str,
    dependencies: Sequence[str],
    *,
    requires_python: str,
    uv: Sequence[str] = (),
    sources: Sequence[str] = (),
    workspace: Sequence[str] = (),
    index_url: str | None = None,
) -> str:
    """The one pyproject.toml builder of the tests: a project, `[tool.uv]` lines, a default index;
    `sources` are workspace members, `workspace` the members' globs."""
    deps = ", ".join(f'"{d}"' for d in dependencies)
    text = (
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = "{requires_python}"\n'
        f"dependencies = [{deps}]\n"
    )
    if uv:
        text += "\n[tool.uv]\n" + "".join(f"{line}\n" for line in uv)
    if sources:
        text += "\n[tool.uv.sources]\n" + "".join(
            f"{s} = {{ workspace = true }}\n" for s in sources
        )
    if workspace:
        globs = ", ".join(f'"{g}"' for g in workspace)
        text += f"\n[tool.uv.workspace]\nmembers = [{globs}]\n"
    if index_url:
        text += f'\n[[tool.uv.index]]\nname = "local"\nurl = "{index_url}"\ndefault = true\n'
    return text


LINUX_X86_64 = "environments = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]"


def pyproject(name: str, dependencies: list[str]) -> str:
    """A virtual project locked for this exact interpreter, from local wheels."""
    return project_toml(
        name,
        dependencies,
        requires_python=pinned_python_range(),
        uv=["package = false", LINUX_X86_64],
    )


class ProjectRepo(PipelineRepo):
    """`PipelineRepo` whose project lives in `project_dir` and is locked from local wheels."""

    def __init__(self, root: Path, project_dir: str = "pipeline") -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        self.project_dir = project_dir
        self.uv_cache = root / "uv-cache-lock"

    @property
    def project(self) -> Path:
        return self.work / self.project_dir

    def write_project(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            self.write(f"{self.project_dir}/{rel}", text)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", f"{self.project_dir}/{rel}")

    def lock(self, *find_links: Path | str, index: str | None = None) -> None:
        """`uv lock` from local wheels (and optionally one local index) only."""
        sources = [arg for d in find_links for arg in ("--find-links", str(d))]
        sources += ["--default-index", index] if index else ["--no-index"]
        subprocess.run(
            ["uv", "lock", *sources, "--quiet"],
            cwd=self.project,
            env={**os.environ, "UV_CACHE_DIR": str(self.uv_cache)},
            check=True,
            capture_output=True,
        )

    def branch(self, name: str, start: str = "main") -> None:
        """Switch the working tree to `name`, (re)starting it at `start`."""
        try:
            self.git("rev-parse", "-q", "--verify", f"{start}^{{commit}}")
        except subprocess.CalledProcessError:  # nothing committed yet
            self.git("checkout", "-q", "-B", name)
        else:
            self.git("checkout", "-q", "-B", name, start)

    def push_branch(
        self,
        name: str,
        files: dict[str, str] | None = None,
        *,
        lock_from: tuple[Path | str, ...] = (),
        index: str | None = None,
        remove: tuple[str, ...] = (),
        start: str = "main",
    ) -> str:
        """Commit `files` (re-locking when `lock_from`/`index` is given) on `name`, started
        at `start`, and push it; the working tree goes back to `start`. Returns the commit."""
        self.branch(name, start)
        self.write_project(files or {})
        for rel in remove:
            self.remove(rel)
        if lock_from or index:
            self.lock(*lock_from, index=index)
        sha = self.commit(f"{name}: {', '.join([*(files or {}), *remove])}", branch=name)
        self.branch(start, start)
        return sha
