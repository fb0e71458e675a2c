"""Long tables behind the ensemble plots: reliability diagrams and rank histograms per method.

Both pool every window and pixel per lead time (the scores' ``SCORE_DIMS``) with the code of
:mod:`pipelines.verification.probabilistic` and return one row per (method, variable,
threshold, lead time, bin or rank), written as ``reliability.csv`` and ``rank_histogram.csv``
next to ``scores.csv`` and drawn by :mod:`pipelines.verification.report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, X, Y
from pipelines.verification.probabilistic import (
    PROBABILITY_BIN,
    RANK,
    rank_histogram_table,
    reliability_table,
)

POOLED_DIMS: tuple[str, ...] = (INIT_TIME, Y, X)
RELIABILITY_COLUMNS: tuple[str, ...] = (
    "method",
    "variable",
    "threshold",
    "lead_time_minutes",
    "bin_lower",
    "bin_upper",
    "forecast_probability",
    "observed_frequency",
    "count",
)
RANK_COLUMNS: tuple[str, ...] = (
    "method",
    "variable",
    "threshold",
    "lead_time_minutes",
    "rank",
    "count",
    "frequency",
)


def _rows(
    table: xr.Dataset, inner: str, columns: Sequence[str], fixed: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows of a ``(lead_time, [channel,] inner)`` table."""
    frame = table.to_dataframe().reset_index()
    frame["lead_time_minutes"] = frame[LEAD_TIME] / np.timedelta64(1, "m")
    if CHANNEL in frame:
        frame["variable"] = frame[CHANNEL].astype(str)
    for key, value in fixed.items():
        frame[key] = value
    if inner == RANK:
        frame["rank"] = frame[RANK]
    return frame[[c for c in columns if c in frame]].to_dict("records")


def _prepared(observation: xr.DataArray, ensemble: xr.DataArray) -> tuple:
    obs = observation.reset_coords(
        [c for c in observation.coords if c not in observation.dims], drop=True
    )
    ens = ensemble.reset_coords([c for c in ensemble.coords if c not in ensemble.dims], drop=True)
    return obs, ens


def reliability_rows(
    observation: xr.DataArray,
    ensembles: Mapping[str, xr.DataArray],
    thresholds: Sequence[float],
) -> pd.DataFrame:
    """Reliability tables of every ensemble at every threshold, per lead time.

    Parameters
    ----------
    observation : xr.DataArray
        ``(init_time, lead_time, channel, y, x)`` physical units, NaN = no data.
    ensembles : mapping of str to xr.DataArray
        Method → ``(init_time, realization, lead_time, channel, y, x)`` on the same windows.
    thresholds : sequence of float
        Event thresholds (the observation's units).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RELIABILITY_COLUMNS` (``count`` = pixels in the bin).
    """
    rows: list[dict[str, Any]] = []
    for method, ensemble in ensembles.items():
        obs, ens = _prepared(observation, ensemble)
        for t in thresholds:
            table = reliability_table(ens, obs, float(t), POOLED_DIMS)
            fixed = {"method": method, "threshold": float(t)}
            rows += _rows(table, PROBABILITY_BIN, RELIABILITY_COLUMNS, fixed)
    return pd.DataFrame(rows, columns=list(RELIABILITY_COLUMNS))


def rank_histogram_rows(
    observation: xr.DataArray,
    ensembles: Mapping[str, xr.DataArray],
    threshold: float | None = None,
) -> pd.DataFrame:
    """Rank histograms of every ensemble per lead time (ties spread evenly).

    Parameters
    ----------
    observation, ensembles
        As :func:`reliability_rows`.
    threshold : float, optional
        pySTEPS' ``X_min``: only pixels where the observation or a member reaches it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RANK_COLUMNS` (``threshold`` NaN when not given).
    """
    rows: list[dict[str, Any]] = []
    for method, ensemble in ensembles.items():
        obs, ens = _prepared(observation, ensemble)
        table = rank_histogram_table(ens, obs, POOLED_DIMS, threshold)
        fixed = {"method": method, "threshold": np.nan if threshold is None else float(threshold)}
        rows += _rows(table, RANK, RANK_COLUMNS, fixed)
    return pd.DataFrame(rows, columns=list(RANK_COLUMNS))
