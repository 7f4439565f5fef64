"""Fixtures shared by every suite. Services start lazily: only when a test asks for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.prefect_server import PrefectServer, start_prefect_server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real Prefect server (SQLite) for the whole session: starting one costs 10-60 s."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-shared"))
    try:
        yield server
    finally:
        server.stop()
