"""Tiny wheels built in the test: a wheel is a zip with METADATA, WHEEL and RECORD."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    files: dict[str, str] | None = None,
    padding: int = 0,
) -> Path:
    """Build `name==version` as a pure-Python wheel into `dest`; return its path.

    The package module is importable as `name` (dashes → underscores) and exposes `__version__`.
    `padding` adds a data file of that many bytes (to make a build measurably slower).
    """
    dest.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    contents: dict[str, bytes] = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    for rel, text in (files or {}).items():
        contents[rel] = text.encode()
    if padding:
        contents[f"{module}/blob.bin"] = bytes(padding)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents[f"{dist}.dist-info/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sunbeam-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{path},{_digest(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{dist}.dist-info/RECORD,,")
    contents[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in contents.items():
            # A fixed date: the same wheel built twice is the same bytes (the same hash on the
            # index, whichever test module built it first).
            info = zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, data)
    return path
