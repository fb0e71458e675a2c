"""HDF5, netCDF-C and ecCodes are not thread-safe: every open + decode holds one process-wide
lock, so many reads from a thread pool (and Dask's threaded scheduler) neither crash nor mix up
data. Bounded: a few seconds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dask
import eccodes
import h5py
import numpy as np
import pytest
import xarray as xr

from data_catalog.catalog import list_files, load_catalog
from data_catalog.spec import SourceSpec
from pipelines.readers import base, read_file

STERE = "+proj=stere +lat_0=90 +lon_0=10 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"


def _nc_sources(tmp_path, n: int = 4) -> tuple[SourceSpec, list[str]]:
    spec = SourceSpec.from_dict(
        {
            "name": "nc-threads",
            "kind": "radar",
            "reader": "cf-netcdf",
            "path": str(tmp_path / "rain_%Y%m%d%H%M.nc"),
            "time_step": "5min",
            "variables": [{"name": "precipitation_rate", "units": "mm/h", "source": "rain"}],
            "grid": {"crs": STERE, "shape": [64, 48], "extent": [0, 48000, -3064000, -3000000]},
        }
    )
    paths = []
    for i in range(n):
        time = np.datetime64("2021-06-01T00:00", "ns") + np.timedelta64(5 * i, "m")
        values = np.random.default_rng(i).gamma(0.5, 2.0, (1, 64, 48)).astype(np.float32)
        ds = xr.Dataset(
            {"rain": (("time", "y", "x"), values, {"units": "mm/h"})},
            coords={
                "time": [time],
                "y": ("y", spec.grid.y_coords(), {"axis": "Y", "units": "m"}),
                "x": ("x", spec.grid.x_coords(), {"axis": "X", "units": "m"}),
            },
        )
        path = (
            tmp_path
            / f"rain_{str(time)[:16].replace('-', '').replace('T', '').replace(':', '')}.nc"
        )
        ds.to_netcdf(path)
        paths.append(str(path))
    return spec, paths


def _grib_source(tmp_path) -> tuple[SourceSpec, list[str]]:
    spec = load_catalog().get("era5-t2m-uk")
    # three one-message copies keep each decode short
    src = list_files(spec)[0].path
    paths = []
    with open(src, "rb") as handle:
        for i in range(3):
            gid = eccodes.codes_grib_new_from_file(handle)
            path = tmp_path / f"era5_{i}.grib"
            with open(path, "wb") as out:
                eccodes.codes_write(gid, out)
            eccodes.codes_release(gid)
            paths.append(str(path))
    return SourceSpec.from_dict(spec.to_dict() | {"path": str(tmp_path / "era5_*.grib")}), paths


def _jobs(tmp_path) -> list[tuple[SourceSpec, str]]:
    catalog = load_catalog()
    jobs = []
    for name in ("knmi-radar", "rmi-radar"):  # KNMI HDF5 and ODIM_H5 (h5py)
        spec = catalog.get(name)
        jobs += [(spec, f.path) for f in list_files(spec)[:3]]
    nc_spec, nc_paths = _nc_sources(tmp_path)
    grib_spec, grib_paths = _grib_source(tmp_path)
    jobs += [(nc_spec, p) for p in nc_paths] + [(grib_spec, p) for p in grib_paths]
    return jobs


def _read(job: tuple[SourceSpec, str]) -> dict[str, np.ndarray]:
    spec, path = job
    return {k: np.asarray(v) for k, v in read_file(spec, path).data.items()}


@pytest.mark.timeout(120)
def test_many_concurrent_reads_match_the_serial_ones(tmp_path):
    jobs = _jobs(tmp_path)
    serial = [_read(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(_read, jobs * 3))  # 48 reads, 8 at a time
    for i, got in enumerate(threaded):
        want = serial[i % len(jobs)]
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    # and under Dask's default threaded scheduler
    delayed = [dask.delayed(_read)(job) for job in jobs]
    for i, got in enumerate(dask.compute(*delayed, scheduler="threads", num_workers=8)):
        for name, values in serial[i % len(jobs)].items():
            np.testing.assert_array_equal(got[name], values)


def test_every_native_open_holds_the_lock(tmp_path, monkeypatch):
    """The lock is taken by netCDF, GRIB and HDF5 opens (a reader forgetting it fails here)."""
    opened = []
    real_open_dataset, real_h5 = xr.open_dataset, h5py.File

    def open_dataset(*args, **kwargs):
        opened.append(("xarray", kwargs.get("engine"), base.NATIVE_IO_LOCK._is_owned()))
        return real_open_dataset(*args, **kwargs)

    def h5file(*args, **kwargs):
        opened.append(("h5py", None, base.NATIVE_IO_LOCK._is_owned()))
        return real_h5(*args, **kwargs)

    monkeypatch.setattr(xr, "open_dataset", open_dataset)
    monkeypatch.setattr(base.h5py, "File", h5file)
    jobs = _jobs(tmp_path)
    for job in jobs:
        _read(job)
    kinds = {(lib, engine) for lib, engine, _ in opened}
    assert kinds == {("xarray", "netcdf4"), ("xarray", "cfgrib"), ("h5py", None)}
    assert all(held for _, _, held in opened)
