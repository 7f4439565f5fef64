"""Results read path: today's (schema v1) reader against the v2 read path, through the live API.

    uv run python benchmarks/bench_results.py [--sizes 100000,1000000,10000000] [--json]

Series are written through the pipeline's own store into SecantusDB (and, for the baseline, in
the v1 layout by `write_v1`, today's writer kept here). The API runs as its own uvicorn process,
so its peak RSS (VmHWM) and CPU time are its own; the load test's 20 clients run in a process of
their own. The baseline is today's reader (`read_v1_baseline`, kept here verbatim in spirit:
per-point Python decode, Python bucket-mean), timed in-process, which spares it the HTTP cost. The last stdout line with --json is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pymongo
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient
from secantus import SecantusDBServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.pipeline_store import SeriesKey, write_series
from tests.support.ports import free_port

DB = "bench_results"
T0 = datetime(2025, 7, 1, 12, tzinfo=UTC)
STEP_MS = 100  # 10 Hz
REPEAT = 20
HOUR = {"start": "2025-07-01T12:00:00Z", "end": "2025-07-01T13:00:00Z"}  # 36,001 points
RESULTS = Path(__file__).resolve().parent / "results"


def write_v1(db, key: dict, values: np.ndarray, chunk: int = 50_000) -> None:
    """Today's layout: lists of datetimes and floats per 50k-point chunk."""
    times = [T0 + timedelta(milliseconds=i * STEP_MS) for i in range(values.shape[0])]
    for c in range(0, values.shape[0], chunk):
        v = [None if not np.isfinite(x) else float(x) for x in values[c : c + chunk]]
        db.series_chunks.insert_one(
            {**key, "chunk": c // chunk, "t": times[c : c + chunk], "v": v, "n": len(v)}
        )
    db.series.insert_one(
        {**key, "n_points": len(times), "n_chunks": -(-len(times) // chunk), "units": "W"}
    )


async def read_v1_baseline(db, key: dict, max_points: int) -> int:
    """Today's reader: every point decoded and filtered in Python, bucket mean in a Python loop."""
    times, values = [], []
    async for chunk in db.series_chunks.find(key, {"_id": 0, "t": 1, "v": 1, "chunk": 1}).sort(
        "chunk", 1
    ):
        for t, v in zip(chunk["t"], chunk["v"], strict=False):
            times.append(t)
            values.append(v)
    n = len(times)
    out = []
    for b in range(max_points):
        lo, hi = b * n // max_points, (b + 1) * n // max_points
        stamps = [t.timestamp() for t in times[lo:hi]]
        present = [v for v in values[lo:hi] if v is not None]
        out.append(
            (sum(stamps) / max(len(stamps), 1), sum(present) / len(present) if present else None)
        )
    return len(out)


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


def time_get(client: httpx.Client, path: str, params: dict, repeat: int = REPEAT) -> dict:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path, params=params)
        r.raise_for_status()
        samples.append(time.perf_counter() - t)
    return {"p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95)}


def load(
    url: str, paths: dict[str, tuple[str, dict]], clients: int = 20, seconds: float = 10.0
) -> dict:
    """`clients` threads, each on its own connection, cycling through `paths` for `seconds`."""
    samples: dict[str, list[float]] = {label: [] for label in paths}
    labels = list(paths)
    errors, stop = [0], time.monotonic() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            k = i
            while time.monotonic() < stop:
                label = labels[k % len(labels)]
                path, params = paths[label]
                k += 1
                t = time.perf_counter()
                try:
                    c.get(path, params=params).raise_for_status()
                    samples[label].append(time.perf_counter() - t)
                except httpx.HTTPError:
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    every = [x for xs in samples.values() for x in xs]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(every),
        "errors": errors[0],
        "p50_ms": pct(every, 50),
        "p99_ms": pct(every, 99),
        "by_path": {
            label: {
                "requests": len(xs),
                "p50_ms": pct(xs, 50),
                "p99_ms": pct(xs, 99),
            }
            for label, xs in samples.items()
        },
    }


def start_api(uri: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": uri,
        "SUNBEAM_MONGO_DB": DB,
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "sunbeam_api.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/results", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the API did not start")


def rss_mb(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and at its peak so far (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_bytes(db, key: dict) -> dict[str, int]:
    """The BSON bytes of one series as stored: its document, raw chunks and level chunks."""
    raw = db.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    out = {}
    for coll in ("series", "series_chunks", "series_levels"):
        out[coll] = sum(len(d.raw) for d in raw[coll].find(key))
    out["total"] = sum(out.values())
    return out


def time_baseline(uri: str, key: dict, repeat: int) -> dict:
    async def run() -> list[float]:
        client = AsyncMongoClient(uri, tz_aware=True)
        samples = []
        try:
            for _ in range(repeat):
                t = time.perf_counter()
                await read_v1_baseline(client[DB], key, 1000)
                samples.append(time.perf_counter() - t)
        finally:
            await client.close()
        return samples

    samples = asyncio.run(run())
    return {"p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95), "runs": len(samples)}


def baseline_repeats(n: int) -> int:
    # Today's reader takes ~7 s per million points: 20 runs at 10M would take half an hour.
    return REPEAT if n < 1_000_000 else 5 if n < 10_000_000 else 3


def write_both(db, n: int) -> dict:
    values = np.sin(np.arange(n) / 5000.0) * 1000 + np.random.default_rng(n).normal(0, 10, n)
    t = time.perf_counter()
    write_series(db, SeriesKey("v2", "Season", "power", f"P{n}"), values)
    w2 = time.perf_counter() - t
    t = time.perf_counter()
    write_v1(db, v1_key(n), values)
    w1 = time.perf_counter() - t
    v1 = stored_bytes(db, v1_key(n))
    v2 = stored_bytes(db, {**v1_key(n), "ref": "v2"})
    print(f"wrote {n} points: v2 {w2:.1f} s, v1 {w1:.1f} s", file=sys.stderr)
    return {
        "write_v2_s": w2,
        "write_v1_s": w1,
        "stored_bytes_v1": v1,
        "stored_bytes_v2": v2,
        "raw_bytes_v2_over_v1": v2["series_chunks"] / v1["series_chunks"],
        "total_bytes_v2_over_v1": v2["total"] / v1["total"],
    }


def v1_key(n: int) -> dict:
    return {"ref": "v1", "event": "Season", "stage": "power", "name": f"P{n}"}


def time_views(c: httpx.Client, uri: str, n: int, r: dict) -> None:
    path = f"/results/v2/Season/power/P{n}"
    r["whole_1000pt"] = time_get(c, path, {"max_points": 1000})
    r["hour_full"] = time_get(c, path, HOUR)
    r["hour_1000pt"] = time_get(c, path, {**HOUR, "max_points": 1000})
    if n >= 1_000_000:  # the first million points
        r["csv_1m"] = time_get(c, path, {"format": "csv", "end": "2025-07-02T15:46:39.900Z"})
    r["baseline_whole_1000pt"] = time_baseline(uri, v1_key(n), baseline_repeats(n))
    r["speedup_whole_view"] = r["baseline_whole_1000pt"]["p50_ms"] / r["whole_1000pt"]["p50_ms"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    server = SecantusDBServer(host="127.0.0.1", port=free_port(), storage_path=tempfile.mkdtemp())
    server.start()
    uri = f"mongodb://127.0.0.1:{server.port}/"
    db = pymongo.MongoClient(uri)[DB]
    result: dict = {"load_average_start": os.getloadavg(), "sizes": {}}
    for n in sizes:
        result["sizes"][n] = write_both(db, n)
    proc, url = start_api(uri)
    result["api_idle"] = rss_mb(proc.pid)
    try:
        with httpx.Client(base_url=url, timeout=300) as c:
            for n in sizes:
                r = result["sizes"][n]
                time_views(c, uri, n, r)
                r["api_after"] = rss_mb(proc.pid)
                print(json.dumps({n: r}), file=sys.stderr)
        view = f"/results/v2/Season/power/P{max(sizes)}"
        paths = {
            "listing": ("/results", {}),
            "whole_1000pt": (view, {"max_points": 1000}),
            "hour_1000pt": (view, {**HOUR, "max_points": 1000}),
        }
        # The clients run in their own process: in this one they would fight the database's
        # threads for the interpreter, and time that instead of the API.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            cpu = cpu_s(proc.pid)
            result["load_20_clients"] = pool.apply(load, (url, paths))
            result["load_20_clients"]["api_cpu_s"] = cpu_s(proc.pid) - cpu
            result["load_20_clients"]["load_average"] = os.getloadavg()
        result["api_end"] = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        server.stop()
    result["load_average_end"] = os.getloadavg()
    result["api_peak_rss_mb"] = result["api_end"]["peak_rss_mb"]
    result["speedup_10m_whole_view"] = result["sizes"].get(10_000_000, {}).get("speedup_whole_view")
    result["worst_p50_ms_1000pt_view"] = max(
        max(r["whole_1000pt"]["p50_ms"], r["hour_1000pt"]["p50_ms"])
        for r in result["sizes"].values()
    )
    out = RESULTS / f"bench_results-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results in {out}", file=sys.stderr)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
