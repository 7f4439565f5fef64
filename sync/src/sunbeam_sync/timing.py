"""Wall time of named phases, as `with timings("fetch"): ...` (results and benchmarks show them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.monotonic() - start, 4)

    def __str__(self) -> str:
        return " ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
