"""How a git token reaches git: through GIT_ASKPASS reading the environment, never argv or disk."""

from __future__ import annotations

import os
from pathlib import Path

from sunbeam_sync.atomic import atomic_write
from sunbeam_sync.settings import SyncSettings

# The script holds no secret: it echoes variables that only the git child process's environment has.
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "${SUNBEAM_GIT_USERNAME:-x-access-token}" ;;
  *) printf '%s\\n' "${SUNBEAM_GIT_TOKEN}" ;;
esac
"""


def askpass_script(folder: Path) -> Path:
    path = folder / "askpass.sh"
    if not path.exists() or path.read_text() != _ASKPASS:
        atomic_write(path, _ASKPASS, mode=0o755)
    return path


def git_environment(settings: SyncSettings, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SUNBEAM_GIT_"))}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        # ext:: and friends run arbitrary commands; only plain transports are allowed.
        GIT_ALLOW_PROTOCOL="file:git:http:https:ssh",
        # Disable credential helpers so a user's `credential.helper=store` never writes our token.
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="credential.helper",
        GIT_CONFIG_VALUE_0="",
    )
    if settings.git_token is not None:
        env["GIT_ASKPASS"] = str(askpass_script(folder))
        env["SUNBEAM_GIT_TOKEN"] = settings.git_token.get_secret_value()
        env["SUNBEAM_GIT_USERNAME"] = settings.git_username
    return env
