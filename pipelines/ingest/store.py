"""Layout of an observation store: a regular time axis, templates, growth and recovery.

An observation store (``DIR/stores/<source>.zarr``, see ``docs/ARCHITECTURE.md``) is a Zarr v3
group with one float32 variable per catalog variable on dims ``(time, y, x)`` plus
``frame_present(time)``, the 1-D ``time``, ``y``, ``x`` coords, 2-D ``latitude``/``longitude``
and a scalar ``crs`` grid-mapping variable.

Time axis
    Regular at the source's step, starting at the store's origin ``t0`` (root attr
    ``time_origin``). ``t0`` is chosen when the store is created: the first ingested
    timestamp floored to 00:00 UTC of its day, plus the phase of that timestamp modulo the step
    (so a 5-min source on :00/:05/... gets ``t0`` = midnight). Frame ``t`` lives at index
    ``(t - t0) / step``; a timestamp that is not on this grid is an error, never rounded.
    Times before ``t0`` are refused with a clear error (ingest the earliest period first, or
    delete the store and ingest the whole range); later times grow the axis.
Length
    Always a whole number of time chunks, so every region write is chunk aligned. Slots never
    ingested hold the fill values: NaN data and ``frame_present = False``.
Growth (the append trap of ``ecosystem.md`` §4)
    The consolidated metadata in the root ``zarr.json`` is the commit record: readers
    (``xr.open_zarr``) see the shapes recorded there. :func:`grow` resizes every ``time``
    array, writes the new ``time`` values, then rewrites the consolidated metadata in one
    atomic file write. A crash in between leaves arrays longer than the committed length;
    readers still see the old, consistent store, and :func:`recover` (run before every
    write) rolls the growth forward. Nothing is written beyond the axis except fill values.
Creation
    A one-chunk template (metadata, coords, ``crs``; no data chunks) is written with xarray into
    a hidden sibling directory, grown there to its full length by :func:`grow` (a metadata
    resize, so a years-long 5-min axis costs no Dask graph) and renamed into place: a store
    path either does not exist or holds a complete, readable store (local paths; for fsspec
    URLs the template is written in place).
Concurrency
    One writer per store: :func:`store_lock` is the shared write lock of
    :mod:`pipelines.zarr_transaction` (``fcntl`` on ``<store>.lock``, released by the OS if the
    process dies; a second writer waits up to its timeout, then gets the retryable
    :class:`~pipelines.zarr_transaction.StoreBusyError`). Creation, resizing and the commit are
    the same module's :func:`~pipelines.zarr_transaction.staged_create`,
    :func:`~pipelines.zarr_transaction.resize_along` and :func:`~pipelines.zarr_transaction.commit`.
    Dask workers write disjoint, chunk-aligned regions of the data variables; ``time`` and
    ``frame_present`` are written by the driver.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from data_catalog import vocabulary as voc
from data_catalog.paths import is_url
from pipelines.zarr_transaction import (
    commit,
    quiet_consolidation,
    resize_along,
    staged_create,
    write_lock,
)

log = logging.getLogger(__name__)

STORE_FORMAT = "simvp-nowcast observation store 1"
"""Root attr ``store_format``: bumped when the layout below changes incompatibly."""
FRAME_PRESENT = "frame_present"
TIME_UNITS = "seconds since 1970-01-01 00:00:00"
"""Encoding of ``time``: exact int64 seconds (no float rounding of timestamps)."""
ZSTD_LEVEL = 3
"""zstd level 3: 36 % of raw on precipitation fields at close to level-0 speed (ecosystem §4)."""
INDEX_CHUNK_TARGET = 4096
"""Aim for ~4096 entries per chunk of the 1-D ``time``/``frame_present`` arrays (32 KiB of
int64): few files even for years of 5-min data; rounded to a multiple of the time chunk."""
DEFAULT_CHUNKS = {voc.TIME: 12, voc.Y: -1, voc.X: -1}
"""Chunks when the catalog gives none: an hour of 5-min frames × the full grid (-1 = full)."""


class StoreError(ValueError):
    """The store on disk cannot take the requested write (incompatible, corrupt, too early)."""


def origin_for(first_time: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """The store origin ``t0`` for a store whose first frame is ``first_time``.

    ``first_time`` floored to 00:00 of its day plus ``(first_time - midnight) mod step``, so
    day boundaries fall on the same frame phase in every store of a source.

    Parameters
    ----------
    first_time : pandas.Timestamp
        Earliest timestamp of the first ingest (UTC, tz-naive).
    step : pandas.Timedelta
        Source time step.
    """
    midnight = first_time.floor("D")
    return midnight + (first_time - midnight) % step


@dataclass(frozen=True)
class StoreLayout:
    """Everything that fixes where a frame goes in a store.

    Parameters
    ----------
    source_name : str
        Catalog source name.
    variables : tuple of str
        Data variable names in channel order.
    time_step : pandas.Timedelta
        Spacing of the time axis.
    time_origin : pandas.Timestamp
        ``t0``: the timestamp of index 0 (UTC, tz-naive).
    chunks : tuple of int
        Zarr chunks ``(time, y, x)`` of the data variables (full sizes, no ``-1``).
    index_chunk : int
        Chunk length of the 1-D ``time`` and ``frame_present`` arrays (a multiple of
        ``chunks[0]``).
    """

    source_name: str
    variables: tuple[str, ...]
    time_step: pd.Timedelta
    time_origin: pd.Timestamp
    chunks: tuple[int, int, int]
    index_chunk: int

    def __post_init__(self) -> None:
        if not self.variables:
            raise ValueError(f"a store needs at least one variable, got {self.variables!r}")
        if self.time_step <= pd.Timedelta(0):
            raise ValueError(f"time_step must be positive, got {self.time_step!r}")
        if self.time_origin.tzinfo is not None:
            raise ValueError(f"time_origin must be tz-naive UTC, got {self.time_origin!r}")
        if len(self.chunks) != 3 or any(int(c) < 1 for c in self.chunks):
            raise ValueError(f"chunks must be three positive ints (time, y, x), got {self.chunks}")
        if self.index_chunk < 1 or self.index_chunk % self.chunks[0]:
            raise ValueError(
                f"index_chunk must be a positive multiple of the time chunk {self.chunks[0]}, "
                f"got {self.index_chunk}"
            )

    @property
    def time_chunk(self) -> int:
        """Frames per time chunk of the data variables."""
        return self.chunks[0]

    def index_of(self, times: Sequence[Any] | pd.DatetimeIndex) -> np.ndarray:
        """Store indices of ``times``, shape ``(n,)`` int64.

        Raises
        ------
        StoreError
            If a time is before the origin or not on the regular grid of the step.
        """
        # plain int64 nanoseconds: this runs per file and per batch, and pandas arithmetic
        # costs ~10x more on the one-element arrays of single-frame files
        ns = np.asarray(times, dtype="datetime64[ns]")  # shape (n,)
        offset = ns.astype("int64") - self.time_origin.as_unit("ns").value  # ns since t0
        step = self.time_step.as_unit("ns").value
        before = offset < 0
        if before.any():
            raise StoreError(
                f"store {self.source_name!r} starts at {self.time_origin.isoformat()} (its "
                f"origin); cannot take earlier times such as "
                f"{pd.Timestamp(ns[before][0]).isoformat()}. Ingest the earliest period first, "
                "or delete the store and ingest the full range."
            )
        off_grid = offset % step != 0
        if off_grid.any():
            raise StoreError(
                f"time {pd.Timestamp(ns[off_grid][0]).isoformat()} is not on the "
                f"{self.step_text} grid of store {self.source_name!r} (origin "
                f"{self.time_origin.isoformat()})"
            )
        return offset // step

    @property
    def step_text(self) -> str:
        """The step as a pandas offset string (``5min``, ``h``)."""
        return str(pd.tseries.frequencies.to_offset(self.time_step).freqstr)

    def times(self, start: int, stop: int) -> pd.DatetimeIndex:
        """Timestamps of indices ``start..stop-1``."""
        return pd.DatetimeIndex(self.time_origin + np.arange(start, stop) * self.time_step).as_unit(
            "ns"
        )

    def padded_length(self, n: int) -> int:
        """``n`` rounded up to a whole number of time chunks."""
        tc = self.time_chunk
        return -(-n // tc) * tc

    def to_attrs(self) -> dict[str, Any]:
        """Root attrs that record the layout (read back by :func:`read_layout`)."""
        return {
            "store_format": STORE_FORMAT,
            "source_name": self.source_name,
            "time_step": self.step_text,
            "time_origin": self.time_origin.isoformat(),
            "variables": list(self.variables),
        }


def make_layout(
    source_name: str,
    variables: Sequence[str],
    time_step: pd.Timedelta,
    first_time: pd.Timestamp,
    grid_shape: tuple[int, int],
    chunks: Mapping[str, int],
) -> StoreLayout:
    """Layout of a new store from the catalog's target chunks and the first timestamp.

    Parameters
    ----------
    grid_shape : tuple of int
        ``(H, W)`` of the grid; ``chunks`` of ``-1`` or larger than the grid mean the full size.
    chunks : mapping
        Target chunks ``{"time": n, "y": n, "x": n}``; missing keys use :data:`DEFAULT_CHUNKS`.
    """
    merged = {**DEFAULT_CHUNKS, **dict(chunks)}
    sizes = {voc.Y: grid_shape[0], voc.X: grid_shape[1]}
    resolved = [int(merged[voc.TIME])]
    for dim in (voc.Y, voc.X):
        n = int(merged[dim])
        resolved.append(sizes[dim] if n < 1 or n > sizes[dim] else n)
    tc = resolved[0]
    if tc < 1:
        raise ValueError(f"time chunk must be a positive int, got {merged[voc.TIME]!r}")
    index_chunk = max(1, round(INDEX_CHUNK_TARGET / tc)) * tc
    return StoreLayout(
        source_name=source_name,
        variables=tuple(variables),
        time_step=pd.Timedelta(time_step),
        time_origin=origin_for(pd.Timestamp(first_time), pd.Timedelta(time_step)),
        chunks=(resolved[0], resolved[1], resolved[2]),
        index_chunk=index_chunk,
    )


def store_exists(path: str) -> bool:
    """True when ``path`` holds a Zarr group (its root ``zarr.json``)."""
    if is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        return bool(fs.exists(f"{root.rstrip('/')}/zarr.json"))
    return Path(path, "zarr.json").is_file()


def read_layout(path: str) -> StoreLayout:
    """The layout recorded in an existing store.

    Raises
    ------
    StoreError
        If the store lacks the attrs of :meth:`StoreLayout.to_attrs` (not written by this
        package, or from an incompatible version).
    """
    group = zarr.open_group(path, mode="r")
    attrs = dict(group.attrs)
    if attrs.get("store_format") != STORE_FORMAT:
        raise StoreError(
            f"{path} is not an observation store of this version: store_format="
            f"{attrs.get('store_format')!r}, expected {STORE_FORMAT!r}"
        )
    variables = tuple(attrs["variables"])
    chunks = group[variables[0]].chunks
    return StoreLayout(
        source_name=attrs["source_name"],
        variables=variables,
        time_step=pd.Timedelta(pd.tseries.frequencies.to_offset(attrs["time_step"])),
        time_origin=pd.Timestamp(attrs["time_origin"]),
        chunks=(int(chunks[0]), int(chunks[1]), int(chunks[2])),
        index_chunk=int(group[voc.TIME].chunks[0]),
    )


def committed_length(path: str) -> int:
    """Length of the time axis readers see (from the consolidated metadata)."""
    group = zarr.open_group(path, mode="r", use_consolidated=True)
    return int(group[voc.TIME].shape[0])


def _time_arrays(group: zarr.Group) -> list[str]:
    """Names of the arrays with a ``time`` dimension, ``time`` last (it is written last)."""
    names = [
        name
        for name, array in group.arrays()
        if array.metadata.dimension_names and voc.TIME in array.metadata.dimension_names
    ]
    return sorted(names, key=lambda name: (name == voc.TIME, name))


def _encode_times(times: pd.DatetimeIndex) -> np.ndarray:
    """``times`` as int64 seconds since 1970 (the ``time`` encoding), shape ``(n,)``."""
    ns = pd.DatetimeIndex(times).as_unit("ns").asi8
    if (ns % 1_000_000_000).any():
        raise StoreError(f"times must be whole seconds, got {times[ns % 1_000_000_000 != 0][0]}")
    return ns // 1_000_000_000


def grow(path: str, layout: StoreLayout, length: int) -> bool:
    """Grow the time axis to ``layout.padded_length(length)``; True if it grew.

    Resizes every ``time`` array (new slots are fill values), writes the new ``time``
    values, then commits with one atomic rewrite of the consolidated metadata.
    """
    target = layout.padded_length(length)
    current = committed_length(path)
    if target <= current:
        return False
    _resize_all(path, layout, current, target)
    log.info("store %s: time axis grown from %d to %d frames", path, current, target)
    return True


def _resize_all(path: str, layout: StoreLayout, committed: int, target: int) -> None:
    resize_along(path, voc.TIME, target)  # the time coordinate last
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    group[voc.TIME][committed:target] = _encode_times(layout.times(committed, target))
    commit(path)


def recover(path: str) -> int:
    """Roll forward a growth that crashed before its commit; return the committed length.

    After a crash inside :func:`grow` some arrays are longer than the consolidated metadata
    says. Readers are unaffected (they use the consolidated shapes); this completes the
    growth to the longest array so that unconsolidated readers agree too.
    """
    layout = read_layout(path)
    committed = committed_length(path)
    group = zarr.open_group(path, mode="r", use_consolidated=False)
    lengths = {name: int(group[name].shape[0]) for name in _time_arrays(group)}
    if all(n == committed for n in lengths.values()):
        return committed
    target = layout.padded_length(max(max(lengths.values()), committed))
    log.warning(
        "store %s: completing an interrupted growth (committed %d, arrays %s) to %d",
        path,
        committed,
        lengths,
        target,
    )
    _resize_all(path, layout, committed, target)
    return target


def template(
    layout: StoreLayout,
    grid: xr.Dataset,
    length: int,
    variable_attrs: Mapping[str, Mapping[str, Any]],
    attrs: Mapping[str, Any],
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The lazy template dataset of a store and its Zarr encoding.

    Parameters
    ----------
    grid : xarray.Dataset
        Holds coords ``y(y)``, ``x(x)``, ``latitude(y, x)``, ``longitude(y, x)`` and the
        scalar ``crs`` variable (e.g. the first validated frame).
    length : int
        Time-axis length (a multiple of the time chunk).
    variable_attrs : mapping
        Attrs of each data variable (``units``, ``standard_name``, ...).
    attrs : mapping
        Global attrs (``Conventions``, provenance); the layout attrs are added.

    Returns
    -------
    (xarray.Dataset, dict)
        Data variables are Dask arrays of NaN (never computed: the template writes only
        metadata and coords) and the encoding for ``to_zarr``.
    """
    if length % layout.time_chunk:
        raise ValueError(f"{length=} is not a multiple of the time chunk {layout.time_chunk}")
    ny, nx = grid.sizes[voc.Y], grid.sizes[voc.X]
    tc, yc, xc = layout.chunks
    coords = {
        voc.TIME: (
            voc.TIME,
            layout.times(0, length),
            {"standard_name": "time", "long_name": "time", "axis": "T"},
        ),
        voc.Y: grid[voc.Y].variable,
        voc.X: grid[voc.X].variable,
        voc.LATITUDE: grid[voc.LATITUDE].variable,
        voc.LONGITUDE: grid[voc.LONGITUDE].variable,
    }
    data_vars: dict[str, Any] = {
        name: (
            (voc.TIME, voc.Y, voc.X),
            da.full((length, ny, nx), np.nan, dtype="float32", chunks=(tc, yc, xc)),
            {**variable_attrs[name], "grid_mapping": voc.CRS},
        )
        for name in layout.variables
    }
    data_vars[FRAME_PRESENT] = (
        (voc.TIME,),
        da.zeros(length, dtype=bool, chunks=layout.index_chunk),
        {
            "long_name": "whether the frame holds ingested data",
            "comment": "False: timestamp never ingested or missing at the source; data is NaN",
        },
    )
    data_vars[voc.CRS] = grid[voc.CRS].variable
    ds = xr.Dataset(data_vars, coords=coords, attrs={**attrs, **layout.to_attrs()})
    zstd = [zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)]
    encoding: dict[str, dict[str, Any]] = {
        name: {"chunks": (tc, yc, xc), "compressors": zstd, "_FillValue": np.nan}
        for name in layout.variables
    }
    encoding[FRAME_PRESENT] = {"chunks": (layout.index_chunk,)}
    encoding[voc.TIME] = {
        "units": TIME_UNITS,
        "calendar": "proleptic_gregorian",
        "dtype": "int64",
        "chunks": (layout.index_chunk,),
    }
    for name in (voc.LATITUDE, voc.LONGITUDE):
        encoding[name] = {"compressors": zstd}
    return ds, encoding


def create(
    path: str, layout: StoreLayout, ds: xr.Dataset, encoding: Mapping[str, Any], length: int
) -> None:
    """Write a new store at ``path``: the template ``ds`` grown to ``length`` frames.

    ``ds`` should be one time chunk long (:func:`template`): its lazy data variables make a
    Dask graph per chunk, so the long axis is added by :func:`grow`'s metadata-only resize.
    Local stores are written to a hidden sibling directory and renamed into place, so ``path``
    never holds a half-written store.
    """
    if store_exists(path):
        raise StoreError(f"store {path} already exists")
    if is_url(path):
        with quiet_consolidation():
            ds.to_zarr(path, mode="w-", compute=False, encoding=encoding, consolidated=True)
        grow(path, layout, length)
        return
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # a directory that is not a Zarr group: do not touch it
        raise StoreError(f"{final} exists but is not a Zarr store; move it away first")

    def write(staging: Path) -> None:
        with quiet_consolidation():
            ds.to_zarr(str(staging), mode="w-", compute=False, encoding=encoding, consolidated=True)
        grow(str(staging), layout, length)

    staged_create(final, write)
    log.info("store %s: created with %d frames", path, layout.padded_length(length))


#: The store's write lock (:func:`pipelines.zarr_transaction.write_lock`): a second writer waits
#: up to the timeout, then gets a retryable :class:`~pipelines.zarr_transaction.StoreBusyError`.
store_lock = write_lock


def store_digest(path: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 of every file under a local store, keyed by relative path.

    Two equal digests mean the stores are byte-for-byte identical (used to prove that a
    failed ingest changed nothing).
    """
    root = Path(path)
    return {
        str(file.relative_to(root)): hashlib.sha256(file.read_bytes()).hexdigest()
        for file in sorted(root.rglob("*"))
        if file.is_file()
    }


def store_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of a local store (0 when it does not exist or is a URL)."""
    root = Path(path)
    if is_url(str(path)) or not root.exists():
        return 0
    return sum(file.stat().st_size for file in root.rglob("*") if file.is_file())
