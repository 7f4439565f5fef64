"""Where the sync's progress goes (any stdlib logger or adapter; a Prefect flow-run logger works),
and the wall time of its named phases, as `with timings("fetch"): ...`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

Logger = logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]

_default = logging.getLogger("sunbeam_sync")


class Redactor:
    """Replaces every known secret with *** in text that leaves the process."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class SyncLog:
    """The sync's log: tags each line with its step and redacts secrets."""

    def __init__(self, logger: Logger | None, redact: Redactor) -> None:
        self.logger = logger or _default
        self.redact = redact

    def info(self, tag: str, message: str) -> None:
        self.logger.info("[%s] %s", tag, self.redact(message))

    def warning(self, tag: str, message: str) -> None:
        self.logger.warning("[%s] %s", tag, self.redact(message))

    def error(self, tag: str, message: str) -> None:
        self.logger.error("[%s] %s", tag, self.redact(message))


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
