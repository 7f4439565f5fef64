"""Every git command the sync runs, through one runner: GitPython starts it, we supervise it.

GitPython builds the command and starts git; `proc.supervise` streams its output into the log
and kills it on cancel. Every call gets the sanitized environment of `credentials`: GitPython
always starts from `os.environ`, so inherited `GIT_*` variables we did not set (a caller's
GIT_DIR, GIT_SSH_COMMAND, ...) are removed by starting git through `env -u NAME`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

import git

from sunbeam_sync import proc
from sunbeam_sync.logs import SyncLog


class GitRunner:
    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        log: SyncLog,
        cancel: threading.Event | None = None,
    ) -> None:
        self.folder = folder
        self.env = env
        self.log = log
        self.cancel = cancel
        dropped = sorted(
            k for k in os.environ if k.startswith(("GIT_", "SUNBEAM_GIT_")) and k not in env
        )
        self._prefix = ["env", *(f"-u{k}" for k in dropped)] if dropped else []

    def run(
        self, *args: str, quiet: bool = False, sink: IO[bytes] | None = None
    ) -> proc.ProcResult:
        """Run `git ARGS` in the runner's folder; output logged as `[git]` unless quiet."""
        cmd = [*self._prefix, git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]
        started = git.Git(self.folder).execute(
            cmd, as_process=True, env=self.env, start_new_session=True
        )
        child = started.proc
        # GitPython's AutoInterrupt would kill the (finished) child again when collected.
        started.proc = None
        return proc.supervise(
            child, log=self.log, tag="git", cancel=self.cancel, quiet=quiet, sink=sink
        )

    def ok(self, *args: str) -> bool:
        return self.run(*args, quiet=True).returncode == 0

    def output(self, *args: str) -> str | None:
        """stdout+stderr of a quiet command, stripped, or None if it failed."""
        result = self.run(*args, quiet=True)
        return result.output.strip() if result.returncode == 0 else None
