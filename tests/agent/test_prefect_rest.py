"""The launcher's REST client against a real HTTP server on 127.0.0.1 that answers as a busy,
broken or vanished Prefect server would: what is retried, how often, and what the user reads."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sunbeam_agent.launch.prefect_rest import CONNECT_RETRIES, PrefectAPIError, PrefectREST


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next status of its script (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses = statuses
        self.seen = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_GET(self) -> None:
        status = self.server.statuses[min(self.server.seen, len(self.server.statuses) - 1)]
        self.server.seen += 1
        body = json.dumps({"id": "run-1"} if status == 200 else {"detail": "busy"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[list[int]], Scripted]]:
    servers: list[Scripted] = []

    def start(statuses: list[int]) -> Scripted:
        server = Scripted(statuses)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client(url: str) -> PrefectREST:
    return PrefectREST(url, {}, timeout=5, backoff=0.01)


def test_a_busy_server_is_asked_again_until_it_answers(serve) -> None:
    server = serve([503, 429, 503, 200])
    assert client(server.url).read_flow_run("run-1") == {"id": "run-1"}
    assert server.seen == 4


def test_a_server_busy_for_good_is_one_line_after_the_retries(serve) -> None:
    server = serve([503])
    with pytest.raises(PrefectAPIError) as caught:
        client(server.url).request("GET", "/flow_runs/run-1", retries=2)
    assert server.seen == 3
    assert str(caught.value) == 'GET /flow_runs/run-1 answered 503: {"detail": "busy"}'


def test_a_refusal_is_not_retried(serve) -> None:
    server = serve([404])
    with pytest.raises(PrefectAPIError, match="answered 404"):
        client(server.url).read_flow_run("run-1")
    assert server.seen == 1


def test_a_server_that_hangs_up_is_tried_a_few_times_then_named() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = 0

    def hang_up() -> None:  # accept and close at once: the client sees the connection drop
        nonlocal accepted
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted += 1
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    try:
        with pytest.raises(PrefectAPIError) as caught:
            client(url).read_flow_run("run-1")
    finally:
        listener.close()
    assert accepted == CONNECT_RETRIES + 1
    message = str(caught.value)
    assert message.startswith(f"the Prefect API at {url} did not answer")
    assert message.endswith("check PREFECT_API_URL") and "\n" not in message
