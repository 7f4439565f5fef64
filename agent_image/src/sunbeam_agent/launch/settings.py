"""`sunbeam-run`'s settings: every variable the launcher reads, read once from the environment.

Standard library only, like the rest of the launcher: it starts once per flow run, so it builds no
pydantic model (the agent's `AgentSettings` is the container entrypoint's). Prefect's own
connection variables (PREFECT_API_URL, ...) are read where the REST client is made
(`PrefectREST.from_environment`); the environment the flow's processes inherit is passed through
as it is, not read here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_agent.errors import AgentError
from sunbeam_agent.launch.run_config import VARIABLES, env_name
from sunbeam_agent.launch.warm import (
    COUNT,
    COUNT_ENV,
    DIR_ENV,
    IDLE_ENV,
    IDLE_SECONDS,
    WarmSettings,
)
from sunbeam_contracts.heartbeats import HEARTBEAT_SECONDS, HEARTBEAT_SECONDS_ENV, seconds_setting

CANCEL_POLL_SECONDS = 1.0
SCHEMA_TIMEOUT = 120.0


class LaunchSettingsError(AgentError):
    """A launcher variable holds a value it cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class LaunchSettings:
    # The run to launch; every worker type sets it.
    flow_run_id: str | None = None
    # How often the run's state is read while syncing, so a cancel stops the sync on any worker.
    cancel_poll_seconds: float = CANCEL_POLL_SECONDS
    # How long the flow may take to load when its parameter schema is computed (flow_schema.py).
    schema_timeout: float = SCHEMA_TIMEOUT
    # Where the `sunbeam` worker wants the interpreter and checkout the flow runs in (its hooks).
    run_record: str | None = None
    # How often the run's heartbeat says its infrastructure is alive (heartbeat.py).
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    # Warm interpreters: how many per host, how long unused, where (warm.py).
    warm: WarmSettings = field(default_factory=WarmSettings)
    # Tracebacks instead of one-line errors.
    debug: bool = False
    # Job variables a worker or a base job template resolved already (SUNBEAM_RUN_*, run_config).
    run_variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> LaunchSettings:
        return cls(
            flow_run_id=environ.get("PREFECT__FLOW_RUN_ID") or None,
            cancel_poll_seconds=_seconds(
                environ, "SUNBEAM_CANCEL_POLL_SECONDS", CANCEL_POLL_SECONDS
            ),
            schema_timeout=_seconds(environ, "SUNBEAM_SCHEMA_TIMEOUT", SCHEMA_TIMEOUT),
            heartbeat_seconds=_seconds(environ, HEARTBEAT_SECONDS_ENV, HEARTBEAT_SECONDS),
            run_record=environ.get("SUNBEAM_RUN_RECORD") or None,
            warm=WarmSettings(
                count=_count(environ, COUNT_ENV, COUNT),
                idle_seconds=_seconds(environ, IDLE_ENV, IDLE_SECONDS),
                folder=Path(environ[DIR_ENV]) if environ.get(DIR_ENV) else None,
            ),
            debug=bool(environ.get("SUNBEAM_DEBUG")),
            run_variables={
                name: environ[env_name(name)] for name in VARIABLES if env_name(name) in environ
            },
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        return seconds_setting(environ, name, default)
    except ValueError as exc:
        raise LaunchSettingsError(str(exc)) from exc


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise LaunchSettingsError(
            f"{name}={text[:40]!r} is not a count: set 0 or a positive whole number, "
            f"or unset it for the default ({default})"
        )
    return int(text)
