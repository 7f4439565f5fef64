"""A pipeline project for the sync's tests (a git repo on a local index), and ways to prepare it.

`prep` prepares in-process; `run_cli` runs the `sunbeam-sync` command as users do.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from sunbeam_sync import PrepareRequest, PrepareResult, SyncSettings, prepare
from tests.support.gitrepo import PipelineRepo
from tests.support.pipeline_repo import project_toml
from tests.support.pyindex import LocalIndex
from tests.support.sync_cli import SUNBEAM_SYNC


def pyproject(deps: Sequence[str], index_url: str, name: str = "pipeline") -> str:
    return project_toml(name, deps, requires_python=">=3.11", index_url=index_url)


@dataclass
class Project:
    repo: PipelineRepo
    index: LocalIndex
    subdir: str = "."

    def set_deps(self, deps: Sequence[str], *, lock: bool = True, name: str = "pipeline") -> None:
        folder = self.repo.work / self.subdir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pyproject.toml").write_text(pyproject(deps, self.index.url, name=name))
        if lock:
            subprocess.run(
                ["uv", "lock", "-q", "--project", str(folder)], check=True, capture_output=True
            )

    def write_code(self, text: str) -> None:
        self.repo.write(f"{self.subdir}/flows.py", text)


def prep(
    settings: SyncSettings, repo: str, ref: str, project_dir: str = ".", **kw: object
) -> PrepareResult:
    with prepare(
        PrepareRequest(repo=repo, ref=ref, project_dir=project_dir, **kw), settings=settings
    ) as prepared:
        return prepared.result


def prep_heals(settings: SyncSettings, project: Project, reason: str) -> PrepareResult:
    """Prepare the project's main again: it must heal, naming `reason`."""
    result = prep(settings, project.repo.url, "main")
    assert result.healed and reason in (result.heal_reason or ""), result
    return result


def env_python(result: PrepareResult, code: str) -> str:
    return subprocess.run(
        [result.python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    out = subprocess.run(
        [SUNBEAM_SYNC, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return CliResult(out.returncode, out.stdout, out.stderr)
