"""A real MongoDB wire-protocol server (SecantusDB) for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from secantus import SecantusDBServer

from tests.support.ports import free_port


@contextmanager
def mongo_server(data_dir: Path, port: int | None = None) -> Iterator[SecantusDBServer]:
    server = SecantusDBServer(
        host="127.0.0.1", port=port or free_port(), storage_path=str(data_dir)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
