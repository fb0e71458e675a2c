"""What every reader shares: the :class:`Frames` it returns, checks against the spec, units,
file access through fsspec, and building the contract ``xarray.Dataset`` from frames.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import fsspec
import h5py
import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from data_catalog import vocabulary as voc
from data_catalog.catalog import parse_time
from data_catalog.crs import cf_grid_mapping, crs_label
from data_catalog.paths import is_url
from data_catalog.spec import GridSpec, ReaderOptions, SourceSpec, VariableSpec
from simvp_model.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frames:
    """Frames decoded from one file, already in the spec's physical units.

    Parameters
    ----------
    path : str
        The file they come from (named in every error).
    times : np.ndarray
        ``datetime64[ns]`` UTC, shape ``(T,)``.
    data : Mapping[str, np.ndarray]
        Catalog variable name -> float32 array ``(T, H, W)``, NaN = no data.
    notes : Mapping[str, str]
        Variable name -> how it was decoded/converted (written to the ``conversion`` attr).
    qc_masked : Mapping[str, np.ndarray]
        Quality control: variable name -> int64 ``(T,)``, per frame the number of values
        outside ``valid_range`` set to NaN. Filled by :func:`validate_frames` when the source's
        ``reader_options.out_of_range`` is ``mask``; empty under ``fail`` (the default). This is
        what an ingest reports and records in the store's provenance.
    """

    path: str
    times: np.ndarray
    data: Mapping[str, np.ndarray]
    notes: Mapping[str, str] = field(default_factory=dict)
    qc_masked: Mapping[str, np.ndarray] = field(default_factory=dict)


ReadFile = Callable[[str, SourceSpec], Frames]
"""A reader: ``(path, spec) -> Frames`` for one file."""


# --- file access ----------------------------------------------------------------------------


def read_bytes(path: str) -> bytes:
    """All bytes of a local file or fsspec URL."""
    with fsspec.open(path, "rb") as handle:
        return handle.read()


NATIVE_IO_LOCK = threading.RLock()
"""One process-wide lock held while HDF5, netCDF-C or ecCodes open or decode a file: none of
these C libraries is thread-safe (netCDF4 opened from two Dask threads at once crashed the
process with SIGSEGV/SIGBUS). Re-entrant, so a reader may nest helpers that take it."""


@contextlib.contextmanager
def native_io() -> Iterator[None]:
    """Hold :data:`NATIVE_IO_LOCK` for the block (open + decode of an HDF5/netCDF/GRIB file)."""
    with NATIVE_IO_LOCK:
        yield


@contextlib.contextmanager
def open_hdf5(path: str) -> Iterator[h5py.File]:
    """Open a local or fsspec HDF5 file read-only, from its bytes, holding
    :data:`NATIVE_IO_LOCK` until the block ends (read every dataset inside it).

    Raises
    ------
    ValueError
        Naming ``path`` when the bytes are not a readable HDF5 file (corrupt or truncated).
    """
    raw = read_bytes(path)  # outside the lock: plain I/O may overlap
    with NATIVE_IO_LOCK:
        try:
            h5 = h5py.File(io.BytesIO(raw), "r")
        except OSError as error:
            raise ValueError(
                f"{path}: not a readable HDF5 file (corrupt or truncated?): {error}"
            ) from None
        with h5:
            yield h5


def local_copy(path: str) -> str:
    """A local path for libraries that need one (netCDF4, ecCodes): URLs are cached locally."""
    if is_url(path):
        return fsspec.open_local(f"simplecache::{path}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    return path


# --- units ----------------------------------------------------------------------------------

Conversion = Callable[[np.ndarray, ReaderOptions], tuple[np.ndarray, str]]
CONVERSIONS: Registry[Conversion] = Registry("unit conversion")
"""``"FROM->TO"`` -> ``(values, options) -> (converted, description)``."""


def _option(opts: ReaderOptions, name: str) -> float:
    """Reader option ``name`` as a float; ``KeyError(name)`` when it is not set."""
    value = getattr(opts, name)
    if value is None:
        raise KeyError(name)
    return float(value)


@CONVERSIONS.register("mm->mm/h")
def _accumulation_to_rate(values: np.ndarray, opts: ReaderOptions) -> tuple[np.ndarray, str]:
    minutes = _option(opts, "accumulation_minutes")
    return values * (60.0 / minutes), f"accumulation (mm per {minutes:g} min) x {60 / minutes:g}"


@CONVERSIONS.register("dBZ->mm/h")
def _dbz_to_rate(values: np.ndarray, opts: ReaderOptions) -> tuple[np.ndarray, str]:
    a, b = _option(opts, "zr_a"), _option(opts, "zr_b")
    # Z = a R^b with Z in mm^6 m^-3 = 10^(dBZ/10)  =>  R = (10^(dBZ/10) / a)^(1/b)
    rate = (10.0 ** (values / 10.0) / a) ** (1.0 / b)
    return rate, f"rain rate from reflectivity: Z = {a:g} R^{b:g}, Z = 10^(dBZ/10)"


@CONVERSIONS.register("K->degC")
def _k_to_c(values: np.ndarray, opts: ReaderOptions) -> tuple[np.ndarray, str]:
    return values - 273.15, "K - 273.15"


@CONVERSIONS.register("degC->K")
def _c_to_k(values: np.ndarray, opts: ReaderOptions) -> tuple[np.ndarray, str]:
    return values + 273.15, "degC + 273.15"


def convert_units(
    values: np.ndarray,
    from_units: str,
    var: VariableSpec,
    path: str,
    options: ReaderOptions | None = None,
) -> tuple[np.ndarray, str]:
    """Convert decoded ``values`` from the file's ``from_units`` to ``var.units`` (float32).

    Raises
    ------
    ValueError
        Naming ``path`` when no conversion from ``from_units`` to ``var.units`` is known.
    """
    if from_units == var.units:
        return values.astype(np.float32, copy=False), f"as stored ({from_units})"
    key = f"{from_units}->{var.units}"
    if key not in CONVERSIONS:
        raise ValueError(
            f"{path}: unknown units {from_units!r} for variable {var.name!r} "
            f"(wanted {var.units!r}); known conversions: {CONVERSIONS.names()}"
        )
    try:
        out, note = CONVERSIONS.get(key)(values.astype(np.float64), options or ReaderOptions())
    except KeyError as missing:
        raise ValueError(
            f"{path}: converting {key} for {var.name!r} needs reader option {missing}"
        ) from None
    return out.astype(np.float32), note


#: Units whose "measured, nothing detected" value is 0 (no rain, no count).
ZERO_UNDETECT_UNITS = ("mm/h", "mm", "count")
DEFAULT_UNDETECT_DBZ = -30.0  # pysteps' value for "no echo" reflectivity


def undetect_value(var: VariableSpec, options: ReaderOptions, path: str) -> float:
    """What an ``undetect`` pixel becomes in ``var.units``: 0 for rain and counts, the
    ``undetect_dbz`` option (default -30) for reflectivity, else the ``valid_range`` minimum."""
    if var.units in ZERO_UNDETECT_UNITS:
        return 0.0
    if var.units == "dBZ":
        return DEFAULT_UNDETECT_DBZ if options.undetect_dbz is None else float(options.undetect_dbz)
    if not np.isfinite(var.valid_range[0]):
        raise ValueError(
            f"{path}: undetect values of {var.name!r} ({var.units}) need a finite valid_range "
            "minimum to stand for 'nothing detected'"
        )
    return var.valid_range[0]


def decode_values(
    decoded: np.ndarray,
    from_units: str,
    var: VariableSpec,
    path: str,
    options: ReaderOptions,
    factor: float = 1.0,
) -> tuple[np.ndarray, str]:
    """Apply the shared value options to ``decoded`` values and convert them to ``var.units``.

    ``decoded`` are the values as the file's library gives them (any shape, e.g. ``(T, H, W)``,
    in their own dtype so sentinels compare exactly). Steps: ``nodata`` sentinels → NaN;
    ``value = (decoded * scale + offset) * factor`` (``scale``/``offset`` from the reader
    options when set; ``factor`` from the file's units, e.g. 1000 for m → mm); unit conversion
    (:func:`convert_units`, e.g. accumulation → rate); ``undetect`` sentinels →
    :func:`undetect_value`.

    Returns
    -------
    values : np.ndarray
        float32, same shape, in ``var.units``.
    note : str
        What was done (for the ``conversion`` attr).
    """
    raw = np.asarray(decoded)
    nodata = _sentinel_mask(raw, options.nodata)
    undetect = _sentinel_mask(raw, options.undetect)
    values = raw.astype(np.float64)
    steps = []
    if options.scale is not None or options.offset is not None:
        scale = 1.0 if options.scale is None else float(options.scale)
        offset = 0.0 if options.offset is None else float(options.offset)
        values = values * scale + offset
        steps.append(f"x {scale:g} + {offset:g}")
    if factor != 1:
        values = values * factor
        steps.append(f"x {factor:g}")
    values[nodata] = np.nan
    if options.nodata:
        steps.append(f"nodata {list(options.nodata)} -> NaN")
    out, note = convert_units(values, from_units, var, path, options)
    steps.append(note)
    if options.undetect:
        fill = undetect_value(var, options, path)
        out[undetect] = fill
        steps.append(f"undetect {list(options.undetect)} -> {fill:g}")
    return out, "; ".join(steps)


def _sentinel_mask(raw: np.ndarray, sentinels: Sequence[float]) -> np.ndarray:
    """True where ``raw`` equals one of ``sentinels`` (compared in ``raw``'s own dtype)."""
    mask = np.zeros(raw.shape, dtype=bool)
    for value in sentinels:
        if np.issubdtype(raw.dtype, np.integer):
            info = np.iinfo(raw.dtype)
            if value != int(value) or not info.min <= value <= info.max:
                continue  # no integer pixel can hold it
        mask |= raw == np.asarray(value).astype(raw.dtype)
    return mask


# --- checks ---------------------------------------------------------------------------------


def check_shape(shape: Sequence[int], spec: SourceSpec, path: str) -> None:
    """``ValueError`` naming ``path`` unless ``shape[-2:]`` equals the spec grid ``(H, W)``."""
    if tuple(shape[-2:]) != spec.grid.shape:
        raise ValueError(
            f"{path}: grid shape {tuple(shape[-2:])} != {spec.grid.shape} of source {spec.name!r}"
        )


def check_crs(file_crs: str | pyproj.CRS, spec: SourceSpec, path: str) -> None:
    """``ValueError`` naming ``path`` when the file's CRS puts the grid elsewhere than the spec's.

    Two CRSs agree when the spec grid's corner and centre pixels, taken to lon/lat with the
    spec CRS and back to map coordinates with the file's CRS, land within 1/10 pixel of
    where the spec puts them (:meth:`GridSpec.same_crs`), so equivalent PROJ strings written
    differently agree.
    """
    try:
        crs = pyproj.CRS.from_user_input(file_crs)
    except pyproj.exceptions.CRSError as error:
        raise ValueError(f"{path}: unreadable CRS {file_crs!r} ({error})") from None
    grid = spec.grid
    if crs.is_geographic != grid.is_geographic:
        raise ValueError(
            f"{path}: CRS {crs_label(crs)!r} is "
            f"{'geographic' if crs.is_geographic else 'projected'}, source {spec.name!r} "
            f"expects {crs_label(grid.crs)!r}"
        )
    if not grid.same_crs(crs):
        raise ValueError(
            f"{path}: CRS {crs_label(crs)!r} does not match {crs_label(grid.crs)!r} of source "
            f"{spec.name!r} (grid points move by {grid.crs_displacement(crs):.4g} units)"
        )


def check_extent(
    extent: Sequence[float], spec: SourceSpec, path: str, tolerance: float = 0.5
) -> None:
    """``ValueError`` unless the file's ``(x_min, x_max, y_min, y_max)`` matches the spec's
    within ``tolerance`` pixels."""
    dy, dx = spec.grid.pixel_size
    scale = np.array([dx, dx, dy, dy])
    diff = np.abs(np.asarray(extent, dtype=float) - np.asarray(spec.grid.extent)) / scale
    if not np.all(diff <= tolerance):
        raise ValueError(
            f"{path}: grid extent {tuple(round(float(v), 3) for v in extent)} does not match "
            f"{spec.grid.extent} of source {spec.name!r}"
        )


def check_name_time(time: pd.Timestamp, spec: SourceSpec, path: str) -> None:
    """``ValueError`` when the time in the file name disagrees with the one inside the file."""
    named = parse_time(spec.path, path)
    if named is not None and named != time:
        raise ValueError(f"{path}: the file says {time} but its name says {named}")


def check_times(times: np.ndarray, paths: Sequence[str]) -> None:
    """``ValueError`` naming the file(s) unless ``times`` strictly increase."""
    if len(times) < 2:
        return
    steps = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0])
        kind = "duplicate" if steps[i] == 0 else "non-monotonic"
        where = paths[i] if paths[i] == paths[i + 1] else f"{paths[i]} and {paths[i + 1]}"
        raise ValueError(
            f"{where}: {kind} timestamps {pd.Timestamp(times[i])} then {pd.Timestamp(times[i + 1])}"
        )


def mask_out_of_range(values: np.ndarray, var: VariableSpec) -> tuple[np.ndarray, np.ndarray]:
    """Values outside ``var.valid_range`` set to NaN (quality control ``mask``).

    Parameters
    ----------
    values : np.ndarray
        ``(T, H, W)`` in ``var.units``.

    Returns
    -------
    masked : np.ndarray
        A float32 copy ``(T, H, W)`` with out-of-range (and infinite) values NaN.
    counts : np.ndarray
        int64 ``(T,)``: values masked in each frame.
    """
    lo, hi = var.valid_range
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ~((values >= lo) & (values <= hi))
    masked = np.array(values, dtype=np.float32, copy=True)
    masked[bad] = np.nan
    return masked, bad.reshape(bad.shape[0], -1).sum(axis=1).astype(np.int64)


def check_range(values: np.ndarray, var: VariableSpec, path: str) -> None:
    """``ValueError`` when a finite value lies outside ``var.valid_range``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if lo < var.valid_range[0] or hi > var.valid_range[1]:
        raise ValueError(
            f"{path}: {var.name} spans [{lo:.4g}, {hi:.4g}] {var.units}, outside the valid "
            f"range {list(var.valid_range)}"
        )


# --- the dataset ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _grid_coords(grid: GridSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y, x = grid.y_coords(), grid.x_coords()
    xx, yy = np.meshgrid(x, y)  # (H, W) each
    if grid.is_geographic:
        lon, lat = xx, yy
    else:
        to_ll = pyproj.Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform(xx, yy)
    return y, x, np.asarray(lat), np.asarray(lon)


def grid_dataset(grid: GridSpec) -> xr.Dataset:
    """Coords ``y``, ``x``, 2-D ``latitude``/``longitude`` and the scalar ``crs`` variable."""
    y, x, lat, lon = _grid_coords(grid)
    names = voc.GEOGRAPHIC_STANDARD_NAMES if grid.is_geographic else voc.PROJECTED_STANDARD_NAMES
    xy_units = (
        {"y": "degrees_north", "x": "degrees_east"}
        if grid.is_geographic
        else {
            "y": "m",
            "x": "m",
        }
    )
    coords = {
        voc.Y: (voc.Y, y, {"standard_name": names[voc.Y], "units": xy_units["y"], "axis": "Y"}),
        voc.X: (voc.X, x, {"standard_name": names[voc.X], "units": xy_units["x"], "axis": "X"}),
        voc.LATITUDE: (
            (voc.Y, voc.X),
            lat.copy(),
            {"standard_name": "latitude", "units": "degrees_north"},
        ),
        voc.LONGITUDE: (
            (voc.Y, voc.X),
            lon.copy(),
            {"standard_name": "longitude", "units": "degrees_east"},
        ),
    }
    crs_attrs = cf_grid_mapping(grid.pyproj_crs)
    return xr.Dataset({voc.CRS: ((), np.int32(0), crs_attrs)}, coords=coords)


def frames_to_dataset(spec: SourceSpec, frames: Sequence[Frames]) -> xr.Dataset:
    """Concatenate per-file frames into the contract dataset (see :mod:`pipelines.readers`).

    Files are ordered by their first time; the result's times must then strictly increase
    (a file overlapping another, or a repeated time, is an error naming both files).
    """
    if not frames:
        raise ValueError(f"source {spec.name!r}: no frames to read")
    ordered = sorted(frames, key=lambda f: f.times[0] if len(f.times) else np.datetime64("NaT"))
    times = np.concatenate([f.times.astype("datetime64[ns]") for f in ordered])
    owners = [f.path for f in ordered for _ in range(len(f.times))]
    check_times(times, owners)
    ds = grid_dataset(spec.grid)
    for var in spec.variables:
        stacked = np.concatenate([np.asarray(f.data[var.name], dtype=np.float32) for f in ordered])
        notes = sorted({f.notes.get(var.name, "") for f in ordered} - {""})
        attrs = {"units": var.units, "grid_mapping": voc.CRS}
        if var.standard_name:
            attrs["standard_name"] = var.standard_name
        if var.long_name:
            attrs["long_name"] = var.long_name
        attrs["valid_min"], attrs["valid_max"] = var.valid_range
        if notes:
            attrs["conversion"] = "; ".join(notes)
        if spec.reader_options.out_of_range == "mask":
            attrs["qc_out_of_range"] = (
                f"mask: values outside [{var.valid_range[0]:g}, {var.valid_range[1]:g}] set to NaN"
            )
        ds[var.name] = (voc.OBSERVATION_DIMS, stacked, attrs)
    ds = ds.assign_coords({voc.TIME: (voc.TIME, times, {"standard_name": "time"})})
    ds.attrs = {
        "Conventions": "CF-1.10",
        "source_name": spec.name,
        "time_step": spec.time_step,
        "source_files": len(frames),
    }
    return ds


def validate_frames(frames: Frames, spec: SourceSpec) -> Frames:
    """Check one file's frames against ``spec``: variables, dtype, shape, times, ranges.

    Values outside a variable's ``valid_range`` are an error (``reader_options.out_of_range:
    fail``, the default) or set to NaN and counted in the returned ``qc_masked`` (``mask``).
    """
    path = frames.path
    missing = [n for n in spec.variable_names if n not in frames.data]
    if missing:
        raise ValueError(f"{path}: reader returned no {missing} for source {spec.name!r}")
    times = np.asarray(frames.times)
    if times.ndim != 1 or not np.issubdtype(times.dtype, np.datetime64) or np.isnat(times).any():
        raise ValueError(f"{path}: times must be a 1-D datetime64 array without NaT")
    check_times(times, [path] * len(times))
    for var in spec.variables:
        values = np.asarray(frames.data[var.name])
        if values.shape[0] != len(times) or values.ndim != 3:
            raise ValueError(
                f"{path}: {var.name} has shape {values.shape}, expected ({len(times)}, H, W)"
            )
        check_shape(values.shape, spec, path)
        if spec.reader_options.out_of_range == "fail":
            check_range(values, var, path)
    if spec.reader_options.out_of_range == "mask":
        data, counts = dict(frames.data), {}
        for var in spec.variables:
            data[var.name], counts[var.name] = mask_out_of_range(np.asarray(data[var.name]), var)
            if counts[var.name].any():
                log.info("%s: %s: %d values outside %s masked", path, var.name,
                         int(counts[var.name].sum()), list(var.valid_range))  # fmt: skip
        frames = replace(frames, data=data, qc_masked=counts)
    return frames
