"""Requests refused from their headers: no key, or a body over the limit, before it is read.

Each test sends headers that promise a large body and then sends little or none of it: an API
that waited to read the body would never answer, so an answer proves nothing was read first.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.support.api_stack import API_KEY, LiveServer

HUGE = 100 * 1024 * 1024
AUTH = f"Authorization: Bearer {API_KEY}\r\n"


def _exchange(server: LiveServer, head: str, parts: list[bytes] = ()) -> tuple[int, str]:
    """Send `head` and `parts` on a raw socket; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        try:
            sock.sendall(head.encode())
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: read that answer
        data = b""
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)  # socket.timeout here means the server is still reading
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _post(path: str, length: int | None, extra: str = "") -> str:
    size = (
        f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    )
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{size}{extra}\r\n"
    )


def test_unauthenticated_huge_post_is_refused_before_its_body(live_api: LiveServer) -> None:
    status, body = _exchange(live_api, _post("/runs", HUGE))
    assert status == 401 and "Authorization: Bearer" in body
    status, body = _exchange(live_api, _post("/pipelines", HUGE, "Authorization: Bearer no\r\n"))
    assert status == 401 and "invalid API key" in body


def test_oversized_body_is_refused_with_413_before_it_is_read(live_api: LiveServer) -> None:
    status, body = _exchange(live_api, _post("/runs", HUGE, AUTH))
    assert status == 413 and "SUNBEAM_MAX_BODY_BYTES" in body


def test_streamed_body_without_length_is_cut_off_at_the_limit(live_api: LiveServer) -> None:
    chunk = b"x" * 65536
    # 2 MiB in chunks and never the final empty chunk: only a counting server can answer.
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 32
    status, body = _exchange(live_api, _post("/runs", None, AUTH), parts)
    assert status == 413 and "larger than" in body


@pytest.mark.parametrize("length", [26 * 1024 * 1024, HUGE])
def test_webhook_refuses_oversized_payloads_before_reading(
    live_api: LiveServer, length: int
) -> None:
    signed = "X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" + "0" * 64 + "\r\n"
    status, body = _exchange(live_api, _post("/hooks/github", length, signed))
    assert status == 413 and "larger than" in body


def _on_demand_runs(api: httpx.Client) -> set[str]:
    runs = api.get("/runs", params={"limit": 200}).json()
    return {r["id"] for r in runs if any(t.startswith("sunbeam-ref:") for t in r["tags"])}


@pytest.mark.usefixtures("main_deployment")
@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"ref": "main"}', "text/plain", 415, "Content-Type: application/json"),
        (b'{"ref": "main"}', "application/x-www-form-urlencoded", 415, "as JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "not valid JSON"),
        (
            b'{"ref": "main", "parameters": {"n": 1' + b"0" * 5000 + b"}}",
            "application/json",
            400,
            "not valid",
        ),
        (b'{"ref": "main"}', None, 415, "not no Content-Type"),
        (b'\xff\xfe{"ref": "main"}', "application/json", 400, "not valid JSON"),
        (b'{"ref": "main", "parameters": {"x": NaN}}', "application/json", 422, "finite"),
        (b'{"ref": "main", "parameters": {"x": -Infinity}}', "application/json", 422, "finite"),
        (b'{"ref": "main", "parameters": {"x": 1e999}}', "application/json", 422, "finite"),
        (b'{"ref": "main"', "application/json", 422, "JSON decode error"),
    ],
)
def test_careless_bodies_get_one_clear_line(
    api: httpx.Client,
    auth: dict[str, str],
    body: bytes,
    content_type: str | None,
    status: int,
    says: str,
) -> None:
    before = _on_demand_runs(api)
    headers = auth | ({"Content-Type": content_type} if content_type else {})
    r = api.post("/runs", content=body, headers=headers)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert says in detail and "\n" not in detail and "Traceback" not in r.text
    assert _on_demand_runs(api) == before
