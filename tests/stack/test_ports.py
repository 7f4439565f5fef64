"""Ports are tested the way a server binds them, and a taken one names its holder (issue 10.2)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from sunbeam_stack.local.ports import pick_port, port_holder, port_is_free
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess


def _time_wait_ports() -> set[int]:
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "06":  # TIME_WAIT
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _leave_time_wait(port: int) -> None:
    """A server on `port` that closes its accepted connection first: its end goes to TIME-WAIT."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = server.accept()
            conn.close()  # the server closes first
            client.recv(1)  # sees the FIN
    assert port in _time_wait_ports(), "the test could not produce a TIME-WAIT socket"


def test_a_port_left_in_time_wait_counts_as_free() -> None:
    port = free_port()
    _leave_time_wait(port)
    assert port_is_free(port)
    assert pick_port(port, "the API", say=lambda m: None) == port


def test_a_taken_port_says_which_process_holds_it(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
        "print('listening', flush=True); time.sleep(600)\n"
    )
    holder = ManagedProcess(
        "holder", [sys.executable, "-c", code, str(port)], {}, tmp_path / "holder.log"
    ).start()
    try:
        holder.wait_for_line("listening", timeout=30)
        said: list[str] = []
        picked = pick_port(port, "the Prefect server", said.append)
        assert picked != port and port_is_free(picked)
        assert f"pid {holder.pid}" in (port_holder(port) or "")
        assert said and f"port {port} is taken by pid {holder.pid}" in said[0], said
        assert f"uses {picked} instead" in said[0]
    finally:
        holder.stop(timeout=5)


def test_free_ports_are_kept() -> None:
    port = free_port()
    assert pick_port(port, "MongoDB", say=lambda m: None) == port
