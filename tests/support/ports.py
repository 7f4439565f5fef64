"""Loopback ports and background HTTP servers for the services tests start."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any

# The same helper `sunbeam up` uses to pick its ports.
from sunbeam_api.local.stack import free_port

__all__ = ["free_port", "serve_in_background", "shut_down"]


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
