"""Forecast-store soak: an hourly forecast schedule over 60 days of init times.

Run from the repository root::

    .venv/bin/python -m benchmarks.forecast_soak               # 60 days, hourly: 1,440 writes
    .venv/bin/python -m benchmarks.forecast_soak --days 7      # a quicker look

What it simulates: a deployment that issues one forecast per hour of a 5-minute source (so a
store laid out at the source step would hold 11 empty slots per forecast). For every init time,
a tiny, randomly initialised SimVP (4 input → 12 lead frames, 1 channel, 64 x 64 px, hid_S 8,
hid_T 16) forecasts from synthetic frames (``simvp_model.predict``), the forecast is built in the
store layout (``build_forecast``) and written with ``write_forecast`` into one local Zarr store,
as ``nowcast forecast`` does after reading its inputs. At the end, a handful of back-fills
(earlier init times inserted in order) and a re-run of an existing init time are timed too.

Measured: per-write wall time of ``write_forecast`` alone (the predict is excluded), the
process's resident set size (RSS, ``/proc/self/statm``) and its peak (``ru_maxrss``), both
after each write, reported at checkpoints of the number of init times in the store. Flat
numbers mean a write's memory and time depend on the entry written, not on the store's span.

Results: ``benchmarks/results/forecast_soak.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (64, 64)  # (H, W) pixels
IN_FRAMES, LEADS = 4, 12
SOURCE_STEP = pd.Timedelta("5min")
CADENCE = pd.Timedelta("1h")  # one forecast per hour
LAEA = pyproj.CRS.from_epsg(3035)
WINDOW = 24  # writes per reported row (one day)
BACKFILLS = 5


def _model():
    """A seeded tiny SimVP with the identity normalisation (physical units in and out)."""
    import torch

    from simvp_model.config import SimVPConfig
    from simvp_model.model import SimVP

    torch.manual_seed(0)
    config = SimVPConfig(
        in_frames=IN_FRAMES,
        out_frames=LEADS,
        channels=1,
        height=SHAPE[0],
        width=SHAPE[1],
        spatial_hidden=8,
        temporal_hidden=16,
        spatial_layers=2,
        temporal_layers=2,
    )
    return SimVP(config).eval()


def _rss_mib() -> float:
    """Current resident set size in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60, help="days of hourly init times")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-save", action="store_true", help="print only, write no results")
    args = parser.parse_args()

    import torch

    from pipelines.forecast.store import (
        ForecastGrid,
        Provenance,
        build_forecast,
        open_forecast_store,
        write_forecast,
    )
    from simvp_model.predict import predict

    torch.set_num_threads(args.threads)
    model = _model()
    y = 3_850_000.0 - np.arange(SHAPE[0]) * 2_000.0
    x = 4_100_000.0 + np.arange(SHAPE[1]) * 2_000.0
    grid = ForecastGrid.from_coords(y, x, LAEA)
    leads = pd.timedelta_range(SOURCE_STEP, periods=LEADS, freq=SOURCE_STEP)
    rng = np.random.default_rng(0)
    frames = rng.gamma(0.5, 2.0, size=(IN_FRAMES, 1, *SHAPE)).astype(np.float32)

    def forecast_at(init: pd.Timestamp):
        values = predict(model, frames, horizon=LEADS)[:, 0]  # (L, C, H, W) -> (L, H, W)
        provenance = Provenance(
            "soak.pt",
            "0" * 64,
            "soak",
            "stores/soak.zarr",
            pd.date_range(end=init, periods=IN_FRAMES, freq=SOURCE_STEP),
        )
        return build_forecast(
            {"precipitation_rate": values},
            init,
            leads,
            grid,
            time_step=SOURCE_STEP,
            source_name="soak",
            provenance=provenance,
            variable_attrs={"precipitation_rate": {"units": "mm/h"}},
        )

    n_inits = args.days * 24
    inits = pd.date_range("2024-05-01T00:00", periods=n_inits, freq=CADENCE)
    load = os.getloadavg()
    rows, write_s, write_cpu_s, rss = [], [], [], []
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forecasts" / "soak.zarr"
        for k, init in enumerate(inits):
            forecast = forecast_at(init)
            t0, c0 = time.perf_counter(), time.process_time()
            write_forecast(path, forecast)
            write_s.append(time.perf_counter() - t0)
            write_cpu_s.append(time.process_time() - c0)
            rss.append(_rss_mib())
            n = k + 1
            if n % WINDOW == 0 or n == 1:
                window = write_s[-WINDOW:]
                rows.append(
                    {
                        "init_times": n,
                        "span_days": round((init - inits[0]) / pd.Timedelta("1D"), 2),
                        "write_median_ms": round(1e3 * statistics.median(window), 2),
                        "write_max_ms": round(1e3 * max(window), 2),
                        "write_cpu_median_ms": round(
                            1e3 * statistics.median(write_cpu_s[-WINDOW:]), 2
                        ),
                        "rss_mib": round(rss[-1], 1),
                        "peak_rss_mib": round(_peak_rss_mib(), 1),
                    }
                )
                if n % (10 * WINDOW) == 0 or n == 1:
                    print(rows[-1], flush=True)
        # back-fills: earlier init times (half-hours never issued) inserted in order
        backfill = []
        for j in range(BACKFILLS):
            init = inits[(j + 1) * n_inits // (BACKFILLS + 1)] + pd.Timedelta("30min")
            forecast = forecast_at(init)
            t0 = time.perf_counter()
            index = write_forecast(path, forecast)
            backfill.append(
                {
                    "init_time": str(init),
                    "index": index,
                    "write_ms": round(1e3 * (time.perf_counter() - t0), 2),
                    "rss_mib": round(_rss_mib(), 1),
                }
            )
        forecast = forecast_at(inits[n_inits // 2])
        t0 = time.perf_counter()
        write_forecast(path, forecast)
        rerun_ms = 1e3 * (time.perf_counter() - t0)
        ds = open_forecast_store(path)
        stored = int(ds.sizes["init_time"])
        complete = bool(ds["forecast_complete"].values.all())
        sorted_ok = bool((np.diff(ds["init_time"].values) > np.timedelta64(0)).all())
        size_mib = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    total_s = time.perf_counter() - start_all

    first, last = rows[1] if len(rows) > 1 else rows[0], rows[-1]
    info = {
        "benchmark": "forecast_soak",
        "date_utc": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average_at_start": [round(v, 2) for v in load],
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "grid": list(SHAPE),
        "in_frames": IN_FRAMES,
        "lead_times": LEADS,
        "cadence": "1h",
        "source_step": "5min",
        "days": args.days,
        "writes": n_inits,
        "rows": rows,
        "backfills": backfill,
        "rerun_write_ms": round(rerun_ms, 2),
        "store": {
            "init_times": stored,
            "all_complete": complete,
            "strictly_increasing": sorted_ok,
            "size_mib": round(size_mib, 1),
        },
        "total_s": round(total_s, 1),
    }
    lines = [
        "# Forecast-store soak (hourly schedule)",
        "",
        f"`python -m benchmarks.forecast_soak --days {args.days}` on {info['machine']}, "
        f"torch threads {info['torch_threads']}, {info['date_utc']} (load average at start: "
        f"{info['load_average_at_start']}, end: {info['load_average_at_end']}).",
        "",
        f"{n_inits} hourly init times of a 5-minute source ({args.days} days), each a "
        f"{LEADS}-lead forecast of a tiny random SimVP at {SHAPE[0]} x {SHAPE[1]} px written with "
        f"`write_forecast` into one store; then {BACKFILLS} back-fills and one re-run. Write "
        "time is `write_forecast` alone; RSS is the whole process (torch included) after the "
        "write; peak RSS is the process's high-water mark so far. Wall times on a shared "
        "machine inflate with its load; CPU time (this process) is what the write costs.",
        "",
        "| init times in store | span (days) | write median (ms) | write max (ms) "
        "| write CPU median (ms) | RSS (MiB) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["init_times"] in (1, 24) or r["init_times"] % (5 * WINDOW) == 0:
            lines.append(
                f"| {r['init_times']} | {r['span_days']:g} | {r['write_median_ms']:.1f} "
                f"| {r['write_max_ms']:.1f} | {r['write_cpu_median_ms']:.1f} "
                f"| {r['rss_mib']:.0f} | {r['peak_rss_mib']:.0f} |"
            )
    lines += [
        "",
        f"Medians over the last {WINDOW} writes of each row. From {first['init_times']} to "
        f"{last['init_times']} init times: write median {first['write_median_ms']:.1f} → "
        f"{last['write_median_ms']:.1f} ms (CPU {first['write_cpu_median_ms']:.1f} → "
        f"{last['write_cpu_median_ms']:.1f} ms), RSS {first['rss_mib']:.0f} → "
        f"{last['rss_mib']:.0f} MiB, peak RSS {first['peak_rss_mib']:.0f} → "
        f"{last['peak_rss_mib']:.0f} MiB.",
        "",
        "| back-fill init time | inserted at index | write (ms) | RSS (MiB) |",
        "|---|---:|---:|---:|",
        *[
            f"| {b['init_time']} | {b['index']} | {b['write_ms']:.1f} | {b['rss_mib']:.0f} |"
            for b in backfill
        ],
        "",
        f"Re-run of an existing init time (replace in place): {rerun_ms:.1f} ms. Final store: "
        f"{stored} init times (= {n_inits} + {BACKFILLS} back-fills), all complete: {complete}, "
        f"strictly increasing: {sorted_ok}, {size_mib:.1f} MiB on disk. Whole run "
        f"{total_s:.0f} s.",
        "",
    ]
    print("\n".join(lines))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "forecast_soak.json").write_text(json.dumps(info, indent=2) + "\n")
        (RESULTS / "forecast_soak.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
