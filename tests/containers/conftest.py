"""Fixtures for the tests that drive a real Docker engine (marked `docker`).

CI's harness (.ci/docker-setup.sh) provides the engine, Compose v2 and the base image. Where any is
missing (or SUNBEAM_SKIP_DOCKER=1), tests/conftest.py skips these tests as the `docker` tier
(tests/support/tiers.py), or fails the run under SUNBEAM_TESTS_REQUIRE; the failures below are for
what only a build finds out.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.dockerkit import (
    BASE_IMAGE,
    ROOT,
    DockerUnavailable,
    build_agent_image,
    connect,
)


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    try:
        client = connect()
    except DockerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def compose_cmd(docker_client) -> list[str]:  # type: ignore[no-untyped-def]
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            "Docker Compose v2 is missing: run `bash .ci/docker-setup.sh` as root "
            "(or set SUNBEAM_SKIP_DOCKER=1)",
            pytrace=False,
        )
    return ["docker", "compose"]


@pytest.fixture(scope="session")
def agent_image(docker_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The agent image, built once per session from this checkout on the local base image."""
    try:
        # Parallel checkouts on one engine set their own tag so their builds never collide.
        tag = os.environ.get("SUNBEAM_TEST_AGENT_TAG", "sunbeam-agent:test")
        image = build_agent_image(docker_client, ROOT, tag=tag, base=BASE_IMAGE)
    except DockerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield image


@pytest.fixture
def repo_root() -> Path:
    return ROOT
