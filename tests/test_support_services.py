from pathlib import Path

import httpx
import pymongo

from tests.support.mongo import mongo_server
from tests.support.prefect_server import start_prefect_server


def test_mongo_wire_server_roundtrip(tmp_path: Path) -> None:
    with mongo_server(tmp_path / "mongo") as server:
        client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        client.db.c.insert_one({"x": 1})
        assert client.db.c.find_one({"x": 1})["x"] == 1


def test_prefect_server_starts(tmp_path: Path) -> None:
    server = start_prefect_server(tmp_path / "prefect")
    try:
        assert httpx.get(f"{server.api_url}/health").json() is True
    finally:
        server.stop()
