"""Sunbeam sync: any git ref → its own locked, cached, self-healing uv environment."""

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
from sunbeam_sync.prepare import PreparedEnv, PrepareRequest, PrepareResult, prepare
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings

__all__ = [
    "BadInputError",
    "Bytecode",
    "Cancelled",
    "GitError",
    "LinkMode",
    "LockfileError",
    "NetworkError",
    "PrepareRequest",
    "PrepareResult",
    "PreparedEnv",
    "SunbeamSyncError",
    "SyncSettings",
    "UnknownRefError",
    "UvError",
    "prepare",
]
