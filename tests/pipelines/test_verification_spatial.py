"""FSS pinned against a hand-computed neighbourhood case, limits, pySTEPS and Dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.verification.spatialscores import fss as pysteps_fss

from pipelines.verification.categorical import contingency_table
from pipelines.verification.spatial import fss

pytestmark = pytest.mark.timeout(60)


def _grid(points: list[tuple[int, int]], shape: tuple[int, int] = (3, 3)) -> xr.DataArray:
    field = np.zeros(shape)
    for r, c in points:
        field[r, c] = 2.0
    return xr.DataArray(field, dims=("y", "x"))


def test_hand_computed_neighbourhood_case() -> None:
    # Observed event at the centre of a 3x3 grid, forecast one pixel to the right.
    # Scale 3 (zero padding): P_o = 1/9 at all 9 pixels; P_f = 1/9 at the 6 pixels with x >= 1.
    # sum P_o^2 = 9/81, sum P_f^2 = 6/81, sum (P_f - P_o)^2 = 3/81 -> FSS = 1 - 3/15 = 0.8.
    ob, fc = _grid([(1, 1)]), _grid([(1, 2)])
    assert float(fss(fc, ob, threshold=1.0, scale=3)) == pytest.approx(0.8)
    assert float(fss(fc, ob, threshold=1.0, scale=1)) == 0.0  # disjoint at grid scale
    assert float(fss(ob, ob, threshold=1.0, scale=3)) == 1.0
    assert np.isnan(float(fss(ob * 0, ob * 0, threshold=1.0, scale=3)))


def test_scale_one_equals_dice_of_the_contingency_table() -> None:
    rng = np.random.default_rng(3)
    fc = xr.DataArray(rng.gamma(0.5, 2.0, size=(2, 9, 11)), dims=("time", "y", "x"))
    ob = xr.DataArray(rng.gamma(0.5, 2.0, size=(2, 9, 11)), dims=("time", "y", "x"))
    t = contingency_table(fc, ob, 1.0)
    dice = 2 * int(t.hits) / (2 * int(t.hits) + int(t.misses) + int(t.false_alarms))
    assert float(fss(fc, ob, threshold=1.0, scale=1)) == pytest.approx(dice)


def test_matches_pysteps_per_frame_and_nan_is_no_event() -> None:
    rng = np.random.default_rng(4)
    fc = rng.gamma(0.5, 2.0, size=(3, 20, 24))
    ob = rng.gamma(0.5, 2.0, size=(3, 20, 24))
    ob[:, :3, :] = np.nan
    fcx = xr.DataArray(fc, dims=("lead_time", "y", "x"))
    obx = xr.DataArray(ob, dims=("lead_time", "y", "x"))
    for scale in (1, 3, 5, 9):
        ours = fss(fcx, obx, ("y", "x"), threshold=1.0, scale=scale)
        fc_masked = np.where(np.isnan(ob), np.nan, fc)  # NaN in either -> no event in both
        ref = [pysteps_fss(fc_masked[k], ob[k], 1.0, scale) for k in range(3)]
        np.testing.assert_allclose(ours, ref)


def test_bad_arguments_raise() -> None:
    ob = _grid([(1, 1)])
    with pytest.raises(ValueError, match="scale"):
        fss(ob, ob, threshold=1.0, scale=0)
    with pytest.raises(ValueError, match="spatial"):
        fss(ob, ob, dims="x", threshold=1.0, scale=3)


def test_eager_equals_dask() -> None:
    rng = np.random.default_rng(5)
    dims = ("init_time", "lead_time", "y", "x")
    fc = xr.DataArray(rng.gamma(0.5, 2.0, size=(4, 2, 16, 16)), dims=dims)
    ob = xr.DataArray(rng.gamma(0.5, 2.0, size=(4, 2, 16, 16)), dims=dims)
    eager = fss(fc, ob, ("init_time", "y", "x"), threshold=1.0, scale=5)
    lazy = fss(
        fc.chunk({"init_time": 1, "y": 8}),
        ob.chunk({"init_time": 2}),
        ("init_time", "y", "x"),
        threshold=1.0,
        scale=5,
    )
    assert lazy.chunks is not None
    xr.testing.assert_allclose(eager, lazy.compute())
