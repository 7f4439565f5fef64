"""The suite's tiers: tests that need more than uv and git, what they need, and whether it is here.
(Without PostgreSQL the shared Prefect server runs on SQLite; only the test of the agent on a
PostgreSQL-backed server needs it.)

A newcomer's `uv run pytest` runs everything this machine can run and skips a tier whose parts are
missing, naming them; CI sets SUNBEAM_TESTS_REQUIRE=all, under which a missing tier fails the run
instead. tests/conftest.py applies this at collection and reports it at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest

REQUIRE_VAR = "SUNBEAM_TESTS_REQUIRE"
RUN_EVERYTHING = "bash .ci/run"  # CI's entry point
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
PROBE_TIMEOUT_S = 10  # a hung engine must not hang collection


@dataclass(frozen=True)
class Tier:
    name: str
    what: str  # what it tests, for the summary
    provision: str  # what provides its parts
    needed_by: Callable[[pytest.Item], bool]
    missing: Callable[[], str | None]  # why it cannot run here, or None


def browser_paths() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver (packages chromium, chromium-driver), found on PATH."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _ui_missing() -> str | None:
    if browser_paths() is None:
        absent = [name for name in ("chromium", "chromedriver") if not shutil.which(name)]
        return f"no {' and no '.join(absent)} on PATH"
    return None


def _postgres_missing() -> str | None:
    # What the tests' fixture needs, done once: a database made and dropped.
    from tests.support.prefect_server import postgres_database

    if shutil.which("psql") is None:
        return "no psql on PATH"
    with postgres_database("sunbeam_tier_probe") as url:
        if url is None:
            return "no PostgreSQL on 127.0.0.1:5432 lets user postgres create a database"
    return None


def _os_error(exc: BaseException | None) -> str | None:
    """The operating system's words for why a connection failed ("Permission denied"), found in
    the chain the Docker SDK wraps it in (requests and urllib3 keep it in args or causes)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
        todo += [item.__cause__, item.__context__, *item.args]
    return None


def _docker_missing() -> str | None:
    if os.environ.get("SUNBEAM_SKIP_DOCKER") == "1":
        return "SUNBEAM_SKIP_DOCKER=1 asks to skip it"
    import docker
    import docker.errors

    from tests.containers.dockerkit import BASE_IMAGE

    host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        client = docker.from_env(timeout=PROBE_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers at {host} ({_os_error(exc) or type(exc).__name__})"
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        return f"no local base image {BASE_IMAGE}"
    finally:
        client.close()
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    if compose.returncode != 0:
        return "no Docker Compose v2 (`docker compose`)"
    return None


TIERS = (
    Tier(
        "docker",
        "the agent image, the Docker pool and the Compose stack",
        "as root, `bash .ci/docker-setup.sh` provides it",
        lambda item: item.get_closest_marker("docker") is not None,
        _docker_missing,
    ),
    Tier(
        "ui",
        "the results browser in Chromium",
        "as root, `apt-get install chromium chromium-driver` provides it",
        lambda item: "browser" in getattr(item, "fixturenames", ()),
        _ui_missing,
    ),
    Tier(
        "postgres",
        "the agent on a PostgreSQL-backed Prefect server",
        "Debian's postgresql with trust auth on 127.0.0.1 provides it (`bash .ci/run` starts it)",
        lambda item: "postgres_server" in getattr(item, "fixturenames", ()),
        _postgres_missing,
    ),
)


class TierRequirementError(ValueError):
    """SUNBEAM_TESTS_REQUIRE names no tier."""


def required() -> set[str]:
    """The tiers SUNBEAM_TESTS_REQUIRE says must run: `all`, or names separated by commas."""
    value = os.environ.get(REQUIRE_VAR, "").strip()
    if not value:
        return set()
    if value == "all":
        return {tier.name for tier in TIERS}
    names = {name.strip() for name in value.split(",") if name.strip()}
    unknown = names - {tier.name for tier in TIERS}
    if unknown:
        known = ", ".join(tier.name for tier in TIERS)
        raise TierRequirementError(
            f"{REQUIRE_VAR}={value} names no tier {', '.join(sorted(unknown))}: "
            f"use `all` or some of {known}"
        )
    return names


@dataclass(frozen=True)
class Skipped:
    tier: Tier
    reason: str
    count: int


def summary_lines(skipped: list[Skipped]) -> list[str]:
    """What the end of the run says about skipped tiers: what, why, and what runs them."""
    lines = [
        f"{s.tier.name}: {s.count} test{'s' if s.count != 1 else ''} skipped ({s.tier.what}): "
        f"{s.reason}; {s.tier.provision}"
        for s in skipped
    ]
    lines.append(
        f"To run everything: `{RUN_EVERYTHING}` (as root) installs Docker and Chromium, starts "
        f"PostgreSQL and runs the whole suite with {REQUIRE_VAR}=all."
    )
    return lines
