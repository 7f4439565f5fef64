"""Physics checks on the results of one full pipeline run, read back from MongoDB."""

from __future__ import annotations

import numpy as np
import pytest

from sunbeam_pipeline.series import Series, seconds_since_start
from sunbeam_pipeline.simulator import simulate
from sunbeam_pipeline.store import ResultStore, SeriesKey
from tests.support.pipeline_env import AGENT_ENV, CompletedRun

EVENTS = ["Test_Day_1", "Test_Day_2"]


def stored(run: CompletedRun, event: str, stage: str, name: str) -> Series:
    series = ResultStore(run.env.db).read(SeriesKey(AGENT_ENV["SUNBEAM_REF"], event, stage, name))
    assert series is not None, f"{stage}/{name} of {event} was not stored"
    return series


def integral(series: Series) -> float:
    return float(np.trapezoid(series.v, seconds_since_start(series.t)))


@pytest.mark.parametrize("event", EVENTS)
def test_energy_is_integrated_pack_power(completed_run: CompletedRun, event: str) -> None:
    power = stored(completed_run, event, "power", "PackPower")
    energy = stored(completed_run, event, "energy", "IntegratedPackPower")
    assert energy.v[0] == 0.0
    assert energy.v[-1] == pytest.approx(integral(power) / 3600.0, rel=1e-9)
    # ... and it matches the energy the simulated car really drew, through sensor noise.
    truth = simulate(completed_run.env.settings.event(event), completed_run.env.settings).truth
    true_wh = float(np.trapezoid(truth["pack_power"], truth["t"])) / 3600.0
    assert energy.v[-1] == pytest.approx(true_wh, abs=max(2.0, 0.02 * abs(true_wh)))


@pytest.mark.parametrize("event", EVENTS)
def test_power_balance(completed_run: CompletedRun, event: str) -> None:
    pack = stored(completed_run, event, "power", "PackPower").v
    motor = stored(completed_run, event, "power", "MotorPower").v
    array = stored(completed_run, event, "array", "ArrayPower").v
    strings = [stored(completed_run, event, "cleanup", f"ArrayPower{s}").v for s in "ABC"]
    np.testing.assert_allclose(array, np.sum(strings, axis=0))
    assert np.nanmax(array) > 100.0  # the sun was up
    # pack = motor + aux - array, so what is left is the auxiliary load (35 W simulated).
    aux = pack - motor + array
    assert np.nanmean(aux) == pytest.approx(35.0, abs=3.0)


@pytest.mark.parametrize("event", EVENTS)
def test_soc_by_coulomb_counting(completed_run: CompletedRun, event: str) -> None:
    settings = completed_run.env.settings
    soc = stored(completed_run, event, "energy", "SOC").v
    charge = stored(completed_run, event, "energy", "IntegratedPackCurrent").v
    current = stored(completed_run, event, "cleanup", "PackCurrent")
    assert charge[-1] == pytest.approx(integral(current) / 3600.0, rel=1e-9)
    np.testing.assert_allclose(
        soc - soc[0], -100.0 * charge / settings.battery.capacity_ah, atol=1e-9
    )
    truth = simulate(settings.event(event), settings).truth
    assert np.max(np.abs(soc - 100.0 * truth["soc"])) < 0.5  # percentage points


@pytest.mark.parametrize("event", EVENTS)
def test_laps_are_distance_over_track_length(completed_run: CompletedRun, event: str) -> None:
    settings = completed_run.env.settings
    length = settings.track.length_m
    distance = stored(completed_run, event, "localization", "Distance")
    laps = stored(completed_run, event, "localization", "LapIndex").v
    on_track = stored(completed_run, event, "localization", "TrackDistance").v
    speed = stored(completed_run, event, "cleanup", "SpeedMPS")

    assert distance.v[-1] == pytest.approx(integral(speed), rel=1e-9)
    # Laps count up one at a time, and successive lap starts are one track length apart.
    assert set(np.diff(laps)) == {0.0, 1.0} and laps[0] == 0 and laps[-1] >= 3
    lap_starts = distance.v[np.flatnonzero(np.diff(laps)) + 1]
    max_step = float(np.nanmax(speed.v)) * 1.0  # the car moves at most this far per sample
    np.testing.assert_allclose(np.diff(lap_starts), length, atol=max_step)

    # One constant offset (where the car started) maps integrated speed onto the GPS position
    # along the track, lap after lap, and the laps are counted from it.
    fixes = np.isfinite(on_track)
    says = (on_track[fixes] - distance.v[fixes]) % length
    start = (says[0] + np.median((says - says[0] + length / 2) % length - length / 2)) % length
    gap = (start + distance.v[fixes] - on_track[fixes]) % length
    gap = np.minimum(gap, length - gap)
    assert np.median(gap) < 3.0 and np.max(gap) < 30.0
    np.testing.assert_array_equal(laps, np.floor((start + distance.v) / length))

    # ... and with where the simulated car really was.
    truth = simulate(settings.event(event), settings).truth
    assert distance.v[-1] == pytest.approx(truth["distance"][-1], rel=0.005)
    agree = np.mean(laps == np.floor(truth["position"] / length))
    assert agree > 0.99


@pytest.mark.parametrize("event", EVENTS)
def test_efficiency_within_bounds_or_nan(completed_run: CompletedRun, event: str) -> None:
    limits = completed_run.env.settings.efficiency
    power = stored(completed_run, event, "power", "MotorPower")
    speed = stored(completed_run, event, "cleanup", "SpeedMPS").v
    laps = stored(completed_run, event, "localization", "LapIndex").v
    per_window = stored(completed_run, event, "efficiency", "Efficiency5Minute")
    per_lap = stored(completed_run, event, "efficiency", "EfficiencyLap")

    x = seconds_since_start(power.t)
    assert len(per_window) == int(x[-1] // limits.window_s) + 1
    assert len(per_lap) == int(laps[-1]) + 1
    assert np.isnan(per_lap.v[0]) and np.isnan(per_lap.v[-1])  # the partial first and last lap
    for values in (per_window.v, per_lap.v):
        finite = values[np.isfinite(values)]
        assert finite.size > 0
        assert np.all(finite >= limits.min_power_w / limits.max_speed_mps)
        assert np.all(finite <= limits.max_power_w / limits.min_speed_mps)
        assert np.all((finite > 10.0) & (finite < 200.0))  # a solar car: tens of J/m

    # Recompute every window independently: mean power / mean speed, NaN out of range or when
    # less than half the window was recorded.
    for i, value in enumerate(per_window.v):
        inside = (x >= i * limits.window_s) & (x < (i + 1) * limits.window_s)
        mean_p, mean_v = np.nanmean(power.v[inside]), np.nanmean(speed[inside])
        valid = (limits.min_speed_mps <= mean_v <= limits.max_speed_mps) and (
            limits.min_power_w <= mean_p <= limits.max_power_w
        )
        if valid and x[-1] - i * limits.window_s >= limits.window_s / 2:
            assert value == pytest.approx(mean_p / mean_v, rel=1e-9)
        else:
            assert np.isnan(value)
    for lap in range(1, len(per_lap) - 1):
        inside = laps == lap
        expected = np.nanmean(power.v[inside]) / np.nanmean(speed[inside])
        assert per_lap.v[lap] == pytest.approx(expected, rel=1e-9)


def test_a_window_spent_in_the_pit_is_nan(completed_run: CompletedRun) -> None:
    # Test_Day_1 stops in the pit from 1000 s to 1660 s: the 1200-1500 s window is NaN.
    per_window = stored(completed_run, "Test_Day_1", "efficiency", "Efficiency5Minute").v
    assert np.isnan(per_window[4])
    assert np.isfinite(per_window[1])
