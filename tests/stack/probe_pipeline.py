"""A tiny pipeline project for the container tests, and the packages its branches add.

Everything installs from a local folder (find-links): the platform venv's own prefect closure
repacked into wheels, a tiny extra wheel, and an sdist whose in-tree build backend reports when it
starts and then waits for the test's go-ahead, so a test can kill the agent mid-sync for certain.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

FLOW_NAME = "stack-probe"
ENTRYPOINT = "flows/probe.py:probe"

FLOW = """
import importlib
import json
import os
import sys
from pathlib import Path

from prefect import flow


@flow(name="stack-probe")
def probe(out: str, module: str = "") -> None:
    info = {
        "python": sys.executable,
        "ref": os.environ.get("SUNBEAM_REF"),
        "commit": os.environ.get("SUNBEAM_COMMIT"),
        "env_key": os.environ.get("SUNBEAM_ENV_KEY"),
        "version": importlib.import_module(module).__version__ if module else None,
    }
    Path(out).write_text(json.dumps(info))
"""


def pyproject(dependencies: list[str], wheelhouse: Path) -> str:
    deps = ", ".join(f'"{d}"' for d in dependencies)
    # The agent image's Python may be any 3.11.x; the wheels come from the host's 3.11.
    return f"""[project]
name = "stack-probe"
version = "0.1.0"
requires-python = ">=3.11,<3.12"
dependencies = [{deps}]

[tool.uv]
package = false
no-index = true
find-links = ["{wheelhouse}"]
environments = ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
"""


_BACKEND = '''
"""In-tree PEP 517 backend: announces the build, then waits for the test's go-ahead."""
import base64, hashlib, os, time, zipfile
from pathlib import Path

SIGNALS = Path({signals!r})
NAME, VERSION = {name!r}, {version!r}
DIST = NAME.replace("-", "_")
META = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
FILES = {{
    f"{{DIST}}/__init__.py": f"__version__ = {{VERSION!r}}\\n",
    f"{{DIST}}-{{VERSION}}.dist-info/METADATA": META,
    f"{{DIST}}-{{VERSION}}.dist-info/WHEEL":
        "Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}}


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = Path(metadata_directory) / f"{{DIST}}-{{VERSION}}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(META)
    return info.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    (SIGNALS / "build-started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 300
    while not (SIGNALS / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
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


def gated_sdist(dest: Path, name: str, version: str, signals: Path) -> Path:
    """An sdist whose build blocks until `signals/release` exists (it writes `build-started`)."""
    root = f"{name.replace('-', '_')}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "{version}"\n\n[build-system]\nrequires = []\n'
            'build-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "backend.py": _BACKEND.format(signals=str(signals), name=name, version=version),
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
