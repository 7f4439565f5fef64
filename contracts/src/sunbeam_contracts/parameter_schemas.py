"""Deployment parameter schemas: strict (unknown names refused) and stamped with their commit.

The agent computes a flow's schema in the ref's own env and stores it on the deployment; the API
stores one it was given. Both go through `strict_schema`, so Prefect validates parameters the
same way whoever wrote the schema.
"""

from __future__ import annotations

from typing import Any

# JSON Schema ignores keywords it does not know; this one says which commit the schema was
# computed from, so the agent recomputes it only when a deployment runs a new commit.
SCHEMA_COMMIT = "x-sunbeam-commit"


def strict_schema(schema: dict[str, Any], commit: str | None = None) -> dict[str, Any]:
    """A flow's parameter schema (`prefect.utilities.callables.parameter_schema(flow.fn)`) that
    also refuses unknown parameter names: Prefect's own leaves additionalProperties open."""
    strict = {**schema, "additionalProperties": False}
    if commit:
        strict[SCHEMA_COMMIT] = commit
    return strict


def schema_commit(schema: object) -> str | None:
    """The commit a stored schema was computed from, or None (none stored, or not by the agent)."""
    commit = schema.get(SCHEMA_COMMIT) if isinstance(schema, dict) else None
    return commit if isinstance(commit, str) and commit else None


def parameter_names(schema: object) -> list[str]:
    """The parameter names a stored schema declares (what the dashboard counts)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return sorted(properties) if isinstance(properties, dict) else []
