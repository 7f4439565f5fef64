"""The pipeline's flow and deployment names: `run-sunbeam/main`, `run-sunbeam/ref-<slug>`."""

from __future__ import annotations

import re

FLOW_NAME = "run-sunbeam"
ENTRYPOINT = "src/sunbeam_pipeline/flow.py:run_sunbeam"
PROJECT_DIR = "pipeline"
MAIN_REF = "main"
MAIN_DEPLOYMENT = "main"
MAIN_DEFAULT_CRON = "0 2 * * *"
DEFAULT_WORK_POOL = "sunbeam"

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def ref_slug(ref: str) -> str:
    """The ref with every character outside [A-Za-z0-9._-] replaced by '-'."""
    return _SLUG_UNSAFE.sub("-", ref)


def deployment_name(ref: str) -> str:
    """The deployment name (without the flow part) that a ref's pipeline lives under."""
    return MAIN_DEPLOYMENT if ref == MAIN_REF else f"ref-{ref_slug(ref)}"


def full_deployment_name(ref: str) -> str:
    """`run-sunbeam/<deployment>`, as Prefect's read-by-name wants it."""
    return f"{FLOW_NAME}/{deployment_name(ref)}"


MAIN_FULL_NAME = full_deployment_name(MAIN_REF)
