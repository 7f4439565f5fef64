"""Which Python an environment is built on, and what about it goes into the env key."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.uv import uv_bin

_PROBE = (
    "import json, platform, sys, sysconfig;"
    "print(json.dumps({'implementation': sys.implementation.name,"
    " 'version': platform.python_version(), 'platform': sysconfig.get_platform(),"
    " 'libc': '-'.join(platform.libc_ver()), 'prefix': sys.prefix,"
    " 'base_prefix': sys.base_prefix}))"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    implementation: str
    version: str
    platform: str
    libc: str

    def key_inputs(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("path")  # same version elsewhere on disk builds the same env
        return data

    @property
    def label(self) -> str:
        return f"{self.implementation}-{self.version}"


def find_interpreter(request: str | None, project: Path) -> Interpreter:
    """Resolve `request` (a path or a version like "3.11") through uv's discovery.

    With no request uv honours UV_PYTHON, then the project's `.python-version` / requires-python.
    Discovery is remembered per process for the same inputs: a long-running agent asks it per run.
    """
    pins = project_pins(project)
    key = (request, os.environ.get("UV_PYTHON"), pins)
    if key not in _DISCOVERED:
        # Keyed by the pins, not the folder: every commit has its own checkout folder, and the
        # agent would otherwise pay a `uv python find` for each new commit of the same project.
        _DISCOVERED[key] = _discover(request, key[1], pins, project)
    return probe(_DISCOVERED[key])


_DISCOVERED: dict[tuple[str | None, str | None, str], str] = {}


def project_pins(project: Path) -> str:
    pins = []
    for name in (".python-version", "pyproject.toml"):
        try:
            text = (project / name).read_text()
        except OSError:
            continue
        if name == "pyproject.toml":
            text = "\n".join(ln for ln in text.splitlines() if "requires-python" in ln)
        pins.append(text.strip())
    return "|".join(pins)


def _discover(request: str | None, uv_python: str | None, pins: str, project: Path) -> str:
    cmd = [uv_bin(), "python", "find", "--system"]
    if request:
        cmd.append(request)
    env = {
        k: v
        for k, v in without_credentials().items()
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=project, env=env, check=False)
    if out.returncode != 0:
        if request is None and uv_python is None and not (project / ".python-version").exists():
            raise BadInputError(_requires_python_unmet(project, env))
        reason = (out.stderr.strip().splitlines() or ["no interpreter found"])[-1]
        raise BadInputError(
            f"no Python interpreter matches {request or 'the project'}: {reason.removeprefix('error: ')}"
        )
    return out.stdout.strip()


def _requires_python_unmet(project: Path, env: dict[str, str]) -> str:
    """What the project requires, what this agent has, and what to change (one line)."""
    try:
        wanted = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        required = str(wanted["requires-python"])
    except (OSError, ValueError, KeyError, TypeError):
        required = "a Python version"
    cmd = [uv_bin(), "python", "list", "--only-installed", "--output-format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=project, env=env, check=False)
    try:
        versions = sorted({str(p["version"]) for p in json.loads(out.stdout)}, reverse=True)
    except (ValueError, KeyError, TypeError):
        versions = []
    has = f"Python {', '.join(versions)}" if versions else "no Python uv can find"
    return (
        f"the project requires Python {required} (requires-python in pyproject.toml), but this "
        f"agent has {has}: widen requires-python and run `uv lock`, or give the agent a "
        "matching Python (SUNBEAM_PYTHON)"
    )


@functools.lru_cache(maxsize=32)
def _probe_cached(path: str, mtime_ns: int) -> Interpreter:
    out = subprocess.run(
        [path, "-I", "-S", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=without_credentials(),
    )
    if out.returncode != 0:
        raise BadInputError(f"Python interpreter {path} does not run: {out.stderr.strip()[-200:]}")
    data = json.loads(out.stdout)
    return Interpreter(
        path=path,
        implementation=data["implementation"],
        version=data["version"],
        platform=data["platform"],
        libc=data["libc"],
    )


def probe(path: str) -> Interpreter:
    resolved = str(Path(path).absolute())
    return _probe_cached(resolved, os.stat(resolved).st_mtime_ns)


def env_prefix(python: Path) -> str | None:
    """sys.prefix of the interpreter at `python`, or None if it does not run."""
    try:
        out = subprocess.run(
            # -B: a probe leaves the env as it found it (no __pycache__ in its site-packages).
            [str(python), "-I", "-B", "-c", "import sys; print(sys.prefix)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=without_credentials(),
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None
