"""Score tables with bootstrap intervals, and paired comparisons, for every method at once.

:func:`interval_rows` gives ``lower``/``upper`` bounds for the rows of a ``scores.csv`` table
(the pooled scores of :mod:`pipelines.verification.bootstrap`; rows of scores without a
decomposition keep NaN bounds), and :func:`comparison_table` the paired differences
``method − reference`` per score and lead time. Both take the verifying observations and the
forecasts of each method on the same windows ``(init_time, lead_time, channel, y, x)`` and a
group label per window (event or block: the resampling unit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, LEAD_TIME
from pipelines.verification.bootstrap import (
    POOLED,
    BootstrapConfig,
    paired_difference,
    score_interval,
)
from pipelines.verification.plans import ScoreRequest
from pipelines.verification.probabilistic import PROBABILISTIC_SCORES

KEYS: tuple[str, ...] = ("method", "score", "variable", "threshold", "scale", "lead_time_minutes")
"""Columns that identify a row of ``scores.csv``."""
COMPARISON_COLUMNS: tuple[str, ...] = (
    "method",
    "reference",
    "score",
    "variable",
    "threshold",
    "scale",
    "lead_time_minutes",
    "difference",
    "lower",
    "upper",
    "share_below_zero",
    "excludes_zero",
    "n_windows",
    "n_groups",
    "level",
)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison to report: ``method − reference`` on ``score`` (and its params)."""

    method: str
    reference: str
    score: str = "mse"
    threshold: float | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        POOLED.get(self.score)  # a score without a decomposition raises, listing the valid
        self.request()  # and the score's parameters are checked as for any score request

    def request(self) -> ScoreRequest:
        """The score and its parameters as a :class:`ScoreRequest`."""
        return ScoreRequest(self.score, self.threshold, self.scale)

    def params(self) -> dict[str, Any]:
        """Keyword arguments for the score."""
        return self.request().params()


def _variables(observation: xr.DataArray) -> list[str]:
    return [str(v) for v in observation[CHANNEL].values]


def _long(
    data: xr.Dataset, observation: xr.DataArray, columns: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Rows per (lead_time, channel) of the variables in ``columns`` (name → column)."""
    minutes = observation[LEAD_TIME].values / np.timedelta64(1, "m")
    rows = []
    for c, variable in enumerate(_variables(observation)):
        for k, m in enumerate(minutes):
            row: dict[str, Any] = {"variable": variable, "lead_time_minutes": float(m)}
            for name, column in columns.items():
                row[column] = float(data[name].transpose(LEAD_TIME, CHANNEL).values[k, c])
            rows.append(row)
    return rows


def interval_rows(
    scores: pd.DataFrame,
    observation: xr.DataArray,
    forecasts: Mapping[str, xr.DataArray],
    groups: np.ndarray,
    config: BootstrapConfig | None = None,
    ensembles: Mapping[str, xr.DataArray] | None = None,
) -> pd.DataFrame:
    """``scores`` with ``lower`` and ``upper`` columns from the bootstrap over ``groups``.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``scores.csv`` rows (:data:`KEYS` and ``value``) of the methods in ``forecasts``.
    observation : xr.DataArray
        ``(init_time, lead_time, channel, y, x)`` verifying frames, NaN = no data.
    forecasts : mapping of str to xr.DataArray
        Method name → forecasts on the same windows.
    groups : np.ndarray, shape (init_time,)
        Resampling unit of each window.
    config : BootstrapConfig, optional
    ensembles : mapping of str to xr.DataArray, optional
        Method name → ensemble forecasts (with ``realization``): the rows of the
        probabilistic scores are bootstrapped from these, the others from ``forecasts``.

    Returns
    -------
    pandas.DataFrame
        ``scores`` plus ``lower``, ``upper`` (NaN for scores without a decomposition, e.g.
        SSIM, or for methods not in ``forecasts``/``ensembles``).
    """
    config = config or BootstrapConfig()
    configs = scores[["score", "threshold", "scale"]].drop_duplicates()
    bounds = []
    for score, threshold, scale in configs.itertuples(index=False, name=None):
        if score not in POOLED.names():
            continue
        params: dict[str, Any] = {}
        if not pd.isna(threshold):
            params["threshold"] = float(threshold)
        if not pd.isna(scale):
            params["scale"] = int(scale)
        source = (ensembles or {}) if score in PROBABILISTIC_SCORES else forecasts
        scored = set(scores.loc[scores["score"] == score, "method"])
        for method, fc in source.items():
            if method not in scored:
                continue
            out = score_interval(score, fc, observation, groups, config, **params)
            for row in _long(out, observation, {"lower": "lower", "upper": "upper"}):
                bounds.append(
                    {"method": method, "score": score, "threshold": threshold, "scale": scale} | row
                )
    if not bounds:
        return scores.assign(lower=np.nan, upper=np.nan)
    table = pd.DataFrame(bounds).astype({"threshold": "float64", "scale": "float64"})
    merged = scores.merge(table, on=list(KEYS), how="left", validate="one_to_one")
    return merged[[*scores.columns, "lower", "upper"]]


def comparison_table(
    observation: xr.DataArray,
    forecasts: Mapping[str, xr.DataArray],
    comparisons: Sequence[Comparison],
    groups: np.ndarray,
    config: BootstrapConfig | None = None,
) -> pd.DataFrame:
    """Paired differences ``method − reference`` with their bootstrap intervals.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per comparison, variable and lead time;
        ``excludes_zero`` is True where the interval lies wholly on one side of 0. Comparisons
        naming a method that is not in ``forecasts`` are skipped.
    """
    config = config or BootstrapConfig()
    rows = []
    n_groups = len(np.unique(groups))
    for comp in comparisons:
        if comp.method not in forecasts or comp.reference not in forecasts:
            continue
        out = paired_difference(
            comp.score,
            forecasts[comp.method],
            forecasts[comp.reference],
            observation,
            groups,
            config,
            **comp.params(),
        )
        columns = {
            "value": "difference",
            "lower": "lower",
            "upper": "upper",
            "share_below_zero": "share_below_zero",
        }
        for row in _long(out, observation, columns):
            rows.append(
                {
                    "method": comp.method,
                    "reference": comp.reference,
                    "score": comp.score,
                    "threshold": comp.threshold,
                    "scale": comp.scale,
                    **row,
                    "excludes_zero": bool(row["lower"] > 0 or row["upper"] < 0),
                    "n_windows": int(observation.sizes["init_time"]),
                    "n_groups": n_groups,
                    "level": config.level,
                }
            )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
