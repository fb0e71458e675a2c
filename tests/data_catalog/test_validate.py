"""Checking a dataset against its spec (reader output and broken variants)."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog.catalog import get_source, list_files
from data_catalog.validate import dataset_problems, validate_dataset
from pipelines.readers import read_source_frames


@pytest.fixture(scope="module")
def rmi():
    spec = get_source("rmi-radar")
    return spec, read_source_frames(spec, [f.path for f in list_files(spec)[:2]])


def test_reader_output_is_valid(rmi):
    spec, ds = rmi
    validate_dataset(ds, spec, regular_time=True)
    assert dataset_problems(ds, spec) == []


def test_each_problem_is_named(rmi):
    spec, ds = rmi
    bad = ds.copy()
    bad["precipitation_rate"] = bad.precipitation_rate.astype(np.float64)
    bad.precipitation_rate.attrs.update(units="mm/hr", grid_mapping="crs")
    bad = bad.isel(time=[1, 0])
    bad["crs"].attrs = dict(get_source("knmi-radar").grid.pyproj_crs.to_cf())
    problems = dataset_problems(bad, spec, where="store.zarr")
    assert "store.zarr: precipitation_rate: dtype float64 != float32" in problems
    assert "store.zarr: precipitation_rate: units 'mm/hr' != 'mm/h'" in problems
    assert "store.zarr: 'time' is not strictly increasing" in problems
    assert any(p.startswith("store.zarr: crs ") and "differs" in p for p in problems)
    with pytest.raises(ValueError, match=r"4 problem\(s\) against source 'rmi-radar'"):
        validate_dataset(bad, spec, where="store.zarr")
    gappy = ds.isel(time=[0, 1]).assign_coords(time=ds.time.values + np.array([0, 60], "m8[m]"))
    assert dataset_problems(gappy, spec, regular_time=True) == [
        "dataset: 'time' does not step by 5min"
    ]
    cropped = ds.isel(y=slice(0, 10)).drop_vars("latitude")
    assert dataset_problems(cropped, spec) == ["dataset: grid (y, x) = (10, 700) != (700, 700)"]
