"""Loopback ports and the one background HTTP server every test service is built on."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LocalHTTPServer", "QuietHandler", "free_port", "serve_in_background", "shut_down"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_background(port: int, handler: Any) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:`port`, served from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shut_down(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test's output clean (no access log)."""

    def log_message(self, *args: object) -> None:
        pass


class LocalHTTPServer:
    """A test service on its own loopback port: subclasses say how to answer (`handler`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handler(self) -> Any:
        """The request handler class (or a partial of one) serving this service."""
        raise NotImplementedError

    def start(self) -> Self:
        self._server = serve_in_background(self.port, self.handler())
        return self

    def stop(self) -> None:
        shut_down(self._server)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
