"""An sdist whose in-tree build backend waits for the test before it builds its wheel.

uv has to build it during a sync, so a test can act at a known moment of the build (kill the
agent, cancel the run, start more runs) instead of racing a fast install. How the backend
announces itself and waits is the caller's: a file in a shared folder, an HTTP gate, ...
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

_BACKEND = '''
"""In-tree PEP 517 backend: waits for the test's go-ahead, then builds a one-module wheel."""
import base64, hashlib, os, time, urllib.request, zipfile
from pathlib import Path

NAME, VERSION = {name!r}, {version!r}
DIST = NAME.replace("-", "_")
META = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
FILES = {{
    f"{{DIST}}/__init__.py": f"__version__ = {{VERSION!r}}\\n",
    f"{{DIST}}-{{VERSION}}.dist-info/METADATA": META,
    f"{{DIST}}-{{VERSION}}.dist-info/WHEEL":
        "Wheel-Version: 1.0\\nGenerator: gated\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}}


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = Path(metadata_directory) / f"{{DIST}}-{{VERSION}}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(META)
    return info.name


def wait_for_go_ahead():
{wait}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    wait_for_go_ahead()
    name = f"{{DIST}}-{{VERSION}}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(Path(wheel_directory) / name, "w") as zf:
        for path, text in FILES.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{{path}},sha256={{digest.decode()}},{{len(data)}}")
            zf.writestr(path, data)
        rec = f"{{DIST}}-{{VERSION}}.dist-info/RECORD"
        zf.writestr(rec, "\\n".join(record + [f"{{rec}},,"]) + "\\n")
    return name
'''


def backend_py(name: str, version: str, wait: str = "    pass") -> str:
    """The in-tree backend's source: builds a wheel of one module `name` (after `wait`)."""
    return _BACKEND.format(name=name, version=version, wait=wait)


def waiting_sdist(dest: Path, name: str, version: str, wait: str) -> Path:
    """Write `dest/<name>-<version>.tar.gz`; `wait` is the body (4-space indented) its build runs
    first. It may use os, time, urllib.request, Path and NAME."""
    root = f"{name.replace('-', '_')}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "{version}"\n\n[build-system]\nrequires = []\n'
            'build-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "backend.py": backend_py(name, version, wait),
    }
    path = dest / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
