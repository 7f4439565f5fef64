"""Fixtures shared by every suite. Services start lazily: only when a test asks for them.

The hooks below run the suite in tiers (tests/support/tiers.py): a test whose tier this machine
lacks (Docker, Chromium, PostgreSQL) is skipped, and the end of the run says what was skipped, why,
and the command that runs it; under SUNBEAM_TESTS_REQUIRE (CI) a missing tier fails the run instead.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.support.prefect_server import PrefectServer, postgres_database, start_prefect_server
from tests.support.tiers import (
    REQUIRE_VAR,
    TIERS,
    Skipped,
    TierRequirementError,
    required,
    summary_lines,
)

SKIPPED_TIERS = pytest.StashKey[list[Skipped]]()


# Last: after `-m`/`-k` have deselected, so only tests that will run need their tier.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        must_run = required()
    except TierRequirementError as exc:
        raise pytest.UsageError(str(exc)) from None
    skipped: list[Skipped] = []
    unmet: list[str] = []
    for tier in TIERS:
        needing = [item for item in items if tier.needed_by(item)]
        if not needing:
            continue  # nothing selected needs it: no probe, no skip
        reason = tier.missing()
        if reason is None:
            continue
        if tier.name in must_run:
            unmet.append(f"the {tier.name} tier cannot run: {reason}; {tier.provision}")
            continue
        mark = pytest.mark.skip(reason=f"{tier.name} tier: {reason}")
        for item in needing:
            item.add_marker(mark)
        skipped.append(Skipped(tier, reason, len(needing)))
    if unmet:  # CI: one line, before any test runs
        raise pytest.UsageError(f"{REQUIRE_VAR}={os.environ[REQUIRE_VAR]}, but " + ". ".join(unmet))
    config.stash[SKIPPED_TIERS] = skipped


# A wrapper that runs first, so its lines come after pytest's short summary: last, where they
# are read.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> Generator[None]:
    result = yield
    skipped = config.stash.get(SKIPPED_TIERS, [])
    if skipped:
        terminalreporter.section("tiers skipped on this machine", yellow=True)
        for line in summary_lines(skipped):
            terminalreporter.write_line(line)
    return result


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
