"""Which Python an environment is built on, and what about it goes into the env key."""

from __future__ import annotations

import functools
import json
import os
import re
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
    " 'base_prefix': sys.base_prefix, 'executable': sys.executable}))"
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


def find_interpreter(
    request: str | None, project: Path, workspace: Path | None = None
) -> Interpreter:
    """Resolve `request` (a path or a version like "3.11") through uv's discovery.

    With no request: UV_PYTHON, then `.python-version` (the project's, else the workspace root's,
    where uv looks), then uv's own choice for requires-python. What is chosen here is what every
    uv call of the build is given (`--python`), so no later call can pick another interpreter.
    Discovery is remembered per process for the same inputs: a long-running agent asks it per run.
    """
    pins = project_pins(project, workspace)
    key = (request, os.environ.get("UV_PYTHON"), pins)
    if key not in _DISCOVERED:
        # Keyed by the pins, not the folder: every commit has its own checkout folder, and the
        # agent would otherwise pay a `uv python find` for each new commit of the same project.
        wanted, source = chosen_python(request, project, workspace)
        _DISCOVERED[key] = _discover(wanted, source, project)
    return probe(_DISCOVERED[key])


_DISCOVERED: dict[tuple[str | None, str | None, str], str] = {}
_CHOSEN = "--python / SUNBEAM_PYTHON"


def python_version_file(project: Path, workspace: Path | None = None) -> Path | None:
    """The `.python-version` uv honours for this project: its own, else the workspace root's."""
    for folder in (project, workspace or project):
        if (folder / ".python-version").is_file():
            return folder / ".python-version"
    return None


def chosen_python(
    request: str | None, project: Path, workspace: Path | None = None
) -> tuple[str | None, str | None]:
    """(what to ask uv for, who asked for it); (None, None) leaves it to requires-python."""
    if request:
        return request, _CHOSEN
    if os.environ.get("UV_PYTHON"):
        return os.environ["UV_PYTHON"], "UV_PYTHON"
    pinned = python_version_file(project, workspace)
    if pinned is not None:
        lines = pinned.read_text(errors="replace").splitlines()
        version = next((ln.strip() for ln in lines if ln.strip() and ln[0] != "#"), "")
        if version:
            return version, f"{pinned.parent.name or '.'}/.python-version"
    return None, None


def project_pins(project: Path, workspace: Path | None = None) -> str:
    pins = []
    pinned = python_version_file(project, workspace)
    for path in (pinned, project / "pyproject.toml"):
        try:
            text = path.read_text() if path is not None else ""
        except OSError:
            continue
        if path is not None and path.name == "pyproject.toml":
            text = "\n".join(ln for ln in text.splitlines() if "requires-python" in ln)
        pins.append(text.strip())
    return "|".join(pins)


def _discover(request: str | None, source: str | None, project: Path) -> str:
    cmd = [uv_bin(), "python", "find", "--system"]
    if request:
        cmd.append(request)
    env = {
        k: v
        for k, v in without_credentials().items()
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    # A version asked for explicitly is looked up away from the checkout, so that nothing there
    # (a `.python-version` read by pyenv's shims) changes the answer.
    cwd = _NEUTRAL if request else project
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["no interpreter found"]
        reason = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1])
        if source is not None:
            raise BadInputError(missing_python(request or "", source, reason, env))
        raise BadInputError(_requires_python_unmet(project, env))
    return out.stdout.strip()


def _requires_python_unmet(project: Path, env: dict[str, str]) -> str:
    """What the project requires, what this agent has, and what to change (one line)."""
    try:
        wanted = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        required = str(wanted["requires-python"])
    except (OSError, ValueError, KeyError, TypeError):
        required = "a Python version"
    versions = host_pythons(env)
    has = f"Python {', '.join(versions)}" if versions else "no Python uv can find"
    return (
        f"the project requires Python {required} (requires-python in pyproject.toml), but this "
        f"agent has {has}: widen requires-python and run `uv lock`, or give the agent a "
        "matching Python (SUNBEAM_PYTHON)"
    )


_NEUTRAL = "/"


def missing_python(version: str, source: str, reason: str, env: dict[str, str]) -> str:
    """One line: what is required, who required it, what this host has, and the fix."""
    if source == _CHOSEN:
        asked = f"Python {version} was chosen ({source})"
    else:
        asked = f"{source} asks for Python {version}"
    choose = f"choose an installed one with {_CHOSEN}"
    if source.endswith(".python-version"):
        choose += " (or change .python-version)"
    said = reason.lower()
    if "no interpreter found" not in said and "failed to inspect" not in said:
        # Not a version uv can look for at all (e.g. "Python <3.6 is not supported").
        return f"{asked}, which uv cannot use ({reason.removeprefix('error: ')}): {choose}"
    has = ", ".join(host_pythons(env)) or "none"
    broken = _BROKEN.search(reason)  # e.g. a pyenv shim for a version pyenv does not have
    if broken:
        has += f"; {broken.group(1)} does not run"
    return f"{asked}, which this host does not have (it has {has}): install it, or {choose}"


_BROKEN = re.compile(r"Failed to inspect Python interpreter .* at `([^`]+)`")


def host_pythons(env: dict[str, str]) -> list[str]:
    """The Python versions uv finds on this host, newest first."""
    cmd = [uv_bin(), "python", "list", "--only-installed", "--output-format", "json"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=_NEUTRAL, env=env, check=False, timeout=60
    )
    try:
        found = [str(item["version"]) for item in json.loads(out.stdout)]
    except (ValueError, TypeError, KeyError):
        found = []
    return sorted(set(found), key=_version_order, reverse=True)


def _version_order(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


@functools.lru_cache(maxsize=32)
def _probe_cached(path: str, mtime_ns: int) -> Interpreter:
    out = subprocess.run(
        [path, "-I", "-S", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=without_credentials(),
        cwd=_NEUTRAL,
    )
    if out.returncode != 0:
        raise BadInputError(f"Python interpreter {path} does not run: {out.stderr.strip()[-200:]}")
    data = json.loads(out.stdout)
    return Interpreter(
        # The interpreter itself, not a launcher in front of it (pyenv's shims pick a Python by
        # the folder they are started in): every later uv call gets exactly this file.
        path=data["executable"] or path,
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
    with PrefixProbe(python) as probe:
        return probe.prefix()


class PrefixProbe:
    """`python` asked for its sys.prefix in a process of its own; `prefix()` waits for the answer.

    A build asks while it checks what it installed (the probe starts Python: tens of ms). Used
    as a context manager, the process is never left running, whatever happens in the block."""

    def __init__(self, python: Path) -> None:
        try:
            self.process: subprocess.Popen[str] | None = subprocess.Popen(
                # -B: a probe leaves the env as it found it (no __pycache__ in its site-packages).
                [str(python), "-I", "-B", "-c", "import sys; print(sys.prefix)"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=without_credentials(),
            )
            self.failure = ""
        except OSError as exc:
            self.process = None
            self.failure = exc.strerror or str(exc)

    def prefix(self, timeout: float = 60) -> str | None:
        """The prefix printed, or None if the interpreter did not run, failed or hung; then
        `failure` says how (its last line of error output, or its exit status)."""
        if self.process is None:
            return None
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            self.failure = f"no answer in {timeout:.0f}s"
            return None
        if self.process.returncode == 0:
            return out.strip()
        said = err.strip().splitlines()[-1:] or [f"exit status {self.process.returncode}"]
        self.failure = said[0][:200]
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()

    def __enter__(self) -> PrefixProbe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
