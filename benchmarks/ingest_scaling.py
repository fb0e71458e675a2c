"""Ingest that scales out: task sizes, client memory, 1 vs 2 worker processes, the write path.

Run from the repository root (a few minutes; the numbers are noisy on a shared machine, so
each timing is repeated and every run is kept in the JSON)::

    .venv/bin/python -m benchmarks.ingest_scaling                    # shipped MCH sample
    .venv/bin/python -m benchmarks.ingest_scaling --old /tmp/old      # + the old design's RSS

Measures:

- **task sizes**: the pickled size of every task ``ingest_source`` hands to the executor
  (function + arguments, what a ``distributed`` scheduler receives) while ingesting the 120
  files of the shipped ``mch-radar`` sample; per phase, the largest, the mean and the total.
- **client peak RSS vs number of files**: a synthetic 320 x 355 source of N files ingested in a
  child process that starts a ``LocalCluster`` of two worker processes and drives it (peak
  RSS = ``VmHWM`` of the client process, which also hosts the scheduler). ``--old DIR`` runs
  the same child with ``PYTHONPATH=DIR``: an export of the previous design (frames gathered
  on the client, sent back in the graph), for comparison; the "Sending large graph" sizes
  that ``distributed`` logs are recorded too.
- **throughput**: the 120 MCH files end to end (GIF decode twice, validation, zstd writes)
  with ``synchronous``, ``threads`` and a ``LocalCluster`` of 1 and 2 single-thread worker
  processes (cluster start-up excluded); stores checked byte-identical across schedulers.
- **write path**: the same 120 frames decoded once beforehand, so only validation and the
  store writes are timed, against a plain ``xr.Dataset.to_zarr`` of the same frames with the
  same codec (zstd 3) and chunks (12 x 320 x 355). Ratio = to_zarr s / ingest s (goal >= 0.8).
- **re-decode vs spill**: what phase 2 pays to decode a file again, against writing the
  decoded frame to a temporary ``.npy`` in phase 1 and reading it back (and the disk it takes).

Results: ``benchmarks/results/ingest_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
PLAIN = "xr.Dataset.to_zarr"
PLAIN_GRID = "xr.Dataset.to_zarr + grid coords"
GRID_COORDS = ("y", "x", "latitude", "longitude")
SOURCE = "mch-radar"
SYN_SHAPE = (320, 355)


def _tmp() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"))


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _digest(path: str) -> dict[str, str]:
    from pipelines.ingest import store_digest

    digest = store_digest(path)
    digest.pop("zarr.json")  # holds the history line (a timestamp)
    return digest


# --- task sizes --------------------------------------------------------------------------


@contextlib.contextmanager
def _counting_executor(sizes: dict[str, list[int]]) -> Iterator[None]:
    """Record the pickled size of each task submitted by ``ingest_source``."""
    import cloudpickle

    from pipelines.ingest import work

    real = work.task_executor

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def submit(self, fn: Any, *args: Any) -> Any:
            sizes.setdefault(fn.__name__, []).append(len(cloudpickle.dumps((fn, args))))
            return self.inner.submit(fn, *args)

    @contextlib.contextmanager
    def counting(scheduler: Any = None) -> Iterator[Any]:
        with real(scheduler) as runner:
            counted = Counting(runner.executor)
            yield work.Runner(counted, runner.in_flight, runner.kind, runner.workers)  # type: ignore[arg-type]

    work.task_executor = counting
    try:
        yield
    finally:
        work.task_executor = real


def _task_sizes(samples: str | None) -> dict[str, Any]:
    from pipelines.ingest import ingest_source

    sizes: dict[str, list[int]] = {}
    with _tmp() as tmp, _counting_executor(sizes):
        report = ingest_source(SOURCE, store_path=f"{tmp}/s.zarr", samples=samples, progress=False)
    return {
        "files": report.files,
        "phases": {
            name: {
                "tasks": len(v),
                "max_kib": round(max(v) / 1024, 2),
                "mean_kib": round(statistics.mean(v) / 1024, 2),
                "total_kib": round(sum(v) / 1024, 1),
            }
            for name, v in sizes.items()
        },
    }


# --- client RSS vs number of files (child processes) --------------------------------------


def _child_rss(files: int, root: str) -> dict[str, Any]:
    """In a child: a 2-process LocalCluster, ``files`` synthetic files, the client's peak RSS."""
    import dask
    import distributed
    from dask.utils import parse_bytes

    from pipelines.ingest import ingest_source
    from pipelines.ingest.synthetic import read_generated, synthetic_spec, write_files

    warnings.filterwarnings("ignore", message="angle from rectified to skew grid")
    spec = synthetic_spec(Path(root, "files"), shape=SYN_SHAPE, chunks={"time": 12})
    write_files(spec, pd.date_range("2024-05-01", periods=files, freq="5min"), generate=True)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        # every graph sent to the scheduler is announced with its size
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "1B"}),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        baseline = _vm_hwm_mib()
        t = time.perf_counter()
        ingest_source(
            spec,
            store_path=str(Path(root, "s.zarr")),
            reader=read_generated,
            scheduler=client,
            progress=False,
        )
        seconds = time.perf_counter() - t
    graphs = [
        parse_bytes(str(w.message).split("of size ", 1)[1].split(".\n", 1)[0])
        for w in caught
        if "Sending large graph of size" in str(w.message)
    ]
    return {
        "files": files,
        "decoded_mib": round(files * SYN_SHAPE[0] * SYN_SHAPE[1] * 4 / 2**20, 1),
        "seconds": round(seconds, 2),
        "rss_before_mib": round(baseline, 1),
        "peak_rss_mib": round(_vm_hwm_mib(), 1),
        "graphs": len(graphs),
        "largest_graph_kib": round(max(graphs, default=0) / 1024, 1),
        "total_graph_mib": round(sum(graphs) / 2**20, 2),
    }


def _rss(counts: list[int], old: str | None) -> list[dict[str, Any]]:
    rows = []
    here = str(Path(__file__).resolve().parents[1])
    designs = [("workers decode and write", here)]
    if old:  # run from the old tree: `python -m` puts the working directory first on the path
        designs.append(("old: arrays via the client", old))
    for design, root in designs:
        for files in counts:
            with _tmp() as tmp:
                cmd = [sys.executable, "-m", "benchmarks.ingest_scaling"]
                cmd += ["--child-rss", str(files), "--child-dir", tmp]
                env = {**os.environ, "PYTHONPATH": f"{root}:{here}"}
                done = subprocess.run(
                    cmd, capture_output=True, text=True, check=True, env=env, cwd=root
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"design": design, **row})
    return rows


# --- throughput -----------------------------------------------------------------------------


TUNED_ENV = {"MALLOC_TRIM_THRESHOLD_": 2**27, "MALLOC_MMAP_THRESHOLD_": 2**25}
"""Added to the worker environment of the "allocator tuned" clusters. ``distributed``'s nanny
sets ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off glibc's adaptive ``mmap`` threshold:
every array over 128 KiB is then a fresh ``mmap`` that page-faults on first touch (a decode
makes several per frame; pure NumPy loops measured ~3x the CPU time in a worker than in the
client process). A 32 MiB ``mmap`` threshold keeps such arrays on the heap for reuse."""


def _throughput(samples: str | None, repeats: int) -> dict[str, Any]:
    import dask
    import distributed

    from pipelines.ingest import ingest_source

    runs: dict[str, list[float]] = {}
    setup: dict[str, float] = {}
    load: dict[str, float] = {}
    digests: dict[str, dict[str, str]] = {}

    def timed(name: str, scheduler: Any, tmp: str) -> None:
        load[name] = round(os.getloadavg()[0], 2)  # other processes competing for the cores
        for r in range(repeats):
            path = f"{tmp}/{len(runs)}-{r}.zarr"
            t = time.perf_counter()
            ingest_source(
                SOURCE, store_path=path, samples=samples, scheduler=scheduler, progress=False
            )
            runs.setdefault(name, []).append(time.perf_counter() - t)
            digests[name] = _digest(path)

    with _tmp() as tmp:
        timed("synchronous", "synchronous", tmp)
        timed("threads (2)", None, tmp)
        for tuned in (False, True):
            default = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
            env = {**default, **TUNED_ENV} if tuned else default
            for workers in (1, 2):
                name = f"LocalCluster {workers} process{'es' if workers > 1 else ''}"
                name += ", allocator tuned" if tuned else ""
                t = time.perf_counter()
                with (
                    dask.config.set({"distributed.nanny.pre-spawn-environ": env}),
                    distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                    ) as cluster,
                    distributed.Client(cluster) as client,
                ):
                    client.run(lambda: __import__("pipelines.readers"))  # warm imports
                    setup[name] = time.perf_counter() - t
                    timed(name, client, tmp)
    first = next(iter(digests.values()))
    return {
        "files": 120,
        "repeats": repeats,
        "identical_stores": all(d == first for d in digests.values()),
        "runs_s": {k: [round(v, 2) for v in vs] for k, vs in runs.items()},
        "setup_s": {k: round(v, 2) for k, v in setup.items()},
        "load_1min": load,
        "best_s": {k: round(min(vs), 2) for k, vs in runs.items()},
        "median_s": {k: round(statistics.median(vs), 2) for k, vs in runs.items()},
    }


# --- write path vs xr.Dataset.to_zarr; re-decode vs spill -------------------------------------


def _write_path(samples: str | None, repeats: int) -> dict[str, Any]:
    """Decoded frames written by ingest (cached reader) and by a plain ``to_zarr``.

    Two time layouts of the same 120 decoded frames: the sample's own times (three events
    whose starts are not on time-chunk boundaries: 15 time chunks with NaN-padded slots) and
    the frames relabelled as one contiguous series from midnight (the 10 time chunks that
    ``to_zarr`` writes too: the like-for-like comparison).
    """
    from dataclasses import replace

    import xarray as xr
    import zarr

    from data_catalog.catalog import SourceFile, get_source, list_files
    from pipelines.ingest import ingest_source
    from pipelines.ingest.store import ZSTD_LEVEL
    from pipelines.ingest.synthetic import synthetic_spec, write_files
    from pipelines.ingest.work import grid_of_file
    from pipelines.readers import read_file

    spec = get_source(SOURCE)
    files = list_files(spec, samples=samples)
    t = time.perf_counter()
    decoded = {f.path: read_file(spec, f.path) for f in files}
    decode_s = time.perf_counter() - t
    ordered = sorted(decoded.values(), key=lambda fr: fr.times[0])
    contiguous = pd.date_range("2024-05-01", periods=len(ordered), freq="5min")
    var = spec.variable_names[0]
    stacked = np.concatenate([fr.data[var] for fr in ordered])  # (T, H, W), time order
    times = np.concatenate([fr.times for fr in ordered])
    chunks = (spec.chunks["time"], spec.chunks["y"], spec.chunks["x"])

    def cached(path: str, _spec: Any) -> Any:
        return decoded[path]

    runs: dict[str, list[float]] = {}
    with _tmp() as tmp:
        # the same frames as one series from midnight: empty marker files named by time
        grid = spec.to_dict()["grid"]
        series = synthetic_spec(
            Path(tmp, "series"), shape=spec.grid.shape, chunks=spec.chunks, grid=grid
        )
        paths = write_files(series, contiguous, generate=True)
        by_path = {
            path: (time, fr) for path, time, fr in zip(paths, contiguous, ordered, strict=True)
        }

        def relabelled(path: str, _spec: Any) -> Any:
            time, fr = by_path[path]
            return replace(fr, path=path, times=np.array([time.to_datetime64()], "M8[ns]"))

        layouts = {"sample times": (spec, cached), "contiguous": (series, relabelled)}
        grid_ds = grid_of_file(series, relabelled, SourceFile(contiguous[0], paths[0]))
        for r in range(repeats):
            for layout, (source, read) in layouts.items():
                for how, scheduler in (("synchronous", "synchronous"), ("threads", None)):
                    t = time.perf_counter()
                    ingest_source(
                        source,
                        store_path=f"{tmp}/{layout[0]}{r}{how}.zarr",
                        samples=samples,
                        reader=read,
                        scheduler=scheduler,
                        progress=False,
                    )
                    runs.setdefault(f"ingest, {layout}, {how}", []).append(time.perf_counter() - t)
            ds = xr.Dataset({var: (("time", "y", "x"), stacked)}, coords={"time": times})
            encoding = {
                var: {
                    "chunks": chunks,
                    "compressors": [zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)],
                    "_FillValue": np.nan,
                }
            }
            t = time.perf_counter()
            ds.to_zarr(f"{tmp}/plain{r}.zarr", encoding=encoding, consolidated=True, mode="w-")
            runs.setdefault(PLAIN, []).append(time.perf_counter() - t)
            # the same arrays as the ingest store holds besides frame_present: the grid's
            # y, x, 2-D latitude/longitude (zstd, as ingest writes them) and crs
            gridded = ds.assign_coords({n: grid_ds[n].variable for n in GRID_COORDS})
            gridded["crs"] = grid_ds["crs"].variable
            zstd = {"compressors": [zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)]}
            coded = {**encoding, "latitude": zstd, "longitude": zstd}
            t = time.perf_counter()
            gridded.to_zarr(f"{tmp}/grid{r}.zarr", encoding=coded, consolidated=True, mode="w-")
            runs.setdefault(PLAIN_GRID, []).append(time.perf_counter() - t)
        # the like-for-like case must produce the same data: compare the chunk files
        ours = f"{tmp}/c0synchronous.zarr"
        same_chunks = _chunk_files(ours, var) == _chunk_files(f"{tmp}/plain0.zarr", var)
        same_grid = all(
            _chunk_files(ours, n) == _chunk_files(f"{tmp}/grid0.zarr", n)
            for n in (var, "latitude", "longitude")
        )
        t = time.perf_counter()
        np.concatenate([fr.data[var] for fr in ordered])  # what to_zarr's caller pays first
        stack_s = time.perf_counter() - t
        # re-decode vs spill: write each decoded frame to .npy and read it back
        spill = Path(tmp, "spill")
        spill.mkdir()
        t = time.perf_counter()
        for i, fr in enumerate(decoded.values()):
            np.save(spill / f"{i}.npy", fr.data[var])
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(len(decoded)):
            np.load(spill / f"{i}.npy")
        load_s = time.perf_counter() - t
        spill_bytes = sum(p.stat().st_size for p in spill.iterdir())
    best = {k: min(v) for k, v in runs.items()}
    n = len(files)
    plain, plain_grid = best[PLAIN], best[PLAIN_GRID]
    return {
        "frames": n,
        "decoded_mib": round(stacked.nbytes / 2**20, 1),
        "chunks": list(chunks),
        "repeats": repeats,
        "runs_s": {k: [round(v, 3) for v in vs] for k, vs in runs.items()},
        "best_s": {k: round(v, 3) for k, v in best.items()},
        "ratios": {k: round(plain / v, 3) for k, v in best.items() if k.startswith("ingest")},
        "ratios_with_grid": {
            k: round(plain_grid / v, 3) for k, v in best.items() if k.startswith("ingest")
        },
        "contiguous_chunks_identical_to_to_zarr": same_chunks,
        "contiguous_chunks_identical_with_grid": same_grid,
        "stack_frames_s": round(stack_s, 3),
        "decode_ms_per_frame": round(1000 * decode_s / n, 2),
        "spill_save_ms_per_frame": round(1000 * save_s / n, 2),
        "spill_load_ms_per_frame": round(1000 * load_s / n, 2),
        "spill_mib_per_frame": round(spill_bytes / n / 2**20, 3),
    }


def _chunk_files(store: str, var: str) -> dict[str, bytes]:
    """Relative path -> bytes of every chunk file of ``var`` in a local store."""
    root = Path(store, var, "c")
    return {str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()}


# --- report -----------------------------------------------------------------------------------


def _markdown(result: dict[str, Any]) -> str:
    sizes, thr, wp = result["task_sizes"], result["throughput"], result["write_path"]
    lines = [
        "# Ingest scaling",
        "",
        f"`python -m benchmarks.ingest_scaling` on {result['machine']}, {result['date']} (load "
        f"average at start: {result['load_average']}; the machine is shared: timings are noisy, "
        "every run is in the JSON).",
        "",
        f"## Task sizes ({SOURCE}, {sizes['files']} files; pickled function + arguments)",
        "",
        "| task | tasks | largest KiB | mean KiB | total KiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in sizes["phases"].items():
        lines.append(
            f"| {name} | {row['tasks']} | {row['max_kib']} | {row['mean_kib']} | "
            f"{row['total_kib']} |"
        )
    lines += [
        "",
        "No array travels in a task: the only one returned to the client is the grid of the "
        "first file (`grid_of_file`: coordinates and 2-D latitude/longitude, once per run).",
        "",
        f"## Client peak RSS vs number of files (synthetic {SYN_SHAPE[0]} x {SYN_SHAPE[1]}, "
        "LocalCluster of 2 worker processes)",
        "",
        "| design | files | decoded MiB | seconds | client RSS before MiB | client peak RSS MiB "
        "| graphs sent | largest KiB | total MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rss"]:
        if row["design"].startswith("old") and result.get("rss_old_date"):
            row = {**row, "design": f"{row['design']} (run of {result['rss_old_date']})"}
        lines.append(
            f"| {row['design']} | {row['files']} | {row['decoded_mib']} | {row['seconds']} | "
            f"{row['rss_before_mib']} | {row['peak_rss_mib']} | {row['graphs']} | "
            f"{row['largest_graph_kib']} | {row['total_graph_mib']} |"
        )
    lines += [
        "",
        f"## Throughput: {thr['files']} MCH files end to end (best / median of {thr['repeats']})",
        "",
        "| scheduler | load (1 min) | cluster start s | first run s | best s | median s | "
        "frames/s (best) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, best in thr["best_s"].items():
        start = thr.get("setup_s", {}).get(name, "-")
        lines.append(
            f"| {name} | {thr.get('load_1min', {}).get(name, '-')} | {start} | "
            f"{thr['runs_s'][name][0]} | {best} | {thr['median_s'][name]} | "
            f"{thr['files'] / best:.1f} |"
        )
    lines += [
        "",
        "Cluster start = `LocalCluster` + `Client` + importing the readers on the workers; it is "
        "not in the run times; the first run in a fresh cluster also pays the workers' lazy "
        "imports and caches. Each run decodes every file twice (phase 1 and phase 2). *Load* is "
        "the 1-minute load average before the configuration ran: with 2 cores, a load near or "
        "above 1 from other processes leaves no core for a second worker (compare *threads (2)* "
        "with *synchronous*).",
        "",
        f"Stores byte-identical across the schedulers: {thr['identical_stores']}.",
        "",
        f"## Write path: {wp['frames']} decoded frames ({wp['decoded_mib']} MiB), zstd 3, chunks "
        f"{wp['chunks']} (best of {wp['repeats']})",
        "",
        "| writer | best s | frames/s | to_zarr s / this s | to_zarr + grid s / this s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, best in wp["best_s"].items():
        ratio = wp["ratios"].get(name, "-")
        with_grid = wp.get("ratios_with_grid", {}).get(name, "-")
        lines.append(f"| {name} | {best} | {wp['frames'] / best:.1f} | {ratio} | {with_grid} |")
    lines += [
        "",
        "Goal: ratio >= 0.8. *Contiguous* is the like-for-like case (the same 10 x 4 chunks as "
        "`to_zarr`; data chunk files byte-identical to `to_zarr`'s: "
        f"{wp.get('contiguous_chunks_identical_to_to_zarr')}); *sample times* writes the sample's "
        "three events at their slots (15 time chunks, NaN-padded where an event starts or ends "
        "inside a chunk: 50 % more chunks to encode). Two baselines: `xr.Dataset.to_zarr` of the "
        "data variable and its time coordinate only, and *+ grid coords*, which also writes the "
        "grid the ingest store holds (`y`, `x`, 2-D `latitude`/`longitude` with zstd, `crs`; "
        "data, latitude and longitude chunk files byte-identical to the ingest store's: "
        f"{wp.get('contiguous_chunks_identical_with_grid')}). Ingest's time still includes what "
        "neither does: decoding-side validation of every frame (phase 1) and a range check of "
        "every chunk before it is written (phase 2), the lock, the store's staging directory and "
        "rename, `frame_present`, the consolidated metadata and the history line. The `to_zarr` "
        "times exclude stacking the frames into one array first "
        f"({wp.get('stack_frames_s')} s).",
        "",
        "## Re-decode vs spill (phase 2's input)",
        "",
        f"Decode (GIF -> float32): {wp['decode_ms_per_frame']} ms/frame. Spill instead: "
        f"np.save {wp['spill_save_ms_per_frame']} + np.load {wp['spill_load_ms_per_frame']} "
        f"ms/frame and {wp['spill_mib_per_frame']} MiB of scratch disk per frame (on the worker "
        "that decoded it; the batch must then run there).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", default=None, help="root for ${samples} (default shipped)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing")
    parser.add_argument("--files", default="100,400,1600", help="synthetic file counts (RSS)")
    parser.add_argument("--old", default=None, help="PYTHONPATH of the previous design (RSS)")
    parser.add_argument(
        "--parts", default=None, help="rerun only these parts (comma list), keep the others"
    )
    parser.add_argument("--child-rss", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="angle from rectified to skew grid")
    if args.child_rss is not None:
        print(json.dumps(_child_rss(args.child_rss, args.child_dir)))
        return 0
    parts = {
        "task_sizes": lambda: _task_sizes(args.samples),
        "rss": lambda: _rss([int(n) for n in args.files.split(",") if n], args.old),
        "throughput": lambda: _throughput(args.samples, args.repeats),
        "write_path": lambda: _write_path(args.samples, args.repeats),
    }
    chosen = args.parts.split(",") if args.parts else list(parts)
    unknown = sorted(set(chosen) - set(parts))
    if unknown:
        raise SystemExit(f"unknown --parts {unknown}; choose from {sorted(parts)}")
    saved = RESULTS / "ingest_scaling.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    result = dict(previous) if args.parts else {}
    result.update(
        {
            "date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "load_average": [round(v, 2) for v in os.getloadavg()],
        }
    )
    for name in chosen:
        result[name] = parts[name]()
    if "rss" in chosen and not args.old:  # keep the old design's rows (that code did not change)
        carried = [r for r in previous.get("rss", []) if r["design"].startswith("old")]
        result["rss"] += carried
        if carried:
            result["rss_old_date"] = previous.get("rss_old_date", previous.get("date"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "ingest_scaling.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
