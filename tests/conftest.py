"""Fixtures shared by every suite. Services start lazily: only when a test asks for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.prefect_server import PrefectServer, postgres_database, start_prefect_server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real Prefect server for the whole session (starting one costs 10-60 s), on the
    machine's PostgreSQL as in production. SQLite only where there is no PostgreSQL: under the
    suite's concurrent writers (three agents, the webhook, heartbeats) it answers "database is
    locked" 503s often enough that Prefect's own worker calls give up and runs crash."""
    with postgres_database("sunbeam_shared_tests") as database_url:
        server = start_prefect_server(tmp_path_factory.mktemp("prefect-shared"), database_url)
        try:
            yield server
        finally:
            server.stop()
