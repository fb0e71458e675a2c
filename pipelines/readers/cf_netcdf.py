"""Generic CF-netCDF gridded fields (radar/precipitation grids, reanalysis) through xarray.

A catalog variable's ``source`` names the netCDF variable. It must have a time dimension and two
spatial dimensions identified by CF (``axis`` X/Y, or ``standard_name``
``projection_x/y_coordinate`` or ``longitude``/``latitude`` on the 1-D coords). xarray applies
``_FillValue``/``missing_value`` (→ NaN) and ``scale_factor``/``add_offset``. The CRS comes from
the variable's ``grid_mapping`` variable (``pyproj.CRS.from_cf``) and is compared with the
catalog's; 1-D ``longitude``/``latitude`` coords without a grid mapping are taken as geographic.
The file's x/y coordinates (km are taken to m) must equal the catalog grid's pixel centres; a
grid stored south-up is flipped to the catalog's ``y_origin`` (said in the ``conversion`` attr).
Units are read from the variable's ``units`` attr (:data:`CF_UNITS`); unknown units are an error.
Times are decoded by xarray and taken as UTC: the datetime coordinate along the variable's one
non-spatial dim (``time``, or ``valid_time`` as in new CDS ERA5 files), a scalar datetime
coordinate, or ``reader_options.time_coord``. A file may hold several times.
"""

from __future__ import annotations

import numpy as np
import pyproj
import xarray as xr

from data_catalog.spec import SourceSpec
from pipelines.readers import READERS
from pipelines.readers.base import Frames, check_crs, convert_units, local_copy

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


def _time_coord(da: xr.DataArray, tdims: list[str], spec: SourceSpec, path: str) -> str:
    """Name of the datetime coordinate giving ``da``'s frame times.

    ``reader_options.time_coord`` names it; otherwise it is the datetime coordinate along the
    one non-spatial dim (``time``, ``valid_time``...), or the one scalar datetime coordinate.
    """
    wanted = spec.reader_options.get("time_coord")
    if wanted is not None:
        if wanted not in da.coords or not _is_time(da.coords[wanted]):
            raise ValueError(f"{path}: no datetime coordinate {wanted!r} (reader_options)")
        return str(wanted)
    if tdims:
        shape = (tdims[0],)
        names = [str(c) for c in da.coords if da.coords[c].dims == shape and _is_time(da.coords[c])]
    else:
        names = [str(c) for c in da.coords if da.coords[c].ndim == 0 and _is_time(da.coords[c])]
    if len(names) != 1:
        raise ValueError(
            f"{path}: variable {da.name!r} needs exactly one datetime coordinate "
            f"{'along ' + repr(tdims[0]) if tdims else '(scalar)'}, found {names}; set "
            "reader_options.time_coord"
        )
    return names[0]


def frames_from_dataarrays(ds: xr.Dataset, spec: SourceSpec, path: str) -> Frames:
    """Frames from the ``source`` variables of an open dataset (shared with the GRIB reader).

    Each variable needs two spatial dims and at most one other dim carrying the times.
    """
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
        time_name = _time_coord(da, tdims, spec, path)
        frame_times = np.atleast_1d(da.coords[time_name].values).astype("datetime64[ns]")
        if not tdims:  # one time as a scalar coordinate
            da = da.drop_vars(time_name).expand_dims("_time")
            tdims = ["_time"]
        da = da.transpose(tdims[0], ydim, xdim)
        if times is not None and not np.array_equal(times, frame_times):
            raise ValueError(f"{path}: variables have different times")
        times = frame_times
        note = _check_coords(ds, da, xdim, ydim, spec, path)
        units, factor = physical_units(da.attrs.get("units", "<none>"), path, var.source)
        values = da.values.astype(np.float64) * factor
        if note.startswith("flipped"):
            values = values[:, ::-1, :]  # (T, H, W) rows reversed to the catalog's y order
        converted, conv = convert_units(values, units, var, path, spec.reader_options)
        data[var.name] = converted
        notes[var.name] = "; ".join(
            p for p in (note, f"x {factor:g}" if factor != 1 else "", conv) if p
        )
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
        raise ValueError(f"{path}: x coordinates differ from the grid of source {spec.name!r}")
    if np.allclose(y, grid.y_coords(), atol=tol):
        return ""
    if np.allclose(y[::-1], grid.y_coords(), atol=tol):
        return f"flipped rows to y_origin={grid.y_origin}"
    raise ValueError(f"{path}: y coordinates differ from the grid of source {spec.name!r}")


@READERS.register("cf-netcdf")
def read_cf_netcdf(path: str, spec: SourceSpec) -> Frames:
    """Read the catalog variables of one CF-netCDF file (see the module docstring)."""
    local = local_copy(path)
    try:
        ds = xr.open_dataset(local, engine="netcdf4", decode_timedelta=False)
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{path}: not a readable netCDF file (corrupt or truncated?): {error}"
        ) from None
    with ds:
        try:
            return frames_from_dataarrays(ds.load(), spec, path)
        except (OSError, RuntimeError) as error:
            raise ValueError(f"{path}: unreadable data (corrupt or truncated?): {error}") from None
