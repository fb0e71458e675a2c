"""Continuous scores pinned against hand computations, NaN handling and eager == Dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipelines.verification import SCORES, get_score
from pipelines.verification.continuous import (
    acc,
    bias,
    latitude_weights,
    mae,
    mse,
    rmse,
    weighted_rmse,
)

pytestmark = pytest.mark.timeout(60)


def _pair() -> tuple[xr.DataArray, xr.DataArray]:
    # (lead_time=2, y=1, x=3); errors lead 0: [1, -1, 2], lead 1: [0, 3, NaN-observation]
    fc = xr.DataArray([[[1.0, 1.0, 4.0]], [[5.0, 5.0, 5.0]]], dims=("lead_time", "y", "x"))
    ob = xr.DataArray([[[0.0, 2.0, 2.0]], [[5.0, 2.0, np.nan]]], dims=("lead_time", "y", "x"))
    return fc, ob


def test_mse_mae_rmse_bias_per_lead_by_hand() -> None:
    fc, ob = _pair()
    np.testing.assert_allclose(mse(fc, ob, ("y", "x")), [(1 + 1 + 4) / 3, (0 + 9) / 2])
    np.testing.assert_allclose(mae(fc, ob, ("y", "x")), [4 / 3, 3 / 2])
    np.testing.assert_allclose(rmse(fc, ob, ("y", "x")), [np.sqrt(2), np.sqrt(4.5)])
    np.testing.assert_allclose(bias(fc, ob, ("y", "x")), [2 / 3, 3 / 2])
    assert mse(fc, ob, ("y", "x")).dims == ("lead_time",)
    assert float(mse(fc, ob)) == pytest.approx((6 + 9) / 5)  # pooled over all valid pixels


def test_forecast_nan_is_excluded_too_and_all_nan_gives_nan() -> None:
    fc, ob = _pair()
    fc[0, 0, 0] = np.nan
    np.testing.assert_allclose(mse(fc, ob, ("y", "x")), [(1 + 4) / 2, 4.5])
    assert np.isnan(float(mse(fc * np.nan, ob)))


def test_bad_dims_and_misaligned_coords_raise() -> None:
    fc, ob = _pair()
    with pytest.raises(ValueError, match="time"):
        mse(fc, ob, ("time",))
    with pytest.raises(ValueError):
        mse(fc.assign_coords(x=[0, 1, 2]), ob.assign_coords(x=[1, 2, 3]))


def test_latitude_weights_and_weighted_rmse_by_hand() -> None:
    # lat 0 and 60 deg: cos = 1, 0.5, mean 0.75 -> w = 4/3, 2/3.
    lat = xr.DataArray([0.0, 60.0], dims="y")
    np.testing.assert_allclose(latitude_weights(lat), [4 / 3, 2 / 3])
    ob = xr.DataArray(np.zeros((2, 1)), dims=("y", "x"), coords={"latitude": lat})
    fc = xr.DataArray([[1.0], [2.0]], dims=("y", "x"))
    # mean(w e^2) = (4/3 * 1 + 2/3 * 4) / 2 = 2
    assert float(weighted_rmse(fc, ob)) == pytest.approx(np.sqrt(2.0))
    assert float(rmse(fc, ob)) == pytest.approx(np.sqrt(2.5))
    with pytest.raises(ValueError, match="latitude"):
        weighted_rmse(fc, ob.drop_vars("latitude"))


def test_acc_by_hand_and_limits() -> None:
    lat = xr.DataArray([0.0, 60.0], dims="y")
    ob = xr.DataArray([[1.0], [3.0]], dims=("y", "x"), coords={"latitude": lat})
    clim = xr.DataArray([[0.0], [0.0]], dims=("y", "x"))
    fc = xr.DataArray([[2.0], [1.0]], dims=("y", "x"))
    # anomalies f=[2,1] -> f'=[.5,-.5]; o=[1,3] -> o'=[-1,1]; w=[4/3,2/3]
    # num = 4/3*(-.5) + 2/3*(-.5) = -1; den = sqrt((4/3*.25+2/3*.25) * (4/3+2/3)) = sqrt(.5*2) = 1
    assert float(acc(fc, ob, climatology=clim)) == pytest.approx(-1.0)
    assert float(acc(ob, ob, climatology=clim)) == pytest.approx(1.0)
    ob3 = xr.DataArray(
        [[[1.0], [3.0]], [[2.0], [0.0]], [[4.0], [1.0]]],
        dims=("time", "y", "x"),
        coords={"latitude": lat},
    )
    clim3 = ob3.mean("time")
    fc3 = 2.0 * (ob3 - clim3) + clim3 + 5.0  # anomaly = 2 x observed anomaly + const -> ACC 1
    assert float(acc(fc3, ob3, ("time", "y", "x"))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="climatology"):
        acc(fc, ob, ("y", "x"))


def test_eager_equals_dask() -> None:
    rng = np.random.default_rng(0)
    shape = (4, 3, 6, 5)  # (init_time, lead_time, y, x)
    dims = ("init_time", "lead_time", "y", "x")
    lat = xr.DataArray(np.linspace(-60, 60, 6), dims="y")
    ob = xr.DataArray(rng.gamma(1.0, size=shape), dims=dims, coords={"latitude": lat})
    fc = ob + rng.normal(size=shape)
    ob[0, 0, 0, 0] = np.nan
    for name in ("mse", "mae", "rmse", "bias", "weighted_rmse", "acc"):
        score = get_score(name)
        eager = score(fc, ob, ("init_time", "y", "x"))
        lazy = score(
            fc.chunk({"init_time": 1}), ob.chunk({"init_time": 2}), ("init_time", "y", "x")
        )
        assert lazy.chunks is not None, name
        xr.testing.assert_allclose(eager, lazy.compute())
    assert {"mse", "csi", "fss", "ssim", "acc"} <= set(SCORES.names())
