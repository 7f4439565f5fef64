"""What `sunbeam up` says: to the terminal while it is there, and always to `<state>/logs/up.log`.

Stopping the stack must never depend on being able to print: when stdout is gone (the `| tee` it
was piped into died with the same Ctrl-C), lines still reach the log file and nothing raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


class Console:
    def __init__(self) -> None:
        self.log: Path | None = None
        self.terminal = True

    def say(self, message: str) -> None:
        if self.log is not None:
            with contextlib.suppress(OSError), self.log.open("a", encoding="utf-8") as out:
                out.write(message + "\n")
        if not self.terminal:
            return
        try:
            print(message, flush=True)
        except (OSError, ValueError):
            self._lose_terminal()

    def _lose_terminal(self) -> None:
        # Point fd 1 at /dev/null so neither a later print nor the interpreter's final flush fails.
        self.terminal = False
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
