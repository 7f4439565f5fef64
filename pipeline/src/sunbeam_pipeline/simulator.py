"""Deterministic solar-car telemetry: a car driving laps of the configured track.

Physics (per sample, dt = sample period):
- speed follows a target (standing start, cruise with slow variation, a pit stop) within
  acceleration limits; distance is the trapezoid integral of speed, GPS is the track at that
  distance plus receiver noise;
- motor power = (rolling + aerodynamic + grade + inertial force) x speed / drivetrain efficiency
  (regeneration recovers a fraction when that power is negative);
- array power = irradiance (sun elevation x passing clouds) x area x efficiency, per MPPT string;
- pack power = motor power + auxiliary load - array power; the pack current delivering it comes
  from the battery model (V = OCV(SOC) - I R), and SOC falls by the charge drawn.
Sensors then add noise, short dropouts and a few out-of-range glitches for cleanup to handle.
The same seed always gives the same file, byte for byte.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sunbeam_pipeline.battery import Battery
from sunbeam_pipeline.channels import CHANNELS
from sunbeam_pipeline.config import EventConfig, Settings, SimulationConfig
from sunbeam_pipeline.errors import ConfigError
from sunbeam_pipeline.sources.csv_source import TIME_COLUMN, format_times
from sunbeam_pipeline.telemetry import Telemetry
from sunbeam_pipeline.track import Track

_G = 9.81
_MASS_KG = 300.0
_CRR = 0.0045
_CDA_M2 = 0.13
_AIR_DENSITY = 1.2
_DRIVE_EFFICIENCY = 0.92
_REGEN_EFFICIENCY = 0.6
_MAX_MOTOR_W = 5000.0
_ACCEL_MPS2, _DECEL_MPS2 = 1.0, 1.5
_HILL_M = 4.0  # elevation swing over a lap: two gentle hills
_STRINGS = ((1.30, 0.230), (1.40, 0.225), (1.25, 0.235))  # (area m2, efficiency) per string


@dataclass(frozen=True)
class SimulatedEvent:
    """What the sensors report, plus the ground truth the tests check the pipeline against."""

    telemetry: Telemetry
    truth: dict[str, np.ndarray]


def _ou(rng: np.random.Generator, n: int, dt: float, tau: float, sigma: float) -> np.ndarray:
    """Ornstein-Uhlenbeck noise: slow, bounded wandering with correlation time tau."""
    out = np.empty(n)
    x, a = 0.0, np.exp(-dt / tau)
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - a * a), n)
    for i in range(n):
        x = a * x + shocks[i]
        out[i] = x
    return out


def _target_speed(sim: SimulationConfig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dt = sim.sample_period_s
    wander = _ou(rng, t.size, dt, tau=60.0, sigma=0.8)
    phase = rng.uniform(0, 2 * np.pi)
    target = sim.cruise_speed_mps * (1 + 0.12 * np.sin(2 * np.pi * t / 900.0 + phase)) + wander
    pit_at = sim.pit_stop_at_s if sim.pit_stop_at_s >= 0 else t[-1] / 2 if t.size else 0.0
    stopped = (t < sim.standing_start_s) | ((t >= pit_at) & (t < pit_at + sim.pit_stop_s))
    return np.where(stopped, 0.0, np.clip(target, 0.0, None))


def _drive(target: np.ndarray, dt: float, start_m: float) -> tuple[np.ndarray, np.ndarray]:
    v = np.zeros(target.size)
    s = np.full(target.size, start_m)
    for i in range(1, target.size):
        dv = min(max(target[i] - v[i - 1], -_DECEL_MPS2 * dt), _ACCEL_MPS2 * dt)
        v[i] = max(v[i - 1] + dv, 0.0)
        s[i] = s[i - 1] + 0.5 * (v[i] + v[i - 1]) * dt
    return v, s


def _irradiance(
    sim: SimulationConfig, event: EventConfig, lon: float, t: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    start = event.start
    hours_utc = start.hour + start.minute / 60 + start.second / 3600 + t / 3600.0
    solar_hours = hours_utc + lon / 15.0  # local solar time, good enough for a day curve
    elevation = np.clip(np.sin(np.pi * (solar_hours - 6.0) / 12.0), 0.0, None)
    clouds = np.clip(np.abs(_ou(rng, t.size, sim.sample_period_s, tau=240.0, sigma=0.6)), 0, 1)
    return sim.peak_irradiance_w_m2 * elevation * (1.0 - sim.cloudiness * clouds)


def simulate(event: EventConfig, settings: Settings) -> SimulatedEvent:
    sim = event.simulate
    if sim is None:
        raise ConfigError(f"event {event.name} has no [events.simulate] table")
    if sim.sample_period_s <= 0:
        raise ConfigError(f"event {event.name}: simulate.sample_period_s must be positive")
    rng = np.random.default_rng(sim.seed)
    dt = sim.sample_period_s
    n = int(event.duration_s // dt) + 1
    t = np.arange(n) * dt
    track = Track(**vars(settings.track))
    battery = Battery(**vars(settings.battery))

    v, s = _drive(_target_speed(sim, t, rng), dt, sim.start_position_m)
    accel = np.concatenate(([0.0], np.diff(v) / dt))
    grade = _HILL_M * 4 * np.pi / track.length_m * np.cos(4 * np.pi * s / track.length_m)
    force = _MASS_KG * _G * (_CRR + grade) + 0.5 * _AIR_DENSITY * _CDA_M2 * v**2 + _MASS_KG * accel
    mech = force * v
    motor = np.where(mech >= 0, mech / _DRIVE_EFFICIENCY, mech * _REGEN_EFFICIENCY)
    motor = np.clip(motor, -_MAX_MOTOR_W, _MAX_MOTOR_W)

    sun = _irradiance(sim, event, settings.track.center_lon, t, rng)
    strings = [
        np.clip(sun * area * eff * (1 + rng.normal(0, 0.01, n)), 0.0, None)
        for area, eff in _STRINGS
    ]
    array = np.sum(strings, axis=0)
    aux = sim.aux_power_w + rng.normal(0.0, 1.0, n)
    pack_power = motor + aux - array

    soc = np.empty(n)
    current = np.empty(n)
    voltage = np.empty(n)
    level = sim.initial_soc
    for i in range(n):
        ocv = float(battery.ocv(level))
        current[i] = battery.current_for_power(float(pack_power[i]), ocv)
        voltage[i] = ocv - current[i] * battery.internal_resistance_ohm
        soc[i] = level
        level -= current[i] * dt / 3600.0 / battery.capacity_ah
    motor_current = motor / voltage

    lat, lon = track.position(s)
    gps_noise_deg = np.degrees(1.5 / 6_371_008.8)
    measured = {
        "pack_voltage": voltage + rng.normal(0, 0.05, n),
        "pack_current": current + rng.normal(0, 0.05, n),
        "motor_current": motor_current + rng.normal(0, 0.05, n),
        "array_power_a": strings[0],
        "array_power_b": strings[1],
        "array_power_c": strings[2],
        # A wheel-speed sensor reads exactly 0 at standstill (no noise to clip into a bias).
        "speed": np.where(v > 0, np.clip(v + rng.normal(0, 0.05, n), 0.0, None), 0.0),
        "gps_lat": lat + rng.normal(0, gps_noise_deg, n),
        "gps_lon": lon + rng.normal(0, gps_noise_deg, n),
    }
    _add_glitches(measured, rng, n)

    start = np.datetime64(event.start.replace(tzinfo=None), "ms")
    times = start + np.round(t * 1000).astype("timedelta64[ms]")
    truth = {
        "t": t,
        "speed": v,
        "distance": s - sim.start_position_m,
        "position": s,
        "soc": soc,
        "pack_power": pack_power,
        "motor_power": motor,
        "array_power": array,
        "aux_power": aux,
    }
    return SimulatedEvent(Telemetry(event=event.name, t=times, channels=measured), truth)


def _add_glitches(measured: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> None:
    """Dropouts (missing samples, at most 5 in a row) and out-of-range readings."""
    for key in sorted(measured):
        for _ in range(max(1, n // 1500)):
            at = int(rng.integers(0, n))
            measured[key][at : at + int(rng.integers(1, 6))] = np.nan
    for _ in range(max(1, n // 3000)):
        measured["speed"][int(rng.integers(0, n))] = 250.0  # wheel-sensor spike
        measured["pack_voltage"][int(rng.integers(0, n))] = 0.0  # a dropped CAN frame
        at = int(rng.integers(0, n))
        measured["gps_lat"][at] = measured["gps_lon"][at] = 0.0  # receiver without a fix


def write_csv(telemetry: Telemetry, path: Path) -> Path:
    """Write telemetry in the CSV source's format, atomically (no half-written file is seen)."""
    keys = [c.key for c in CHANNELS if c.key in telemetry.channels]
    formats = ["%.7f" if k.startswith("gps_") else "%.4f" for k in keys]
    columns = [telemetry.channels[k] for k in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([TIME_COLUMN, *keys])
            for i, stamp in enumerate(format_times(telemetry.t)):
                writer.writerow(
                    [stamp]
                    + [
                        "" if np.isnan(col[i]) else fmt % col[i]
                        for col, fmt in zip(columns, formats, strict=True)
                    ]
                )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; telemetry is not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_simulated_csv(event: EventConfig, settings: Settings, path: Path) -> Path:
    return write_csv(simulate(event, settings).telemetry, path)
