"""A real git repository holding a small pipeline project, served over a file:// remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Sunbeam Tests",
    "GIT_AUTHOR_EMAIL": "tests@sunbeam.invalid",
    "GIT_COMMITTER_NAME": "Sunbeam Tests",
    "GIT_COMMITTER_EMAIL": "tests@sunbeam.invalid",
}


def pinned_python_range() -> str:
    """`requires-python` for this exact interpreter, so locks resolve from local wheels only."""
    v = sys.version_info
    return f">={v.major}.{v.minor}.{v.micro},<{v.major}.{v.minor + 1}"


def pyproject(name: str, dependencies: list[str], extra: str = "") -> str:
    deps = ", ".join(f'"{d}"' for d in dependencies)
    return f"""[project]
name = "{name}"
version = "0.1.0"
requires-python = "{pinned_python_range()}"
dependencies = [{deps}]

[tool.uv]
package = false
environments = ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
{extra}"""


class PipelineRepo:
    """A bare repo (the remote) plus a working clone the test edits, commits and pushes from."""

    def __init__(self, root: Path, project_dir: str = "pipeline") -> None:
        self.root = root
        self.bare = root / "pipeline.git"
        self.work = root / "work"
        self.project_dir = project_dir
        self.uv_cache = root / "uv-cache-lock"
        root.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self._git("init", "-q", "-b", "main", str(self.work), cwd=root)
        self._git("remote", "add", "origin", self.url)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    @property
    def project(self) -> Path:
        return self.work / self.project_dir

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env={**os.environ, **GIT_ENV},
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.project / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def remove(self, rel: str) -> None:
        self._git("rm", "-q", f"{self.project_dir}/{rel}")

    def lock(self, *find_links: Path | str) -> None:
        """`uv lock` from local wheels only (no index)."""
        links = [arg for d in find_links for arg in ("--find-links", str(d))]
        subprocess.run(
            ["uv", "lock", "--no-index", *links, "--quiet"],
            cwd=self.project,
            env={**os.environ, "UV_CACHE_DIR": str(self.uv_cache)},
            check=True,
            capture_output=True,
        )

    def commit(self, message: str) -> str:
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "main") -> None:
        self._git("checkout", "-q", "-B", name, start)

    def push(self, *refs: str) -> None:
        self._git("push", "-q", "--force", "origin", *refs)

    def tag(self, name: str) -> None:
        self._git("tag", "-f", name)
