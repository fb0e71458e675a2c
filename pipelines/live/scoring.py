"""Score one forecast-store entry against its observations, with the baselines recomputed.

Every number comes from the one scoring code: the deterministic scores are the registered
:data:`pipelines.verification.SCORES` (reduced over ``y``/``x``, one value per lead), and the
reference forecasts are the registered :data:`pipelines.baselines.BASELINES`, recomputed from
the same observation store for the same init time, so SimVP and its references are always
compared on the same cases and pixels.

Probabilistic products (the forecast-store contract: ``probability_of_<var>_above_threshold``
with dims ``(threshold, lead_time, y, x)`` and ``<var>_ensemble`` with ``realization``) are
scored by :func:`probabilistic_rows`, the one place to point at the project's probabilistic
scores: registered ``crps``/``brier`` scores are used when :data:`SCORES` has them, the local
Brier score and reliability counts otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, X, Y
from pipelines.baselines import get_baseline
from pipelines.verification import SCORES, get_score

logger = logging.getLogger(__name__)

SIMVP = "simvp"
METHOD = "method"  # the stacking dim of SimVP and the baselines in one score call
PROBABILITY = "probability_of_{}_above_threshold"
ENSEMBLE = "{}_ensemble"
REALIZATION = "realization"
THRESHOLD = "threshold"
RELIABILITY_BINS = 10  # forecast-probability bins of width 0.1 (the usual reliability diagram)


@dataclass(frozen=True)
class ScoreConfig:
    """What is scored for every entry.

    Parameters
    ----------
    scores : tuple of str
        Registered continuous scores (one value per lead), e.g. ``("mse", "mae")``.
    categorical : tuple of str
        Registered thresholded scores, computed at each of ``thresholds``.
    thresholds : tuple of float
        Thresholds in the variable's units (mm/h for radar).
    baselines : tuple of str
        Registered baselines recomputed for the same init times.
    motion_frames : int
        History frames read for the baselines (the optical flow's default needs 3).
    """

    scores: tuple[str, ...] = ("mse", "mae")
    categorical: tuple[str, ...] = ("csi",)
    thresholds: tuple[float, ...] = (0.1, 1.0, 5.0)
    baselines: tuple[str, ...] = ("persistence", "optical_flow")
    motion_frames: int = 3

    def __post_init__(self) -> None:
        for name in (*self.scores, *self.categorical):
            get_score(name)  # ValueError listing the registered scores
        for name in self.baselines:
            get_baseline(name)
        if not self.thresholds or any(not np.isfinite(t) for t in self.thresholds):
            raise ValueError(f"thresholds must be finite numbers, got {self.thresholds!r}")
        if self.motion_frames < 2:
            raise ValueError(f"motion_frames must be >= 2, got {self.motion_frames}")


def _rows(values: xr.DataArray, **fields: object) -> list[dict[str, object]]:
    """One row per lead (and per ``method`` when that dim is there) of a reduced score."""
    if METHOD in values.dims:
        rows = []
        for method in values[METHOD].values:
            rows += _rows(values.sel({METHOD: method}, drop=True), **fields, method=str(method))
        return rows
    minutes = values[LEAD_TIME].values / np.timedelta64(1, "m")
    return [
        {**fields, "lead_time_minutes": float(m), "value": float(v)}
        for m, v in zip(minutes, np.asarray(values.values, dtype="float64"), strict=True)
    ]


def deterministic_rows(
    forecasts: xr.DataArray,
    observed: xr.DataArray,
    variable: str,
    config: ScoreConfig,
) -> list[dict[str, object]]:
    """Rows of every method's forecast against ``observed``, one score call per score.

    Parameters
    ----------
    forecasts : xr.DataArray
        ``(method, lead_time, y, x)`` physical units: SimVP and the baselines stacked.
    observed : xr.DataArray
        ``(lead_time, y, x)`` same units, NaN = not observed.
    variable : str
        Variable name written in the rows.
    config : ScoreConfig
        Which scores and thresholds.

    Returns
    -------
    list of dict
        ``method, score, variable, threshold, lead_time_minutes, value`` per score and lead.
    """
    rows: list[dict[str, object]] = []
    spatial = (Y, X)
    for name in config.scores:
        value = get_score(name)(forecasts, observed, dims=spatial)
        rows += _rows(value, score=name, variable=variable)
    for name in config.categorical:
        for threshold in config.thresholds:
            value = get_score(name)(forecasts, observed, dims=spatial, threshold=threshold)
            rows += _rows(value, score=name, variable=variable, threshold=threshold)
    return rows


def _brier_and_reliability(
    probability: xr.DataArray, observed: xr.DataArray, threshold: float, variable: str
) -> list[dict[str, object]]:
    """Local Brier score and reliability counts of one threshold (``(lead_time, y, x)`` each)."""
    valid = probability.notnull() & observed.notnull()
    event = (observed > threshold).where(valid)
    p = probability.where(valid)
    rows = _rows(
        ((p - event) ** 2).mean((Y, X)),
        method=SIMVP,
        score="brier",
        variable=variable,
        threshold=threshold,
    )
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    minutes = probability[LEAD_TIME].values / np.timedelta64(1, "m")
    pv = np.asarray(p.values, dtype="float64")  # (lead_time, y, x)
    ev = np.asarray(event.values, dtype="float64")
    for k, minute in enumerate(minutes):
        ok = np.isfinite(pv[k]) & np.isfinite(ev[k])
        index = np.clip(np.digitize(pv[k][ok], edges[1:-1]), 0, RELIABILITY_BINS - 1)
        counts = np.bincount(index, minlength=RELIABILITY_BINS)
        hits = np.bincount(index, weights=ev[k][ok], minlength=RELIABILITY_BINS)
        for b in np.flatnonzero(counts):
            rows.append(
                {
                    "method": SIMVP,
                    "score": "reliability",
                    "variable": variable,
                    "threshold": threshold,
                    "bin": float((edges[b] + edges[b + 1]) / 2),
                    "count": float(counts[b]),
                    "lead_time_minutes": float(minute),
                    "value": float(hits[b] / counts[b]),  # observed frequency in the bin
                }
            )
    return rows


def probabilistic_rows(entry: xr.Dataset, observed: xr.Dataset) -> list[dict[str, object]]:
    """Rows of SimVP's probabilistic products in one forecast-store entry (none if absent).

    Parameters
    ----------
    entry : xr.Dataset
        One init time of the forecast store (no ``init_time`` dim): per variable ``<var>``
        optionally ``probability_of_<var>_above_threshold`` ``(threshold, lead_time, y, x)``
        and ``<var>_ensemble`` ``(realization, lead_time, y, x)``.
    observed : xr.Dataset
        Per variable the observation ``(lead_time, y, x)`` at the entry's valid times.

    Returns
    -------
    list of dict
        Method ``simvp`` rows: ``brier`` per threshold and lead, ``reliability`` (observed
        frequency per forecast-probability ``bin`` with its pixel ``count``) and ``crps`` when a
        ``crps`` score is registered.
    """
    rows: list[dict[str, object]] = []
    for variable in observed.data_vars:
        obs = observed[variable]
        name = PROBABILITY.format(variable)
        if name in entry:
            probability = entry[name]
            for threshold in np.asarray(probability[THRESHOLD].values, dtype="float64"):
                p = probability.sel({THRESHOLD: threshold}, drop=True)
                rows += _brier_and_reliability(p, obs, float(threshold), str(variable))
        ensemble = ENSEMBLE.format(variable)
        if ensemble in entry and "crps" in SCORES:
            value = get_score("crps")(entry[ensemble], obs, dims=(Y, X))
            rows += _rows(value, method=SIMVP, score="crps", variable=str(variable))
    return rows


def score_entry(
    entry: xr.Dataset,
    observed: xr.DataArray,
    history: xr.DataArray | None,
    variables: Sequence[str],
    config: ScoreConfig,
) -> pd.DataFrame:
    """All rows of one entry: SimVP, the recomputed baselines and the probabilistic products.

    Parameters
    ----------
    entry : xr.Dataset
        One init time of the forecast store (scalar ``init_time``), variables
        ``(lead_time, y, x)`` in physical units.
    observed : xr.DataArray
        ``(lead_time, channel, y, x)`` observations at the entry's valid times on the forecast
        grid, physical units, NaN where not observed.
    history : xr.DataArray or None
        ``(time, channel, y, x)`` observations ending at the init time (for the baselines);
        None skips the baselines (their inputs are missing).
    variables : sequence of str
        The deterministic variables (``channel`` labels).
    config : ScoreConfig
        What to score.

    Returns
    -------
    pandas.DataFrame
        Rows with ``init_time`` set (see :data:`pipelines.live.store.COLUMNS`).
    """
    init = pd.Timestamp(entry[INIT_TIME].values)
    steps = entry.sizes[LEAD_TIME]
    rows: list[dict[str, object]] = []
    step = pd.Timedelta(entry[LEAD_TIME].values[0])
    methods: dict[str, xr.DataArray] = {}
    if history is not None:
        for name in config.baselines:
            methods[name] = get_baseline(name)(history, steps, time_step=step)
    obs_vars = {}
    for variable in variables:
        obs = observed.sel({CHANNEL: variable}, drop=True)
        obs_vars[variable] = obs
        fields = [entry[variable].reset_coords(drop=True)]
        for forecast in methods.values():
            field = (
                forecast.sel({CHANNEL: variable}, drop=True)
                if CHANNEL in forecast.dims
                else forecast
            )
            fields.append(field.reset_coords(drop=True).assign_coords({LEAD_TIME: obs[LEAD_TIME]}))
        names = [SIMVP, *methods]
        stacked = xr.concat(fields, dim=METHOD, coords="minimal", compat="override")
        stacked = stacked.assign_coords({METHOD: names})  # (method, lead_time, y, x)
        rows += deterministic_rows(stacked, obs, variable, config)
    rows += probabilistic_rows(entry, xr.Dataset(obs_vars))
    frame = pd.DataFrame(rows)
    frame.insert(0, "init_time", init)
    return frame


def history_times(init: pd.Timestamp, step: pd.Timedelta, frames: int) -> pd.DatetimeIndex:
    """The ``frames`` observation times ending at ``init`` (oldest first)."""
    return pd.date_range(end=init, periods=frames, freq=step)


__all__ = [
    "SIMVP",
    "ScoreConfig",
    "deterministic_rows",
    "history_times",
    "probabilistic_rows",
    "score_entry",
]
