"""The environment minus every credential the sync uses, for processes that need none.

The flow runs any ref's code, and interpreter probes, `uv python find` and the background
compiler run code from the env or the machine: none of them needs git or index credentials, so
none of them gets any.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

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
