"""Sunbeam sync: any git ref → its own locked, cached, self-healing uv environment.

The public names load on first use (PEP 562), so `sunbeam-sync --help` and importing the
errors stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "BadInputError": "errors",
    "Cancelled": "errors",
    "GitError": "errors",
    "LockfileError": "errors",
    "NetworkError": "errors",
    "SunbeamSyncError": "errors",
    "UnknownRefError": "errors",
    "UvError": "errors",
    "EnvLease": "lease",
    "PrepareResult": "lease",
    "prepare": "preparation",
    "PrepareRequest": "request",
    "Bytecode": "settings",
    "LinkMode": "settings",
    "SyncSettings": "settings",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'sunbeam_sync' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sunbeam_sync.{_HOME[name]}"), name)
