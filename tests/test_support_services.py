from pathlib import Path

import httpx
import pymongo

from tests.support.mongo import mongo_server
from tests.support.prefect_server import PrefectServer


def test_mongo_wire_server_roundtrip(tmp_path: Path) -> None:
    with mongo_server(tmp_path / "mongo") as server:
        client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        client.db.c.insert_one({"x": 1})
        assert client.db.c.find_one({"x": 1})["x"] == 1


def test_prefect_server_answers(prefect_server: PrefectServer) -> None:
    assert httpx.get(f"{prefect_server.api_url}/health").json() is True
