"""Probabilistic scores of ensemble forecasts: CRPS, Brier (skill) score, reliability, ROC area,
rank histogram and spread/skill ratio, and the exceedance probabilities they start from.

Inputs follow the ensemble contract of :mod:`pipelines.baselines`: the forecast is an
``xr.DataArray`` with a ``realization`` dim (members ``0..M-1``) and otherwise the dims of the
observation (``(init_time, lead_time, [channel,] y, x)``), in the same physical units.

An *event* is a value ``>= threshold``, as for CSI/POD/FAR and FSS in this package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from data_catalog.vocabulary import REALIZATION, THRESHOLD


def _check_thresholds(thresholds: Sequence[float]) -> np.ndarray:
    values = list(thresholds) if not isinstance(thresholds, int | float) else [thresholds]
    if not values:
        raise ValueError("thresholds must name at least one threshold")
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int | float | np.number):
            raise ValueError(f"thresholds must be numbers in the fields' units, got {t!r}")
        if not math.isfinite(float(t)):
            raise ValueError(f"thresholds must be finite, got {t!r}")
    out = np.asarray(values, dtype="float64")
    if np.any(np.diff(out) <= 0):
        raise ValueError(f"thresholds must be strictly increasing, got {values!r}")
    return out


def _check_ensemble(ensemble: xr.DataArray) -> xr.DataArray:
    if not isinstance(ensemble, xr.DataArray):
        raise TypeError(f"an ensemble is an xr.DataArray, got {type(ensemble).__name__}")
    if REALIZATION not in ensemble.dims:
        raise ValueError(f"an ensemble needs a {REALIZATION!r} dim, got dims {ensemble.dims}")
    if ensemble.sizes[REALIZATION] < 1:
        raise ValueError(f"an ensemble needs at least one member, got {ensemble.sizes=}")
    return ensemble


def exceedance_probability(ensemble: xr.DataArray, thresholds: Sequence[float]) -> xr.DataArray:
    """Fraction of members at or above each threshold (event ``value >= threshold``).

    Parameters
    ----------
    ensemble : xr.DataArray
        Members, dims ``(realization, ...)`` (e.g. ``(realization, lead_time, y, x)``), in
        physical units (e.g. mm/h).
    thresholds : sequence of float
        Strictly increasing thresholds in the ensemble's units.

    Returns
    -------
    xr.DataArray
        float32 in [0, 1], dims ``(threshold, ...)`` (the ensemble's other dims in order),
        non-increasing along ``threshold``; NaN where any member is NaN (no data). The
        ``threshold`` coordinate carries the ensemble's ``units`` and ``standard_name``; the
        result has ``units = "1"``.
    """
    ensemble = _check_ensemble(ensemble)
    values = _check_thresholds(thresholds)
    valid = ensemble.notnull().all(REALIZATION)
    layers = [(ensemble >= t).mean(REALIZATION) for t in values]  # NaN compares False
    coord = xr.DataArray(values, dims=THRESHOLD, name=THRESHOLD)
    coord.attrs = {k: ensemble.attrs[k] for k in ("units", "standard_name") if k in ensemble.attrs}
    probability = xr.concat(layers, dim=coord).where(valid).astype("float32")
    other = [d for d in ensemble.dims if d != REALIZATION]
    probability = probability.transpose(THRESHOLD, *other)
    probability.attrs = {"units": "1", "long_name": "probability of value >= threshold"}
    return probability.rename(
        f"probability_of_{ensemble.name}_above_threshold" if ensemble.name else None
    )
