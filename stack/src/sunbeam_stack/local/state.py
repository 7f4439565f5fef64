"""What a running `sunbeam up` leaves in its state folder (`stack.json`): its own PID, every
child's PID, and the URLs in use.

The next `sunbeam up` reads it to find a stack whose `sunbeam up` was killed (`kill -9` cannot be
caught, and the children live in their own sessions, so they outlive it); `sunbeam env` reads it to
print the URLs. A PID counts only together with its start time, so a reused PID is never mistaken
for a child.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sunbeam_sync import atomic_write

STATE_FILE = "stack.json"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


@dataclass
class Recorded:
    name: str
    pid: int
    started: int | None

    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started


@dataclass
class StackState:
    up: Recorded
    children: list[Recorded] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    api_key_file: str | None = None

    def write(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(state_dir / STATE_FILE, json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, state_dir: Path) -> StackState | None:
        try:
            raw = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
            return cls(
                up=Recorded(**raw["up"]),
                children=[Recorded(**c) for c in raw.get("children", [])],
                urls=dict(raw.get("urls", {})),
                api_key_file=raw.get("api_key_file"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def live_children(self) -> list[Recorded]:
        return [c for c in self.children if c.alive()]


def me() -> Recorded:
    return Recorded("sunbeam up", os.getpid(), start_time(os.getpid()))


def clear(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
