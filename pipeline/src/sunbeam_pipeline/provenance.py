"""Which code produced a result: ref, commit, environment key and Prefect flow run.

Under the Sunbeam agent these come from SUNBEAM_REF / SUNBEAM_COMMIT / SUNBEAM_ENV_KEY. Run by
hand, the ref and commit come from the git checkout the code lives in, else "local"/"unknown";
the env key is "local" (no agent built the environment).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sunbeam_pipeline.config import PROJECT_DIR

LOCAL_REF = "local"
UNKNOWN_COMMIT = "unknown"
LOCAL_ENV_KEY = "local"


@dataclass(frozen=True)
class Provenance:
    ref: str
    commit: str
    env_key: str
    flow_run_id: str | None

    def document(self, written_at: datetime) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "commit": self.commit,
            "env_key": self.env_key,
            "flow_run_id": self.flow_run_id,
            "written_at": written_at,
        }


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(project_dir), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run  # Prefect is only needed when we are inside a flow

    run_id = flow_run.id
    return str(run_id) if run_id else None


def collect_provenance(
    environ: Mapping[str, str] | None = None, project_dir: Path = PROJECT_DIR
) -> Provenance:
    env = os.environ if environ is None else environ
    ref = env.get("SUNBEAM_REF") or None
    if ref is None:
        branch = _git(project_dir, "rev-parse", "--abbrev-ref", "HEAD")
        ref = branch if branch and branch != "HEAD" else LOCAL_REF  # "HEAD" = detached
    commit = env.get("SUNBEAM_COMMIT") or _git(project_dir, "rev-parse", "HEAD") or UNKNOWN_COMMIT
    return Provenance(
        ref=ref,
        commit=commit,
        env_key=env.get("SUNBEAM_ENV_KEY") or LOCAL_ENV_KEY,
        flow_run_id=_current_flow_run_id(),
    )
