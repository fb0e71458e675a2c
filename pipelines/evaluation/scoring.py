"""Scoring of the methods' forecasts on the same windows, and the report of a scored run.

:func:`score_forecasts` scores every deterministic forecast with the plan's ``scores`` and
every ensemble with its ``ensemble_scores`` (the same :mod:`pipelines.verification` functions
for all); :func:`score_and_report` adds the bootstrap intervals, the paired comparisons and
writes the report files. Used by :func:`pipelines.evaluation.evaluate.evaluate_source` and the
cross-validation (:mod:`pipelines.evaluation.cross_validation.run`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LATITUDE, LEAD_TIME, X, Y
from pipelines.verification import get_score
from pipelines.verification.bootstrap import BootstrapConfig
from pipelines.verification.ensemble_tables import rank_histogram_rows, reliability_rows
from pipelines.verification.intervals import Comparison, comparison_table, interval_rows
from pipelines.verification.plans import EvaluationPlan, ScoreRequest
from pipelines.verification.report import write_report
from pipelines.verification.spectral import spectral_rows

logger = logging.getLogger(__name__)

SIMVP = "simvp"
"""Method name of the SimVP checkpoint in reports (its deterministic map and its ensemble)."""
SCORE_DIMS: tuple[str, ...] = (INIT_TIME, Y, X)
"""Scores pool over test windows and space; they stay per lead time and per variable."""
SCORE_COLUMNS: tuple[str, ...] = (
    "method",
    "score",
    "variable",
    "threshold",
    "scale",
    "lead_time_minutes",
    "value",
)
SSIM_MIN_SIDE = 7  # skimage's default SSIM window is 7 x 7 pixels
ENSEMBLE_COMPARISONS = ("crps", "brier")
"""Scores of the paired comparisons SimVP's ensemble − each other ensemble."""


@dataclass
class MethodForecasts:
    """Forecasts of every method and the verifying observations on the same windows.

    Attributes
    ----------
    observation : xr.DataArray
        ``(init_time, lead_time, channel, y, x)`` physical units, NaN = no data.
    forecasts : dict of str to xr.DataArray
        Same dims and coords, one per method.
    history : xr.DataArray
        ``(init_time, history_frame, channel, y, x)`` inputs (for the example figure).
    ensembles : dict of str to xr.DataArray
        ``(init_time, realization, lead_time, channel, y, x)``, one per ensemble method (a name
        may also be in ``forecasts``: SimVP's deterministic map and its ensemble).
    """

    observation: xr.DataArray
    forecasts: dict[str, xr.DataArray]
    history: xr.DataArray
    ensembles: dict[str, xr.DataArray] = field(default_factory=dict)


def concat_forecasts(parts: Sequence[MethodForecasts]) -> MethodForecasts:
    """Join the :class:`MethodForecasts` of several stores along ``init_time``."""
    if not parts:
        raise ValueError("no test window to evaluate")
    if len(parts) == 1:
        return parts[0]
    return MethodForecasts(
        xr.concat([p.observation for p in parts], INIT_TIME),
        {k: xr.concat([p.forecasts[k] for p in parts], INIT_TIME) for k in parts[0].forecasts},
        xr.concat([p.history for p in parts], INIT_TIME),
        {k: xr.concat([p.ensembles[k] for p in parts], INIT_TIME) for k in parts[0].ensembles},
    )


def _score_rows(
    method: str,
    forecast: xr.DataArray,
    observation: xr.DataArray,
    requests: Sequence[ScoreRequest],
    names: Sequence[str],
    data_range: float | None,
) -> list[dict[str, Any]]:
    """Rows of ``requests`` for one method (deterministic or ensemble), per lead and variable."""
    lead_minutes = observation[LEAD_TIME].values / np.timedelta64(1, "m")
    fc = forecast.reset_coords([c for c in forecast.coords if c not in forecast.dims], drop=True)
    rows: list[dict[str, Any]] = []
    for request in requests:
        params = request.params()
        if request.score in ("ssim", "psnr"):
            params["data_range"] = data_range
        values = get_score(request.score)(fc, observation, SCORE_DIMS, **params)
        values = values.transpose(LEAD_TIME, CHANNEL).values  # (lead_time, channel)
        for c, variable in enumerate(names):
            for k, minutes in enumerate(lead_minutes):
                rows.append(
                    {
                        "method": method,
                        "score": request.score,
                        "variable": str(variable),
                        "threshold": request.threshold,
                        "scale": request.scale,
                        "lead_time_minutes": float(minutes),
                        "value": float(values[k, c]),
                    }
                )
    return rows


def score_forecasts(
    result: MethodForecasts,
    requests: Sequence[ScoreRequest],
    image_scores: bool = False,
    variables: Sequence[str] | None = None,
    ensemble_requests: Sequence[ScoreRequest] = (),
) -> pd.DataFrame:
    """Score every method per lead time and variable with the same functions.

    ``requests`` score the deterministic forecasts, ``ensemble_requests`` (probabilistic
    scores) the ensembles of ``result.ensembles``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORE_COLUMNS`; ``threshold``/``scale`` NaN where they do not apply.
    """
    obs = result.observation
    requests = list(requests)
    data_range = None
    if image_scores:
        data_range = float(obs.max(skipna=True) - obs.min(skipna=True))
        if min(obs.sizes[Y], obs.sizes[X]) >= SSIM_MIN_SIDE and data_range > 0:
            requests += [ScoreRequest("ssim"), ScoreRequest("psnr")]
            logger.info("SSIM/PSNR with data_range=%g (range of the observations)", data_range)
        else:
            logger.info("SSIM/PSNR skipped: grid %s or data range %g", obs.shape[-2:], data_range)
    if any(r.score in ("weighted_rmse", "acc") for r in requests) and LATITUDE not in obs.coords:
        raise ValueError(f"latitude-weighted scores need a {LATITUDE!r} coordinate on the frames")
    names = list(variables) if variables is not None else list(obs[CHANNEL].values)
    rows: list[dict[str, Any]] = []
    # Only the index coords and latitude take part in scoring: fewer coords, faster alignment.
    keep = [LATITUDE] if LATITUDE in obs.coords else []
    obs = obs.reset_coords(
        [c for c in obs.coords if c not in obs.dims and c not in keep], drop=True
    )
    for method, fc in result.forecasts.items():
        rows += _score_rows(method, fc, obs, requests, names, data_range)
    if ensemble_requests:
        for method, ens in result.ensembles.items():
            rows += _score_rows(method, ens, obs, ensemble_requests, names, None)
    table = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return table.astype({"threshold": "float64", "scale": "float64"})


def score_and_report(
    result: MethodForecasts,
    plan: EvaluationPlan,
    groups: np.ndarray,
    bootstrap: BootstrapConfig,
    directory: str,
    title: str,
    notes: list[str],
    provenance: Mapping[str, object],
    comparisons: Sequence[Comparison],
) -> tuple[pd.DataFrame, list[str]]:
    """Score ``result`` with ``plan`` (intervals over ``groups``) and write the report.

    Deterministic comparisons are ``comparisons``; SimVP's ensemble (when present) is also
    compared with every other ensemble on CRPS and on the Brier score at each threshold.

    Returns
    -------
    scores : pandas.DataFrame
        ``scores.csv`` rows with ``lower``/``upper``.
    files : list of str
    """
    scores = score_forecasts(
        result, plan.scores, plan.image_scores, ensemble_requests=plan.ensemble_scores
    )
    spectra = None
    if plan.spectra:
        rows, spectra = spectral_rows(result.observation, result.forecasts)
        scores = pd.concat([scores, rows], ignore_index=True)
    scores = interval_rows(
        scores, result.observation, result.forecasts, groups, bootstrap, result.ensembles
    )
    table = comparison_table(result.observation, result.forecasts, comparisons, groups, bootstrap)
    extra, reliability, ranks = ensemble_tables(result, plan, groups, bootstrap)
    notes = [
        *notes,
        "SimVP MSE below persistence at every lead time: "
        + ("yes" if beats_persistence(scores) else "no"),
    ]
    files = write_report(
        directory,
        scores,
        title,
        notes,
        examples=(result.observation, result.forecasts, result.history),
        spectra=spectra,
        provenance=provenance,
        comparisons=pd.concat([table, extra], ignore_index=True) if len(extra) else table,
        reliability=reliability,
        rank_histograms=ranks,
        n_groups=len(np.unique(groups)),
    )
    return scores, files


def ensemble_tables(
    result: MethodForecasts,
    plan: EvaluationPlan,
    groups: np.ndarray,
    bootstrap: BootstrapConfig,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """What the report shows of the ensembles besides their scores.

    Returns
    -------
    comparisons : pandas.DataFrame
        Paired SimVP ensemble − each other ensemble on :data:`ENSEMBLE_COMPARISONS` (the
        plan's thresholds for the Brier score); empty without SimVP's ensemble.
    reliability, rank_histograms : pandas.DataFrame or None
        :func:`~pipelines.verification.ensemble_tables.reliability_rows` at the plan's
        reliability thresholds and the rank histograms at its ``rank_histogram`` threshold
        (None without ensembles or without those scores).
    """
    wanted = [
        Comparison(SIMVP, other, r.score, r.threshold)
        for other in result.ensembles
        if other != SIMVP
        for r in plan.ensemble_scores
        if r.score in ENSEMBLE_COMPARISONS
    ]
    comparisons = comparison_table(
        result.observation,
        result.ensembles if SIMVP in result.ensembles else {},
        wanted,
        groups,
        bootstrap,
    )
    if not result.ensembles:
        return comparisons, None, None
    thresholds = sorted({r.threshold for r in plan.ensemble_scores if r.score == "reliability"})
    rank = [r for r in plan.ensemble_scores if r.score == "rank_histogram"]
    reliability = (
        reliability_rows(result.observation, result.ensembles, thresholds) if thresholds else None
    )
    ranks = (
        rank_histogram_rows(result.observation, result.ensembles, rank[0].threshold)
        if rank
        else None
    )
    return comparisons, reliability, ranks


def beats_persistence(scores: pd.DataFrame, method: str = SIMVP, score: str = "mse") -> bool:
    """True when ``method`` has a lower ``score`` than persistence at every lead time."""
    rows = scores[scores["score"] == score]
    mine = rows[rows["method"] == method]
    ref = rows[rows["method"] == "persistence"]
    merged = mine.merge(ref, on=["variable", "lead_time_minutes"], suffixes=("", "_ref"))
    return bool(len(merged) and (merged["value"] < merged["value_ref"]).all())
