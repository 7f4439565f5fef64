"""What `sunbeam up` and `sunbeam demo` were asked for (plain data: importing it costs nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PREFECT_PORT = 4200
DEFAULT_API_PORT = 8080
DEFAULT_MONGO_PORT = 27017


@dataclass(frozen=True)
class StackOptions:
    repo: str | None = None
    project_dir: str = "pipeline"
    pool: str = "sunbeam"
    prefect_port: int = DEFAULT_PREFECT_PORT
    api_port: int = DEFAULT_API_PORT
    mongo_port: int = DEFAULT_MONGO_PORT
    state_dir: Path | None = None


@dataclass(frozen=True)
class DemoOptions:
    package: str = "tabulate"
    keep: bool = False
