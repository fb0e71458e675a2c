"""Literature metrics pinned against hand-computed values (spec §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from simvp_model import metrics as M


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """(N=1, T=2, C=1, H=2, W=2): frame 0 errors all 1, frame 1 one error of 0.5."""
    pred = np.zeros((1, 2, 1, 2, 2), dtype=np.float32)
    true = np.zeros_like(pred)
    true[0, 0] = 1.0
    true[0, 1, 0, 0, 0] = 0.5
    return pred, true


def test_mse_mae_literature_and_per_pixel(pair):
    pred, true = pair
    assert M.mse(pred, true) == pytest.approx((4.0 + 0.25) / 2)  # per-frame sums, mean
    assert M.mae(pred, true) == pytest.approx((4.0 + 0.5) / 2)
    assert M.rmse(pred, true) == pytest.approx(math.sqrt(2.125))
    assert M.mse_per_pixel(pred, true) == pytest.approx(4.25 / 8)
    assert M.mae_per_pixel(pred, true) == pytest.approx(4.5 / 8)
    # literature = per-pixel x C*H*W
    assert M.mse(pred, true) == pytest.approx(M.mse_per_pixel(pred, true) * 4)


def test_torch_and_numpy_agree(pair):
    pred, true = pair
    tp, tt = torch.from_numpy(pred), torch.from_numpy(true)
    for name in ("mse", "mae", "rmse", "mse_per_pixel", "psnr", "psnr_e3d"):
        assert M.get_metric(name)(tp, tt) == M.get_metric(name)(pred, true)


def test_psnr_new_formula(pair):
    pred, true = pair
    # frame 0: mean sq err 1 -> 0 dB; frame 1: 0.25 / 4 = 0.0625 -> 12.04 dB
    assert M.psnr(pred, true) == pytest.approx((0.0 - 10 * math.log10(0.0625)) / 2)


def test_psnr_e3d_uint8_wraparound(pair):
    pred, true = pair
    # frame 0: 0 - 255 wraps to 1 in uint8, squared 1 -> mean 1
    # frame 1: uint8(127.5) = 127; 0 - 127 = 129; 129**2 = 16641 = 1 (mod 256) -> mean 1/4
    peak = 20 * math.log10(255)
    expected = (peak - 10 * math.log10(1.0) + peak - 10 * math.log10(0.25)) / 2
    assert M.psnr_e3d(pred, true) == pytest.approx(expected)
    assert M.psnr_e3d(pred, true) > 40 > M.psnr(pred, true)  # inflated, not comparable


def test_psnr_clips_pred_only():
    true = np.full((1, 1, 1, 2, 2), 0.5)
    pred = np.full((1, 1, 1, 2, 2), 1.5)  # clipped to 1 -> err 0.25
    assert M.psnr(pred, true) == pytest.approx(-10 * math.log10(0.25))
    assert M.psnr(pred, true, clip_pred=False) == pytest.approx(0.0)
    assert M.mse(pred, true) == pytest.approx(4.0)  # never clipped


def test_ssim_constant_frames_hand_computed():
    # constant frames a, b: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2 (variances are 0)
    pred = np.full((1, 1, 1, 8, 8), 0.5)
    true = np.full((1, 1, 1, 8, 8), 0.25)
    for L in (1.0, 2.0):
        c1 = (0.01 * L) ** 2
        expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
        assert M.ssim(pred, true, data_range=L) == pytest.approx(expected)
    assert M.ssim_published(pred, true) == M.ssim(pred, true, data_range=2.0)


def test_ssim_matches_reference_call():
    rng = np.random.default_rng(0)
    true = rng.random((2, 3, 2, 9, 11)).astype(np.float32)
    pred = np.clip(true + 0.1 * rng.standard_normal(true.shape), -0.2, 1.2).astype(np.float32)
    # OpenSTL: clip pred, per frame skimage on (W, H, C) with multichannel, dtype range 2, mean
    clipped = np.clip(pred, 0, 1)
    ref = np.mean(
        [
            structural_similarity(
                clipped[b, f].swapaxes(0, 2), true[b, f].swapaxes(0, 2), channel_axis=-1,
                data_range=2.0,
            )
            for b in range(2)
            for f in range(3)
        ]
    )  # fmt: skip
    assert M.ssim(pred, true, data_range=2.0) == pytest.approx(ref, rel=1e-6)
    assert M.ssim(true, true, data_range=1.0) == pytest.approx(1.0)
    assert M.ssim(pred, true, data_range=1.0) < M.ssim(pred, true, data_range=2.0)


def test_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        M.mse(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 3)))
    with pytest.raises(ValueError, match="data_range"):
        M.ssim(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 8, 8)), data_range=0)
    with pytest.raises(ValueError, match="unknown metric 'csi'"):
        M.get_metric("csi")
