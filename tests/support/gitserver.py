"""A git server on 127.0.0.1: `git http-backend`, behind HTTP basic auth with a token or public."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.ports import LocalHTTPServer, QuietHandler


class PrivateGitServer(LocalHTTPServer):
    """With `token=None`, a public server: every request is served without credentials."""

    def __init__(self, root: Path, token: str | None, user: str = "x-access-token") -> None:
        super().__init__()
        self.root = root
        self.expected = (
            "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode() if token else None
        )
        self.requests: list[str] = []  # request lines seen (to prove auth was exercised)
        self.refused: set[str] = set()  # repositories ("x/remote.git") no credentials can read

    def url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}"

    def handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                auth = self.headers.get("Authorization", "")
                server.requests.append(f"{self.command} {self.path} auth={'yes' if auth else 'no'}")
                refused = any(self.path.startswith(f"/{repo}/") for repo in server.refused)
                if refused or (server.expected is not None and auth != server.expected):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="sunbeam-test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": "sunbeam",
                    "REMOTE_ADDR": "127.0.0.1",
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    if not line:
                        continue
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    else:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

        return Handler
