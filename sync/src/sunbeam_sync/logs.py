"""Where the sync's progress goes: any stdlib logger or adapter (a Prefect flow-run logger works)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

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
