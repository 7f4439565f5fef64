"""A tiny pipeline project for the container tests, and the packages its branches add.

Everything installs from a local folder (find-links): the platform venv's own prefect closure
repacked into wheels, a tiny extra wheel, and an sdist whose in-tree build backend reports when it
starts and then waits for the test's go-ahead, so a test can kill the agent mid-sync for certain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.gated_sdist import waiting_sdist
from tests.support.pipeline_repo import LINUX_X86_64, ProjectRepo, project_toml
from tests.support.wheelhouse import build_wheelhouse
from tests.support.wheels import build_wheel

FLOW_NAME = "stack-probe"
ENTRYPOINT = "flows/probe.py:probe"

FLOW = """
import importlib
import json
import os
import sys
from pathlib import Path

from prefect import flow


@flow(name="stack-probe")
def probe(out: str, module: str = "") -> None:
    info = {
        "python": sys.executable,
        "ref": os.environ.get("SUNBEAM_REF"),
        "commit": os.environ.get("SUNBEAM_COMMIT"),
        "env_key": os.environ.get("SUNBEAM_ENV_KEY"),
        "version": importlib.import_module(module).__version__ if module else None,
    }
    Path(out).write_text(json.dumps(info))
"""


def pyproject(dependencies: list[str], wheelhouse: Path) -> str:
    # The agent image's Python may be any 3.11.x; the wheels come from the host's 3.11.
    uv = ["package = false", "no-index = true", f'find-links = ["{wheelhouse}"]', LINUX_X86_64]
    return project_toml("stack-probe", dependencies, requires_python=">=3.11,<3.12", uv=uv)


def gated_sdist(dest: Path, name: str, version: str, signals: Path) -> Path:
    """An sdist whose build blocks until `signals/release` exists (it writes `build-started`)."""
    wait = f"""    signals = Path({str(signals)!r})
    (signals / "build-started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 300
    while not (signals / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.2)"""
    return waiting_sdist(dest, name, version, wait)


@dataclass(frozen=True)
class ProbeProject:
    """The probe pipeline's repository and the packages its branches add, as the containers see them."""

    repo: ProjectRepo
    wheelhouse: Path
    shared: Path  # results and build signals, written by the containers' non-root user
    gitconfig: Path  # mounted as that user's ~/.gitconfig: it trusts the repository

    def binds(self) -> list[tuple[str, str, str]]:
        """What a flow container mounts from the host: (host path, container path, mode)."""
        remote = str(self.repo.remote)
        return [
            (remote, remote, "ro"),
            (str(self.wheelhouse), str(self.wheelhouse), "ro"),
            (str(self.shared), str(self.shared), "rw"),
            (str(self.gitconfig), "/home/sunbeam/.gitconfig", "ro"),
        ]


def probe_project(root: Path) -> ProbeProject:
    """Wheelhouse (prefect's closure, probe-extra 1.0, the gated probe-slow 2.0) and repository."""
    wheelhouse = build_wheelhouse(root / "wheelhouse", roots=("prefect",))
    shared = root / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    build_wheel(wheelhouse, "probe-extra", "1.0")
    # Debian 12's Python is 3.11.2, and redis needs async-timeout below 3.11.3, which the host's
    # newer 3.11 never installed: a stand-in over asyncio's own timeout (what redis uses above).
    build_wheel(
        wheelhouse,
        "async-timeout",
        "4.0.3",
        files={"async_timeout/__init__.py": "from asyncio import Timeout, timeout\n"},
    )
    gated_sdist(wheelhouse, "probe-slow", "2.0", signals=shared)
    repo = ProjectRepo(root / "repo")
    repo.write_project(
        {"pyproject.toml": pyproject(["prefect"], wheelhouse), "flows/probe.py": FLOW}
    )
    repo.lock(wheelhouse)
    repo.commit("probe pipeline")
    # git refuses repositories owned by another user: the container's user trusts this one.
    gitconfig = root / "gitconfig"
    gitconfig.write_text(f"[safe]\n\tdirectory = {repo.remote}\n")
    root.chmod(0o755)
    return ProbeProject(repo, wheelhouse, shared, gitconfig)
