"""Settings: `sunbeam.toml` next to this project (or $SUNBEAM_CONFIG), overridden by environment.

Environment variables win over the file: MONGODB_URI, SUNBEAM_MONGO_DB, SUNBEAM_DATA_DIR.
Relative paths in the file are relative to the file's own directory, never to the caller's cwd,
so the agent (cwd = checkout/pipeline) and a developer (cwd = anywhere) read the same files.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sunbeam_pipeline.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_DIR / "sunbeam.toml"
DEFAULT_MONGO_URI = "mongodb://localhost:27017"
# Event names become file names and MongoDB keys: keep them to a safe, readable alphabet.
T = TypeVar("T")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class MongoConfig:
    uri: str = DEFAULT_MONGO_URI
    database: str = "sunbeam"
    timeout_ms: int = 10_000  # how long to wait for MongoDB before a run fails


@dataclass(frozen=True)
class SourceConfig:
    type: str = "csv"
    data_dir: str = "data/telemetry"
    # Simulate telemetry for events that have a [events.simulate] table but no file yet.
    generate_missing: bool = True


@dataclass(frozen=True)
class CleanupConfig:
    max_gap_s: float = 10.0


@dataclass(frozen=True)
class TrackConfig:
    name: str = "Sunbeam Loop"
    length_m: float = 5000.0
    center_lat: float = 36.9965
    center_lon: float = -86.3705


@dataclass(frozen=True)
class BatteryConfig:
    capacity_ah: float = 45.5
    series_cells: int = 32
    internal_resistance_ohm: float = 0.12


@dataclass(frozen=True)
class EnergyConfig:
    # Initial state of charge comes from the open-circuit voltage over the first seconds.
    soc_estimate_s: float = 20.0


@dataclass(frozen=True)
class EfficiencyConfig:
    window_s: float = 300.0
    min_speed_mps: float = 2.0
    max_speed_mps: float = 50.0
    min_power_w: float = 0.0
    max_power_w: float = 10_000.0


@dataclass(frozen=True)
class SimulationConfig:
    seed: int
    sample_period_s: float = 1.0
    cruise_speed_mps: float = 17.0
    initial_soc: float = 0.9
    standing_start_s: float = 60.0
    pit_stop_at_s: float = -1.0  # < 0: half way through the event
    pit_stop_s: float = 600.0
    start_position_m: float = 4850.0  # on the grid, 150 m before the start line
    peak_irradiance_w_m2: float = 950.0
    cloudiness: float = 0.3
    aux_power_w: float = 35.0


@dataclass(frozen=True)
class EventConfig:
    name: str
    start: datetime
    stop: datetime
    simulate: SimulationConfig | None = None

    @property
    def duration_s(self) -> float:
        return (self.stop - self.start).total_seconds()


@dataclass(frozen=True)
class Settings:
    config_path: Path
    mongo: MongoConfig
    source: SourceConfig
    data_dir: Path
    cleanup: CleanupConfig
    track: TrackConfig
    battery: BatteryConfig
    energy: EnergyConfig
    efficiency: EfficiencyConfig
    events: tuple[EventConfig, ...] = field(default_factory=tuple)

    def event(self, name: str) -> EventConfig:
        for event in self.events:
            if event.name == name:
                return event
        known = ", ".join(e.name for e in self.events) or "none"
        raise ConfigError(f"unknown event {name!r} (configured events: {known})")


def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Make a config dataclass from a TOML table, with a clear error for every wrong key/type."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        expected = hints[name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected in (int, float, str, bool) and type(value) is not expected:
            raise ConfigError(
                f"{where}: {name} must be {expected.__name__}, got {type(value).__name__}"
            )
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


def _as_utc(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where} is not an ISO 8601 date-time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ConfigError(f"{where} must be a date-time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _event(raw: Mapping[str, Any], index: int, path: Path) -> EventConfig:
    where = f"{path}: events[{index}]"
    name = raw.get("name")
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise ConfigError(f"{where}: name must be letters, digits, '.', '_' or '-', got {name!r}")
    unknown = sorted(set(raw) - {"name", "start", "stop", "simulate"})
    if unknown:
        raise ConfigError(f"{where} ({name}): unknown key(s) {', '.join(unknown)}")
    start = _as_utc(raw.get("start"), f"{where} ({name}): start")
    stop = _as_utc(raw.get("stop"), f"{where} ({name}): stop")
    if stop <= start:
        raise ConfigError(f"{where} ({name}): stop must be after start")
    simulate = None
    if "simulate" in raw:
        simulate = _build(SimulationConfig, _table(raw, "simulate", where), f"{where}.simulate")
    return EventConfig(name=name, start=start, stop=stop, simulate=simulate)


def load_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file and apply environment overrides; ConfigError says what is wrong."""
    env = os.environ if environ is None else environ
    path = Path(config_path or env.get("SUNBEAM_CONFIG") or DEFAULT_CONFIG).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None

    mongo = _build(MongoConfig, _table(raw, "mongo", str(path)), f"{path}: [mongo]")
    mongo = dataclasses.replace(
        mongo,
        uri=env.get("MONGODB_URI") or mongo.uri,
        database=env.get("SUNBEAM_MONGO_DB") or mongo.database,
    )
    source = _build(SourceConfig, _table(raw, "source", str(path)), f"{path}: [source]")
    data_dir = Path(env.get("SUNBEAM_DATA_DIR") or source.data_dir)
    if not data_dir.is_absolute():
        data_dir = path.parent / data_dir

    events_raw = raw.get("events", [])
    if not isinstance(events_raw, list):
        raise ConfigError(f"{path}: events must be an array of tables ([[events]])")
    events = tuple(_event(e, i, path) for i, e in enumerate(events_raw))
    names = [e.name for e in events]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: event(s) listed twice: {', '.join(duplicates)}")

    def section(cls: type[T], key: str) -> T:
        return _build(cls, _table(raw, key, str(path)), f"{path}: [{key}]")

    return Settings(
        config_path=path,
        mongo=mongo,
        source=source,
        data_dir=data_dir,
        cleanup=section(CleanupConfig, "cleanup"),
        track=section(TrackConfig, "track"),
        battery=section(BatteryConfig, "battery"),
        energy=section(EnergyConfig, "energy"),
        efficiency=section(EfficiencyConfig, "efficiency"),
        events=events,
    )
