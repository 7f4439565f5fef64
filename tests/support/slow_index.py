"""A find-links page on 127.0.0.1 whose wheel downloads can be made to stall (slow network)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class SlowIndex:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.delay = 0.0  # seconds a wheel download stalls before its first byte
        self.stalled = threading.Event()  # set once a download is being held back
        self._stop = threading.Event()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                path = folder / self.path.strip("/").split("?")[0]
                if not path.is_file():
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()

            def do_GET(self) -> None:
                name = self.path.strip("/").split("?")[0]
                if not name:
                    links = "".join(
                        f'<a href="{p.name}">{p.name}</a>\n' for p in sorted(folder.glob("*.whl"))
                    )
                    return self._send(f"<html><body>{links}</body></html>".encode(), "text/html")
                path = folder / name
                if not path.is_file():
                    self.send_error(404)
                    return None
                if index.delay:
                    index.stalled.set()
                    deadline = time.monotonic() + index.delay
                    while time.monotonic() < deadline and not index._stop.is_set():
                        time.sleep(0.1)
                return self._send(path.read_bytes(), "application/octet-stream")

            def _send(self, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client (uv) was killed mid-download

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def slow_index(folder: Path) -> Iterator[SlowIndex]:
    index = SlowIndex(folder)
    thread = threading.Thread(target=index.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        index.close()
