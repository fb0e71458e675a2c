"""Tensor-level skill metrics exactly as the SimVP literature computes them (spec §3).

Contract: every function takes ``pred, true`` as numpy arrays or torch tensors of equal shape
``(..., C, H, W)`` — typically ``(N, T, C, H, W)`` — and returns a Python ``float``. The leading
axes are "frames" (samples × time steps). Arrays are compared in the units they are given in
(the literature uses [0, 1] frames for MMNIST/TaxiBJ). NaNs propagate (no NaN policy: mask first).

Reductions
----------
- ``mse``/``mae``: literature reduction, mean over frames of the **sum over C·H·W** ("per-frame
  sum"): ``mse = mse_per_pixel × C·H·W``. MMNIST ×4096, TaxiBJ ×2048.
- ``mse_per_pixel``/``mae_per_pixel``: plain element means.
- ``rmse``: ``sqrt(mse)`` of the per-frame sum (not a mean of per-frame RMSEs), as OpenSTL.
- ``ssim``: scikit-image ``structural_similarity`` per frame (7×7 uniform window, channels
  averaged), averaged over frames. **The published numbers used data_range=2** (skimage's dtype
  range for float input, left unset in OpenSTL); pass ``data_range=1.0`` for the mathematically
  appropriate value on [0, 1] frames. ``data_range`` is therefore a required argument.
- ``psnr``: OpenSTL (since 2023-06) per frame ``-10 log10(mean((pred - true)²))`` on [0, 1] frames,
  averaged over frames.
- ``psnr_e3d``: the older E3D-LSTM formula used by SimVP V1/TAU papers:
  ``20 log10(255) - 10 log10(mean((uint8(255 p) - uint8(255 t))²))`` in **uint8 arithmetic with
  wrap-around** (inflated values); compare PSNRs only within one formula.

As the reference, ``ssim``, ``psnr`` and ``psnr_e3d`` clip ``pred`` (only) to [0, 1] first
(``clip_pred=True``); ``mse``/``mae`` never clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from skimage.metrics import structural_similarity

from simvp_model.registry import Registry

ArrayLike = np.ndarray | torch.Tensor

METRICS: Registry[Callable[..., float]] = Registry("metric")


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu")
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _pair(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, t = _to_numpy(pred), _to_numpy(true)
    if p.shape != t.shape:
        raise ValueError(f"pred and true shapes differ: {p.shape=} {t.shape=}")
    if p.ndim < 3:
        raise ValueError(f"expected arrays shaped (..., C, H, W), got {p.shape=}")
    return p, t


def _frame_sum_mean(values: np.ndarray) -> float:
    """Mean over leading (frame) axes of the sum over the last three (C, H, W) axes."""
    per_frame = values.reshape(-1, int(np.prod(values.shape[-3:])))  # (frames, C*H*W)
    return float(per_frame.sum(axis=1, dtype=np.float64).mean())


@METRICS.register("mse")
def mse(pred: ArrayLike, true: ArrayLike) -> float:
    """Literature MSE: mean over frames of the per-frame **sum** of squared errors over C·H·W.

    Parameters
    ----------
    pred, true : numpy.ndarray or torch.Tensor
        ``(..., C, H, W)``, e.g. ``(N, T, C, H, W)``, same units.

    Returns
    -------
    float
        Squared units × pixels (e.g. MMNIST [0, 1] frames: ``mse_per_pixel × 4096``).
    """
    p, t = _pair(pred, true)
    d = p.astype(np.float64) - t
    return _frame_sum_mean(d * d)


@METRICS.register("mae")
def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Literature MAE: mean over frames of the per-frame sum of absolute errors over C·H·W."""
    p, t = _pair(pred, true)
    return _frame_sum_mean(np.abs(p.astype(np.float64) - t))


@METRICS.register("rmse")
def rmse(pred: ArrayLike, true: ArrayLike) -> float:
    """``sqrt(mse(pred, true))`` of the per-frame-sum MSE (OpenSTL ``RMSE``)."""
    return math.sqrt(mse(pred, true))


@METRICS.register("mse_per_pixel")
def mse_per_pixel(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean squared error over all elements (``torch.nn.MSELoss``)."""
    p, t = _pair(pred, true)
    d = p.astype(np.float64) - t
    return float(np.mean(d * d))


@METRICS.register("mae_per_pixel")
def mae_per_pixel(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error over all elements."""
    p, t = _pair(pred, true)
    return float(np.mean(np.abs(p.astype(np.float64) - t)))


def _frames(p: np.ndarray, t: np.ndarray, clip_pred: bool) -> tuple[np.ndarray, np.ndarray]:
    if clip_pred:
        p = np.clip(p, 0.0, 1.0)
    shape = (-1,) + p.shape[-3:]  # (..., C, H, W) -> (frames, C, H, W)
    return p.reshape(shape), t.reshape(shape)


@METRICS.register("ssim")
def ssim(pred: ArrayLike, true: ArrayLike, data_range: float, clip_pred: bool = True) -> float:
    """Mean SSIM over frames (scikit-image, 7×7 uniform window, channels averaged).

    Parameters
    ----------
    pred, true : numpy.ndarray or torch.Tensor
        ``(..., C, H, W)``; H and W must be ≥ 7.
    data_range : float
        Dynamic range in the SSIM constants. **2.0 reproduces the published numbers** (OpenSTL
        left it unset and skimage used the float dtype range (-1, 1)); 1.0 is correct for [0, 1]
        frames.
    clip_pred : bool
        Clip ``pred`` to [0, 1] first, as the reference.

    Returns
    -------
    float
        Mean SSIM in [-1, 1].
    """
    if not data_range > 0:
        raise ValueError(f"data_range={data_range!r} must be positive")
    p, t = _pair(pred, true)
    p, t = _frames(p.astype(np.float64), t.astype(np.float64), clip_pred)
    scores = [
        structural_similarity(pf, tf, data_range=data_range, channel_axis=0)
        for pf, tf in zip(p, t, strict=True)
    ]
    return float(np.mean(scores))


def ssim_published(pred: ArrayLike, true: ArrayLike) -> float:
    """SSIM with ``data_range=2`` as in the published SimVP/OpenSTL tables."""
    return ssim(pred, true, data_range=2.0)


@METRICS.register("psnr")
def psnr(pred: ArrayLike, true: ArrayLike, clip_pred: bool = True) -> float:
    """OpenSTL PSNR: mean over frames of ``-10 log10(mean_{C,H,W}((pred - true)²))`` on [0, 1].

    A frame with zero error contributes ``inf`` (as the reference), so the mean is then ``inf``.
    """
    p, t = _pair(pred, true)
    p, t = _frames(p.astype(np.float64), t.astype(np.float64), clip_pred)
    err = np.mean((p - t) ** 2, axis=(1, 2, 3))  # (frames,)
    with np.errstate(divide="ignore"):
        per_frame = -10.0 * np.log10(err)
    return float(np.mean(per_frame))


@METRICS.register("psnr_e3d")
def psnr_e3d(pred: ArrayLike, true: ArrayLike, clip_pred: bool = True) -> float:
    """Old E3D-LSTM / SimVP-V1 PSNR in uint8 arithmetic (wrap-around), mean over frames.

    Per frame: ``a = uint8(255 p)``, ``b = uint8(255 t)`` (truncation), ``e = (a - b)**2``
    computed in uint8 (both the difference and the square wrap modulo 256), then
    ``20 log10(255) - 10 log10(mean(e))``. Values are not comparable to :func:`psnr`.
    """
    p, t = _pair(pred, true)
    # keep the input dtype: float32 * 255 rounds differently from float64 before truncation
    p, t = _frames(p, t, clip_pred)
    a = (p * 255).astype(np.uint8)
    b = (t * 255).astype(np.uint8)
    diff = a - b  # uint8 wrap-around, as the reference
    err = np.mean(diff * diff, axis=(1, 2, 3))  # uint8 square wraps too; mean in float64
    with np.errstate(divide="ignore"):
        per_frame = 20 * np.log10(255.0) - 10 * np.log10(err)
    return float(np.mean(per_frame))


def get_metric(name: str) -> Callable[..., float]:
    """Metric function registered as ``name`` (``ValueError`` listing the valid names)."""
    return METRICS.get(name)
