"""Conservative resampling between a source grid and a model grid (pipelines.method.resample)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr

from pipelines.method.resample import GridResampler, RegularGrid, model_grid, overlap_matrix
from pipelines.prepare import block_mean


@pytest.fixture(scope="module")
def mch_store(tmp_path_factory):
    """Four frames of the shipped MeteoSwiss sample, ingested into a fresh data dir."""
    from pipelines.ingest import ingest_source

    root = tmp_path_factory.mktemp("data")
    ingest_source("mch-radar", str(root), "2015-05-15T16:00", "2015-05-15T16:15", progress=False)
    return xr.open_zarr(root / "stores" / "mch-radar.zarr", chunks=None)


def _frames(ds: xr.Dataset) -> np.ndarray:
    present = ds["frame_present"].values
    return ds["precipitation_rate"].isel(time=np.flatnonzero(present)).values  # (T, H, W)


def test_round_trip_keeps_grid_crs_and_rain_mass(mch_store):
    grid = RegularGrid.from_store(mch_store)
    assert grid.shape == (640, 710) and grid.resolution_m == 1000.0
    resampler = GridResampler.for_source(grid, 4000.0, multiple=16)
    model = resampler.target
    assert model.crs.equals(grid.crs) and model.resolution_m == 4000.0
    assert model.shape[0] % 16 == 0 and model.shape[1] % 16 == 0
    assert model.shape[0] * 4 >= 640 and model.shape[1] * 4 >= 710  # covers the domain
    frames = _frames(mch_store)  # (4, 640, 710) mm/h, NaN outside the composite
    assert frames.shape[0] == 4 and np.nanmax(frames) > 10  # a real rain event
    coarse = resampler.to_model(frames)
    back = resampler.to_source(coarse)
    assert back.shape == frames.shape and back.dtype == np.float32
    finite = np.isfinite(frames)
    assert np.isfinite(back[finite]).all()  # every observed pixel gets a forecast value
    # rain mass (mm/h x m²) over the observed pixels, per frame: within 0.1 %
    mass = np.nansum(frames, axis=(1, 2)) * grid.cell_area()
    mass_back = np.nansum(np.where(finite, back, np.nan), axis=(1, 2)) * grid.cell_area()
    np.testing.assert_allclose(mass_back, mass, rtol=1e-3)
    # on the model grid: mass over the covered area is the same (coverage-weighted)
    wy = overlap_matrix(model.y, grid.y)
    wx = overlap_matrix(model.x, grid.x)
    covered = wy @ finite[0].astype(np.float64) @ wx.T  # m² of data per model cell
    mass_model = np.nansum(coarse[0] * covered)
    np.testing.assert_allclose(mass_model, mass[0], rtol=1e-5)
    # the round trip is a 4 km smoothing, not a copy: peaks are lowered
    assert np.nanmax(back) < np.nanmax(frames)


def test_integer_ratio_is_the_block_mean():
    crs = pyproj.CRS.from_epsg(3035)
    y = 5000.0 - 1000.0 * np.arange(64) - 500.0
    x = 1000.0 * np.arange(32) + 500.0
    grid = RegularGrid(y, x, crs)
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 2.0, size=(3, 64, 32)).astype(np.float32)
    values[0, :5, :7] = np.nan
    resampler = GridResampler(grid, model_grid(grid, 4000.0))
    assert resampler.target.shape == (16, 8)
    np.testing.assert_allclose(resampler.to_model(values), block_mean(values, 4), rtol=1e-5)


def test_non_integer_ratio_conserves_mass():
    crs = pyproj.CRS.from_epsg(3035)
    grid = RegularGrid(1500.0 * np.arange(40), 1500.0 * np.arange(30), crs)  # 1.5 km
    values = np.random.default_rng(1).gamma(0.5, 2.0, size=(40, 30))
    resampler = GridResampler.for_source(grid, 4000.0, multiple=4)
    back = resampler.to_source(resampler.to_model(values))
    np.testing.assert_allclose(back.sum(), values.sum(), rtol=1e-5)


def test_geographic_or_irregular_grids_are_refused():
    with pytest.raises(ValueError, match="not projected"):
        RegularGrid(np.arange(3.0), np.arange(3.0), pyproj.CRS.from_epsg(4326))
    with pytest.raises(ValueError, match="not regular"):
        RegularGrid(np.array([0.0, 1.0, 3.0]), np.arange(3.0), pyproj.CRS.from_epsg(3035))
    grid = RegularGrid(np.arange(8.0) * 1000, np.arange(8.0) * 1000, pyproj.CRS.from_epsg(3035))
    with pytest.raises(ValueError, match="source grid is"):
        GridResampler.for_source(grid, 2000.0).to_model(np.zeros((4, 4)))
