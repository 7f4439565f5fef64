"""Credentials: how a git token reaches git, and the environment minus every credential.

The token reaches git through GIT_ASKPASS reading the environment, never argv or disk. The flow
runs any ref's code, and interpreter probes, `uv python find` and the background compiler run
code from the env or the machine: none of them needs git or index credentials, so none of them
gets any (`without_credentials`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sunbeam_sync.settings import SyncSettings

# The script holds no secret: it echoes variables that only the git child process's environment has.
# (git.runner writes it into the cache, where git finds it.)
ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "${SUNBEAM_GIT_USERNAME:-x-access-token}" ;;
  *) printf '%s\\n' "${SUNBEAM_GIT_TOKEN}" ;;
esac
"""


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, without any user name; None for other URLs.
    What a credential is scoped to: the token goes to the pipeline repository's origin only."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def git_environment(settings: SyncSettings, askpass: Path | None) -> dict[str, str]:
    """The environment git runs with; `askpass`: where ASKPASS_SCRIPT is, given with a token."""
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
    if settings.git_token is not None and askpass is not None:
        env["GIT_ASKPASS"] = str(askpass)
        env["SUNBEAM_GIT_TOKEN"] = settings.git_token.get_secret_value()
        env["SUNBEAM_GIT_USERNAME"] = settings.git_username
    return env


CREDENTIAL_NAMES = frozenset(
    {"GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSH_COMMAND", "UV_KEYRING_PROVIDER"}
)
CREDENTIAL_PATTERN = re.compile(
    r"^(SUNBEAM_GIT_.*|UV_INDEX_.*_(USERNAME|PASSWORD)|UV_PUBLISH_(USERNAME|PASSWORD|TOKEN)"
    r"|GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+))$"
)


def is_credential(name: str) -> bool:
    return name in CREDENTIAL_NAMES or CREDENTIAL_PATTERN.match(name) is not None


def without_credentials(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """`env` (default: this process's) minus every credential, and any variable with no value."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if v is not None and not is_credential(k)}
