"""Helper processes the sync starts (interpreter probes, prefix checks) never see git or index credentials."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sunbeam_sync.project.interpreter import env_prefix, probe
from sunbeam_sync.run.credentials import without_credentials

SECRETS = {
    "SUNBEAM_GIT_TOKEN": "tok-helper-7c1d",
    "GIT_ASKPASS": "/tmp/askpass.sh",
    "UV_INDEX_PRIVATE_PASSWORD": "pw-helper-9e2a",
}


@pytest.fixture
def spying_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A real interpreter behind a wrapper that writes the environment it was started with."""
    dump = tmp_path / "environ.txt"
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nenv >> "{dump}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return wrapper, dump


def test_interpreter_probe_and_prefix_check_get_no_credentials(
    spying_python: tuple[Path, Path],
) -> None:
    wrapper, dump = spying_python
    assert probe(str(wrapper)).version.startswith(f"{sys.version_info[0]}.")
    assert env_prefix(wrapper)
    seen = dump.read_text()
    assert "PATH=" in seen  # the wrapper really ran, twice
    for name, value in SECRETS.items():
        assert value not in seen, name


def test_without_credentials_keeps_everything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNBEAM_GIT_USERNAME", "bot")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "credential.helper")
    env = without_credentials()
    assert "SUNBEAM_GIT_USERNAME" not in env and "GIT_CONFIG_KEY_0" not in env
    assert env["PATH"] == os.environ["PATH"]
