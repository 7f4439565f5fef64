"""The environment key: everything that decides what gets installed, and nothing else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sunbeam_sync.project.interpreter import Interpreter

# Bump when the layout or build recipe of environments changes incompatibly.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EnvKey:
    key: str
    inputs: dict[str, Any]


def env_key(
    lock_bytes: bytes,
    interpreter: Interpreter,
    groups: Sequence[str] = (),
    extras: Sequence[str] = (),
    package: str | None = None,
) -> EnvKey:
    inputs: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "lock_sha256": hashlib.sha256(lock_bytes).hexdigest(),
        "python": interpreter.key_inputs(),
        "groups": sorted(set(groups)),
        "extras": sorted(set(extras)),
    }
    if package is not None:
        # A workspace member below the lock: `uv sync` installs what that member needs. Left
        # out otherwise, so that the keys of every other env stay what they were.
        inputs["package"] = package
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return EnvKey(key=hashlib.sha256(blob).hexdigest(), inputs=inputs)
