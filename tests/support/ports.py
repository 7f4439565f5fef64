"""Loopback ports and background HTTP servers for the services tests start."""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = ["free_port", "serve_in_background", "shut_down"]


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
