"""The local API key `sunbeam up` makes when SUNBEAM_API_KEY is unset (mode 0600 in the state folder)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from sunbeam_sync import atomic_write

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
    atomic_write(path, key + "\n", mode=0o600)
    return key, path, True
