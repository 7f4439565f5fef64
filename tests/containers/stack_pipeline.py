"""The real pipeline, made hermetic for the whole-stack tests, and the branches they push.

The pipeline (this checkout's `pipeline/`) is copied into a test repository and locked against a
local package index on 127.0.0.1 (the platform venv's own wheels), which the stack's containers
reach over the host's network. Branches add packages (a tiny wheel; an sdist whose build waits
for the test) or make the flow wait at its start, through HTTP gates the test opens.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections import Counter
from pathlib import Path

from tests.containers.dockerkit import ROOT
from tests.support.gated_sdist import waiting_sdist
from tests.support.ports import LocalHTTPServer, QuietHandler

FLOW_FILE = "src/sunbeam_pipeline/flow.py"
_FLOW_START = "    logger = get_run_logger()\n    settings = load_settings()\n"


class Gates(LocalHTTPServer):
    """HTTP gates on 127.0.0.1: `GET /hit/NAME` counts a visit, `GET /gate/NAME` is 200 once open."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: Counter[str] = Counter()
        self.opened: set[str] = set()

    def open(self, name: str) -> None:
        self.opened.add(name)

    def handler(self) -> type[QuietHandler]:
        gates = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                _, kind, name = [*self.path.split("/", 2), "", ""][:3]
                if kind == "hit":
                    gates.hits[name] += 1
                ok = kind == "hit" or (kind == "gate" and name in gates.opened)
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


_WAIT = """
def _wait_for_gate(gates, name):
    import time
    import urllib.request

    urllib.request.urlopen(f"{gates}/hit/{name}", timeout=10).close()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{gates}/gate/{name}", timeout=10).close()
            return
        except OSError:
            time.sleep(0.2)
"""


def pipeline_files() -> dict[str, str]:
    """This checkout's pipeline project (tracked files), limited to the Python the wheels fit."""
    names = subprocess.run(
        ["git", "ls-files", "pipeline"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {
        name.removeprefix("pipeline/"): (ROOT / name).read_text()
        for name in names
        if not name.endswith("uv.lock")
    }
    # The local wheels are this interpreter's (cp311); the images' Python is Debian's 3.11.
    files["pyproject.toml"] = files["pyproject.toml"].replace(
        'requires-python = ">=3.11"', 'requires-python = ">=3.11,<3.12"'
    )
    assert "<3.12" in files["pyproject.toml"]
    return files


def with_dependency(pyproject: str, requirement: str) -> str:
    return pyproject.replace('    "numpy>=2.0",\n', f'    "numpy>=2.0",\n    "{requirement}",\n')


def flow_importing(flow: str, module: str) -> str:
    """The flow, logging the version of `module` it imported."""
    line = f'    logger.info("imported {module} %s", __import__("{module}").__version__)\n'
    assert _FLOW_START in flow
    return flow.replace(_FLOW_START, _FLOW_START + line)


def flow_waiting_at_start(flow: str, gates: str, name: str) -> str:
    """The flow, visiting `/hit/NAME` once Running and then waiting until the gate opens."""
    assert _FLOW_START in flow
    flow = flow.replace(_FLOW_START, _FLOW_START + f"    _wait_for_gate({gates!r}, {name!r})\n")
    return flow + _WAIT


def gated_sdist(dest: Path, name: str, version: str, gates: str) -> Path:
    """An sdist whose build visits `/hit/NAME-build`, then waits for the gate `NAME-build`."""
    wait = textwrap.indent(_WAIT, "    ") + f"    _wait_for_gate({gates!r}, {name + '-build'!r})"
    return waiting_sdist(dest, name, version, wait)
