"""Validate decoded frames against the catalog spec and the store, then write them by region.

Validation (:func:`validate_frames`, :func:`check_against_store`) runs on every frame of an
ingest before the first byte is written; anything wrong raises :class:`IngestError` naming the
file and the problem:

- a variable of the spec is missing, or has dims other than ``(time, y, x)``;
- ``units`` missing or different from the spec's (no unit conversion happens here: readers
  return the spec's physical units);
- times that are not datetimes, NaT, duplicated or not strictly increasing, or that disagree
  with the time in the file name;
- grid shape, ``y``/``x`` coordinates or CRS different from the spec's grid (and from the
  existing store's); 2-D ``latitude``/``longitude`` missing;
- infinite values, or finite values outside the variable's ``valid_range`` (NaN = no data is
  allowed).

Writing (:func:`write_region`) puts a batch of frames at the indices its timestamps
determine. The region is the batch's span rounded out to whole time chunks; slots of the region
that the batch does not cover keep what the store already holds (read back and merged), so
overlapping or repeated ingests never lose or duplicate a frame. Workers write the data
variables of disjoint regions (whole chunks gathered from the decoded frames, each replaced
atomically: :mod:`pipelines.ingest.chunks`); the client then sets
``frame_present`` (:func:`mark_present`): a crash in between leaves frames marked absent, and
the retry rewrites them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import xarray as xr
import zarr

from data_catalog import vocabulary as voc
from data_catalog.crs import crs_label
from data_catalog.spec import SourceSpec, VariableSpec
from pipelines.ingest.chunks import Check, ChunkWriter
from pipelines.ingest.store import FRAME_PRESENT, StoreLayout

log = logging.getLogger(__name__)

DIMS = voc.OBSERVATION_DIMS
COORD_RTOL = 1e-6
"""``y``/``x`` must match the spec's pixel centres to 1e-6 of a pixel (float32 round-off)."""


class IngestError(ValueError):
    """Bad input: the message names the file and what is wrong with it."""


def crs_of(ds: xr.Dataset, label: str) -> pyproj.CRS:
    """The CRS recorded in the scalar ``crs`` variable of ``ds`` (``crs_wkt`` or CF attrs)."""
    if voc.CRS not in ds.variables:
        raise IngestError(f"{label}: no scalar {voc.CRS!r} grid-mapping variable")
    attrs = ds[voc.CRS].attrs
    try:
        if "crs_wkt" in attrs:
            return pyproj.CRS.from_wkt(attrs["crs_wkt"])
        if "spatial_ref" in attrs:
            return pyproj.CRS.from_wkt(attrs["spatial_ref"])
        return pyproj.CRS.from_cf(dict(attrs))
    except pyproj.exceptions.CRSError as error:
        raise IngestError(
            f"{label}: the {voc.CRS!r} variable holds no valid CRS: {error}"
        ) from None


def _check_coords(ds: xr.Dataset, y: np.ndarray, x: np.ndarray, what: str, label: str) -> None:
    for dim, expected in ((voc.Y, y), (voc.X, x)):
        if dim not in ds.coords:
            raise IngestError(f"{label}: no {dim!r} coordinate")
        got = np.asarray(ds[dim].values, dtype="float64")
        step = abs(float(expected[1] - expected[0])) if expected.size > 1 else 1.0
        if got.shape != expected.shape or not np.allclose(
            got, expected, rtol=0, atol=COORD_RTOL * step
        ):
            worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else np.nan
            raise IngestError(
                f"{label}: {dim!r} coordinates differ from {what} (shape {got.shape} vs "
                f"{expected.shape}, largest difference {worst}); wrong grid?"
            )


def validate_frames(
    ds: xr.Dataset,
    spec: SourceSpec,
    label: str,
    expected_time: pd.Timestamp | None = None,
) -> xr.Dataset:
    """Check one reader output against ``spec``; return it ready to write.

    Parameters
    ----------
    ds : xarray.Dataset
        Reader output: data variables ``(time, y, x)`` in physical units, NaN = no data,
        coords ``time``, ``y``, ``x``, 2-D ``latitude``/``longitude``, scalar ``crs``.
    spec : SourceSpec
        The catalog source the frames belong to.
    label : str
        Names the input (file path) in error messages.
    expected_time : pandas.Timestamp, optional
        Time parsed from the file name; the file must hold exactly this time.

    Returns
    -------
    xarray.Dataset
        The spec's variables as float32 NumPy arrays ``(time, y, x)`` (other variables are
        left out), with the grid coords and ``crs``.

    Raises
    ------
    IngestError
        On any problem listed in the module docstring.
    """
    if not isinstance(ds, xr.Dataset):
        raise IngestError(f"{label}: the reader returned {type(ds).__name__}, not a Dataset")
    for var in spec.variables:
        if var.name not in ds.data_vars:
            raise IngestError(
                f"{label}: variable {var.name!r} missing; the file gave {sorted(ds.data_vars)}"
            )
        if ds[var.name].dims != DIMS:
            raise IngestError(
                f"{label}: variable {var.name!r} has dims {ds[var.name].dims}, expected {DIMS}"
            )
        units = ds[var.name].attrs.get("units")
        if units != var.units:
            raise IngestError(
                f"{label}: variable {var.name!r} has unknown units {units!r}; the catalog "
                f"declares {var.units!r}"
            )
    if voc.TIME not in ds.coords or ds[voc.TIME].ndim != 1:
        raise IngestError(f"{label}: no 1-D {voc.TIME!r} coordinate")
    shape = (ds.sizes[voc.Y], ds.sizes[voc.X])
    if shape != spec.grid.shape:
        raise IngestError(
            f"{label}: grid shape {shape} (y, x) differs from the catalog grid {spec.grid.shape}"
        )
    crs = crs_of(ds, label)
    if not crs.equals(spec.grid.pyproj_crs, ignore_axis_order=True):
        raise IngestError(
            f"{label}: CRS {crs_label(crs)!r} differs from the catalog CRS "
            f"{crs_label(spec.grid.crs)!r}"
        )
    _check_coords(ds, spec.grid.y_coords(), spec.grid.x_coords(), "the catalog grid", label)
    for name in (voc.LATITUDE, voc.LONGITUDE):
        if name not in ds.variables or ds[name].dims != (voc.Y, voc.X):
            raise IngestError(f"{label}: no 2-D {name!r}(y, x) coordinate")
    times, arrays = validate_arrays(
        ds[voc.TIME].values,
        {var.name: ds[var.name].values for var in spec.variables},
        spec,
        label,
        expected_time,
    )
    data_vars = {name: (DIMS, values, dict(ds[name].attrs)) for name, values in arrays.items()}
    coords = {
        voc.TIME: times,
        voc.Y: ds[voc.Y].variable,
        voc.X: ds[voc.X].variable,
        voc.LATITUDE: ds[voc.LATITUDE].variable,
        voc.LONGITUDE: ds[voc.LONGITUDE].variable,
    }
    out = xr.Dataset(data_vars, coords=coords)
    out[voc.CRS] = ds[voc.CRS].variable
    return out


def validate_arrays(
    times: Any,
    data: Mapping[str, Any],
    spec: SourceSpec,
    label: str,
    expected_time: pd.Timestamp | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    check_values: bool = True,
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Check decoded arrays (a reader's ``Frames``) against ``spec``.

    Parameters
    ----------
    times : array of datetime64
        Frame times, shape ``(T,)``.
    data : mapping
        Variable name -> array ``(T, H, W)`` in the spec's units, NaN = no data.
    ranges : dict, optional
        Filled with variable name -> ``(min, max)`` of the finite values (NaN if none): the
        passes the range check makes anyway.
    check_values : bool
        False skips the infinite / ``valid_range`` check (and ``ranges``): for a caller that
        checks every value itself before writing it (:func:`write_region`'s ``variables``).

    Returns
    -------
    (pandas.DatetimeIndex, dict)
        The times and the spec's variables as float32 arrays ``(T, H, W)``.

    Raises
    ------
    IngestError
        Bad times (see :func:`validate_frames`), a missing variable, wrong shape or dtype,
        infinite values or values outside ``valid_range``.
    """
    index = _check_times(np.asarray(times), label)
    if expected_time is not None and (len(index) != 1 or index[0] != expected_time):
        raise IngestError(
            f"{label}: holds times {[t.isoformat() for t in index[:3]]}, but its name says "
            f"{expected_time.isoformat()}"
        )
    out = {}
    for var in spec.variables:
        if var.name not in data:
            raise IngestError(f"{label}: variable {var.name!r} missing; got {sorted(data)}")
        values = np.asarray(data[var.name])
        if values.shape != (len(index), *spec.grid.shape):
            raise IngestError(
                f"{label}: variable {var.name!r} has shape {values.shape}, expected "
                f"{(len(index), *spec.grid.shape)} (time, y, x); wrong grid?"
            )
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
            values.dtype, np.complexfloating
        ):
            raise IngestError(f"{label}: variable {var.name!r} has dtype {values.dtype}")
        values = values.astype("float32", copy=False)  # the store's dtype (ARCHITECTURE.md)
        if check_values:
            extremes = _check_values(values, var.name, var.valid_range, var.units, label)
            if ranges is not None:
                ranges[var.name] = extremes
        out[var.name] = values
    return index, out


def _check_times(values: np.ndarray, label: str) -> pd.DatetimeIndex:
    if values.ndim != 1:
        raise IngestError(f"{label}: times must be 1-D, got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.datetime64):
        raise IngestError(f"{label}: time has dtype {values.dtype}, not datetime64")
    times = pd.DatetimeIndex(values).as_unit("ns")
    if len(times) == 1 and not times.hasnans:
        return times  # one frame per file, the common case: nothing else to check
    if times.hasnans:
        raise IngestError(f"{label}: time holds NaT")
    if times.has_duplicates:
        dup = times[times.duplicated()][0]
        raise IngestError(f"{label}: duplicate timestamp {dup.isoformat()}")
    if not times.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(times.asi8) < 0))
        raise IngestError(
            f"{label}: timestamps not increasing: {times[bad].isoformat()} is followed by "
            f"{times[bad + 1].isoformat()}"
        )
    return times


def _check_values(
    values: np.ndarray, name: str, valid_range: tuple[float, float], units: str, label: str
) -> tuple[float, float]:
    """Raise unless every value is NaN or finite inside ``valid_range``; return the
    ``(min, max)`` of the values (NaN when all are NaN)."""
    lo, hi = valid_range
    if not values.size:
        return np.nan, np.nan
    smallest = np.fmin.reduce(values, axis=None)  # NaN-skipping; NaN only if all NaN
    largest = np.fmax.reduce(values, axis=None)
    finite = np.isfinite(smallest) and np.isfinite(largest)
    if np.isnan(smallest) or (finite and lo <= smallest and largest <= hi):
        return float(smallest), float(largest)  # two passes over the data, no temporaries
    infinite = np.isinf(values)
    if infinite.any():
        raise IngestError(f"{label}: variable {name!r} holds {int(infinite.sum())} infinite values")
    with np.errstate(invalid="ignore"):
        outside = (values < lo) | (values > hi)
    bad = values[outside]
    raise IngestError(
        f"{label}: variable {name!r} has {bad.size} values outside the valid range "
        f"[{lo}, {hi}] {units} (min {float(bad.min())}, max {float(bad.max())})"
    )


def check_against_store(ds: xr.Dataset, store: xr.Dataset, label: str) -> None:
    """Check that validated frames ``ds`` fit an existing store's grid, CRS and variables.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`validate_frames`.
    store : xarray.Dataset
        The store opened with ``xr.open_zarr`` (only its coords, ``crs`` and attrs are read).
    """
    for name in ds.data_vars:
        if name == voc.CRS:
            continue
        if name not in store.data_vars:
            raise IngestError(
                f"{label}: variable {name!r} is not in the existing store "
                f"(has {sorted(store.data_vars)}); the catalog entry changed?"
            )
        if store[name].attrs.get("units") != ds[name].attrs.get("units"):
            raise IngestError(
                f"{label}: variable {name!r} has units {ds[name].attrs.get('units')!r}, the "
                f"existing store has {store[name].attrs.get('units')!r}"
            )
    crs = crs_of(ds, label)
    stored = crs_of(store, "the existing store")
    if not crs.equals(stored, ignore_axis_order=True):
        raise IngestError(
            f"{label}: CRS {crs.to_string()!r} differs from the existing store's "
            f"{stored.to_string()!r}"
        )
    _check_coords(
        ds,
        np.asarray(store[voc.Y].values, dtype="float64"),
        np.asarray(store[voc.X].values, dtype="float64"),
        "the existing store",
        label,
    )


def write_region(
    path: str,
    layout: StoreLayout,
    start: int,
    stop: int,
    index: np.ndarray,
    frames: Iterable[tuple[int, Mapping[str, np.ndarray], str]],
    keep: np.ndarray,
    variables: Sequence[VariableSpec],
) -> tuple[int, int]:
    """Write whole time chunks of the data variables (not ``frame_present``), on a worker.

    Parameters
    ----------
    path : str
        Store path; its time axis must already cover the region (see ``store.grow``).
    layout : StoreLayout
        The store's layout.
    start, stop : int
        The region ``[start, stop)`` of store indices, whole time chunks.
    index : numpy.ndarray
        Store indices of the batch's frames, shape ``(T,)`` int64.
    frames : iterable of (int, mapping, str)
        ``(store index, {variable: validated frame (H, W) float32}, file)`` for each of
        ``index``, in any order; consumed lazily (e.g. decoding file after file). A time chunk
        is written as soon as its frames are all in, while the next ones are produced. Slots of
        the region with neither a frame nor a ``keep`` index are written NaN.
    keep : numpy.ndarray
        Store indices in the region whose stored frames the batch leaves alone, shape ``(k,)``
        int64 (from ``frame_present`` as the client read it: no other task writes the region).
        They are all read back before the first chunk is written.
    variables : sequence of VariableSpec
        The catalog variables whose ``valid_range`` every chunk is checked against (infinite
        or out-of-range values raise :class:`IngestError` naming the file) on the thread that
        encodes it, before it is written: the frames need no range check of their own.

    Returns
    -------
    (int, int)
        The region ``[start, stop)``. Each chunk is replaced atomically
        (:mod:`pipelines.ingest.chunks`) and holds only validated frames and the kept ones;
        the caller marks the frames present (:func:`mark_present`) after this returns: a crash
        or an error part-way leaves them absent, and the retry rewrites them.
    """
    tc = layout.time_chunk
    if start % tc or stop % tc or stop <= start:
        raise ValueError(f"region [{start}, {stop}) is not whole time chunks of {tc}")
    group = zarr.open_group(path, mode="r+", use_consolidated=True)
    if group[voc.TIME].shape[0] < stop:
        raise ValueError(f"store {path} has {group[voc.TIME].shape[0]} frames, need {stop}")
    keep = np.asarray(keep, dtype="int64")
    index = np.asarray(index, dtype="int64")
    clash = np.intersect1d(keep, index)
    if clash.size:
        raise ValueError(f"store indices {clash} are both kept and written")
    arrays = {name: group[name] for name in layout.variables}
    stored = {  # every kept frame read before any chunk is written; (k, H, W) each
        name: array.get_orthogonal_selection((keep, slice(None), slice(None)))
        for name, array in arrays.items()
        if keep.size
    }
    check = _chunk_check(variables)
    expected = np.concatenate([index, keep])
    with ChunkWriter(arrays, start, stop, expected, check=check) as writer:
        for i, slot in enumerate(keep.tolist()):
            writer.put(slot, {name: values[i] for name, values in stored.items()}, path)
        for slot, values, label in frames:
            writer.put(slot, values, label)
    log.debug("store %s: wrote frames %d..%d", path, start, stop)
    return start, stop


def _chunk_check(variables: Sequence[VariableSpec]) -> Check:
    """The range check of :func:`validate_arrays` on a gathered chunk ``(t, y, x)``."""
    by_name = {var.name: var for var in variables}

    def check(name: str, chunk: np.ndarray, labels: Sequence[str | None]) -> None:
        var = by_name[name]
        lo, hi = var.valid_range
        smallest = np.fmin.reduce(chunk, axis=None)  # NaN-skipping, NaN only if all NaN
        largest = np.fmax.reduce(chunk, axis=None)
        if np.isnan(smallest) or (
            np.isfinite(smallest) and np.isfinite(largest) and lo <= smallest and largest <= hi
        ):
            return
        for t, label in enumerate(labels):  # find the frame: _check_values names the problem
            _check_values(chunk[t], name, var.valid_range, var.units, str(label))
        raise IngestError(f"{name}: values outside [{lo}, {hi}] in a chunk of {labels}")

    return check


def mark_present(flags: zarr.Array, present: np.ndarray, start: int, stop: int) -> None:
    """Write ``present[start:stop]`` into the store's ``frame_present`` (the client's copy).

    Called by the client after a region's data are written: a crash in between leaves the
    frames marked absent, and the retry rewrites them.

    Parameters
    ----------
    flags : zarr.Array
        The store's ``frame_present`` opened for writing (:func:`open_present`), opened once
        per ingest rather than once per region.
    present : numpy.ndarray
        The client's ``frame_present``, shape ``(T,)`` bool.
    """
    flags[start:stop] = present[start:stop]


def open_present(path: str) -> zarr.Array:
    """The ``frame_present`` array of the store at ``path``, opened for writing."""
    group = zarr.open_group(path, mode="r+", use_consolidated=True)
    array = group[FRAME_PRESENT]
    if not isinstance(array, zarr.Array):
        raise ValueError(f"store {path}: {FRAME_PRESENT!r} is a group, not an array")
    return array


def frame_present_mask(path: str) -> np.ndarray:
    """``frame_present`` of a store as a bool array ``(T,)``."""
    group = zarr.open_group(path, mode="r", use_consolidated=True)
    return np.asarray(group[FRAME_PRESENT][:], dtype=bool)


def variable_attrs(
    spec: SourceSpec, decoded: xr.Dataset | None = None
) -> Mapping[str, dict[str, Any]]:
    """CF attrs of each data variable from the catalog entry (+ the reader's ``conversion``)."""
    out = {}
    for var in spec.variables:
        attrs: dict[str, Any] = {"units": var.units, "long_name": var.long_name or var.name}
        if decoded is not None and "conversion" in decoded[var.name].attrs:
            attrs["conversion"] = str(decoded[var.name].attrs["conversion"])
        if var.standard_name:
            attrs["standard_name"] = var.standard_name
        lo, hi = var.valid_range
        if np.isfinite(lo):
            attrs["valid_min"] = lo
        if np.isfinite(hi):
            attrs["valid_max"] = hi
        out[var.name] = attrs
    return out
