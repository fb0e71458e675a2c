"""SSIM / PSNR wrappers: against skimage and a hand-computed PSNR, NaN policy, Dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from skimage.metrics import structural_similarity

from pipelines.verification.image import psnr, ssim

pytestmark = pytest.mark.timeout(60)


def test_psnr_by_hand_per_frame_then_mean() -> None:
    ob = xr.DataArray(np.zeros((2, 4, 4)), dims=("lead_time", "y", "x"))
    fc = ob.copy()
    fc[0] = 0.1  # frame MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    fc[1] = 0.01  # frame MSE 1e-4 -> 40 dB
    np.testing.assert_allclose(psnr(fc, ob, ("y", "x"), data_range=1.0), [20.0, 40.0])
    assert float(psnr(fc, ob, data_range=1.0)) == pytest.approx(30.0)  # mean over frames
    assert float(psnr(fc[0], ob[0], data_range=10.0)) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(fc, ob, data_range=0.0)


def test_ssim_matches_skimage_and_is_one_for_identical_frames() -> None:
    rng = np.random.default_rng(6)
    ob = rng.random((3, 16, 16))
    fc = ob + 0.1 * rng.normal(size=ob.shape)
    obx = xr.DataArray(ob, dims=("time", "y", "x"))
    fcx = xr.DataArray(fc, dims=("time", "y", "x"))
    ref = np.mean([structural_similarity(fc[k], ob[k], data_range=1.0) for k in range(3)])
    assert float(ssim(fcx, obx, data_range=1.0)) == pytest.approx(ref)
    assert float(ssim(obx, obx, data_range=1.0)) == pytest.approx(1.0)
    per_frame = ssim(fcx, obx, ("y", "x"), data_range=1.0)
    assert per_frame.dims == ("time",)


def test_nan_pixels_are_zero_in_both_for_ssim_and_left_out_of_psnr() -> None:
    ob = xr.DataArray(np.ones((8, 8)), dims=("y", "x"))
    fc = ob.copy()
    fc[0, 0] = 5.0
    ob_nan = ob.copy()
    ob_nan[0, 0] = np.nan
    assert float(psnr(fc, ob_nan, data_range=1.0)) == np.inf  # the only error is masked
    assert float(ssim(fc, ob_nan, data_range=1.0)) == pytest.approx(1.0)


def test_eager_equals_dask() -> None:
    rng = np.random.default_rng(7)
    dims = ("init_time", "lead_time", "y", "x")
    ob = xr.DataArray(rng.random((3, 2, 12, 12)), dims=dims)
    fc = ob + 0.2 * xr.DataArray(rng.normal(size=(3, 2, 12, 12)), dims=dims)
    for score in (ssim, psnr):
        eager = score(fc, ob, ("init_time", "y", "x"), data_range=1.0)
        lazy = score(
            fc.chunk({"init_time": 1}), ob.chunk({"y": 6}), ("init_time", "y", "x"), data_range=1.0
        )
        xr.testing.assert_allclose(eager, lazy.compute())
