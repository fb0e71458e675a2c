"""GRIB1/GRIB2 fields (reanalysis, NWP, radar mosaics) through cfgrib + ecCodes.

The file is opened with ``xarray.open_dataset(engine="cfgrib")`` (no index file written);
``reader_options.filter_by_keys`` is passed to cfgrib to select one hypercube (e.g.
``{typeOfLevel: surface}``). A catalog variable's ``source`` is the cfgrib variable name
(``t2m``, ``prate``). The frame time is ``valid_time`` (analysis time + step); a file holding
several steps per analysis time must be split with ``filter_by_keys``.

Grids: ``regular_ll`` needs a geographic catalog grid and is compared with it point by point.
Projected grids (``polar_stereographic``, ``lambert``, ``lambert_azimuthal_equal_area``,
``mercator``...) need a projected catalog grid: ecCodes' 2-D latitude/longitude of every point
are projected with the catalog CRS and must land within 1/10 pixel of the catalog's pixel
centres (this checks the projection, the earth shape and the grid at once). Either way rows
stored south-up are flipped to the catalog's order (said in the ``conversion`` attr). GRIB
missing values become NaN (cfgrib). Units come from the GRIB ``units`` and must be known
(:data:`pipelines.readers.cf_netcdf.CF_UNITS`; e.g. ``kg m**-2 s**-1`` → mm/h x 3600).

A field of a local (centre-specific) parameter table is named ``unknown`` by ecCodes, with units
``unknown``: its catalog ``source`` is ``unknown`` (select the message with ``filter_by_keys``,
e.g. ``{parameterNumber: 195}``) and ``reader_options`` state what the table says: ``units``,
``scale``/``offset``, ``nodata``/``undetect`` sentinels (e.g. ``nodata: [-3]`` for "no
coverage"). ``longitude: wrap_180`` takes a 0..360 ``regular_ll`` grid to -180..180 (columns
reordered) to match a catalog grid written in -180..180.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyproj  # load PROJ before cfgrib loads ecCodes (the eccodes wheel bundles a libproj)
import xarray as xr

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import Frames, local_copy, native_io
from pipelines.readers.cf_netcdf import VALUE_OPTIONS, frames_from_dataarrays
from pipelines.readers.limits import check_declared

GEOGRAPHIC_GRIDS = ("regular_ll",)


def _open(path: str, spec: SourceSpec) -> xr.Dataset:
    local = local_copy(path)
    kwargs: dict = {"indexpath": ""}
    if spec.reader_options.filter_by_keys is not None:
        kwargs["filter_by_keys"] = dict(spec.reader_options.filter_by_keys)
    try:
        with native_io():  # ecCodes is not thread-safe: open + decode under the lock
            ds = xr.open_dataset(
                local, engine="cfgrib", backend_kwargs=kwargs, decode_timedelta=True
            )
            with ds:
                for name, da in ds.data_vars.items():  # spatial dims last: checked before load
                    check_declared(da.shape[-2:], da.dtype, spec, path, f"GRIB {name!r}", 0)
                return ds.load()
    except ValueError as error:
        if str(error).startswith(f"{path}: grid shape"):
            raise  # the declared grid, already one line naming the file
        raise ValueError(
            f"{path}: not a readable GRIB file (corrupt or truncated?): {error}"
        ) from error
    except Exception as error:  # cfgrib/ecCodes raise many types for a bad file
        raise ValueError(
            f"{path}: not a readable GRIB file (corrupt or truncated?): {error}"
        ) from error


def _align_projected(ds: xr.Dataset, spec: SourceSpec, grid_type: str, path: str) -> tuple:
    """Check a projected GRIB grid against the catalog grid; flip rows if stored south-up."""
    grid = spec.grid
    if grid.is_geographic:
        raise ValueError(
            f"{path}: {grid_type} grid is projected but source {spec.name!r} has the "
            f"geographic CRS {grid.crs!r}"
        )
    lat = ds.coords["latitude"] if "latitude" in ds.coords else None
    lon = ds.coords["longitude"] if "longitude" in ds.coords else None
    if lat is None or lon is None or lat.dims != ("y", "x"):
        raise ValueError(f"{path}: {grid_type} grid without 2-D latitude/longitude (y, x)")
    if lat.shape != grid.shape:
        raise ValueError(f"{path}: grid shape {lat.shape} != {grid.shape} of source {spec.name!r}")
    to_map = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    px, py = to_map.transform(lon.values, lat.values)  # (H, W) each, catalog CRS units
    xc, yc = grid.x_coords()[np.newaxis, :], grid.y_coords()[:, np.newaxis]
    tol = 0.1 * min(grid.pixel_size)
    dx = np.abs(px - xc).max()
    for rows, note in ((slice(None), ""), (slice(None, None, -1), "flipped rows (south-up)")):
        dy = np.abs(py[rows] - yc).max()
        if dx <= tol and dy <= tol:
            return ds.isel(y=rows).drop_vars(["latitude", "longitude"]), note
    raise ValueError(
        f"{path}: the {grid_type} grid does not match the grid/CRS {grid.crs!r} of source "
        f"{spec.name!r} (points off by up to {max(dx, np.abs(py - yc).max()):.4g} m)"
    )


@register_reader("grib", options=("filter_by_keys", *VALUE_OPTIONS))
def read_grib(path: str, spec: SourceSpec) -> Frames:
    """Read the catalog variables of one GRIB file (see the module docstring)."""
    ds = _open(path, spec)
    if not ds.data_vars:
        raise ValueError(f"{path}: no GRIB messages could be decoded")
    grid_types = {str(da.attrs.get("GRIB_gridType")) for da in ds.data_vars.values()}
    if len(grid_types) != 1:
        raise ValueError(f"{path}: variables on several grids {sorted(grid_types)}")
    grid_type = grid_types.pop()
    note = ""
    if grid_type in GEOGRAPHIC_GRIDS:
        if not spec.grid.is_geographic:
            raise ValueError(
                f"{path}: {grid_type} grid is geographic but source {spec.name!r} has the "
                f"projected CRS {spec.grid.crs!r}"
            )
        ds.coords["longitude"].attrs.setdefault("standard_name", "longitude")
        ds.coords["latitude"].attrs.setdefault("standard_name", "latitude")
    else:
        ds, note = _align_projected(ds, spec, grid_type, path)
    if "step" in ds.dims:
        raise ValueError(f"{path}: several forecast steps per time; select one with filter_by_keys")
    if "valid_time" not in ds.coords:
        raise ValueError(f"{path}: no valid_time in the GRIB messages")
    # valid_time (analysis time + step) is the time the field is valid at: the time dim.
    if "time" in ds.dims:
        ds = ds.swap_dims({"time": "valid_time"})
    ds = ds.drop_vars("time", errors="ignore").rename({"valid_time": "time"})
    if ds["time"].ndim == 0:
        ds = ds.expand_dims("time")
    for name in ds.data_vars:
        ds[name].attrs.pop("grid_mapping", None)
    if np.isnat(ds["time"].values).any():
        raise ValueError(f"{path}: GRIB messages without a valid time")
    frames = frames_from_dataarrays(ds, spec, path)
    if note:
        notes = {name: f"{note}; {text}" for name, text in frames.notes.items()}
        frames = replace(frames, notes=notes)
    return frames
