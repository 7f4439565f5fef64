"""A package index that refuses the agent (HTTP 401/403): which index, and which variables fix it.

uv reads an index's credentials from `UV_INDEX_<NAME>_USERNAME` / `_PASSWORD`, where NAME is the
index's `name` in `[[tool.uv.index]]` (pyproject.toml) or `[[index]]` (uv.toml), upper-cased with
every other character an underscore. uv's own error names only the file it could not download;
the person reading ours needs the variable names, and whether they were set at all. No value is
ever read into a message: only the names and whether each is set.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from sunbeam_sync.errors import UvError
from sunbeam_sync.run.credentials import url_origin

_DENIED = re.compile(r"\((401 Unauthorized|403 Forbidden)\) for url \((https?://[^)\s]+)\)")


def index_auth_error(output: str, config: Iterable[Path], package: str) -> UvError | None:
    """One line for uv's 401/403 from a package index; None when uv's output has none."""
    denied = _DENIED.search(output)
    if denied is None:
        return None
    status, url = denied.groups()
    origin = url_origin(url)
    name = next((n for n, u in configured_indexes(config) if url_origin(u) == origin), None)
    if name is None:
        return UvError(
            f"the package index at {origin} refused {package} ({status}): name that index in "
            'pyproject.toml ([[tool.uv.index]] name = "…") and give the agent '
            "UV_INDEX_<NAME>_USERNAME and UV_INDEX_<NAME>_PASSWORD"
        )
    user, password = index_variables(name)
    if os.environ.get(user) or os.environ.get(password):
        return UvError(
            f"the package index at {origin} refused {package} ({status}) with the credentials "
            f"in {user} / {password}: check them, and that they may read {package}"
        )
    return UvError(
        f"the package index at {origin} refused {package} ({status}): it needs credentials; "
        f"give the agent {user} and {password} (the index named {name!r} in pyproject.toml)"
    )


def index_variables(name: str) -> tuple[str, str]:
    """The variables uv reads the credentials of the index called `name` from."""
    stem = "UV_INDEX_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    return f"{stem}_USERNAME", f"{stem}_PASSWORD"


def configured_indexes(config: Iterable[Path]) -> list[tuple[str, str]]:
    """(name, url) of every named index in these pyproject.toml / uv.toml files."""
    found = []
    for path in config:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        uv = data if path.name == "uv.toml" else data.get("tool", {}).get("uv", {})
        for index in uv.get("index", []) if isinstance(uv, dict) else []:
            if isinstance(index, dict) and isinstance(index.get("name"), str):
                found.append((index["name"], str(index.get("url", ""))))
    return found
