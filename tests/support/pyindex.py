"""A PEP 503 simple index on 127.0.0.1 serving wheels and sdists (optionally slowly, down, or
only to those who log in)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from tests.support.ports import LocalHTTPServer, QuietHandler


class LocalIndex(LocalHTTPServer):
    def __init__(self, root: Path, port: int | None = None) -> None:
        super().__init__()
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.port = port or self.port
        self.delay = 0.0  # seconds to stall every wheel download (for "slow sync" tests)
        self.stalling = threading.Event()  # set once a download is being stalled
        self.auth: str | None = None  # "user:password" that every request must carry (basic)
        self.requests: list[str] = []  # "GET <path> auth=yes|no", to prove what was sent

    @property
    def url(self) -> str:
        return f"{self.base_url}/simple"

    def add(self, wheel: Path) -> None:
        self.add_all([wheel])

    def add_all(self, dists: list[Path]) -> None:
        """Serve these wheels/sdists too (the index pages are rewritten once)."""
        for dist in dists:
            (self.files / dist.name).write_bytes(dist.read_bytes())
        self._regenerate()

    def _regenerate(self) -> None:
        projects: dict[str, list[Path]] = {}
        for dist in sorted([*self.files.glob("*.whl"), *self.files.glob("*.tar.gz")]):
            name = dist.name.split("-")[0].replace("_", "-").lower()
            projects.setdefault(name, []).append(dist)
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

    def handler(self) -> partial[SimpleHTTPRequestHandler]:
        index = self

        class Handler(SimpleHTTPRequestHandler):
            log_message = QuietHandler.log_message

            def do_GET(self) -> None:
                sent = self.headers.get("Authorization", "")
                index.requests.append(f"GET {self.path} auth={'yes' if sent else 'no'}")
                if index.auth is not None and sent != _basic(index.auth):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="sunbeam-test-index"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.startswith("/files/") and index.delay:
                    index.stalling.set()
                    time.sleep(index.delay)
                # The installer may hang up mid-download (it had the file, or gave up).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().do_GET()

        return partial(Handler, directory=str(self.root))


def _basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()
