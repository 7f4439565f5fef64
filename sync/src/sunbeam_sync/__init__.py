"""Sunbeam sync: any git ref → its own locked, cached, self-healing uv environment.

This is the package's public face: the agent, the stack and the benchmarks import only these
names (tests/test_package_graph.py checks it). They load on first use (PEP 562), so
`sunbeam-sync --help` and importing the errors stay cheap; the `TYPE_CHECKING` block shows a
type checker the real types behind the lazy names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sunbeam_sync.cache.files import atomic_write
    from sunbeam_sync.envs.verify import verify_env
    from sunbeam_sync.errors import (
        BadInputError,
        Cancelled,
        GitError,
        LockfileError,
        NetworkError,
        SunbeamSyncError,
        UnknownRefError,
        UvError,
    )
    from sunbeam_sync.preparation import prepare
    from sunbeam_sync.request import PrepareRequest
    from sunbeam_sync.result import EnvLease, PrepareResult
    from sunbeam_sync.run.credentials import without_credentials
    from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings, default_cache_dir

_HOME = {
    "atomic_write": "cache.files",
    "BadInputError": "errors",
    "Cancelled": "errors",
    "GitError": "errors",
    "LockfileError": "errors",
    "NetworkError": "errors",
    "SunbeamSyncError": "errors",
    "UnknownRefError": "errors",
    "UvError": "errors",
    "EnvLease": "result",
    "PrepareResult": "result",
    "prepare": "preparation",
    "PrepareRequest": "request",
    "without_credentials": "run.credentials",
    "Bytecode": "settings",
    "LinkMode": "settings",
    "SyncSettings": "settings",
    "default_cache_dir": "settings",
    "verify_env": "envs.verify",
}
__all__ = [
    "BadInputError",
    "Bytecode",
    "Cancelled",
    "EnvLease",
    "GitError",
    "LinkMode",
    "LockfileError",
    "NetworkError",
    "PrepareRequest",
    "PrepareResult",
    "SunbeamSyncError",
    "SyncSettings",
    "UnknownRefError",
    "UvError",
    "atomic_write",
    "default_cache_dir",
    "prepare",
    "verify_env",
    "without_credentials",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'sunbeam_sync' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sunbeam_sync.{_HOME[name]}"), name)
