"""Scoring a trained predictor on a split: loss in normalised units, metrics in physical units.

Used once on the test split by :func:`simvp_model.lightning_module.fit` and for baselines
(persistence) through :func:`evaluate_predictor`, so SimVP and baselines share one scoring code.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from simvp_model import metrics as simvp_metrics
from simvp_model.normalisation import Normalisation


def image_metrics_apply(normalisation: Normalisation) -> bool:
    """True when SSIM/PSNR are meaningful: the data are used as they are (identity).

    SSIM and PSNR as the literature codes them assume frames in [0, 1] (predictions are
    clipped to it); the benchmarks that provide such frames (Moving MNIST, TaxiBJ in [0, 1])
    are trained without transform, offset or scale. Physical fields (rain rate, temperature)
    are scored with MSE/MAE only.
    """
    return (
        normalisation.transform == "identity"
        and all(v == 0.0 for v in normalisation.offset)
        and all(v == 1.0 for v in normalisation.scale)
    )


def score_batch(
    pred: torch.Tensor | Any, true: torch.Tensor | Any, image_metrics: bool
) -> dict[str, float]:
    """Test metrics of one batch in physical units (means over its frames).

    Parameters
    ----------
    pred, true : torch.Tensor or numpy.ndarray
        ``(B, T, C, H, W)`` in physical units.
    image_metrics : bool
        Also compute ``ssim`` (data_range 1), ``ssim_published`` (data_range 2, as the
        published tables) and ``psnr`` (OpenSTL formula); see :func:`image_metrics_apply`.

    Returns
    -------
    dict of str to float
        ``mse``, ``mae`` (literature per-frame sums over C·H·W), ``mse_per_pixel``,
        ``mae_per_pixel`` and, optionally, the image metrics. All are means over frames, so
        batch means weighted by batch size give the split's value (except ``rmse``, which
        :func:`fit` derives from the final ``mse``).
    """
    scores = {
        "mse": simvp_metrics.mse(pred, true),
        "mae": simvp_metrics.mae(pred, true),
        "mse_per_pixel": simvp_metrics.mse_per_pixel(pred, true),
        "mae_per_pixel": simvp_metrics.mae_per_pixel(pred, true),
    }
    if image_metrics:
        scores["ssim"] = simvp_metrics.ssim(pred, true, data_range=1.0)
        scores["ssim_published"] = simvp_metrics.ssim(pred, true, data_range=2.0)
        scores["psnr"] = simvp_metrics.psnr(pred, true)
    return scores


def evaluate_predictor(
    predictor: Any,
    dataset: Dataset,
    normalisation: Normalisation,
    batch_size: int = 16,
) -> dict[str, float]:
    """Score any ``predictor(x) -> y`` (normalised units) on a split like the test step does.

    Used for baselines (e.g. persistence) so that they are scored with exactly the metrics
    and averaging of :func:`fit`'s test split.

    Parameters
    ----------
    predictor : callable
        ``(x (B, T_in, C, H, W)[, base (B, T_out, C, H, W)])`` → ``(B, T_out, C, H, W)``
        tensors, normalised units (the base is passed when the samples carry one).
    dataset : torch.utils.data.Dataset
        Yields ``(x, y)`` or ``(x, base, y)`` in normalised units.
    normalisation : Normalisation
        Decodes both to physical units before scoring.
    batch_size : int
        Samples per batch.

    Returns
    -------
    dict of str to float
        Sample-weighted means of :func:`score_batch` plus ``rmse``.
    """
    image = image_metrics_apply(normalisation)
    totals: dict[str, float] = {}
    count = 0
    with torch.inference_mode():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            x, *base, y = batch  # (x, y) or (x, base, y)
            pred = predictor(x, *base)
            scores = score_batch(normalisation.decode(pred.float()), normalisation.decode(y), image)
            for name, value in scores.items():
                totals[name] = totals.get(name, 0.0) + value * len(x)
            count += len(x)
    result = {name: total / count for name, total in totals.items()}
    result["rmse"] = math.sqrt(result["mse"])
    return result
