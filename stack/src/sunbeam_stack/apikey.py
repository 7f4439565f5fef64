"""The local API key `sunbeam up` makes when SUNBEAM_API_KEY is unset (mode 0600 in the state folder)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_FILE = "api-key"


def ensure_api_key(state_dir: Path) -> tuple[str, Path, bool]:
    """(key, where it is stored, whether it was just created). The key itself is never printed."""
    path = state_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key, path, False
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    os.replace(tmp, path)
    return key, path, True
