"""Sunbeam sync's exceptions. Every message is one line written for the person who will read it."""


class SunbeamSyncError(Exception):
    """Base class; `exit_code` is what the CLI exits with.

    `commit` is the commit the ref resolved to when the error came after that (a broken lock,
    a failed build), so a caller can still say which code failed; None before it.
    """

    exit_code = 1
    commit: str | None = None


class BadInputError(SunbeamSyncError):
    """The request itself is wrong (ref, URL, project folder, lockfile): retrying won't help."""

    exit_code = 2


class UnknownRefError(BadInputError):
    pass


class LockfileError(BadInputError):
    """`uv.lock` is missing, unreadable or disagrees with `pyproject.toml`."""


class StaleLockError(LockfileError):
    """uv says `uv.lock` is out of date with `pyproject.toml` (the lock check names what differs)."""


class GitError(SunbeamSyncError):
    pass


class NetworkError(SunbeamSyncError):
    """A remote (git server, package index) could not be reached after retries."""


class UvError(SunbeamSyncError):
    pass


class LockTimeout(SunbeamSyncError):
    pass


class Cancelled(SunbeamSyncError):
    exit_code = 130
