"""Warm interpreters (launch/warm.py, launch/_warm_main.py) with real processes: a launcher's
warm start run as its own process (tests/support/warm_client.py), a real interpreter that
imported Prefect, forked runs, real signals. The whole-stack behaviour (a worker's runs) is in
test_warm_runs.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sunbeam_agent.launch import warm
from tests.support.processes import alive, cmdline, wait_for
from tests.support.warm_client import COLD

PROGRAM = """
import json, os, sys, time
from pathlib import Path
import prefect
info = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "cwd": os.getcwd(),
    "path": sys.path[:3],
    "run": os.environ.get("PREFECT__FLOW_RUN_ID"),
    "stdin": sys.stdin.readline().strip(),
    "name": __name__,
}
print(json.dumps(info), flush=True)
mark = os.environ.get("SUNBEAM_TEST_MARK")
if mark:
    Path(mark).write_text(str(os.getpid()))
    time.sleep(120)
sys.exit(int(os.environ.get("SUNBEAM_TEST_EXIT", "0")))
"""


@pytest.fixture
def folder() -> Iterator[Path]:
    """A short private folder (a socket's path has at most 107 bytes); its interpreters are
    stopped at the end."""
    path = Path(tempfile.mkdtemp(prefix="sbw-"))
    try:
        yield path
    finally:
        pids = [holder.pid for holder in warm.live_interpreters(path)]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            wait_for(lambda pid=pid: not alive(pid), f"interpreter {pid} stopping", 30)
        shutil.rmtree(path, ignore_errors=True)


def _spec(folder: Path, tmp_path: Path, **changes: Any) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=f"{tmp_path}/one{os.pathsep}{tmp_path}/two")
    env.update(changes.pop("env", {}))
    spec = {
        "folder": str(folder),
        "count": 2,
        "idle_seconds": 60.0,
        "python": sys.executable,
        "env_dir": sys.prefix,
        "cwd": str(tmp_path),
        "program": PROGRAM,
        "env": env,
    }
    spec.update(changes)
    return spec


def _ready(spec: dict[str, Any]) -> Path:
    """A first run: it starts cold (the client says so) and starts the interpreter beside it,
    which imports once that run has ended; returns the interpreter's socket once it listens."""
    assert _run(spec)[0] == COLD
    fields = ("python", "env_dir", "env", "cwd", "program")
    run = warm.WarmRun(**{name: spec[name] for name in fields}, lease_fd=None)
    where = warm.address(Path(spec["folder"]), run)
    wait_for(where.exists, "the warm interpreter listening", 60)
    return where


def _command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "tests.support.warm_client", json.dumps(spec)]


def _run(spec: dict[str, Any], stdin: str = "hello\n") -> tuple[int, dict[str, Any]]:
    done = subprocess.run(_command(spec), input=stdin, capture_output=True, text=True, timeout=90)
    info = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr[-2000:]}
    return done.returncode, info


def _running_flow(folder: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A launcher whose warm flow is running (held asleep): (the launcher, the flow's pid)."""
    _ready(_spec(folder, tmp_path))
    mark = tmp_path / "running"
    client = subprocess.Popen(
        _command(_spec(folder, tmp_path, env={"SUNBEAM_TEST_MARK": str(mark)})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    wait_for(mark.exists, "the flow running", 60)
    return client, int(mark.read_text())


def test_runs_are_forked_from_one_interpreter_with_their_own_streams_dir_and_path(
    folder: Path, tmp_path: Path
) -> None:
    _ready(_spec(folder, tmp_path))
    infos = []
    for i in range(3):
        env = {"PREFECT__FLOW_RUN_ID": f"run-{i}", "SUNBEAM_TEST_EXIT": str(i + 3)}
        code, info = _run(_spec(folder, tmp_path, env=env), stdin=f"line {i}\n")
        assert code == i + 3, (code, info)
        infos.append(info)
    assert len({info["ppid"] for info in infos}) == 1, infos  # one interpreter forked them all
    assert "_warm_main.py" in cmdline(infos[0]["ppid"])
    assert len({info["pid"] for info in infos}) == 3
    for i, info in enumerate(infos):
        assert info["run"] == f"run-{i}" and info["stdin"] == f"line {i}", info
        assert info["cwd"] == str(tmp_path) and info["name"] == "__main__", info
        assert info["path"] == ["", f"{tmp_path}/one", f"{tmp_path}/two"], info


def test_other_prefect_settings_get_their_own_interpreter(folder: Path, tmp_path: Path) -> None:
    four, five = ({"PREFECT_CLIENT_MAX_RETRIES": n} for n in ("4", "5"))
    _ready(_spec(folder, tmp_path, env=four))
    _ready(_spec(folder, tmp_path, env=five))
    _, first = _run(_spec(folder, tmp_path, env=four))
    _, second = _run(_spec(folder, tmp_path, env=five))
    _, again = _run(_spec(folder, tmp_path, env=four))
    assert first["ppid"] != second["ppid"] and again["ppid"] == first["ppid"]


def test_a_killed_flow_kills_its_launcher_with_the_same_signal(
    folder: Path, tmp_path: Path
) -> None:
    client, flow = _running_flow(folder, tmp_path)
    os.kill(flow, signal.SIGKILL)
    assert client.wait(timeout=30) == -signal.SIGKILL


def test_a_signal_to_the_launcher_reaches_the_flow(folder: Path, tmp_path: Path) -> None:
    client, flow = _running_flow(folder, tmp_path)
    client.send_signal(signal.SIGTERM)  # what a worker's cancel sends
    assert client.wait(timeout=30) == -signal.SIGTERM  # the flow died of it, so did we
    assert not alive(flow)


def test_a_killed_launcher_takes_its_flow_with_it(folder: Path, tmp_path: Path) -> None:
    client, flow = _running_flow(folder, tmp_path)
    client.kill()
    client.wait(timeout=30)
    wait_for(lambda: not alive(flow), "the orphaned flow killed", 30)
    code, _ = _run(_spec(folder, tmp_path))  # the interpreter itself carries on
    assert code == 0


def test_the_least_recently_used_interpreter_makes_room(folder: Path, tmp_path: Path) -> None:
    four, five = ({"PREFECT_CLIENT_MAX_RETRIES": n} for n in ("4", "5"))
    _ready(_spec(folder, tmp_path, count=1, env=four))
    _, first = _run(_spec(folder, tmp_path, count=1, env=four))
    _ready(_spec(folder, tmp_path, count=1, env=five))  # starting it stops the other one
    _, second = _run(_spec(folder, tmp_path, count=1, env=five))
    wait_for(lambda: not alive(first["ppid"]), "the older interpreter stopping", 30)
    assert alive(second["ppid"])
    assert [holder.pid for holder in warm.live_interpreters(folder)] == [second["ppid"]]


def test_an_idle_interpreter_ends_and_removes_its_socket(folder: Path, tmp_path: Path) -> None:
    where = _ready(_spec(folder, tmp_path, idle_seconds=5.0))
    wait_for(lambda: not where.exists(), "the idle interpreter removing its socket", 30)
    wait_for(lambda: not warm.live_interpreters(folder), "the idle interpreter ending", 30)


def test_a_malformed_request_changes_nothing(folder: Path, tmp_path: Path) -> None:
    address = _ready(_spec(folder, tmp_path))
    _, first = _run(_spec(folder, tmp_path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(address))
        conn.sendall(b"GET / HTTP/1.1\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)
        try:
            answer = conn.recv(100)
        except ConnectionResetError:  # hung up on before reading it all
            answer = b""
        assert answer == b""  # no pid: nothing forked
    _, second = _run(_spec(folder, tmp_path))
    assert second["ppid"] == first["ppid"]


def test_turned_off_or_an_unsafe_folder_starts_cold(folder: Path, tmp_path: Path) -> None:
    assert _run(_spec(folder, tmp_path, count=0))[0] == COLD
    assert not list(folder.iterdir())  # and none started
    assert _run(_spec(folder, tmp_path, start=False))[0] == COLD  # a run that built its env
    assert not list(folder.iterdir())
    folder.chmod(0o777)  # anyone could ask it to run code: not used
    assert _run(_spec(folder, tmp_path))[0] == COLD
    assert not list(folder.iterdir())


def test_the_interpreter_imports_only_after_the_cold_start_beside_it(
    folder: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "running"
    spec = _spec(folder, tmp_path, cold_exec=True, env={"SUNBEAM_TEST_MARK": str(mark)})
    first = subprocess.Popen(_command(spec), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    wait_for(mark.exists, "the first run running (cold)", 60)
    assert int(mark.read_text()) == first.pid  # exec'd: the launcher became the flow
    (holder,) = warm.live_interpreters(folder)
    assert holder.state == "waiting"  # no import while that run starts
    code, second = _run(_spec(folder, tmp_path, cold_exec=True))
    assert code == 0
    assert "_warm_main.py" not in cmdline(second["ppid"])  # it came meanwhile: cold as well
    first.kill()
    first.wait(timeout=30)
    wait_for(lambda: warm.live_interpreters(folder)[0].state == "ready", "the import", 60)
    _, third = _run(_spec(folder, tmp_path))
    assert third["ppid"] == holder.pid


# A run in a sibling env, forked from this venv's interpreter: what it must see is its own env.
LENT = """
import importlib.metadata, json, multiprocessing.spawn, os, subprocess, sys, sysconfig
import prefect, sbtwin_extra
child = subprocess.run(
    [sys.executable, "-c", "import sbtwin_extra, sys; print(sys.prefix)"],
    capture_output=True, text=True,
)
print(json.dumps({
    "ppid": os.getppid(), "prefix": sys.prefix, "executable": sys.executable,
    "extra": sbtwin_extra.VERSION, "metadata": importlib.metadata.version("sbtwin-extra"),
    "child": child.stdout.strip() or child.stderr[-300:], "spawn": os.fsdecode(multiprocessing.spawn.get_executable()),
    "purelib": sysconfig.get_paths()["purelib"],
    "prefect": [prefect.__file__, prefect.__path__[0]],
}), flush=True)
"""


def _site(prefix: str | Path) -> Path:
    (site,) = Path(prefix).glob("lib/python*/site-packages")
    return site


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sibling of this venv, as a new lock that adds a package is built next to another: a new
    venv of the same base interpreter whose site-packages hardlinks every file of ours (as
    both would hardlink uv's cache), plus a package of its own."""
    env = tmp_path_factory.mktemp("twin") / "env"
    base = os.path.realpath(sys.executable)
    subprocess.run(["uv", "venv", "-q", "--relocatable", "--python", base, str(env)], check=True)
    ours, theirs = _site(sys.prefix), _site(env)
    for folder, _dirs, files in os.walk(ours):
        target = theirs / os.path.relpath(folder, ours)
        target.mkdir(exist_ok=True)
        for name in files:
            if not (target / name).exists():
                os.link(os.path.join(folder, name), target / name)
    (theirs / "sbtwin_extra").mkdir()
    (theirs / "sbtwin_extra" / "__init__.py").write_text('VERSION = "1.0"\n')
    info = theirs / "sbtwin_extra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sbtwin-extra\nVersion: 1.0\n")
    (info / "RECORD").write_text("")
    return env


def _env_of(prefix: str | Path) -> dict[str, str]:
    """What the launcher sets per env: VIRTUAL_ENV, and its bin/ first on PATH."""
    others = [p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(sys.prefix)]
    return {"VIRTUAL_ENV": str(prefix), "PATH": os.pathsep.join([f"{prefix}/bin", *others])}


def _twin_spec(folder: Path, tmp_path: Path, twin: Path, **changes: Any) -> dict[str, Any]:
    python = str(twin / "bin" / "python")
    env = _env_of(twin)
    # By default a run that built its env: it starts no interpreter of its own.
    changes.setdefault("start", False)
    return _spec(folder, tmp_path, python=python, env_dir=str(twin), env=env, **changes)


def _lender_ready(folder: Path, tmp_path: Path) -> int:
    _ready(_spec(folder, tmp_path, env=_env_of(sys.prefix)))
    wait_for(lambda: warm.live_interpreters(folder)[0].state == "ready", "the import", 60)
    return warm.live_interpreters(folder)[0].pid


def test_a_new_env_runs_forked_from_a_sibling_envs_interpreter_as_its_own(
    folder: Path, tmp_path: Path, twin: Path
) -> None:
    lender = _lender_ready(folder, tmp_path)
    code, info = _run(_twin_spec(folder, tmp_path, twin, program=LENT))
    assert code == 0, info
    assert info["ppid"] == lender  # forked from this venv's interpreter, not started cold
    package = _site(twin) / "prefect"  # imported before the fork, now named in this env
    assert info["prefect"] == [str(package / "__init__.py"), str(package)], info
    python = str(twin / "bin" / "python")
    assert info["prefix"] == str(twin) and info["executable"] == python, info
    assert info["extra"] == info["metadata"] == "1.0", info  # this env's own package
    assert info["child"] == str(twin), info  # its subprocesses start this env's Python
    assert info["spawn"] == python and info["purelib"] == str(_site(twin)), info
    assert [h.pid for h in warm.live_interpreters(folder)] == [lender]  # none started


def test_an_env_that_differs_in_what_the_interpreter_imported_is_not_lent(
    folder: Path, tmp_path: Path, twin: Path
) -> None:
    _lender_ready(folder, tmp_path)
    spec = _twin_spec(folder, tmp_path, twin)
    theirs = _site(twin)
    init = theirs / "prefect" / "__init__.py"
    original = init.read_bytes()
    init.unlink()  # another version of Prefect here: a copy with other bytes
    init.write_bytes(original + b"\n# another version\n")
    try:
        assert _run(spec)[0] == COLD
    finally:
        init.unlink()
        os.link(_site(sys.prefix) / "prefect" / "__init__.py", init)
    plugin = theirs / "sbtwin_plugin-1.0.dist-info"
    plugin.mkdir()
    (plugin / "entry_points.txt").write_text("[prefect.plugins]\nx = sbtwin_plugin\n")
    try:  # a package the lender's import never saw registers a Prefect plugin
        assert _run(spec)[0] == COLD
    finally:
        shutil.rmtree(plugin)
    assert _run(spec)[0] == 0  # the same env as it was: lent


def test_the_lending_interpreter_is_not_stopped_to_make_room(
    folder: Path, tmp_path: Path, twin: Path
) -> None:
    lender = _lender_ready(folder, tmp_path)
    # A hit on the twin with room for one interpreter: its own would stop the lender.
    code, info = _run(_twin_spec(folder, tmp_path, twin, count=1, start=True, program=LENT))
    assert code == 0 and info["ppid"] == lender, info
    assert [h.pid for h in warm.live_interpreters(folder)] == [lender]  # its own: not started


def test_why_runs_start_cold_is_one_line_naming_the_fix(folder: Path, tmp_path: Path) -> None:
    assert warm.why_cold(warm.WarmSettings(count=0, folder=tmp_path / ("x" * 200))) is None  # off
    long = warm.why_cold(warm.WarmSettings(folder=tmp_path / ("x" * 80)))
    assert long is not None and "too long" in long and "at most 61 bytes" in long
    shared = folder / "shared"  # a short path
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    said = warm.why_cold(warm.WarmSettings(folder=shared))
    assert said is not None and str(shared) in said and "mode 0700" in said
    assert "\n" not in said
    shared.chmod(0o700)
    assert warm.why_cold(warm.WarmSettings(folder=shared)) is None
