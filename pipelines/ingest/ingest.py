"""Ingest a catalog source's files into its observation store, idempotently and safely.

``ingest_source(source, ...)`` runs in two phases under an exclusive lock on the store. The
client (this function) holds only file lists, timestamps and metadata; the workers decode,
validate and write (:mod:`pipelines.ingest.work`), so no array goes through the task graph or
the client, and its memory does not grow with the number of files.

1. **Validate everything, on the workers.** Every file in ``[start, end]`` is decoded by the
   source's reader and checked by :func:`pipelines.ingest.writer.validate_frames` (and, for
   readers returning a Dataset, against the existing store's grid, CRS and units); each task
   returns a small :class:`~pipelines.ingest.work.FileSummary` (times, value ranges, masked
   pixels, or the problem). The client checks the first file's grid against the store,
   duplicate timestamps across files (the error names both files) and the time axis (origin,
   step). Nothing has been written yet, so any bad input leaves an existing store
   byte-for-byte unchanged.
2. **Write, on the workers.** The client creates the store from a template if needed
   (:mod:`pipelines.ingest.store`), recovers an interrupted growth and grows the time axis
   (the commit through the consolidated metadata); then each task decodes the files of one
   batch of whole time chunks again and writes that region (no two tasks share a chunk).
   The client marks the batch's frames in ``frame_present`` when its task has returned, and
   finally appends a line to the ``history`` attr.

Frames go where their timestamps say; re-running a range rewrites the same slots with the same
bytes; timestamps without a file stay NaN with ``frame_present = False``. The report
(:mod:`pipelines.ingest.report`) lists the events and gaps of the period. Times before the
store's origin are refused (see :mod:`pipelines.ingest.store`).
"""

from __future__ import annotations

import logging
import time as _time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from tqdm.auto import tqdm

from data_catalog.catalog import Catalog, SourceFile, list_files, load_catalog
from data_catalog.paths import DataDir
from data_catalog.spec import SourceSpec
from pipelines.ingest import store as st
from pipelines.ingest import work
from pipelines.ingest import writer as wr
from pipelines.ingest.report import IngestReport, spans
from pipelines.ingest.work import FileSummary, Reader, Runner
from pipelines.ingest.writer import IngestError

log = logging.getLogger(__name__)

DEFAULT_BATCH_BYTES = 64 * 2**20
"""Target size of one write task's frames (whole time chunks; at least one chunk)."""
PROBLEMS_SHOWN = 3
"""Bad files named in the error of a refused batch (the rest are counted)."""

__all__ = ["DEFAULT_BATCH_BYTES", "IngestReport", "ingest_source"]


def _utc(value: str | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    """``value`` as a tz-naive UTC timestamp (aware values are converted, naive taken as UTC)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError(f"not a time: {value!r}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _catalog_reader(spec: SourceSpec) -> Reader:
    """The registered reader of ``spec`` (``ValueError`` listing the names if unknown)."""
    from pipelines.readers import READERS

    READERS.get(spec.reader)  # fail now, not as a per-file read error
    return _read_with_catalog


def _read_with_catalog(path: str, source: SourceSpec) -> Any:
    """The default reader: the catalog's registered reader of ``source`` (picklable)."""
    from pipelines.readers import read_file

    return read_file(source, path)


def _validate_all(
    spec: SourceSpec,
    read: Reader,
    files: Sequence[SourceFile],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    store: tuple[str, str] | None,
    runner: Runner,
    progress: bool,
) -> list[FileSummary]:
    """Phase 1: every file decoded and validated on the workers; summaries in file order.

    Raises
    ------
    IngestError
        Naming the first bad files (by file order) among those checked; submission stops at
        the first problem, so a systematically wrong catalog entry fails fast.
    """
    summaries: list[FileSummary | None] = [None] * len(files)
    size = work.tasks_for(len(files), runner.workers, work.MAX_FILES_PER_TASK)  # files per task
    groups = [files[i : i + size] for i in range(0, len(files), size)]
    bar = tqdm(total=len(files), desc=f"check {spec.name}", unit="file", disable=not progress)
    try:
        bad: list[int] = []  # numbers of the groups with a problem (stops the submissions)
        jobs = ((spec, read, group, lo, hi, store) for group in groups)
        for number, future in runner.stream(work.inspect_files, _until(jobs, bad)):
            group_summaries = future.result()  # re-raises a transient I/O error
            summaries[number * size : number * size + len(group_summaries)] = group_summaries
            if any(summary.problem is not None for summary in group_summaries):
                bad.append(number)
            bar.update(len(group_summaries))
    finally:
        bar.close()
    problems = [s for s in summaries if s is not None and s.problem is not None]
    if problems:
        shown = "; ".join(str(p.problem) for p in problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        checked = sum(s is not None for s in summaries)
        prefix = "" if len(problems) == 1 else f"{len(problems)} bad files of {checked} checked: "
        raise IngestError(f"{prefix}{shown}{f'; and {more} more' if more > 0 else ''}")
    return [s for s in summaries if s is not None]


def _until(jobs: Iterator[Any], stop: Sequence[Any]) -> Iterator[Any]:
    """``jobs`` until ``stop`` is not empty (checked before each job is handed out)."""
    for job in jobs:
        if stop:
            return
        yield job


def _check_unique(files: Sequence[FileSummary]) -> None:
    """Two files must never give the same timestamp (the error names both)."""
    owner: dict[pd.Timestamp, str] = {}
    for frames in files:
        for t in frames.times:
            if t in owner:
                raise IngestError(
                    f"duplicate timestamp {t.isoformat()}: in {owner[t]} and in {frames.path}"
                )
            owner[t] = frames.path


def _batches(
    files: Sequence[FileSummary],
    layout: st.StoreLayout,
    frame_bytes: int,
    batch_bytes: int,
    workers: int = 1,
) -> list[list[int]]:
    """Group file indices into batches of whole time chunks of about ``batch_bytes``.

    Batches are made smaller (down to one chunk) when that gives each of ``workers`` worker
    threads :data:`~pipelines.ingest.work.TASKS_PER_WORKER` batches. A file whose frames span
    several chunks (a multi-frame file) goes to the batch of its first chunk together with
    every file sharing any of its chunks.
    """
    chunk_frames = layout.time_chunk
    spans = []
    for i, frames in enumerate(files):
        idx = layout.index_of(frames.times) // chunk_frames
        spans.append((int(idx.min()), int(idx.max()), i))
    chunks = len({c for c0, c1, _ in spans for c in range(c0, c1 + 1)})  # time chunks written
    by_bytes = max(1, batch_bytes // max(1, frame_bytes * chunk_frames))
    per_batch = work.tasks_for(chunks, workers, by_bytes)  # chunks per batch
    spans.sort()
    batches: list[list[int]] = []
    current: list[int] = []
    first_chunk = last_chunk = -1
    for c0, c1, i in spans:
        fits = current and c0 <= last_chunk  # shares a chunk with the batch: must join it
        if current and not fits and c1 - first_chunk + 1 > per_batch:
            batches.append(current)
            current = []
        if not current:
            first_chunk = c0
        current.append(i)
        last_chunk = max(last_chunk, c1)
    if current:
        batches.append(current)
    return batches


def _write_all(
    spec: SourceSpec,
    read: Reader,
    path: str,
    layout: st.StoreLayout,
    kept: Sequence[FileSummary],
    batches: Sequence[Sequence[int]],
    present: np.ndarray,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    runner: Runner,
    progress: bool,
) -> None:
    """Phase 2: one write task per batch; ``present`` (the client's ``frame_present``) is
    updated and stored after each task returns. Re-raises the first failure once no task is
    running any more."""
    tc = layout.time_chunk
    jobs = []
    for members in batches:
        files = [kept[i] for i in members]
        index = layout.index_of(np.concatenate([f.times.values for f in files]))
        start, stop = int(index.min()) // tc * tc, (int(index.max()) // tc + 1) * tc
        keep = np.flatnonzero(present[start:stop]) + start
        keep = keep[~np.isin(keep, index)]  # frames already stored that the batch leaves alone
        jobs.append((spec, read, path, layout, files, keep, lo, hi))
    total = sum(len(kept[i].times) for members in batches for i in members)
    bar = tqdm(total=total, desc=f"write {spec.name}", unit="frame", disable=not progress)
    flags = wr.open_present(path)
    try:
        for _, future in runner.stream(work.write_batch, jobs):
            start, stop, index = future.result()
            present[index] = True
            wr.mark_present(flags, present, start, stop)
            bar.update(len(index))
    finally:
        bar.close()


def _history_line(
    spec: SourceSpec, report_first: Any, report_last: Any, n: int, masked: int
) -> str:
    """The provenance line of one ingest (with the out-of-range values masked, if any)."""
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    qc = f"; {masked} out-of-range values masked to NaN" if masked else ""
    return (
        f"{now} pipelines.ingest: {n} frames of {spec.name!r} ({report_first} .. {report_last}) "
        f"read with reader {spec.reader!r} from {spec.path}{qc}"
    )


def ingest_source(
    source: str | SourceSpec,
    data_dir: str | None = None,
    start: str | datetime | pd.Timestamp | None = None,
    end: str | datetime | pd.Timestamp | None = None,
    catalog: str | Catalog | None = None,
    scheduler: Any = None,
    progress: bool = True,
    *,
    use_dask: bool = True,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    reader: Reader | None = None,
    samples: str | None = None,
    store_path: str | None = None,
) -> IngestReport:
    """Ingest the files of ``source`` in ``[start, end]`` into ``DIR/stores/<source>.zarr``.

    Parameters
    ----------
    source : str or SourceSpec
        Catalog source name (looked up in ``catalog``) or a spec.
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    start, end : str, datetime or Timestamp, optional
        Inclusive period (UTC; aware values are converted). Default: every file.
    catalog : str or Catalog, optional
        Catalog file or object (default: the shipped ``catalog.yaml``).
    scheduler : None, str or distributed.Client
        Where files are decoded and regions written (:func:`pipelines.ingest.work.task_executor`):
        ``None``/``"threads"`` (local threads), ``"synchronous"``, a ``tcp://`` scheduler
        address or a ``Client``. With a cluster the store path must be writable by its workers.
    progress : bool
        Show tqdm progress bars.
    use_dask : bool
        False runs every task inline in this thread, whatever ``scheduler`` says (same store).
    batch_bytes : int
        Target bytes of decoded frames per write task (rounded to whole time chunks).
    reader : callable, optional
        ``(path, spec) -> Frames | Dataset`` replacing the catalog's reader (tests,
        benchmarks); picklable for a process cluster (module-level functions are).
    samples : str, optional
        Root for ``${samples}`` in the path pattern.
    store_path : str, optional
        Write here instead of ``DIR/stores/<source>.zarr``.

    Returns
    -------
    IngestReport

    Raises
    ------
    IngestError
        Bad input (names the files and the problems); the store is left unchanged.
    pipelines.ingest.store.StoreError
        The store cannot take the frames (times before its origin, another writer, a store
        of another layout).
    FileNotFoundError
        No file matches the source's path pattern.
    """
    t_begin = _time.perf_counter()
    if isinstance(source, SourceSpec):
        spec = source
    else:
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        spec = cat.get(source)
    path = store_path or DataDir.resolve(data_dir).store(spec.name)
    lo, hi = _utc(start), _utc(end)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"start {lo} is after end {hi}")
    read = reader or _catalog_reader(spec)
    files = list_files(spec, lo, hi, samples)
    if not files:
        raise FileNotFoundError(
            f"source {spec.name!r}: no file in [{lo}, {hi}] matches {spec.path!r}"
        )
    with (
        st.store_lock(path),
        work.task_executor(scheduler if use_dask else "synchronous") as runner,
    ):
        exists = st.store_exists(path)
        layout = _existing_layout(path, spec) if exists else None
        token = uuid.uuid4().hex  # workers read the existing store's grid once per run
        summaries = _validate_all(
            spec, read, files, lo, hi, (path, token) if exists else None, runner, progress
        )
        kept = [s for s in summaries if len(s.times)]
        if not kept:
            raise FileNotFoundError(f"source {spec.name!r}: no frame in [{lo}, {hi}]")
        first_file = SourceFile(kept[0].expected_time, kept[0].path)
        grid = runner.executor.submit(work.grid_of_file, spec, read, first_file).result()
        if exists:
            with xr.open_zarr(path, decode_coords="all", chunks=None) as existing:
                wr.check_against_store(grid, existing, first_file.path)
        _check_unique(kept)
        all_times = pd.DatetimeIndex(np.concatenate([k.times.values for k in kept])).sort_values()
        if layout is None:
            layout = st.make_layout(
                spec.name,
                spec.variable_names,
                spec.time_delta,
                all_times[0],
                spec.grid.shape,
                spec.chunks,
            )
        indices = layout.index_of(all_times)  # raises for times before t0 / off the grid
        # ---- phase 2: nothing was written before this line --------------------------------
        if not exists:
            ds, encoding = st.template(
                layout, grid, layout.time_chunk, wr.variable_attrs(spec, grid), _global_attrs(spec)
            )
            st.create(path, layout, ds, encoding, int(indices.max()) + 1)
        else:
            st.recover(path)
            st.grow(path, layout, int(indices.max()) + 1)
        before = wr.frame_present_mask(path)
        present = before.copy()
        frame_bytes = 4 * spec.grid.shape[0] * spec.grid.shape[1] * len(spec.variables)
        batches = _batches(kept, layout, frame_bytes, batch_bytes, runner.workers)
        _write_all(spec, read, path, layout, kept, batches, present, lo, hi, runner, progress)
        first, last = all_times[0], all_times[-1]
        group = zarr.open_group(path, mode="r+", use_consolidated=True)
        history = str(group.attrs.get("history", ""))
        masked = sum(k.masked for k in kept)
        line = _history_line(spec, first, last, len(all_times), masked)
        group.attrs["history"] = f"{history}\n{line}" if history else line
    period_lo = max(lo if lo is not None else first, layout.time_origin)
    period_hi = hi if hi is not None else last
    events, gaps = _events_and_gaps(layout, present, period_lo, period_hi)
    report = IngestReport(
        source=spec.name,
        store=path,
        files=len(files),
        frames_written=len(all_times),
        frames_new=int(len(indices) - before[indices].sum()),
        period=(period_lo, period_hi),
        period_requested=lo is not None and hi is not None,
        events=tuple(events),
        gaps=tuple(gaps),
        first=first,
        last=last,
        store_frames=len(present),
        store_bytes=st.store_size(path),
        seconds=_time.perf_counter() - t_begin,
        time_step=layout.time_step,
        value_ranges=_value_ranges(kept),
        masked=masked,
        batches=len(batches),
        scheduler=runner.kind,
    )
    log.info("%s", report.summary())
    return report


def _existing_layout(path: str, spec: SourceSpec) -> st.StoreLayout:
    """The layout of the store at ``path``, refused if it is not a store of ``spec``."""
    layout = st.read_layout(path)
    if layout.source_name != spec.name or list(layout.variables) != spec.variable_names:
        raise st.StoreError(
            f"store {path} holds {layout.source_name!r} {list(layout.variables)}, "
            f"not {spec.name!r} {spec.variable_names}"
        )
    if layout.time_step != spec.time_delta:
        raise st.StoreError(
            f"store {path} has time step {layout.time_step}, the catalog says {spec.time_step}"
        )
    return layout


def _value_ranges(kept: Sequence[FileSummary]) -> dict[str, tuple[float, float]]:
    """Variable -> ``(min, max)`` over the files' finite values (NaN when all NaN)."""
    out = {}
    for name in kept[0].ranges:
        lows = np.array([k.ranges[name][0] for k in kept])
        highs = np.array([k.ranges[name][1] for k in kept])
        out[name] = (float(np.fmin.reduce(lows)), float(np.fmax.reduce(highs)))
    return out


def _events_and_gaps(
    layout: st.StoreLayout, present: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp
) -> tuple[list[Any], list[Any]]:
    """Events and gaps (:func:`pipelines.ingest.report.spans`) of the grid steps in
    ``[lo, hi]`` (steps beyond the store's axis count as absent)."""
    step = layout.time_step
    first = layout.time_origin + -(-(lo - layout.time_origin) // step) * step  # ceil onto grid
    if first > hi:
        return [], []
    grid = pd.date_range(first, hi, freq=step)
    idx = layout.index_of(grid)
    inside = idx < len(present)
    mask = np.zeros(len(grid), dtype=bool)
    mask[inside] = present[idx[inside]]
    return spans(mask, grid)


def _global_attrs(spec: SourceSpec) -> dict[str, Any]:
    return {
        "Conventions": "CF-1.10",
        "title": spec.description or spec.name,
        "source": f"{spec.kind} source {spec.name!r} of the simvp-nowcast catalog",
        "institution": spec.attribution,
        "reader": spec.reader,
        "path_pattern": spec.path,
        "catalog_entry": _json_safe(spec.to_dict()),
        "history": "",
    }


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings (Zarr attrs are JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
