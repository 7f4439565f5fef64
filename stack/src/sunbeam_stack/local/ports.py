"""Which loopback ports the stack can listen on, and who holds the ones it cannot.

A port is tested the way the servers bind it: with SO_REUSEADDR, so the TIME-WAIT sockets a stopped
stack leaves behind do not count as busy and a restart keeps the documented ports.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

Say = Callable[[str], None]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (Linux /proc/net; empty elsewhere)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def port_holder(port: int) -> str | None:
    """'pid N (command line)' of the process listening on `port`, when this user can see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {str((proc / "fd" / fd).readlink()) for fd in (proc / "fd").iterdir()}
            if links & wanted:
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {proc.name} ({argv.strip()[:120]})"
        except OSError:
            continue
    return "a process this user cannot see"


def pick_port(wanted: int, name: str, say: Say) -> int:
    """`wanted` when it is free; otherwise a free port, saying who holds `wanted`."""
    if port_is_free(wanted):
        return wanted
    port = free_port()
    holder = port_holder(wanted) or "no listener (the port is reserved or bound without listening)"
    say(f"port {wanted} is taken by {holder}: {name} uses {port} instead")
    return port
