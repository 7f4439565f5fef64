"""Every git command the sync runs, through one runner: started here, supervised by `proc`.

git gets exactly the sanitized environment of `credentials` (nothing inherited besides), its own
session, and dies with us; `proc.supervise` streams its output into the log and kills it on
cancel. (GitPython used to start it: that was all it did here, and importing it cost 0.2 s of
every run's start-up, a third of a cache hit.)
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from pathlib import Path
from typing import IO

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.run import proc
from sunbeam_sync.run.credentials import ASKPASS_SCRIPT
from sunbeam_sync.run.log import SyncLog


def askpass_script(folder: Path) -> Path:
    """The GIT_ASKPASS script in `folder`, written once (it holds no secret)."""
    path = folder / "askpass.sh"
    if not path.exists() or path.read_text() != ASKPASS_SCRIPT:
        atomic_write(path, ASKPASS_SCRIPT, mode=0o755)
    return path


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
        # The variable GitPython reads, still honoured: a git elsewhere than on PATH.
        self.git = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"

    def run(
        self, *args: str, quiet: bool = False, sink: IO[bytes] | None = None
    ) -> proc.ProcResult:
        """Run `git ARGS` in the runner's folder; output logged as `[git]` unless quiet."""
        child = subprocess.Popen(
            [self.git, *args],
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=functools.partial(proc.die_with_parent, os.getpid()),
        )
        return proc.supervise(
            child, log=self.log, tag="git", cancel=self.cancel, quiet=quiet, sink=sink
        )

    def ok(self, *args: str) -> bool:
        return self.run(*args, quiet=True).returncode == 0

    def output(self, *args: str) -> str | None:
        """stdout+stderr of a quiet command, stripped, or None if it failed."""
        result = self.run(*args, quiet=True)
        return result.output.strip() if result.returncode == 0 else None
