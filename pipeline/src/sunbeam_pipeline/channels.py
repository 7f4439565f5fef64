"""Telemetry channels: file column, stored series name, units and plausible range.

The range is what cleanup accepts as a physically possible reading; anything outside it is a sensor
glitch (a dropped CAN frame read as 0 V, a speed spike) and is treated as missing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    key: str  # column in telemetry files, key in Telemetry.channels
    series: str  # name of the stored series (ingress and cleanup stages)
    units: str
    description: str
    low: float
    high: float


CHANNELS: tuple[Channel, ...] = (
    Channel("pack_voltage", "PackVoltage", "V", "Battery pack terminal voltage", 40.0, 200.0),
    Channel(
        "pack_current", "PackCurrent", "A", "Battery pack current, discharge > 0", -150.0, 150.0
    ),
    Channel(
        "motor_current", "MotorCurrent", "A", "Motor controller bus current, regen < 0", -150, 150
    ),
    Channel("array_power_a", "ArrayPowerA", "W", "Array MPPT string A output power", 0.0, 2000.0),
    Channel("array_power_b", "ArrayPowerB", "W", "Array MPPT string B output power", 0.0, 2000.0),
    Channel("array_power_c", "ArrayPowerC", "W", "Array MPPT string C output power", 0.0, 2000.0),
    Channel("speed", "SpeedMPS", "m/s", "Vehicle speed over ground", 0.0, 60.0),
    Channel("gps_lat", "GPSLatitude", "deg", "GPS latitude (WGS84)", -90.0, 90.0),
    Channel("gps_lon", "GPSLongitude", "deg", "GPS longitude (WGS84)", -180.0, 180.0),
)

BY_KEY: dict[str, Channel] = {c.key: c for c in CHANNELS}
ARRAY_STRINGS: tuple[str, ...] = ("array_power_a", "array_power_b", "array_power_c")
