"""Ingest a catalog source's files into its observation store, idempotently and safely.

``ingest_source(source, ...)`` runs in two phases under an exclusive lock on the store:

1. **Read and validate everything.** Every file in ``[start, end]`` is decoded by the
   source's reader (in parallel on the Dask scheduler) and checked by
   :func:`pipelines.ingest.writer.validate_frames` and, if the store exists, against its grid,
   CRS, variables and time axis (origin, step). Duplicate timestamps across files are errors
   naming both files. Nothing has been written yet, so any bad input leaves an existing store
   byte-for-byte unchanged. Decoded frames are kept in memory up to ``memory_budget`` bytes;
   beyond that they are dropped and re-read (and re-validated) batch by batch in phase 2, so
   memory stays bounded however many frames are ingested.
2. **Write.** Create the store from a template if needed (:mod:`pipelines.ingest.store`),
   recover an interrupted growth, grow the time axis to cover the new frames, then write
   batches of whole time chunks with :func:`pipelines.ingest.writer.write_region`, and finally
   append a line to the ``history`` attr.

Frames go where their timestamps say; re-running a range rewrites the same slots with the same
bytes; timestamps without a file stay NaN with ``frame_present = False`` and are counted in the
report. Times before the store's origin are refused (see :mod:`pipelines.ingest.store`).
"""

from __future__ import annotations

import functools
import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from tqdm.auto import tqdm

from data_catalog import vocabulary as voc
from data_catalog.catalog import Catalog, SourceFile, list_files, load_catalog
from data_catalog.paths import DataDir
from data_catalog.spec import SourceSpec
from pipelines.ingest import store as st
from pipelines.ingest import writer as wr
from pipelines.ingest.writer import IngestError

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Decoded frames kept between the two phases (bytes); beyond it files are read twice."""
DEFAULT_BATCH_BYTES = 64 * 2**20
"""Target size of one write batch (whole time chunks; at least one chunk)."""
READ_GROUP = 32
"""Files decoded per ``dask.compute`` call in phase 1 (bounds the in-flight memory)."""
_TRANSIENT = (FileNotFoundError, PermissionError, ConnectionError, TimeoutError)
"""I/O errors passed through unchanged (a retry may succeed), not reported as bad input."""

Reader = Callable[[str, SourceSpec], Any]
"""``(path, spec) -> Frames | xarray.Dataset`` for one file."""


@dataclass(frozen=True, eq=False)  # eq=False: `missing` is an index (no elementwise ==)
class IngestReport:
    """What one ingest did.

    Parameters
    ----------
    source : str
        Catalog source name.
    store : str
        Store path.
    files : int
        Files read.
    frames_written : int
        Frames written by this run (new or rewritten).
    frames_new : int
        Of those, frames that were not in the store before.
    missing : pandas.DatetimeIndex
        Timestamps of the ingested period (``[start, end]``, else first..last frame read) on
        the store's time grid that hold no frame after the run.
    first, last : pandas.Timestamp or None
        Time range of the frames written.
    store_frames : int
        Length of the store's time axis (including NaN slots).
    store_bytes : int
        Size of the store on disk (local stores).
    seconds : float
        Wall-clock duration.
    reread : bool
        True when the frames exceeded ``memory_budget`` and files were decoded twice.
    """

    source: str
    store: str
    files: int
    frames_written: int
    frames_new: int
    missing: pd.DatetimeIndex
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    store_frames: int
    store_bytes: int
    seconds: float
    reread: bool = False
    batches: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One human-readable paragraph (used by the CLI)."""
        span = f"{self.first} .. {self.last}" if self.first is not None else "no frames"
        missing = f"{len(self.missing)} missing"
        if len(self.missing):
            shown = ", ".join(t.isoformat() for t in self.missing[:3])
            missing += f" (first: {shown}{', ...' if len(self.missing) > 3 else ''})"
        return (
            f"{self.source}: {self.frames_written} frames written ({self.frames_new} new) from "
            f"{self.files} files, {span}; {missing}; store {self.store}: "
            f"{self.store_frames} time steps, {self.store_bytes / 2**20:.1f} MiB; "
            f"{self.seconds:.1f} s"
        )


@dataclass
class _FileFrames:
    """Frames of one file kept between the phases (``data`` dropped beyond the budget)."""

    path: str
    expected_time: pd.Timestamp | None
    times: pd.DatetimeIndex
    data: dict[str, np.ndarray] | None  # name -> (T, H, W) float32
    nbytes: int


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
    from pipelines.readers import READERS, read_file

    READERS.get(spec.reader)  # fail now, not as a per-file read error

    def read(path: str, source: SourceSpec) -> Any:
        return read_file(source, path)

    return read


def _load(
    spec: SourceSpec,
    read: Reader,
    file: SourceFile,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> tuple[Any, _FileFrames]:
    """Decode and validate one file; frames outside ``[lo, hi]`` are left out.

    Returns the reader's raw output (``Frames`` or the validated ``Dataset``, for the grid and
    store checks) and the file's frames.
    """
    from pipelines.readers.base import Frames

    try:
        raw = read(file.path, spec)
        if not isinstance(raw, Frames | xr.Dataset):
            raise TypeError(f"a reader must return Frames or a Dataset, got {type(raw)}")
    except _TRANSIENT:
        raise
    except IngestError:
        raise
    except Exception as error:  # any decoder failure is bad input: say which file
        message = str(error)
        if file.path not in message:
            message = f"{file.path}: cannot read ({type(error).__name__}: {message})"
        raise IngestError(message) from error
    if isinstance(raw, xr.Dataset):
        raw = wr.validate_frames(raw, spec, file.path, expected_time=file.time)
        times = pd.DatetimeIndex(raw[voc.TIME].values)
        data = {name: np.asarray(raw[name].values) for name in spec.variable_names}
    else:
        times, data = wr.validate_arrays(raw.times, raw.data, spec, file.path, file.time)
    if file.time is None and (lo is not None or hi is not None):
        inside = np.asarray((lo is None or times >= lo) & (hi is None or times <= hi))
        times = times[inside]
        data = {name: values[inside] for name, values in data.items()}
    nbytes = sum(a.nbytes for a in data.values())
    return raw, _FileFrames(file.path, file.time, times, data, nbytes)


def _grid_of(raw: Any, spec: SourceSpec) -> xr.Dataset:
    """Coords, ``crs`` and variable attrs of one file's frames (what a template needs)."""
    from pipelines.readers.base import frames_to_dataset

    ds = raw if isinstance(raw, xr.Dataset) else frames_to_dataset(spec, [raw])
    coords = {name: ds[name].variable for name in (voc.Y, voc.X, voc.LATITUDE, voc.LONGITUDE)}
    data_vars = {
        name: ds[name].isel({voc.TIME: 0}).variable if voc.TIME in ds[name].dims else ds[name]
        for name in ds.data_vars
    }
    return xr.Dataset(data_vars, coords=coords)


def _read_phase(
    spec: SourceSpec,
    read: Reader,
    files: Sequence[SourceFile],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    use_dask: bool,
    memory_budget: int,
    existing: xr.Dataset | None,
    progress: bool,
) -> tuple[list[_FileFrames], xr.Dataset | None, bool]:
    """Phase 1: decode and validate every file; keep data up to ``memory_budget``."""
    kept: list[_FileFrames] = []
    grid: xr.Dataset | None = None
    retained = 0
    dropped = False
    bar = tqdm(total=len(files), desc=f"read {spec.name}", unit="file", disable=not progress)
    try:
        for offset in range(0, len(files), READ_GROUP):
            group = files[offset : offset + READ_GROUP]
            if use_dask and len(group) > 1:
                load = dask.delayed(functools.partial(_load, spec, read, lo=lo, hi=hi))
                results = dask.compute(*[load(f) for f in group])
            else:
                results = tuple(_load(spec, read, f, lo, hi) for f in group)
            for raw, frames in results:
                if grid is None and len(frames.times):
                    grid = _grid_of(raw, spec)
                    if existing is not None:
                        wr.check_against_store(grid, existing, frames.path)
                if existing is not None and isinstance(raw, xr.Dataset):
                    wr.check_against_store(raw, existing, frames.path)  # each file its own grid
                if not len(frames.times):
                    continue
                retained += frames.nbytes
                if dropped or retained > memory_budget:
                    if not dropped:
                        log.info(
                            "%s: more than %.0f MiB of frames; files will be read twice",
                            spec.name,
                            memory_budget / 2**20,
                        )
                        for earlier in kept:
                            earlier.data = None
                        dropped = True
                    frames.data = None
                kept.append(frames)
            bar.update(len(group))
    finally:
        bar.close()
    return kept, grid, dropped


def _check_unique(files: Sequence[_FileFrames]) -> None:
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
    files: Sequence[_FileFrames], layout: st.StoreLayout, frame_bytes: int, batch_bytes: int
) -> list[list[int]]:
    """Group file indices into batches of whole time chunks of about ``batch_bytes``.

    A file whose frames span several chunks (a multi-frame file) goes to the batch of its
    first chunk together with every file sharing any of its chunks.
    """
    chunk_frames = layout.time_chunk
    per_batch = max(1, batch_bytes // max(1, frame_bytes * chunk_frames))  # chunks per batch
    spans = []
    for i, frames in enumerate(files):
        idx = layout.index_of(frames.times) // chunk_frames
        spans.append((int(idx.min()), int(idx.max()), i))
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


def _batch_dataset(
    members: Sequence[_FileFrames],
    spec: SourceSpec,
    read: Reader,
    use_dask: bool,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    grid: xr.Dataset,
) -> xr.Dataset:
    """The frames of one batch as one dataset sorted by time, re-reading dropped files."""
    missing = [m for m in members if m.data is None]
    if missing:
        loaders = [SourceFile(m.expected_time, m.path) for m in missing]
        if use_dask and len(loaders) > 1:
            load = dask.delayed(functools.partial(_load, spec, read, lo=lo, hi=hi))
            results = dask.compute(*[load(f) for f in loaders])
        else:
            results = tuple(_load(spec, read, f, lo, hi) for f in loaders)
        reread = {frames.path: frames for _, frames in results}
        for m in missing:
            fresh = reread[m.path]
            if not fresh.times.equals(m.times):
                raise IngestError(f"{m.path}: changed while being ingested (times differ)")
            m.data = fresh.data
    times = pd.DatetimeIndex(np.concatenate([m.times.values for m in members]))
    order = np.argsort(times.asi8, kind="stable")
    in_order = bool((order == np.arange(len(order))).all())
    data_vars = {}
    for name in spec.variable_names:
        stacked = np.concatenate([m.data[name] for m in members if m.data is not None])
        data_vars[name] = (wr.DIMS, stacked if in_order else stacked[order])  # (T, H, W)
    if missing:
        for m in missing:
            m.data = None  # free the re-read frames once the batch is assembled
    ds = xr.Dataset(data_vars, coords={voc.TIME: times[order]})
    return ds.assign_coords({voc.Y: grid[voc.Y], voc.X: grid[voc.X]})


def _history_line(spec: SourceSpec, report_first: Any, report_last: Any, n: int) -> str:
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{now} pipelines.ingest: {n} frames of {spec.name!r} ({report_first} .. {report_last}) "
        f"read with reader {spec.reader!r} from {spec.path}"
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
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
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
        Dask scheduler for decoding and writing: ``None``/``"threads"`` (local threads),
        ``"synchronous"``, a ``tcp://`` scheduler address or a ``Client``.
    progress : bool
        Show tqdm progress bars.
    use_dask : bool
        Decode files and write chunks through Dask (default); False does everything eagerly
        in this thread (same store contents).
    memory_budget : int
        Bytes of decoded frames kept between validation and writing.
    batch_bytes : int
        Target bytes per write batch (rounded to whole time chunks).
    reader : callable, optional
        ``(path, spec) -> Frames | Dataset`` replacing the catalog's reader (tests, benchmarks).
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
        Bad input (names the file and the problem); the store is left unchanged.
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
    with st.store_lock(path), wr.dask_scheduler(scheduler if use_dask else "synchronous"):
        exists = st.store_exists(path)
        existing = None
        layout = None
        if exists:
            layout = st.read_layout(path)
            if layout.source_name != spec.name or list(layout.variables) != spec.variable_names:
                raise st.StoreError(
                    f"store {path} holds {layout.source_name!r} {list(layout.variables)}, "
                    f"not {spec.name!r} {spec.variable_names}"
                )
            if layout.time_step != spec.time_delta:
                raise st.StoreError(
                    f"store {path} has time step {layout.time_step}, the catalog says "
                    f"{spec.time_step}"
                )
            existing = xr.open_zarr(path, decode_coords="all", chunks=None)  # lazy, no Dask graph
        kept, grid, reread = _read_phase(
            spec, read, files, lo, hi, use_dask, memory_budget, existing, progress
        )
        kept = [k for k in kept if len(k.times)]
        if not kept or grid is None:
            raise FileNotFoundError(f"source {spec.name!r}: no frame in [{lo}, {hi}]")
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
        before = None
        if not exists:
            ds, encoding = st.template(
                layout, grid, layout.time_chunk, wr.variable_attrs(spec, grid), _global_attrs(spec)
            )
            st.create(path, layout, ds, encoding, int(indices.max()) + 1)
        else:
            st.recover(path)
            st.grow(path, layout, int(indices.max()) + 1)
            before = wr.frame_present_mask(path)
        frame_bytes = 4 * spec.grid.shape[0] * spec.grid.shape[1] * len(spec.variables)
        batches = _batches(kept, layout, frame_bytes, batch_bytes)
        bar = tqdm(
            total=len(all_times), desc=f"write {spec.name}", unit="frame", disable=not progress
        )
        try:
            for members in batches:
                batch = _batch_dataset(
                    [kept[i] for i in members], spec, read, use_dask, lo, hi, grid
                )
                wr.write_region(path, layout, batch, use_dask=use_dask)
                bar.update(batch.sizes[voc.TIME])
                for i in members:
                    kept[i].data = None  # written: free it
        finally:
            bar.close()
        present = wr.frame_present_mask(path)
        first, last = all_times[0], all_times[-1]
        period_lo = max(lo if lo is not None else first, layout.time_origin)
        period_hi = hi if hi is not None else last
        missing = _missing(layout, present, period_lo, period_hi)
        new = int(len(indices) - (before[indices].sum() if before is not None else 0))
        group = zarr.open_group(path, mode="r+", use_consolidated=True)
        history = str(group.attrs.get("history", ""))
        line = _history_line(spec, first, last, len(all_times))
        group.attrs["history"] = f"{history}\n{line}" if history else line
    report = IngestReport(
        source=spec.name,
        store=path,
        files=len(files),
        frames_written=len(all_times),
        frames_new=new,
        missing=missing,
        first=first,
        last=last,
        store_frames=len(present),
        store_bytes=st.store_size(path),
        seconds=_time.perf_counter() - t_begin,
        reread=reread,
        batches=len(batches),
    )
    log.info("%s", report.summary())
    return report


def _missing(
    layout: st.StoreLayout, present: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp
) -> pd.DatetimeIndex:
    """Grid timestamps in ``[lo, hi]`` whose frame is absent (beyond the axis = absent)."""
    step = layout.time_step
    first = layout.time_origin + -(-(lo - layout.time_origin) // step) * step  # ceil onto grid
    if first > hi:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    grid = pd.date_range(first, hi, freq=step)
    idx = layout.index_of(grid)
    inside = idx < len(present)
    absent = ~inside
    absent[inside] = ~present[idx[inside]]
    return grid[absent]


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
