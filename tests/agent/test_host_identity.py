"""Host ids: one per cache folder (agents sharing a cache agree), validated, and carried by the
worker's name and queues. No Prefect server needed: these run before the agent contacts it."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from sunbeam_agent.host import entrypoint
from sunbeam_agent.host.entrypoint import worker_command
from sunbeam_agent.host.identity import HOST_ID_FILE, HostIdError, cache_host_id
from sunbeam_agent.settings import AgentSettings
from sunbeam_contracts.hosts import host_id_problem, host_queue, worker_host, worker_name
from tests.support.agent_stack import BIN


def test_one_id_per_cache_folder(tmp_path: Path) -> None:
    first = cache_host_id(tmp_path / "a")
    assert host_id_problem(first) is None
    assert cache_host_id(tmp_path / "a") == first
    assert (tmp_path / "a" / HOST_ID_FILE).read_text().strip() == first
    assert cache_host_id(tmp_path / "b") != first


def test_agents_starting_together_on_one_cache_agree(tmp_path: Path) -> None:
    cache, start = tmp_path / "shared", threading.Barrier(8)
    got: list[str] = []

    def agent() -> None:
        start.wait()
        got.append(cache_host_id(cache))

    threads = [threading.Thread(target=agent) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1
    assert sorted(p.name for p in cache.iterdir()) == [HOST_ID_FILE]  # no aside files left


def test_unusable_cache_or_recorded_id_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HostIdError, match=r"cannot record the host id.*SUNBEAM_HOST_ID"):
        cache_host_id(blocker / "cache")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / HOST_ID_FILE).write_text("not an id!\n")
    with pytest.raises(HostIdError, match=r"invalid host id.*delete the file"):
        cache_host_id(bad)


@pytest.mark.parametrize("host_id", ["has space", "-dash", "x" * 64, "a/b", "ok@no"])
def test_agent_refuses_a_host_id_that_cannot_name_a_queue(
    tmp_path: Path, host_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("SUNBEAM_HOST_ID", host_id)
    monkeypatch.setenv("SUNBEAM_CACHE_DIR", str(tmp_path))
    assert entrypoint.main() == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "SUNBEAM_HOST_ID" in lines[0] and "host queue" in lines[0]
    assert not (tmp_path / HOST_ID_FILE).exists()  # refused before anything was written


def test_the_agent_command_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SUNBEAM_"))}
    env.update(SUNBEAM_HOST_ID="not ok", SUNBEAM_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [str(BIN / "sunbeam-agent")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "sunbeam-agent: invalid settings: SUNBEAM_HOST_ID: Value error, 'not ok' cannot name a "
        "host queue: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )


def test_worker_polls_the_shared_queues_and_its_host_queue() -> None:
    command = worker_command(AgentSettings(work_pool="p"), "box-1", "sunbeam-0a1b2c3d")
    queues = [command[i + 1] for i, arg in enumerate(command) if arg == "--work-queue"]
    assert queues == ["default", "host-box-1"]
    assert command[command.index("--name") + 1] == "sunbeam-0a1b2c3d@box-1"
    named = worker_command(AgentSettings(work_queues=["q1", "q2"]), "box-1", "w")
    assert [named[i + 1] for i, a in enumerate(named) if a == "--work-queue"] == [
        "q1",
        "q2",
        "host-box-1",
    ]


def test_worker_names_carry_the_host() -> None:
    assert worker_host(worker_name("sunbeam-1", "box-1")) == "box-1"
    assert worker_host("me@home@box-2") == "box-2"
    assert worker_host("ProcessWorker 1234-abcd") is None  # a stock worker
    assert worker_host("x@not a host") is None
    assert host_queue("box-1") == "host-box-1"
