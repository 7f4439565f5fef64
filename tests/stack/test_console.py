"""Saying something never fails, even when stdout's reader is gone (issue 10.1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import signal, sys, time
from pathlib import Path
from sunbeam_stack.local.console import Console
console = Console()
console.log = Path(sys.argv[1])
console.say("first")
sys.stdin.readline()  # the test closes the pipe's reader, then lets us go on
for i in range(3):
    console.say(f"after {i}")
Path(sys.argv[1] + ".done").write_text("ok")
"""


def test_saying_survives_a_dead_stdout_and_still_logs(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"first\n"
    proc.stdout.close()  # the reader (`tee`) is gone
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    assert Path(f"{log}.done").read_text() == "ok"
    assert log.read_text().splitlines() == ["first", "after 0", "after 1", "after 2"]
    assert b"BrokenPipeError" not in (proc.stderr.read() if proc.stderr else b"")
