"""Ingest throughput: frames/s and MB/s of ``ingest_source`` on a radar source vs plain ``np.save``.

Run from the repository root::

    .venv/bin/python -m benchmarks.ingest_throughput                      # shipped MCH samples
    .venv/bin/python -m benchmarks.ingest_throughput --samples ../shared/data   # all 120 frames

Measures, on the ``mch-radar`` catalog source (640 x 710 float32 frames):

- ``decode``: the reader alone (GIF -> float32 mm/h), frames held in memory;
- ``ingest (end to end)``: :func:`pipelines.ingest.ingest_source` into a fresh store
  (decode + validate + template + zstd region writes);
- ``ingest (write path)``: the same with a reader that hands back the already decoded frames,
  so only validation and the Zarr writes are timed;
- ``np.save``: the same decoded frames written one ``.npy`` file per frame (the raw baseline).

``ratio`` = np.save seconds / ingest write-path seconds (target >= 0.5: the store costs at most
twice a raw dump). MB are MiB of decoded float32 data (``frames x H x W x 4``).

Bounded memory: a synthetic 640 x 710 source of 100 and 500 frames is ingested in a child
process each (peak RSS = ``VmHWM``); decoded frames live only in the write tasks (one batch of
~64 MiB per worker thread), so the peak RSS does not grow with the number of frames. The
scaling on a process cluster (graph sizes, client RSS, 1 vs 2 workers, the write path against
``xr.Dataset.to_zarr``) is ``benchmarks/ingest_scaling.py``.

Results: ``benchmarks/results/ingest_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "mch-radar"


def _mib(n: float) -> float:
    return n / 2**20


def _radar(samples: str | None, repeats: int) -> dict[str, Any]:
    from data_catalog.catalog import get_source, list_files
    from pipelines.ingest import ingest_source
    from pipelines.readers import read_file

    spec = get_source(SOURCE)
    files = list_files(spec, samples=samples)
    n = len(files)
    t = time.perf_counter()
    decoded = {f.path: read_file(spec, f.path) for f in files}
    t_decode = time.perf_counter() - t
    nbytes = sum(fr.data[v].nbytes for fr in decoded.values() for v in fr.data)

    def cached(path: str, _spec: Any) -> Any:
        return decoded[path]

    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        best: dict[str, float] = {"e2e": np.inf, "write": np.inf, "save": np.inf}
        size = 0
        for r in range(repeats):
            rep = ingest_source(
                spec, store_path=f"{tmp}/e2e{r}.zarr", samples=samples, progress=False
            )
            best["e2e"] = min(best["e2e"], rep.seconds)
            rep = ingest_source(
                spec,
                store_path=f"{tmp}/write{r}.zarr",
                samples=samples,
                reader=cached,
                progress=False,
            )
            best["write"] = min(best["write"], rep.seconds)
            size = rep.store_bytes
            out = Path(tmp, f"npy{r}")
            out.mkdir()
            t = time.perf_counter()
            for i, frames in enumerate(decoded.values()):
                np.save(out / f"{i:05d}.npy", frames.data["precipitation_rate"])
            best["save"] = min(best["save"], time.perf_counter() - t)
        for name, seconds in (
            ("decode", t_decode),
            ("ingest (end to end)", best["e2e"]),
            ("ingest (write path)", best["write"]),
            ("np.save", best["save"]),
        ):
            rows[name] = {
                "seconds": round(seconds, 3),
                "frames_per_s": round(n / seconds, 1),
                "mib_per_s": round(_mib(nbytes) / seconds, 1),
            }
    return {
        "source": SOURCE,
        "frames": n,
        "frame_shape": list(spec.grid.shape),
        "decoded_mib": round(_mib(nbytes), 1),
        "store_mib": round(_mib(size), 1),
        "rows": rows,
        "ratio_write_path": round(best["save"] / best["write"], 3),
        "ratio_end_to_end": round(best["save"] / best["e2e"], 3),
    }


def _vm_hwm_mib() -> float:
    """Peak RSS of this process (``VmHWM``; unlike ``ru_maxrss`` it is not inherited from
    the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_many(frames: int, root: str) -> dict[str, Any]:
    """Ingest ``frames`` synthetic 640 x 710 frames; report time and this process's peak RSS."""
    from pipelines.ingest import ingest_source
    from pipelines.ingest.synthetic import read_generated, synthetic_spec, write_files

    spec = synthetic_spec(
        Path(root, "files"), shape=(640, 710), chunks={"time": 12, "y": 320, "x": 355}
    )
    write_files(spec, pd.date_range("2024-05-01", periods=frames, freq="5min"), generate=True)
    baseline = _vm_hwm_mib()  # after imports
    report = ingest_source(
        spec, store_path=str(Path(root, "s.zarr")), reader=read_generated, progress=False
    )
    return {
        "frames": frames,
        "seconds": round(report.seconds, 2),
        "frames_per_s": round(frames / report.seconds, 1),
        "decoded_mib": round(frames * 640 * 710 * 4 / 2**20, 1),
        "batches": report.batches,
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(_vm_hwm_mib(), 1),
        "store_mib": round(_mib(report.store_bytes), 1),
    }


def _many(counts: list[int]) -> list[dict[str, Any]]:
    out = []
    for frames in counts:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            cmd = [sys.executable, "-m", "benchmarks.ingest_throughput"]
            cmd += ["--child-many", str(frames), "--child-dir", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def _markdown(result: dict[str, Any]) -> str:
    radar = result["radar"]
    lines = [
        "# Ingest throughput",
        "",
        f"`python -m benchmarks.ingest_throughput` on {result['machine']}, "
        f"{result['date']} (load average at start: {result['load_average']}).",
        "",
        f"## {radar['source']}: {radar['frames']} frames of {radar['frame_shape'][0]} x "
        f"{radar['frame_shape'][1]} float32 ({radar['decoded_mib']} MiB decoded, store "
        f"{radar['store_mib']} MiB with zstd)",
        "",
        "| step | seconds | frames/s | MiB/s |",
        "|---|---:|---:|---:|",
    ]
    for name, row in radar["rows"].items():
        lines.append(f"| {name} | {row['seconds']} | {row['frames_per_s']} | {row['mib_per_s']} |")
    lines += [
        "",
        f"Ratio to `np.save` (np.save s / ingest s): write path **{radar['ratio_write_path']}**,"
        f" end to end {radar['ratio_end_to_end']} (target >= 0.5 on the write path).",
        "",
        "## Memory: synthetic 640 x 710 frames (write batches of 64 MiB)",
        "",
        "| frames | decoded MiB | seconds | frames/s | write tasks | RSS after imports MiB | "
        "peak RSS MiB | store MiB |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in result["many"]:
        lines.append(
            f"| {row['frames']} | {row['decoded_mib']} | {row['seconds']} | "
            f"{row['frames_per_s']} | {row.get('batches', '-')} | {row['baseline_rss_mib']} | "
            f"{row['peak_rss_mib']} | {row['store_mib']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", default=None, help="root for ${samples} (default shipped)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N for the radar runs")
    parser.add_argument("--many", default="100,500", help="synthetic frame counts")
    parser.add_argument("--child-many", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="angle from rectified to skew grid")
    if args.child_many is not None:
        print(json.dumps(_child_many(args.child_many, args.child_dir)))
        return 0
    result = {
        "date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "radar": _radar(args.samples, args.repeats),
        "many": _many([int(n) for n in args.many.split(",") if n]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "ingest_throughput.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
