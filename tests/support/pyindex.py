"""A PEP 503 simple index on 127.0.0.1 serving a folder of wheels (optionally slowly, or down)."""

from __future__ import annotations

import hashlib
import html
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.ports import free_port, serve_in_background, shut_down


class LocalIndex:
    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.delay = 0.0  # seconds to stall every wheel download (for "slow sync" tests)
        self.stalling = threading.Event()  # set once a download is being stalled
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    def add(self, wheel: Path) -> None:
        target = self.files / wheel.name
        target.write_bytes(wheel.read_bytes())
        self._regenerate()

    def _regenerate(self) -> None:
        projects: dict[str, list[Path]] = {}
        for whl in sorted(self.files.glob("*.whl")):
            name = whl.name.split("-")[0].replace("_", "-").lower()
            projects.setdefault(name, []).append(whl)
        simple = self.root / "simple"
        simple.mkdir(exist_ok=True)
        for name, wheels in projects.items():
            page = simple / name
            page.mkdir(exist_ok=True)
            links = "".join(
                f'<a href="/files/{html.escape(w.name)}#sha256='
                f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a>\n'
                for w in wheels
            )
            (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")

    def start(self) -> LocalIndex:
        index = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/files/") and index.delay:
                    index.stalling.set()
                    time.sleep(index.delay)
                super().do_GET()

        self._server = serve_in_background(self.port, partial(Handler, directory=str(self.root)))
        return self

    def stop(self) -> None:
        shut_down(self._server)
        self._server = None
