"""Battery pack model shared by the simulator (forward) and the energy stage (inverse).

A Thevenin-less model is enough here: terminal voltage = OCV(SOC) - I * R, with a monotonic
lithium-ion cell OCV curve scaled by the number of cells in series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A generic NMC 18650 open-circuit-voltage curve (state of charge 0..1 -> cell volts).
_OCV_SOC = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
_OCV_CELL_V = np.array([3.00, 3.30, 3.42, 3.53, 3.60, 3.66, 3.72, 3.80, 3.88, 3.97, 4.07, 4.18])


@dataclass(frozen=True)
class Battery:
    capacity_ah: float
    series_cells: int
    internal_resistance_ohm: float

    def ocv(self, soc: np.ndarray | float) -> np.ndarray:
        """Pack open-circuit voltage for a state of charge (0..1)."""
        return self.series_cells * np.interp(soc, _OCV_SOC, _OCV_CELL_V)

    def soc_from_ocv(self, pack_ocv: np.ndarray | float) -> np.ndarray:
        """Inverse of ocv(): the curve is strictly increasing, so interpolation inverts it."""
        return np.interp(np.asarray(pack_ocv) / self.series_cells, _OCV_CELL_V, _OCV_SOC)

    def current_for_power(self, power_w: float, ocv_v: float) -> float:
        """Pack current that delivers power_w at the terminals: P = (E - I R) I, smaller root."""
        r = self.internal_resistance_ohm
        disc = ocv_v * ocv_v - 4.0 * r * power_w
        return (ocv_v - np.sqrt(max(disc, 0.0))) / (2.0 * r)
