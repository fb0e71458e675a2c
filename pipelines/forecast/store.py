"""The forecast store ``DIR/forecasts/<source>.zarr``: layout and idempotent per-init writes.

Layout (Zarr v3, zstd; checked with cf_xarray and rioxarray, see ``docs/ARCHITECTURE.md``)::

    <variable>(init_time, lead_time, y, x)       float32, physical units, grid_mapping="crs"
        (dims latitude/longitude instead of y/x for regular latitude-longitude grids)
    init_time(init_time)                         datetime64, forecast_reference_time, UTC
    lead_time(lead_time)                         timedelta (int32 minutes), forecast_period
    valid_time(init_time, lead_time)             datetime64, standard_name time
    y(y), x(x) + latitude(y, x), longitude(y, x) projected grids
    latitude(latitude), longitude(longitude)     geographic grids
    crs                                          scalar, pyproj ``CRS.to_cf()`` attrs + spatial_ref
    forecast_complete(init_time)                 bool, True once that init's write committed
    input_time(init_time, input_frame)           the observation times the forecast was made from
    checkpoint(init_time), checkpoint_sha256(init_time), model_version(init_time),
    fallback(init_time)                          provenance strings per init time

Chunks: one chunk ``(1, all leads, full grid)`` per init time and data variable.

The ``init_time`` axis
---------------------
``init_time`` holds **only the init times that were issued**, strictly increasing, one entry per
init time: an hourly deployment over a 5-minute source gets one entry per hour, not eleven empty
slots between them, so ``ds.sel(init_time=...)``, ``ds.init_time.diff`` and ``len(ds.init_time)``
mean what an analyst expects, and a store covering years holds no NaN filler. A forecast
after the newest entry is appended (the common case); re-running an init time replaces its entry
in place (idempotent); an earlier init time not yet in the store (a back-fill) is inserted in
order. Every write touches only the new entry's chunks plus a few bytes per init time of the small
per-init arrays, never the span between init times; a back-fill also renames the later entries'
chunk files, in a hard-linked copy (no data read or copied). Readers holding the store open across
a back-fill must reopen it, since later entries move one index (:data:`READER_NOTE`, also in the
store's ``reader_note`` attribute). Stores of an older layout, which
had empty slots at the source step (``forecast_complete = False``), stay readable and writable;
``open_forecast_store(..., complete_only=True)`` drops such slots.

A complete entry is never replaced by one with fewer finite values (a model that produces NaN;
:mod:`pipelines.forecast.guard`), and each lead configuration has its own store
(``DataDir.forecast_store``); back-fills are in :mod:`pipelines.forecast.backfill`.

Concurrency and crash safety
----------------------------
Every write holds an exclusive ``fcntl`` lock on ``<store>.lock`` (local file systems only);
predictions are computed outside the lock, so concurrent runs only serialise their short writes.
The **commit point** is the consolidated metadata in the root ``zarr.json``, which zarr's local
store replaces atomically (write to a temporary file, then rename). Readers that open the store
(``xr.open_zarr`` uses the consolidated metadata) therefore see the ``init_time`` length of the
last committed write: a writer killed after resizing the arrays or writing new chunks leaves
uncommitted chunks beyond the visible length, which the next writer discards. A first write
goes to a temporary directory that is renamed into place. A back-fill builds its copy next to the
store and swaps it in atomically (Linux ``renameat2`` exchange; elsewhere two renames, undone on
the next write if the writer died between them). Rewriting an existing init time first
sets its ``forecast_complete`` flag to False and sets it back only after all its chunks were
replaced, so a write killed midway marks that one entry incomplete and leaves the others intact;
a rewrite failing with an ``OSError`` (a full disk) writes the old entry and flag back.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import xarray as xr
import zarr

from data_catalog.crs import cf_grid_mapping
from data_catalog.paths import is_url
from data_catalog.vocabulary import (
    CRS,
    INIT_TIME,
    LATITUDE,
    LEAD_TIME,
    LONGITUDE,
    X,
    Y,
    duration_text,
)
from pipelines.forecast import backfill
from pipelines.forecast.guard import COMPLETE, check_not_worse, restored_on_error
from pipelines.zarr_transaction import (
    commit,
    quiet_consolidation,
    resize_along,
    staged_create,
    staging_path,
    write_lock,
)

logger = logging.getLogger(__name__)

VALID_TIME = "valid_time"
INPUT_TIME = "input_time"
INPUT_FRAME = "input_frame"
PROVENANCE_STRINGS = ("checkpoint", "checkpoint_sha256", "model_version", "fallback")
"""Per-init-time provenance strings (``fallback`` is "" unless a fallback input was chosen)."""

STORE_FORMAT = "simvp-nowcast-forecast-1"
READER_NOTE = (  # the shifted-reader hazard, in every new store's ``reader_note`` attribute
    "a back-fill inserts an earlier init_time in order and moves every later entry one index: a "
    "reader holding this store open across a write must reopen it, else it reads an entry's "
    "values under another entry's label"
)
_TIME_UNITS = "minutes since 1970-01-01 00:00:00"  # int64 minutes: exact for minute-step sources
_COORD_CHUNK = 4096  # 1-D/2-D per-init coordinates: one small chunk holds many init times

_FAULT_HOOK: Callable[[str], None] | None = None
"""Test hook called with the name of each write stage (tests kill the process there)."""


def _stage(name: str) -> None:
    if _FAULT_HOOK is not None:
        _FAULT_HOOK(name)


@dataclass(frozen=True)
class ForecastGrid:
    """The spatial grid of a forecast (after any crop/coarsening of the model inputs).

    Parameters
    ----------
    y, x : np.ndarray
        1-D coordinates, shapes ``(H,)`` and ``(W,)``: projected metres, or degrees north/east
        for a geographic ``crs``.
    latitude, longitude : np.ndarray
        2-D ``(H, W)`` pixel-centre coordinates in degrees.
    crs : pyproj.CRS
        Coordinate reference system of ``y``/``x``.
    """

    y: np.ndarray
    x: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    crs: pyproj.CRS

    def __post_init__(self) -> None:
        shape = (np.size(self.y), np.size(self.x))
        for name in ("latitude", "longitude"):
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"{name} must have shape (H, W) = {shape}, got {got}")

    @property
    def geographic(self) -> bool:
        """True for a regular latitude-longitude grid (dims ``latitude``/``longitude``)."""
        return bool(self.crs.is_geographic)

    @property
    def dims(self) -> tuple[str, str]:
        """Spatial dims of the forecast variables."""
        return (LATITUDE, LONGITUDE) if self.geographic else (Y, X)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (int(np.size(self.y)), int(np.size(self.x)))

    @classmethod
    def from_coords(cls, y: np.ndarray, x: np.ndarray, crs: pyproj.CRS) -> ForecastGrid:
        """Grid from 1-D ``y``/``x`` in ``crs``; latitude/longitude computed with pyproj."""
        y = np.asarray(y, dtype="float64")
        x = np.asarray(x, dtype="float64")
        xx, yy = np.meshgrid(x, y)  # (H, W) each
        if crs.is_geographic:
            lat, lon = yy, xx
        else:
            to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
            lon, lat = to_lonlat.transform(xx, yy)
        return cls(y=y, x=x, latitude=np.asarray(lat), longitude=np.asarray(lon), crs=crs)


@dataclass(frozen=True)
class Provenance:
    """Where one forecast came from (stored per init time and in the run's log).

    Parameters
    ----------
    checkpoint : str
        Path of the checkpoint file.
    checkpoint_sha256 : str
        Hex SHA-256 of the checkpoint file.
    model_version : str
        Model description, e.g. ``"simvp-nowcast 0.1.0 SimVP v1/incepu"``.
    source_store : str
        Path of the observation store the inputs were read from.
    input_times : np.ndarray
        ``(T_in,)`` datetime64 times of the input frames, oldest first.
    fallback : str
        ``""``, or a description of the explicit fallback the user chose.
    """

    checkpoint: str
    checkpoint_sha256: str
    model_version: str
    source_store: str
    input_times: np.ndarray = field(repr=False)
    fallback: str = ""


def crs_attrs(crs: pyproj.CRS) -> dict[str, object]:
    """CF grid-mapping attributes of ``crs`` plus ``spatial_ref``/``crs_wkt`` (WKT)."""
    attrs = cf_grid_mapping(crs)
    wkt = crs.to_wkt()
    attrs["spatial_ref"] = wkt
    attrs["crs_wkt"] = wkt
    return attrs


def _time_values(times: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    return pd.DatetimeIndex(times).tz_localize(None).values.astype("datetime64[ns]")


def build_forecast(
    values: Mapping[str, np.ndarray],
    init_time: np.datetime64 | pd.Timestamp | str,
    lead_times: pd.TimedeltaIndex | np.ndarray,
    grid: ForecastGrid,
    *,
    time_step: str | pd.Timedelta,
    source_name: str,
    provenance: Provenance,
    variable_attrs: Mapping[str, Mapping[str, object]] | None = None,
    attrs: Mapping[str, object] | None = None,
) -> xr.Dataset:
    """One forecast as a Dataset in the forecast-store layout (``init_time`` of length 1).

    Parameters
    ----------
    values : mapping of str to np.ndarray
        Per variable, the forecast ``(L, H, W)`` in physical units (NaN = no data).
    init_time : datetime-like
        Forecast reference time (UTC, naive or tz-aware): the time of the last input frame.
    lead_times : pandas.TimedeltaIndex or np.ndarray
        ``(L,)`` positive, increasing lead times.
    grid : ForecastGrid
        Spatial grid of ``values``.
    time_step : str or pandas.Timedelta
        Step of the ``init_time`` grid (the source's time step), e.g. ``"5min"``.
    source_name : str
        Catalog name of the source.
    provenance : Provenance
        Checkpoint, model and input description.
    variable_attrs : mapping, optional
        Per variable attrs (``units``, ``standard_name``, ``long_name``) copied to the store.
    attrs : mapping, optional
        Extra global attributes (e.g. ``input_preparation``, JSON of the checkpoint's variable
        selection, crop and coarsening, used to re-render with the observed inputs).

    Returns
    -------
    xarray.Dataset
        Variables ``(init_time=1, lead_time=L, *grid.dims)`` float32 plus the coordinates and
        provenance variables listed in the module docstring.
    """
    leads = pd.TimedeltaIndex(lead_times)
    if len(leads) == 0 or (leads <= pd.Timedelta(0)).any() or not leads.is_monotonic_increasing:
        raise ValueError(f"lead_times must be positive and increasing, got {list(leads)}")
    step = pd.Timedelta(time_step)
    if step <= pd.Timedelta(0):
        raise ValueError(f"time_step must be positive, got {time_step!r}")
    init = _time_values([pd.Timestamp(init_time)])  # (1,)
    inputs = _time_values(provenance.input_times)[None, :]  # (1, T_in)
    ydim, xdim = grid.dims
    H, W = grid.shape
    data_vars: dict[str, xr.Variable] = {}
    for name, array in values.items():
        array = np.asarray(array, dtype="float32")
        if array.shape != (len(leads), H, W):
            raise ValueError(
                f"{name}: forecast must be (L, H, W) = {(len(leads), H, W)}, got {array.shape}"
            )
        var_attrs = {**dict((variable_attrs or {}).get(name, {})), "grid_mapping": CRS}
        # (L, H, W) -> (1, L, H, W): one init time
        data_vars[name] = xr.Variable((INIT_TIME, LEAD_TIME, ydim, xdim), array[None], var_attrs)
    if not data_vars:
        raise ValueError("values must hold at least one variable")
    data_vars[COMPLETE] = xr.Variable(
        (INIT_TIME,), np.array([True]), {"long_name": "forecast write committed"}
    )
    for name in PROVENANCE_STRINGS:
        data_vars[name] = xr.Variable(
            (INIT_TIME,), np.array([str(getattr(provenance, name))], dtype=object)
        )
    data_vars[INPUT_TIME] = xr.Variable(
        (INIT_TIME, INPUT_FRAME), inputs, {"long_name": "observation times of the input frames"}
    )
    data_vars[CRS] = xr.Variable((), np.int32(0), crs_attrs(grid.crs))

    coords: dict[str, xr.Variable] = {
        INIT_TIME: xr.Variable(
            INIT_TIME,
            init,
            {"standard_name": "forecast_reference_time", "long_name": "initialisation time"},
        ),
        LEAD_TIME: xr.Variable(
            LEAD_TIME,
            leads.values.astype("timedelta64[ns]"),
            {"standard_name": "forecast_period", "long_name": "lead time"},
        ),
        VALID_TIME: xr.Variable(
            (INIT_TIME, LEAD_TIME),
            init[:, None] + leads.values[None, :].astype("timedelta64[ns]"),  # (1, L)
            {"standard_name": "time", "long_name": "valid time"},
        ),
    }
    if grid.geographic:
        coords[LATITUDE] = xr.Variable(
            LATITUDE, grid.y, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}
        )
        coords[LONGITUDE] = xr.Variable(
            LONGITUDE, grid.x, {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}
        )
    else:
        units = grid.crs.axis_info[0].unit_name if grid.crs.axis_info else "metre"
        units = "m" if units in ("metre", "meter") else units
        coords[Y] = xr.Variable(
            Y, grid.y, {"standard_name": "projection_y_coordinate", "units": units, "axis": "Y"}
        )
        coords[X] = xr.Variable(
            X, grid.x, {"standard_name": "projection_x_coordinate", "units": units, "axis": "X"}
        )
        coords[LATITUDE] = xr.Variable(
            (Y, X), grid.latitude, {"standard_name": "latitude", "units": "degrees_north"}
        )
        coords[LONGITUDE] = xr.Variable(
            (Y, X), grid.longitude, {"standard_name": "longitude", "units": "degrees_east"}
        )
    global_attrs = {
        "Conventions": "CF-1.10",
        "title": f"SimVP nowcasts of {source_name}",
        "source": "simvp-nowcast SimVP model",
        "source_name": source_name,
        "source_store": provenance.source_store,
        "init_time_step": _offset_string(step),
        "store_format": STORE_FORMAT,
        **(attrs or {}),
    }
    return xr.Dataset(data_vars, coords, global_attrs)


def _offset_string(step: pd.Timedelta) -> str:
    minutes = step / pd.Timedelta("1min")
    if minutes != int(minutes):
        raise ValueError(
            f"init_time step must be a whole number of minutes, got {duration_text(step)}"
        )
    return f"{int(minutes)}min"


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, object]]:
    compressors = [zarr.codecs.ZstdCodec(level=3)]
    enc: dict[str, dict[str, object]] = {}
    n_leads = ds.sizes[LEAD_TIME]
    for name, var in ds.variables.items():
        if INIT_TIME in var.dims and var.ndim == 4:  # data: one chunk per init time
            enc[str(name)] = {
                "chunks": (1, *var.shape[1:]),
                "compressors": compressors,
                # flat chunk files "c.<i>.0.0.0": a back-fill renames one file per later entry
                # instead of a directory tree (pipelines.forecast.backfill)
                "chunk_key_encoding": {"name": "default", "separator": "."},
            }
        elif INIT_TIME in var.dims:
            enc[str(name)] = {"chunks": (_COORD_CHUNK, *var.shape[1:])}
    for name in (INIT_TIME, VALID_TIME, INPUT_TIME):
        enc[name].update(units=_TIME_UNITS, dtype="int64")
    enc[LEAD_TIME] = {"units": "minutes", "dtype": "int32", "chunks": (n_leads,)}
    return enc


#: The store's write lock (:func:`pipelines.zarr_transaction.write_lock`): a second writer
#: waits up to ``timeout`` seconds, then gets a retryable
#: :class:`~pipelines.zarr_transaction.StoreBusyError` (a ``TimeoutError``).
store_lock = write_lock


def open_forecast_store(
    path: str | os.PathLike[str], *, complete_only: bool = False, **kwargs: object
) -> xr.Dataset:
    """Open a forecast store lazily (committed entries only, ``crs`` as a coordinate).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.zarr`` store.
    complete_only : bool
        Drop empty slots and entries whose write did not complete.
    **kwargs
        Passed to :func:`xarray.open_zarr`.
    """
    kwargs.setdefault("decode_coords", "all")
    with quiet_consolidation():
        ds = xr.open_zarr(os.fspath(path), consolidated=True, **kwargs)  # type: ignore[arg-type]
    if complete_only:
        ds = ds.isel({INIT_TIME: np.flatnonzero(ds[COMPLETE].values)})
    return ds


def _check_compatible(store: xr.Dataset, new: xr.Dataset) -> None:
    """Raise ValueError unless ``new`` fits the layout of the existing ``store``."""
    old_vars = sorted(str(v) for v in store.data_vars if v != CRS)
    new_vars = sorted(str(v) for v in new.data_vars if v != CRS)
    if old_vars != new_vars:
        raise ValueError(
            f"forecast variables {new_vars} differ from the store's {old_vars}; "
            "write to a separate store"
        )
    if not np.array_equal(store[LEAD_TIME].values, new[LEAD_TIME].values):
        raise ValueError(
            f"this forecast has {_leads_text(new[LEAD_TIME].values)}, the store "
            f"{_leads_text(store[LEAD_TIME].values)}; each lead configuration has its own store"
        )
    for dim in set(new.dims) - {INIT_TIME}:
        if store.sizes.get(dim) != new.sizes[dim]:
            raise ValueError(
                f"size of {dim!r} is {new.sizes[dim]}, store has {store.sizes.get(dim)}"
            )
    for name in (Y, X, LATITUDE, LONGITUDE):
        if name in new.coords and not np.allclose(store[name].values, new[name].values):
            raise ValueError(f"forecast grid {name!r} differs from the store's grid")
    if store.attrs.get("init_time_step") != new.attrs["init_time_step"]:
        raise ValueError(
            f"init_time step {new.attrs['init_time_step']!r} differs from the store's "
            f"{store.attrs.get('init_time_step')!r}"
        )


def _leads_text(leads: np.ndarray) -> str:
    """``"12 lead times (5min..1h)"``: short whatever the count."""
    first, last = duration_text(leads[0]), duration_text(leads[-1])
    return f"{len(leads)} lead times ({first}..{last})"


def _region_write(path: Path, block: xr.Dataset, start: int) -> None:
    """Write ``block`` (variables along ``init_time``) at ``init_time`` offset ``start``."""
    block = block.drop_vars([v for v in block.variables if INIT_TIME not in block[v].dims])
    block = block.drop_encoding()
    stop = start + block.sizes[INIT_TIME]
    _write_init_times(path, block[INIT_TIME].values, start)
    with quiet_consolidation():
        block.to_zarr(
            str(path),
            mode="r+",
            region={INIT_TIME: slice(start, stop)},
            consolidated=False,
            safe_chunks=False,  # partial writes of the shared coord chunks happen under the lock
        )


def _write_init_times(path: Path, times: np.ndarray, start: int) -> None:
    """Write ``init_time`` values at ``start`` with zarr (xarray never writes index regions)."""
    array = zarr.open_array(str(path / INIT_TIME), mode="r+")
    units = str(array.attrs["units"])
    encoded, _, _ = xr.coding.times.encode_cf_datetime(
        times, units, str(array.attrs.get("calendar", "proleptic_gregorian")), dtype=np.int64
    )
    array[start : start + len(times)] = np.asarray(encoded, dtype=array.dtype)


def _commit(path: Path, history: str) -> None:
    """Consolidate the metadata (the commit point), then record ``history`` in the root attrs.

    Both steps replace the root ``zarr.json`` atomically and keep its consolidated metadata: the
    attrs are set on the group opened *with* its consolidated metadata (set on a group opened
    without it, zarr would write the root without it, and readers would see uncommitted array
    shapes until the next consolidation).
    """
    commit(path)
    _stage("consolidated")
    with quiet_consolidation():
        group = zarr.open_group(str(path), mode="r+", use_consolidated=True)
        group.attrs["history"] = history


def _create(path: Path, forecast: xr.Dataset) -> None:
    """Write the first forecast to a temporary directory and rename it into place."""
    ds = forecast.copy()
    ds.attrs["history"] = f"{_now()} created with init_time {_iso(forecast[INIT_TIME].values[0])}"
    ds.attrs["reader_note"] = READER_NOTE

    def write(staging: Path) -> None:
        with quiet_consolidation():
            ds.to_zarr(str(staging), mode="w-", encoding=_encoding(ds), consolidated=True)

    staged_create(path, write, on_written=lambda: _stage("created_tmp"))


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_forecast(
    path: str | os.PathLike[str], forecast: xr.Dataset, *, lock_timeout: float = 600.0
) -> int:
    """Write (or replace) one forecast in the store at ``path``; safe under concurrency.

    Memory and time depend on the forecast written, not on how many init times the store holds
    or how far apart they are: an append or a replacement writes the entry's own chunks; a
    back-fill renames the later entries' chunk files in a hard-linked copy (no data is read).

    Parameters
    ----------
    path : str or os.PathLike
        Local path of the ``.zarr`` store; created on the first write.
    forecast : xarray.Dataset
        One init time in the store layout, as returned by :func:`build_forecast`.
    lock_timeout : float
        Seconds to wait for the store's write lock.

    Returns
    -------
    int
        Index of the forecast along the store's ``init_time`` axis (sorted, issued times only).

    Raises
    ------
    ValueError
        If ``forecast`` does not match the store's layout (variables, leads, grid, step), or it
        would replace a complete entry by one with fewer finite values.
    """
    if is_url(os.fspath(path)):
        raise ValueError(f"forecast stores need a local path (for the write lock), got {path!r}")
    if forecast.sizes.get(INIT_TIME) != 1:
        raise ValueError(f"forecast must hold exactly one init_time, got {forecast.sizes}")
    path = Path(path)
    init = forecast[INIT_TIME].values[0]
    with store_lock(path, timeout=lock_timeout):
        backfill.recover(path)
        if not path.exists():
            _create(path, forecast)
            logger.info("created forecast store %s with init_time %s", path, _iso(init))
            return 0
        store = open_forecast_store(path, chunks=None)  # no dask: safe in forked workers
        _check_compatible(store, forecast)
        times = store[INIT_TIME].values  # (n,) sorted, one per issued init time
        n = len(times)
        index = int(np.searchsorted(times, init))
        resize_along(path, INIT_TIME, n)  # drop what an interrupted writer left beyond n
        if index < n and times[index] == init:
            check_not_worse(store.isel({INIT_TIME: index}), forecast)
            old = store.isel({INIT_TIME: [index]}).load()  # written back if the rewrite fails
            entry = f"init_time {_iso(init)} of {path}"
            with restored_on_error(lambda: _region_write(path, old, index), entry):
                _replace(path, forecast, index)
                _commit(path, f"{_now()} replaced init_time {_iso(init)}")
            action = "replaced"
        elif index == n:  # append: resize, write the new entry only, commit by consolidating
            resize_along(path, INIT_TIME, n + 1)
            _stage("resized")
            _region_write(path, forecast, n)
            _stage("data_written")
            action = "appended"
        else:  # back-fill: sorted insert in a hard-linked copy, swapped in atomically
            _insert(path, forecast, index, n)
            action = "inserted"
        if action == "appended":
            _commit(path, f"{_now()} {action} init_time {_iso(init)}")
        _stage("committed")
    logger.info("%s init_time %s (index %d) in %s", action, _iso(init), index, path)
    return index


def _replace(path: Path, forecast: xr.Dataset, index: int) -> None:
    """Rewrite entry ``index``: flagged incomplete until all its chunks are replaced."""
    _region_write(path, forecast[[COMPLETE]].copy(data={COMPLETE: np.array([False])}), index)
    _stage("flagged_incomplete")
    _region_write(path, forecast.drop_vars(COMPLETE), index)
    _stage("data_written")
    _region_write(path, forecast[[COMPLETE]], index)  # True only after all chunks
    _stage("flag_written")


def _insert(path: Path, forecast: xr.Dataset, index: int, n: int) -> None:
    """Insert ``forecast`` at ``index`` (< n): a hard-linked copy with later entries moved one
    slot (:func:`pipelines.forecast.backfill.copy_with_gap`), the entry written there, the copy
    committed and swapped in (:func:`pipelines.forecast.backfill.swap_in`). Called under the
    lock.
    """
    init = _iso(forecast[INIT_TIME].values[0])
    logger.info("inserting init_time %s at index %d of %d", init, index, n)
    tmp = staging_path(path)
    try:  # the live store is untouched until the swap; a failed copy is removed at once
        backfill.copy_with_gap(path, tmp, index, n)
        _stage("insert_copied")
        _region_write(tmp, forecast, index)
        _commit(tmp, f"{_now()} inserted init_time {init}")
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # frees the space a full disk needs back
        raise
    backfill.swap_in(tmp, path, _stage)
