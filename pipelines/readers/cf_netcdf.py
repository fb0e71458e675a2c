"""Generic CF-netCDF gridded fields (radar/precipitation grids, reanalysis) through xarray.

A catalog variable's ``source`` names the netCDF variable. It must have a time dimension and two
spatial dimensions identified by CF (``axis`` X/Y, or ``standard_name``
``projection_x/y_coordinate`` or ``longitude``/``latitude`` on the 1-D coords). xarray applies
``_FillValue``/``missing_value`` (→ NaN) and ``scale_factor``/``add_offset``. The CRS comes from
the variable's ``grid_mapping`` variable (``pyproj.CRS.from_cf``) and is compared with the
catalog's; 1-D ``longitude``/``latitude`` coords without a grid mapping are taken as geographic.
The file's x/y coordinates (km are taken to m) must equal the catalog grid's pixel centres; a
grid stored south-up is flipped to the catalog's ``y_origin`` (said in the ``conversion`` attr).
Units are read from the variable's ``units`` attr (:data:`CF_UNITS`; ``reader_options.units``
overrides it); unknown units are an error. Times (:func:`frame_times`): the datetime coordinate
along the variable's one non-spatial dim (``time``, or ``valid_time`` as in new CDS ERA5 files),
a scalar datetime coordinate, a datetime data variable (e.g. a 0-d ``valid_time`` in seconds since
1970; ``reader_options.time_variable`` names it), or the file name (``time_source``); taken as
UTC. A file may hold several times.

Reader options (``docs/readers.md``): the value options shared with GRIB (:data:`VALUE_OPTIONS`:
``units``, ``scale``/``offset``, ``nodata``/``undetect`` sentinels, ``accumulation_minutes``
for ``kg m-2``/``mm`` over N minutes → ``mm/h``, ``longitude: wrap_180`` for 0..360 grids,
``zr_a``/``zr_b``), ``time_source``/``time_variable`` and ``coverage_variable`` (a variable
whose 0 / missing cells are outside the instrument's range → NaN, for files writing 0 there).
Satellite precipitation products in CF-netCDF (e.g. NWC SAF CRR: ``crr`` in mm/h on ``nx``/
``ny`` metres of a ``geos`` projection, time in the file name) read the same way.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from data_catalog.catalog import parse_time
from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import (
    Frames,
    check_crs,
    check_name_time,
    decode_values,
    local_copy,
    native_io,
)
from pipelines.readers.limits import check_declared

log = logging.getLogger(__name__)

#: CF ``units`` strings -> (catalog units, factor to multiply by).
CF_UNITS: dict[str, tuple[str, float]] = {
    "mm/h": ("mm/h", 1.0),
    "mm h-1": ("mm/h", 1.0),
    "mm hr-1": ("mm/h", 1.0),
    "mm/hr": ("mm/h", 1.0),
    "mm h**-1": ("mm/h", 1.0),
    "kg m-2 s-1": ("mm/h", 3600.0),  # 1 kg m-2 of water = 1 mm
    "kg m**-2 s**-1": ("mm/h", 3600.0),
    "m s-1": ("mm/h", 3.6e6),
    "mm": ("mm", 1.0),
    "kg m-2": ("mm", 1.0),
    "kg m**-2": ("mm", 1.0),
    "m": ("mm", 1000.0),
    "dBZ": ("dBZ", 1.0),
    "dbz": ("dBZ", 1.0),
    "K": ("K", 1.0),
    "degC": ("degC", 1.0),
    "Celsius": ("degC", 1.0),
    "celsius": ("degC", 1.0),
    "count": ("count", 1.0),
    "1": ("1", 1.0),
}
_X_NAMES = ("projection_x_coordinate", "longitude", "grid_longitude")
_Y_NAMES = ("projection_y_coordinate", "latitude", "grid_latitude")
_LENGTH_TO_M = {"m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "km": 1000.0}


def physical_units(units: str, path: str, name: str) -> tuple[str, float]:
    """``(catalog units, factor)`` for a CF ``units`` string; ``ValueError`` if unknown."""
    key = str(units).strip()
    if key not in CF_UNITS:
        raise ValueError(
            f"{path}: unknown units {units!r} of variable {name!r}; known: {sorted(CF_UNITS)}"
        )
    return CF_UNITS[key]


def _coord(da: xr.DataArray, name: str) -> xr.DataArray | None:
    """The coordinate variable ``name`` of ``da``, or None (``coords.get`` would invent a
    0..n-1 index for a dimension without coordinates)."""
    return da.coords[name] if name in da.coords else None


def _spatial_dim(da: xr.DataArray, axis: str, names: tuple[str, ...], path: str) -> str:
    for dim in da.dims:
        coord = _coord(da, dim)
        attrs = coord.attrs if coord is not None else {}
        if attrs.get("axis", "").upper() == axis or attrs.get("standard_name") in names:
            return str(dim)
    guesses = {"X": ("x", "lon", "longitude"), "Y": ("y", "lat", "latitude")}[axis]
    for dim in da.dims:
        if str(dim).lower() in guesses:
            return str(dim)
    raise ValueError(f"{path}: variable {da.name!r} has no {axis} dimension among {da.dims}")


def file_crs(ds: xr.Dataset, da: xr.DataArray, geographic: bool, path: str) -> pyproj.CRS | None:
    """The CRS the file declares for ``da`` (``None`` if it declares none)."""
    mapping = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if mapping:
        if mapping not in ds.variables:
            raise ValueError(f"{path}: grid_mapping variable {mapping!r} is missing")
        try:
            return pyproj.CRS.from_cf(dict(ds[mapping].attrs))
        except pyproj.exceptions.CRSError as error:
            raise ValueError(f"{path}: unreadable grid mapping {mapping!r}: {error}") from None
    return pyproj.CRS("EPSG:4326") if geographic else None


def _is_time(coord: xr.DataArray) -> bool:
    return bool(np.issubdtype(coord.dtype, np.datetime64))


def _time_candidates(ds: xr.Dataset, da: xr.DataArray, tdims: list[str]) -> list[str]:
    """Datetime coordinates of ``da`` along its time dim (or scalar), else such data variables."""
    shape = (tdims[0],) if tdims else ()
    for pool in (da.coords, ds.data_vars):
        names = [str(n) for n in pool if pool[n].dims == shape and _is_time(pool[n])]
        if names:
            return names
    return []


def frame_times(
    ds: xr.Dataset, da: xr.DataArray, tdims: list[str], spec: SourceSpec, path: str
) -> tuple[np.ndarray, str]:
    """Frame times of ``da`` (``datetime64[ns]``, shape ``(T,)``) and where they came from
    (``""`` for a coordinate, the usual case, else a note for the ``conversion`` attr).

    ``reader_options.time_source`` decides (:data:`data_catalog.spec.TIME_SOURCES`):
    ``content`` reads ``reader_options.time_variable`` (a coordinate or a data variable, e.g. a
    0-d ``valid_time`` in seconds since 1970, decoded by its CF ``units``) or, unset, the one
    datetime coordinate along the non-spatial dim (``time``, ``valid_time``...) or scalar, or
    failing that the one such datetime data variable; ``file_name`` parses the path pattern's
    time codes (one frame); ``auto`` (default) is ``content`` when the file has a time, else the
    file name. A one-frame file's content time is checked against its name.
    """
    options = spec.reader_options
    n_frames = da.sizes[tdims[0]] if tdims else 1
    named = parse_time(spec.path, path)
    if options.time_source != "file_name":
        name = options.time_variable
        if name is not None:
            if name not in ds.variables:
                raise ValueError(
                    f"{path}: no variable {name!r} (reader_options.time_variable); has "
                    f"{sorted(map(str, ds.variables))}"
                )
            if not _is_time(ds[name]):
                raise ValueError(
                    f"{path}: variable {name!r} (reader_options.time_variable) is not a time: "
                    f"units {ds[name].attrs.get('units', '<none>')!r}, want CF units such as "
                    "'seconds since 1970-01-01'"
                )
            if ds[name].size != n_frames:
                raise ValueError(
                    f"{path}: time variable {name!r} has {ds[name].size} values for "
                    f"{n_frames} frame(s) of {da.name!r}"
                )
            found = [str(name)]
        else:
            found = _time_candidates(ds, da, tdims)
        if len(found) > 1:
            raise ValueError(
                f"{path}: variable {da.name!r} has several datetime variables {found}; set "
                "reader_options.time_variable to one"
            )
        if found:
            times = np.atleast_1d(ds[found[0]].values).astype("datetime64[ns]")
            if n_frames == 1:
                check_name_time(pd.Timestamp(times[0]), spec, path)
            from_coord = found[0] in da.coords
            return times, "" if from_coord else f"time from data variable {found[0]!r}"
        if options.time_source == "content" or named is None:
            raise ValueError(
                f"{path}: variable {da.name!r} has no datetime coordinate "
                f"{'along ' + repr(tdims[0]) if tdims else '(scalar)'} nor a datetime data "
                "variable, and the path pattern gives no time; set reader_options.time_variable"
            )
    if named is None:
        raise ValueError(
            f"{path}: reader_options.time_source is 'file_name' but the path pattern "
            f"{spec.path!r} carries no time codes"
        )
    if n_frames != 1:
        raise ValueError(
            f"{path}: the file name gives one time but {da.name!r} has {n_frames} frames"
        )
    return np.array([named.to_datetime64()], dtype="datetime64[ns]"), "time from the file name"


def wrap_longitudes(da: xr.DataArray, xdim: str, path: str) -> xr.DataArray:
    """``da`` with 0..360 longitudes along ``xdim`` taken to -180..180 and its columns
    reordered so that longitude increases (``reader_options.longitude: wrap_180``)."""
    coord = _coord(da, xdim)
    if coord is None:
        raise ValueError(f"{path}: longitude wrap_180 needs longitude values along {xdim!r}")
    lon = (coord.values.astype(np.float64) + 180.0) % 360.0 - 180.0
    order = np.argsort(lon, kind="stable")
    return da.isel({xdim: order}).assign_coords({xdim: (xdim, lon[order], coord.attrs)})


def _outside_coverage(ds: xr.Dataset, da: xr.DataArray, name: str, path: str) -> xr.DataArray:
    """True where ``reader_options.coverage_variable`` is 0, false or missing, as ``da``."""
    if name not in ds.variables:
        raise ValueError(
            f"{path}: no coverage variable {name!r} (reader_options.coverage_variable); has "
            f"{sorted(map(str, ds.data_vars))}"
        )
    cov = ds[name]
    extra = [d for d in cov.dims if d not in da.dims]
    if extra:
        raise ValueError(
            f"{path}: coverage variable {name!r} has dims {cov.dims} not all in {da.dims}"
        )
    outside = cov.isnull() | (cov == 0)
    return outside.broadcast_like(da).transpose(*da.dims)


def frames_from_dataarrays(ds: xr.Dataset, spec: SourceSpec, path: str) -> Frames:
    """Frames from the ``source`` variables of an open dataset (shared with the GRIB reader).

    Each variable needs two spatial dims and at most one other dim carrying the times. The
    shared value options (``units``, ``scale``/``offset``, ``nodata``/``undetect``,
    ``accumulation_minutes``) go through :func:`pipelines.readers.base.decode_values`.
    """
    options = spec.reader_options
    data, notes, times = {}, {}, None
    for var in spec.variables:
        if var.source not in ds.data_vars:
            raise ValueError(
                f"{path}: no variable {var.source!r} (for {var.name!r}); has {list(ds.data_vars)}"
            )
        da = ds[var.source]
        xdim = _spatial_dim(da, "X", _X_NAMES, path)
        ydim = _spatial_dim(da, "Y", _Y_NAMES, path)
        tdims = [str(d) for d in da.dims if d not in (xdim, ydim)]
        if len(tdims) > 1:
            raise ValueError(
                f"{path}: variable {var.source!r} has dims {da.dims}; expected one time dim "
                "and two spatial dims (select the others first)"
            )
        frame_time, time_note = frame_times(ds, da, tdims, spec, path)
        steps = [time_note] if time_note else []
        outside = None
        if options.coverage_variable is not None:
            outside = _outside_coverage(ds, da, options.coverage_variable, path)
        if options.longitude == "wrap_180":
            da = wrap_longitudes(da, xdim, path)
            if outside is not None:  # same coords, so the same column order
                outside = wrap_longitudes(outside, xdim, path)
            steps.append("longitudes wrapped to -180..180")
        if not tdims:  # one time: add a leading frame dim
            da = da.expand_dims("_time")
            outside = None if outside is None else outside.expand_dims("_time")
            tdims = ["_time"]
        da = da.transpose(tdims[0], ydim, xdim)
        if times is not None and not np.array_equal(times, frame_time):
            raise ValueError(f"{path}: variables have different times")
        times = frame_time
        note = _check_coords(ds, da, xdim, ydim, spec, path)
        file_units = options.units or da.attrs.get("units", "<none>")
        units, factor = physical_units(file_units, path, var.source)
        raw = da.values
        if note.startswith("flipped"):
            raw = raw[:, ::-1, :]  # (T, H, W) rows reversed to the catalog's y order
        converted, conv = decode_values(raw, units, var, path, options, factor=factor)
        if outside is not None:
            mask = outside.transpose(tdims[0], ydim, xdim).values
            converted[mask[:, ::-1, :] if note.startswith("flipped") else mask] = np.nan
            steps.append(f"outside coverage ({options.coverage_variable!r} = 0) -> NaN")
        data[var.name] = converted
        if options.units:
            steps.append(f"units {options.units!r} (reader_options)")
        notes[var.name] = "; ".join(p for p in (*steps, note, conv) if p)
    return Frames(path, times, data, notes)


def _check_coords(
    ds: xr.Dataset, da: xr.DataArray, xdim: str, ydim: str, spec: SourceSpec, path: str
) -> str:
    """Check the file's CRS and x/y coords against the catalog grid; say if rows are flipped."""
    grid = spec.grid
    if da.shape[1:] != grid.shape:
        raise ValueError(
            f"{path}: grid shape {da.shape[1:]} != {grid.shape} of source {spec.name!r}"
        )
    xc = _coord(da, xdim)
    geographic = xc is not None and (
        xc.attrs.get("standard_name") == "longitude"
        or str(xc.attrs.get("units", "")).startswith("degree")
    )
    crs = file_crs(ds, da, geographic, path)
    if crs is not None:
        check_crs(crs, spec, path)
    if xc is None or _coord(da, ydim) is None:
        return ""
    scale = 1.0
    if not grid.is_geographic:
        unit = str(xc.attrs.get("units", "m")).strip()
        if unit not in _LENGTH_TO_M:
            raise ValueError(f"{path}: unknown x/y units {unit!r}; known: {sorted(_LENGTH_TO_M)}")
        scale = _LENGTH_TO_M[unit]
    x = xc.values.astype(float) * scale
    y = da.coords[ydim].values.astype(float) * scale
    tol = 0.01 * min(grid.pixel_size)
    if not np.allclose(x, grid.x_coords(), atol=tol):
        hint = ""
        if grid.is_geographic and spec.reader_options.longitude == "as_stored":
            wrapped = np.sort((x + 180.0) % 360.0 - 180.0)
            if wrapped.shape == grid.x_coords().shape and np.allclose(wrapped, grid.x_coords()):
                hint = " (0..360 longitudes: set reader_options.longitude: wrap_180)"
        raise ValueError(
            f"{path}: x coordinates differ from the grid of source {spec.name!r}{hint}"
        )
    if np.allclose(y, grid.y_coords(), atol=tol):
        return ""
    if np.allclose(y[::-1], grid.y_coords(), atol=tol):
        return f"flipped rows to y_origin={grid.y_origin}"
    raise ValueError(f"{path}: y coordinates differ from the grid of source {spec.name!r}")


#: The generic value options, shared with the GRIB reader.
VALUE_OPTIONS = ("units", "scale", "offset", "nodata", "undetect", "accumulation_minutes",
                 "longitude", "zr_a", "zr_b", "undetect_dbz")  # fmt: skip


@register_reader(
    "cf-netcdf", options=("time_source", "time_variable", "coverage_variable", *VALUE_OPTIONS)
)
def read_cf_netcdf(path: str, spec: SourceSpec) -> Frames:
    """Read the catalog variables of one CF-netCDF file (see the module docstring)."""
    local = local_copy(path)
    with native_io():  # netCDF-C/HDF5 are not thread-safe: open + decode under the lock
        # Times are decoded by decode_checked_times (an undecodable time is an error naming the
        # file, not a warning and a silent fall back to the file name's time).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = xr.open_dataset(
                    local, engine="netcdf4", decode_times=False, decode_timedelta=False
                )
            except (OSError, ValueError, RuntimeError) as error:
                raise ValueError(
                    f"{path}: not a readable netCDF file (corrupt or truncated?): {error}"
                ) from None
            with ds:
                needed = checked_variables(ds, spec, path)  # shapes/dtypes before any read
                try:
                    loaded = ds[needed].load()
                except (OSError, RuntimeError) as error:
                    raise ValueError(
                        f"{path}: unreadable data (corrupt or truncated?): {error}"
                    ) from None
            if spec.reader_options.time_source != "file_name":
                loaded = decode_checked_times(loaded, path)
        for warning in caught:
            log.debug("%s: %s: %s", path, warning.category.__name__, warning.message)
    return frames_from_dataarrays(loaded, spec, path)


def checked_variables(ds: xr.Dataset, spec: SourceSpec, path: str) -> list[str]:
    """Names of the variables the reader needs, each checked for shape and dtype before load.

    The catalog variables must have the catalog grid's two spatial sizes (and a numeric
    dtype); they, their coordinates, grid mappings, the time and coverage variables are kept,
    the other variables are never read (a file may declare a huge one it does not need).
    """
    options = spec.reader_options
    for var in spec.variables:
        if var.source not in ds.data_vars:
            raise ValueError(
                f"{path}: no variable {var.source!r} (for {var.name!r}); has {list(ds.data_vars)}"
            )
    names = [v.source for v in spec.variables]
    for name in list(names):
        da = ds[name]
        rest = [int(n) for n in da.shape]
        for size in spec.grid.shape:  # the two spatial sizes, in any dim order
            if size in rest:
                rest.remove(size)
        if len(rest) != da.ndim - 2 or len(rest) > 1:
            check_declared(da.shape, da.dtype, spec, path, f"variable {name!r}", None)
        check_declared((*rest, *spec.grid.shape), da.dtype, spec, path, f"variable {name!r}", None)
        mapping = da.attrs.get("grid_mapping")
        if isinstance(mapping, str) and mapping in ds.variables:
            names.append(mapping)
    for extra in (options.time_variable, options.coverage_variable):
        if extra is not None and extra in ds.variables and extra not in names:
            names.append(extra)
    # Time-like data variables (a 0-d valid_time...) may carry the frame time: small, kept.
    names += [str(n) for n in ds.data_vars if ds[n].ndim <= 1 and str(n) not in names]
    return names


def decode_checked_times(ds: xr.Dataset, path: str) -> xr.Dataset:
    """Decode the CF times of ``ds`` (opened with ``decode_times=False``) to ``datetime64[ns]``.

    Raises
    ------
    ValueError
        Naming ``path``, the variable, its units and values when a time cannot be decoded or
        falls outside ``datetime64[ns]`` (years 1678 to 2261), instead of xarray's warning
        and a fall back to the file name's time.
    """
    coder = xr.coders.CFDatetimeCoder(use_cftime=False)
    for name in list(ds.variables):
        units = ds[name].attrs.get("units")
        if not isinstance(units, str) or " since " not in units:
            continue
        raw = ds[name].values
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                decoded = coder.decode(ds.variables[name], name=str(name))
                values = np.asarray(decoded.values)
            if values.dtype.kind != "M" or np.isnat(values).any():
                raise ValueError("not all values are times")
        except (ValueError, OverflowError, TypeError, Warning, pd.errors.OutOfBoundsDatetime):
            shown = np.atleast_1d(raw)[:3].tolist()
            raise ValueError(
                f"{path}: time variable {name!r} cannot be decoded: units {units!r}, values "
                f"{shown}{'...' if np.size(raw) > 3 else ''}; expected CF units like 'seconds "
                "since 1970-01-01' and times in years 1678 to 2261 (fix the file, or set "
                "reader_options.time_source: file_name to time it by its name)"
            ) from None
        if name in ds.indexes or name in ds.coords:
            ds = ds.assign_coords({name: decoded})
        else:
            ds[name] = decoded
    return ds
