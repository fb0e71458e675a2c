"""GRIB1/GRIB2 fields (reanalysis, NWP, radar mosaics) through cfgrib + ecCodes.

The file is opened with ``xarray.open_dataset(engine="cfgrib")`` (no index file written);
``reader_options.filter_by_keys`` is passed to cfgrib to select one hypercube (e.g.
``{typeOfLevel: surface}``). A catalog variable's ``source`` is the cfgrib variable name (``t2m``).
The frame time is ``valid_time`` (analysis time + step); a file holding several steps per
analysis time must be split with ``filter_by_keys``. Regular lat/lon grids (``regular_ll``)
are compared with a geographic catalog grid point by point (rows flipped when stored
south-up); GRIB missing values become NaN (cfgrib). Units come from the GRIB ``units`` and
must be known (see :data:`pipelines.readers.cf_netcdf.CF_UNITS`).
"""

from __future__ import annotations

import numpy as np
import pyproj  # noqa: F401 - load PROJ before cfgrib loads ecCodes (eckitlib bundles a libproj)
import xarray as xr

from data_catalog.spec import SourceSpec
from pipelines.readers import READERS
from pipelines.readers.base import Frames, local_copy
from pipelines.readers.cf_netcdf import frames_from_dataarrays

SUPPORTED_GRIDS = ("regular_ll",)


@READERS.register("grib")
def read_grib(path: str, spec: SourceSpec) -> Frames:
    """Read the catalog variables of one GRIB file (see the module docstring)."""
    local = local_copy(path)
    kwargs = {"indexpath": ""}
    if "filter_by_keys" in spec.reader_options:
        kwargs["filter_by_keys"] = dict(spec.reader_options["filter_by_keys"])
    try:
        ds = xr.open_dataset(local, engine="cfgrib", backend_kwargs=kwargs, decode_timedelta=True)
        ds = ds.load()
    except Exception as error:  # cfgrib/ecCodes raise many types for a bad file
        raise ValueError(
            f"{path}: not a readable GRIB file (corrupt or truncated?): {error}"
        ) from None
    if not ds.data_vars:
        raise ValueError(f"{path}: no GRIB messages could be decoded")
    for name, da in ds.data_vars.items():
        grid_type = da.attrs.get("GRIB_gridType")
        if grid_type not in SUPPORTED_GRIDS:
            raise ValueError(
                f"{path}: variable {name!r} is on a {grid_type!r} grid; supported: "
                f"{list(SUPPORTED_GRIDS)}"
            )
        if spec.grid.is_geographic is False:
            raise ValueError(
                f"{path}: {grid_type} grid is geographic but source {spec.name!r} has the "
                f"projected CRS {spec.grid.crs!r}"
            )
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
    ds.coords["longitude"].attrs.setdefault("standard_name", "longitude")
    ds.coords["latitude"].attrs.setdefault("standard_name", "latitude")
    times = ds["time"].values.astype("datetime64[ns]")
    if np.isnat(times).any():
        raise ValueError(f"{path}: GRIB messages without a valid time")
    return frames_from_dataarrays(ds, spec, path)
