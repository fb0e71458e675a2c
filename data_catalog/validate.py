"""Check an ``xarray.Dataset`` (a reader's output or an opened observation store) against its
catalog spec: the vocabulary's dims, variables, units, dtype, grid coords, CRS and times.

``validate_dataset(ds, spec)`` collects every problem and raises one ``ValueError`` listing
them, each naming the variable or coordinate and the expected value.
"""

from __future__ import annotations

import numpy as np
import pyproj
import xarray as xr

from data_catalog import vocabulary as voc
from data_catalog.crs import crs_label
from data_catalog.spec import SourceSpec


def dataset_problems(
    ds: xr.Dataset, spec: SourceSpec, regular_time: bool = False, where: str = "dataset"
) -> list[str]:
    """Everything in ``ds`` that breaks the observation contract for ``spec`` (empty: valid).

    Parameters
    ----------
    ds : xarray.Dataset
        Dims ``(time, y, x)``; e.g. ``read_source_frames(...)`` or ``xr.open_zarr(store)``.
    spec : SourceSpec
        The catalog source it should follow.
    regular_time : bool
        Also require ``time`` to step exactly by ``spec.time_step`` (true of stores).
    where : str
        What ``ds`` is, for the messages (a path, a store).
    """
    problems: list[str] = []
    for var in spec.variables:
        if var.name not in ds.data_vars:
            problems.append(f"variable {var.name!r} is missing (has {sorted(ds.data_vars)})")
            continue
        da = ds[var.name]
        if da.dims != voc.OBSERVATION_DIMS:
            problems.append(f"{var.name}: dims {da.dims} != {voc.OBSERVATION_DIMS}")
        if da.dtype != np.float32:
            problems.append(f"{var.name}: dtype {da.dtype} != float32")
        if da.attrs.get("units") != var.units:
            problems.append(f"{var.name}: units {da.attrs.get('units')!r} != {var.units!r}")
        if da.attrs.get("grid_mapping") != voc.CRS:
            problems.append(f"{var.name}: grid_mapping {da.attrs.get('grid_mapping')!r} != 'crs'")
    grid = spec.grid
    if (ds.sizes.get(voc.Y), ds.sizes.get(voc.X)) != grid.shape:
        problems.append(
            f"grid (y, x) = {(ds.sizes.get(voc.Y), ds.sizes.get(voc.X))} != {grid.shape}"
        )
    else:
        tol = 0.01 * min(grid.pixel_size)
        for name, expected in ((voc.Y, grid.y_coords()), (voc.X, grid.x_coords())):
            if name not in ds.coords or not np.allclose(ds[name].values, expected, atol=tol):
                problems.append(f"coordinate {name!r} differs from the grid of {spec.name!r}")
        for name in (voc.LATITUDE, voc.LONGITUDE):
            if name not in ds.coords or ds[name].dims != (voc.Y, voc.X):
                problems.append(f"2-D coordinate {name!r} (y, x) is missing")
    if voc.CRS not in ds.variables:
        problems.append("the scalar 'crs' variable is missing")
    else:
        try:
            crs = pyproj.CRS.from_cf(dict(ds[voc.CRS].attrs))
        except pyproj.exceptions.CRSError as error:
            problems.append(f"'crs' attrs are not a CF grid mapping ({error})")
        else:
            if not grid.same_crs(crs):
                problems.append(f"crs {crs_label(crs)!r} differs from {crs_label(grid.crs)!r}")
    if voc.TIME not in ds.coords or not np.issubdtype(ds[voc.TIME].dtype, np.datetime64):
        problems.append("'time' is missing or not datetime64")
    else:
        steps = np.diff(ds[voc.TIME].values)
        if (steps <= np.timedelta64(0)).any():
            problems.append("'time' is not strictly increasing")
        elif regular_time and (steps != spec.time_delta.to_timedelta64()).any():
            problems.append(f"'time' does not step by {spec.time_step}")
    return [f"{where}: {p}" for p in problems]


def validate_dataset(
    ds: xr.Dataset, spec: SourceSpec, regular_time: bool = False, where: str = "dataset"
) -> None:
    """Raise ``ValueError`` listing every problem :func:`dataset_problems` finds."""
    problems = dataset_problems(ds, spec, regular_time, where)
    if problems:
        raise ValueError(
            f"{len(problems)} problem(s) against source {spec.name!r}:\n  " + "\n  ".join(problems)
        )
