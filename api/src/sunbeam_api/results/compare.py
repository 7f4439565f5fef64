"""Branch preview: every series of a ref against a base ref (same event, stage and name).

Two series are identical exactly when their digests agree (schema version 2 stores the SHA-256 of
their bytes); series written in schema version 1 have no digest, so their summaries are computed
from the points and compared instead. The relative change of a pair is the largest relative
difference of its n_points, mean, min, max and integral.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.errors import BadInputError, NotFoundError
from sunbeam_api.results.points import Window
from sunbeam_api.results.reader import read_view
from sunbeam_api.results.store import LISTING, SERIES

# Units whose time integral means something, and what it is called (value·s / divisor).
INTEGRALS = {"W": ("Wh", 3600.0), "kW": ("kWh", 3600.0), "A": ("Ah", 3600.0), "m/s": ("m", 1.0)}
Status = Literal["changed", "only_in_ref", "only_in_base", "same"]
STATUS_ORDER = {"changed": 0, "only_in_ref": 1, "only_in_base": 2, "same": 3}


class Summary(BaseModel):
    n_points: int
    mean: float | None
    min: float | None
    max: float | None
    integral: float | None = None
    integral_units: str | None = None


class CompareRow(BaseModel):
    event: str
    stage: str
    name: str
    units: str | None
    status: Status
    relative_change: float | None
    ref: Summary | None
    base: Summary | None


class Comparison(BaseModel):
    ref: str
    base: str
    identical: bool
    message: str
    counts: dict[str, int]
    rows: list[CompareRow]


def _summary(doc: dict[str, Any], stats: dict[str, Any]) -> Summary:
    integral = INTEGRALS.get(doc.get("units") or "")
    value = stats.get("integral_s")
    return Summary(
        n_points=int(doc.get("n_points") or 0),
        mean=stats.get("mean"),
        min=stats.get("min"),
        max=stats.get("max"),
        integral=value / integral[1] if integral and value is not None else None,
        integral_units=integral[0] if integral else None,
    )


def stats_of(t_ms: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    """The contract's stats for a series that has none stored (schema version 1)."""
    good = v[np.isfinite(v)]
    if good.size == 0:
        return {"mean": None, "min": None, "max": None, "integral_s": None, "digest": None}
    steps = 0.5 * (v[1:] + v[:-1]) * np.diff(t_ms.astype(np.float64) / 1000.0)
    return {
        "mean": float(good.mean()),
        "min": float(good.min()),
        "max": float(good.max()),
        "integral_s": float(steps[np.isfinite(steps)].sum()),
        "digest": None,
    }


async def _stats(db: AsyncDatabase, doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("stats"):
        return doc["stats"]
    key = {k: doc[k] for k in ("ref", "event", "stage", "name")}
    view = await read_view(db, key, window=Window(None, None), max_points=None)
    return stats_of(view.points.t, view.points.v) if view else {}


def _relative(a: float | int | None, b: float | int | None) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), abs(a), 1e-12)


def _change(ref: Summary, base: Summary) -> float:
    pairs = [(ref.n_points, base.n_points), (ref.mean, base.mean), (ref.min, base.min)]
    pairs += [(ref.max, base.max), (ref.integral, base.integral)]
    return max(_relative(a, b) for a, b in pairs)


async def _docs(db: AsyncDatabase, ref: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    cursor = db[SERIES].find({"ref": ref}, LISTING)
    return {(d["event"], d["stage"], d["name"]): d async for d in cursor}


async def _row(db: AsyncDatabase, key: tuple[str, str, str], r: Any, b: Any) -> CompareRow:
    event, stage, name = key
    units = (r or b).get("units")
    rs = await _stats(db, r) if r else None
    bs = await _stats(db, b) if b else None
    ref_sum = _summary(r, rs) if r and rs is not None else None
    base_sum = _summary(b, bs) if b and bs is not None else None
    status: Status
    relative_change: float | None = None
    if ref_sum is None or base_sum is None:
        status = "only_in_ref" if ref_sum else "only_in_base"
    else:
        if rs and bs and rs.get("digest") and bs.get("digest"):
            same = rs["digest"] == bs["digest"]
        else:
            same = ref_sum == base_sum
        change = 0.0 if same else _change(ref_sum, base_sum)
        status = "same" if same else "changed"
        relative_change = None if math.isinf(change) else change
    return CompareRow(
        event=event,
        stage=stage,
        name=name,
        units=units,
        status=status,
        relative_change=relative_change,
        ref=ref_sum,
        base=base_sum,
    )


def _sort_key(row: CompareRow) -> tuple[int, float, str, str, str]:
    change = -(row.relative_change if row.relative_change is not None else math.inf)
    return (STATUS_ORDER[row.status], change, row.event, row.stage, row.name)


async def compare(db: AsyncDatabase, ref: str, base: str) -> Comparison:
    if ref == base:
        raise BadInputError(f"ref and base are both {ref!r}: compare a ref with another ref")
    ours, theirs = await _docs(db, ref), await _docs(db, base)
    for name, docs in ((ref, ours), (base, theirs)):
        if not docs:
            raise NotFoundError(f"no results for ref {name!r}: run the pipeline on it first")
    rows = [
        await _row(db, key, ours.get(key), theirs.get(key))
        for key in sorted(set(ours) | set(theirs))
    ]
    rows.sort(key=_sort_key)
    counts = {s: sum(r.status == s for r in rows) for s in STATUS_ORDER}
    common = counts["changed"] + counts["same"]
    identical = counts["same"] == len(rows)
    if identical:
        message = f"{ref} and {base} have identical results: all {len(rows)} series are the same"
    elif common == 0:
        message = f"{ref} and {base} have no series in common"
    else:
        message = (
            f"{counts['changed']} of {common} common series changed; "
            f"{counts['only_in_ref']} only in {ref}, {counts['only_in_base']} only in {base}"
        )
    return Comparison(
        ref=ref, base=base, identical=identical, message=message, counts=counts, rows=rows
    )
