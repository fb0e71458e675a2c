"""Categorical scores from a 2×2 contingency table at an intensity threshold: CSI, POD, FAR.

An *event* is a value ``>= threshold`` (e.g. rain rate ≥ 1 mm/h). This is the convention of the
radar nowcasting literature and of pySTEPS' FSS; note that pySTEPS ``det_cat_fct`` uses ``>``
and counts NaN pixels as "no event" — here pixels where either field is NaN are left out of
the table altogether. (OpenSTL PR #114's ``_threshold`` overwrote the threshold with the first
mask before thresholding the second array; not copied.)

With hits ``H`` (forecast yes, observed yes), misses ``M`` (no, yes), false alarms ``F``
(yes, no) and correct negatives ``N`` (no, no), all summed over ``dims``::

    CSI = H / (H + M + F)      POD = H / (H + M)      FAR = F / (H + F)

A zero denominator gives NaN (e.g. POD when no event was observed).
"""

from __future__ import annotations

import math

import xarray as xr

from pipelines.verification._common import Dims, as_dims, masked_pair
from pipelines.verification._registry import SCORES


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValueError(f"threshold must be a number in the fields' units, got {threshold!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    return float(threshold)


def contingency_table(
    forecast: xr.DataArray, observation: xr.DataArray, threshold: float, dims: Dims = None
) -> xr.Dataset:
    """Counts of the 2×2 table of events ``value >= threshold``, summed over ``dims``.

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same physical units (e.g. mm/h), broadcast-compatible named dims.
    threshold : float
        Event threshold in those units.
    dims : str, sequence of str or None
        Dims summed over; ``None`` = all.

    Returns
    -------
    xr.Dataset
        int64 variables ``hits``, ``misses``, ``false_alarms``, ``correct_negatives`` over the
        remaining dims; pixels where either field is NaN are in none of them.
    """
    threshold = _check_threshold(threshold)
    reduce = as_dims(dims, forecast, observation)
    forecast, observation, valid = masked_pair(forecast, observation)
    f_yes = forecast >= threshold  # NaN compares False; `valid` keeps NaN pixels out below
    o_yes = observation >= threshold
    cells = {
        "hits": f_yes & o_yes,
        "misses": ~f_yes & o_yes & valid,
        "false_alarms": f_yes & ~o_yes,
        "correct_negatives": ~f_yes & ~o_yes & valid,
    }
    table = xr.Dataset({name: cell.sum(reduce).astype("int64") for name, cell in cells.items()})
    table.attrs["threshold"] = threshold
    return table


def _ratio(numerator: xr.DataArray, denominator: xr.DataArray) -> xr.DataArray:
    numerator = numerator.astype("float64")
    denominator = denominator.astype("float64")
    return numerator / denominator.where(denominator > 0)


@SCORES.register("csi")
def csi(
    forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None, threshold: float = 1.0
) -> xr.DataArray:
    """Critical success index (threat score) ``H / (H + M + F)`` at ``threshold``, in [0, 1]."""
    t = contingency_table(forecast, observation, threshold, dims)
    return _ratio(t.hits, t.hits + t.misses + t.false_alarms)


@SCORES.register("pod")
def pod(
    forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None, threshold: float = 1.0
) -> xr.DataArray:
    """Probability of detection (hit rate) ``H / (H + M)`` at ``threshold``, in [0, 1]."""
    t = contingency_table(forecast, observation, threshold, dims)
    return _ratio(t.hits, t.hits + t.misses)


@SCORES.register("far")
def far(
    forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None, threshold: float = 1.0
) -> xr.DataArray:
    """False alarm ratio ``F / (H + F)`` at ``threshold``, in [0, 1] (0 is best)."""
    t = contingency_table(forecast, observation, threshold, dims)
    return _ratio(t.false_alarms, t.hits + t.false_alarms)
