"""A loopback HTTP proxy that passes every request but refuses websocket upgrades.

What many corporate proxies and load balancers do: a Prefect client behind it reaches the REST
API but not the events stream (`/api/events/out`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, upstream_port: int, refused: list[str]) -> None:
    with client:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        if b"\r\nupgrade: websocket" in head.lower():
            refused.append(head.split(b" ", 2)[1].decode(errors="replace"))
            client.sendall(_REFUSAL)
            return
        with socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
            upstream.sendall(head)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()


@contextmanager
def no_websocket_proxy(upstream_port: int) -> Iterator[tuple[int, list[str]]]:
    """(the proxy's port, the paths of the upgrades it refused so far) for the block."""
    listener = socket.create_server(("127.0.0.1", 0))
    refused: list[str] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                args = (client, upstream_port, refused)
                threading.Thread(target=_serve, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], refused
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
