"""A real MongoDB wire-protocol server (SecantusDB) for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymongo
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


@dataclass
class Mongo:
    """A SecantusDB server that a test may stop and start again on the same port and data."""

    data_dir: Path
    port: int
    server: SecantusDBServer | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.server = SecantusDBServer(
            host="127.0.0.1", port=self.port, storage_path=str(self.data_dir)
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> pymongo.MongoClient:
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=5000, tz_aware=True)
