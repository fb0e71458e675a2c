"""Verification scores on labelled arrays: one code path for SimVP and every baseline.

Contract of every score in :data:`SCORES` (``score(forecast, observation, dims=None, **params)``):

- ``forecast`` and ``observation`` are ``xr.DataArray`` in the same physical units with named,
  broadcast-compatible dims (typically ``(init_time, lead_time, [channel,] y, x)``).
- ``dims`` names the dims reduced over (``None`` = all dims); the result is an ``xr.DataArray``
  over the remaining dims (e.g. ``lead_time``), float64, in the units stated by the score.
- NaN policy: a pixel where either field is NaN is excluded (no data, e.g. outside radar range);
  a score with no valid pixel, or a zero denominator, is NaN.
- Only xarray operations (and ``apply_ufunc`` for neighbourhood scores), so the same function runs
  eagerly on numpy and lazily over Dask; call ``.compute()`` on a lazy result.

Families: :mod:`.continuous` (mse, mae, rmse, bias, latitude-weighted rmse and acc per
WeatherBench), :mod:`.categorical` (contingency tables → csi, pod, far, with ``threshold``),
:mod:`.spatial` (fss with ``threshold`` and ``scale``), :mod:`.spectral` (rapsd_ratio per
``wavelength``: sharpness), :mod:`.image` (ssim, psnr with
``data_range``), :mod:`.probabilistic` (scores of an *ensemble* forecast with a ``realization``
dim: crps, brier, bss, reliability, roc_auc, rank_histogram, spread_skill; listed in
``PROBABILISTIC_SCORES``). :mod:`.report` writes the report files (``scores.csv``, markdown, plots).
"""

from __future__ import annotations

from pipelines.verification import (
    categorical,
    continuous,
    image,
    probabilistic,
    spatial,
    spectral,
)
from pipelines.verification._registry import SCORES, ScoreFn


def get_score(name: str) -> ScoreFn:
    """The score function registered as ``name`` (``ValueError`` listing valid names)."""
    return SCORES.get(name)


__all__ = [
    "SCORES",
    "ScoreFn",
    "categorical",
    "continuous",
    "get_score",
    "image",
    "probabilistic",
    "spatial",
    "spectral",
]
