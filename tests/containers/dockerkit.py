"""Small helpers over the Docker SDK for the stack tests: connect, build once, wait for things."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "sunbeam-base:bookworm"
SETUP_HINT = "run `bash .ci/docker-setup.sh` as root, or set SUNBEAM_SKIP_DOCKER=1 to skip"

T = TypeVar("T")


class DockerUnavailable(RuntimeError):
    """The engine, the base image or the agent image build is not there."""


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"no Docker engine ({exc}): {SETUP_HINT}") from exc
    return client


def build_agent_image(client: docker.DockerClient, context: Path, *, tag: str, base: str) -> str:
    """Build Dockerfile.agent on `base` with host networking; return the image id."""
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound as exc:
        raise DockerUnavailable(f"base image {base} is missing: {SETUP_HINT}") from exc
    try:
        image, _logs = client.images.build(
            path=str(context),
            dockerfile="Dockerfile.agent",
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            network_mode="host",
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
        raise DockerUnavailable(f"building Dockerfile.agent failed:\n{tail[-3000:]}") from exc
    return str(image.id)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
