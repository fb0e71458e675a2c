"""Live replay soak: a synthetic archive played hour by hour (ingest → forecast → verify).

Run from the repository root::

    .venv/bin/python -m benchmarks.live_replay --days 30  # the soak: 720 simulated hours
    .venv/bin/python -m benchmarks.live_replay            # 3 simulated days (a few minutes)
    .venv/bin/python -m benchmarks.live_replay --quick    # 1 simulated day, a smoke run
    .venv/bin/python -m benchmarks.live_replay --verify-demo DIR   # timing on the demo domain

What it simulates: :func:`pipelines.live.replay.replay_source` over a synthetic radar-like
source (:mod:`pipelines.ingest.synthetic`, a rain blob moving one pixel per step, on a
``SHAPE`` grid at 5 min), with a seeded, randomly initialised tiny SimVP (4 → 12 frames) as the
model: every simulated hour ingests the 12 new frames, issues a 12-lead forecast and verifies
every entry whose hour of valid times has been observed (SimVP, persistence and Lucas–Kanade).
The live page is rebuilt at the last hour of each simulated day (``--page-every`` hours; the
deployment rebuilds it hourly, which costs the same each time as the page only reads 30 days).

Measured per simulated day: mean and max wall seconds per hour and the process's peak RSS
(``ru_maxrss``) at the end of the day. Flat rows mean the hourly cost does not grow with the
archive. Results: ``benchmarks/results/live_replay.{json,md}`` and a headless-Chromium
screenshot of the final page, ``benchmarks/results/live_replay_page.png`` (when Chromium is
installed).

``--verify-demo DIR`` times :func:`pipelines.live.verify.verify_source` for one 12-lead forecast
on the demo domain (the MeteoSwiss sample's prepared 4 km grid, 160 x 176 px) from the
observation store ``DIR/stores/mch-radar.zarr`` (e.g. one made by ``nowcast replay``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (32, 40)  # (H, W): tiny, so the soak measures the bookkeeping, not the arithmetic
IN_FRAMES, LEADS = 4, 12
START = pd.Timestamp("2024-06-01T00:00")


def tiny_checkpoint(
    path: Path, shape: tuple[int, int], source: str, coarsen: int = 1, crop=None
) -> Path:
    """A seeded, randomly initialised tiny SimVP checkpoint (4 → 12 frames, dBR normalisation)."""
    import torch

    from simvp_model.checkpoint import save_checkpoint
    from simvp_model.config import SimVPConfig
    from simvp_model.model import SimVP
    from simvp_model.normalisation import Normalisation

    torch.manual_seed(0)
    config = SimVPConfig(
        in_frames=IN_FRAMES,
        out_frames=LEADS,
        channels=1,
        height=shape[0],
        width=shape[1],
        spatial_hidden=8,
        temporal_hidden=16,
        spatial_layers=2,
        temporal_layers=2,
    )
    metadata = {
        "source": source,
        "variables": ["precipitation_rate"],
        "time_step": "5min",
        "coarsen": coarsen,
        "crop": crop,
        "in_frames": IN_FRAMES,
        "out_frames": LEADS,
    }
    normalisation = Normalisation("dbr", (0.0,), (10.0,), 0.1)
    save_checkpoint(path, SimVP(config), config, normalisation, {}, metadata)
    return path


class PersistenceModel:
    """A stand-in for a loaded checkpoint whose predictor repeats the last input frame.

    Wrapped with :func:`persistence_predict` as a
    :class:`pipelines.method.simvp.SimVPMethod`, it goes through the real
    :func:`pipelines.forecast.run.run_forecast` (inputs, store write, provenance) without a
    network call, so the soak measures the pipeline's bookkeeping.
    """

    def __init__(self, source: str) -> None:
        from simvp_model.normalisation import Normalisation

        self.model = None
        self.config = None
        self.normalisation = Normalisation("dbr", (0.0,), (10.0,), 0.1)
        self.metadata = {
            "source": source,
            "variables": ["precipitation_rate"],
            "time_step": "5min",
            "coarsen": 1,
            "crop": None,
            "in_frames": IN_FRAMES,
            "out_frames": LEADS,
        }
        self.path = "persistence-model"


def persistence_predict(loaded, frames: np.ndarray, horizon: int) -> np.ndarray:
    """``(1, T_in, C, H, W)`` → ``(1, horizon, C, H, W)``: the last frame repeated."""
    return np.repeat(frames[:, -1:], horizon, axis=1)


def _model(kind: str, root: Path, source: str):
    if kind == "tiny":
        return str(tiny_checkpoint(root / "tiny.pt", SHAPE, source))
    from pipelines.method.simvp import SimVPMethod

    return SimVPMethod.from_loaded(PersistenceModel(source), persistence_predict)


def _screenshot(page: Path, shot: Path) -> str | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1100,2600", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    return str(shot) if shot.is_file() else None


def _day_rows(records: list, days: int) -> list[dict]:
    """Per simulated day: hours, forecasts, entries scored, s/hour (mean, max), peak RSS."""
    rows = []
    for day in range(days):
        day_records = records[day * 24 : (day + 1) * 24]
        if not day_records:
            break
        seconds = [r.seconds for r in day_records]
        rows.append(
            {
                "day": day + 1,
                "hours": len(day_records),
                "forecasts": sum(r.forecast for r in day_records),
                "scored": sum(r.scored for r in day_records),
                "mean_s_per_hour": statistics.mean(seconds),
                "max_s_per_hour": max(seconds),
                "peak_rss_mb": day_records[-1].peak_rss_mb,
            }
        )
    return rows


def soak(days: int, page_every: int, root: Path, model: str, on_day=None, hours_cap=None) -> dict:
    """Replay ``days`` synthetic days; per-day rows of time per hour and peak RSS."""
    from pipelines.ingest.synthetic import read_generated, synthetic_spec, write_files
    from pipelines.live.replay import replay_source

    spec = synthetic_spec(root / "files", shape=SHAPE, chunks={"time": 12})
    end = START + pd.Timedelta(days=days) - pd.Timedelta("1h")
    write_files(spec, pd.date_range(START - pd.Timedelta("1h"), end, freq="5min"), generate=True)
    checkpoint = _model(model, root, spec.name)
    data = root / "data"
    records: list = []
    pages: list = []

    def on_hour(record, report) -> None:
        records.append(record)
        if report is not None and report.page:
            pages.append(report.page)

    hours = pd.date_range(START, end, freq="h")[:hours_cap]
    # Chunks of ``page_every`` hours; each replay's first hour re-ingests the hour before it
    # (the default 1 h warm-up), which the idempotent ingest rewrites unchanged.
    for chunk_start in range(0, len(hours), page_every):
        chunk = hours[chunk_start : chunk_start + page_every]
        common = {"checkpoint": checkpoint, "reader": read_generated, "on_hour": on_hour}
        if len(chunk) > 1:
            replay_source(spec, chunk[0], chunk[-2], data, render=False, **common)
        replay_source(spec, chunk[-1], chunk[-1], data, render=True, **common)
        if on_day is not None:
            on_day({"rows": _day_rows(records, days), "page": pages[-1] if pages else None})
    return {"rows": _day_rows(records, days), "page": pages[-1] if pages else None}


def verify_demo(data_dir: Path, repeats: int) -> dict:
    """Seconds of ``verify_source`` for one 12-lead forecast on the demo domain (160 x 176)."""
    import xarray as xr

    from pipelines.forecast.run import run_forecast
    from pipelines.live import AlertConfig, verify_source

    work = Path(tempfile.mkdtemp(prefix="live-verify-demo-"))
    shutil.copytree(data_dir / "stores", work / "stores")
    obs = xr.open_zarr(work / "stores" / "mch-radar.zarr")
    present = pd.DatetimeIndex(obs["time"].values[np.asarray(obs["frame_present"].values, bool)])
    init = present[-1] - pd.Timedelta(minutes=5 * LEADS)  # its hour of valid times is observed
    checkpoint = tiny_checkpoint(
        work / "demo.pt", (160, 176), "mch-radar", coarsen=4, crop=[0, 640, 0, 704]
    )
    run_forecast("mch-radar", init_time=init, checkpoint=checkpoint, data_dir=work)
    quiet = AlertConfig(max_input_age=None, min_skill=-1e9)
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        shutil.rmtree(work / "verification", ignore_errors=True)
        t0, c0 = time.perf_counter(), time.process_time()
        report = verify_source("mch-radar", work, as_of=present[-1], alerts=quiet, render=False)
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)  # all threads: less load-sensitive
        assert len(report.scored) == 1, report
    shape = xr.open_zarr(work / "forecasts" / "mch-radar.zarr")["precipitation_rate"].shape
    shutil.rmtree(work)
    return {
        "init_time": str(init),
        "forecast_shape": list(shape),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def _markdown(result: dict) -> str:
    lines = [
        "# Live replay soak",
        "",
        f"{result['days']} simulated days of a synthetic {SHAPE[0]}x{SHAPE[1]} source, hourly "
        f"ingest → 12-lead forecast (model: {result['model']}) → verify (SimVP, persistence, "
        f"LK); page "
        f"every {result['page_every']} h. Load average at start {result['load_start']}, at end "
        f"{result['load_end']} on {result['cpus']} CPUs (shared machine).",
        "",
        "| day | hours | forecasts | scored | mean s/hour | max s/hour | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['day']} | {r['hours']} | {r['forecasts']} | {r['scored']} | "
            f"{r['mean_s_per_hour']:.2f} | {r['max_s_per_hour']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    first, last = result["rows"][0], result["rows"][-1]
    lines += [
        "",
        f"{sum(r['hours'] for r in result['rows'])} simulated hours so far. "
        f"Peak RSS day {last['day']} / day 1: {last['peak_rss_mb'] / first['peak_rss_mb']:.3f}; "
        f"mean s/hour day {last['day']} / day 1: "
        f"{last['mean_s_per_hour'] / first['mean_s_per_hour']:.3f}.",
    ]
    if result.get("screenshot"):
        lines += ["", f"Final page screenshot: `{result['screenshot']}`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_replay")
    parser.add_argument("--days", type=int, default=3, help="simulated days (the soak: 30)")
    parser.add_argument("--quick", action="store_true", help="1 day (smoke run)")
    parser.add_argument("--page-every", type=int, default=24, help="hours between page builds")
    parser.add_argument(
        "--model", choices=("persistence", "tiny"), default="persistence",
        help="the forecasting model: persistence through run_forecast, or a tiny random SimVP",
    )  # fmt: skip
    parser.add_argument("--verify-demo", type=Path, default=None, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="live_replay")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    RESULTS.mkdir(exist_ok=True)
    if args.verify_demo is not None:
        result = verify_demo(args.verify_demo, args.repeats)
        result["load"] = os.getloadavg()
        print(json.dumps(result, indent=1))
        (RESULTS / "live_verify_demo.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    days = 1 if args.quick else args.days
    root = Path(tempfile.mkdtemp(prefix="live-replay-"))
    meta = {
        "days": days,
        "model": args.model,
        "page_every": args.page_every,
        "load_start": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }

    def save(partial: dict) -> dict:
        result = {**meta, **partial, "load_end": round(os.getloadavg()[0], 1)}
        (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        (RESULTS / f"{args.out}.md").write_text(_markdown(result))
        return result

    result = save(soak(days, args.page_every, root, args.model, on_day=save))  # per day: partial
    if result["page"]:
        result["screenshot"] = _screenshot(Path(result["page"]), RESULTS / f"{args.out}_page.png")
        result = save(result)
    print(_markdown(result))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
