"""Bootstrap confidence intervals for pooled scores, resampling whole windows, blocks or events.

The scores of :mod:`pipelines.verification` pool sums over windows and pixels (MSE = Σ (f-o)² /
Σ n, CSI = Σ H / Σ (H + M + F), FSS = 1 - Σ num / Σ den). Each such score is split here into
**per-window components** (the sums over ``(y, x)`` of one forecast window: ``(init_time,
lead_time, [channel,] component)``) and a **combine** rule; pooling the components of all
windows gives exactly the registered score (pinned by the tests). A bootstrap resample draws
whole *groups* of windows with replacement, sums their components and combines them, so one
resample costs a matrix product instead of re-scoring fields.

Method
    Percentile bootstrap (Efron & Tibshirani 1993, ch. 13) with ``n_resamples`` resamples; the
    interval at ``level`` is the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the
    resampled scores. Windows cut from one event share frames and weather, so they are not
    independent: the resampling unit is a *group* — an event (cluster bootstrap, used for
    cross-validation: the held-out events) or a block of consecutive windows
    (:func:`contiguous_blocks`; windows more than one window length apart share no frame, so
    blocks of that many init times are the non-overlapping unit of a moving-block bootstrap).
    With a single group the interval is a point: say so rather than report it as certainty.

Paired comparison
    :func:`paired_difference` draws the *same* groups for methods A and B and reports the
    score of A minus the score of B with its interval: the interval excludes zero when A is
    better (or worse) in nearly every resample of events.

The ``scores`` package (xarray verification, with a circular block bootstrap) was considered:
its ``block_bootstrap`` resamples the raw arrays in fixed-length blocks along one dim, which
neither follows event boundaries of variable length nor avoids copying ``n_resamples`` full
forecast fields; resampling per-window sums here is exact for these pooled scores and cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import INIT_TIME, X, Y
from pipelines.verification._common import masked_pair
from pipelines.verification.categorical import _check_threshold
from pipelines.verification.spatial import event_fractions
from simvp_model.registry import Registry

COMPONENT = "component"
"""Dim of the per-window components."""
RESAMPLE = "resample"
"""Dim of the bootstrap resamples."""


@dataclass(frozen=True)
class BootstrapConfig:
    """How intervals are computed.

    Parameters
    ----------
    n_resamples : int
        Bootstrap resamples (1000: the Monte-Carlo error of a 90 % percentile bound is then
        well below the width of the interval).
    level : float
        Confidence level of the two-sided interval, in (0, 1).
    seed : int
        Seed of the resampling (same seed, same intervals).
    """

    n_resamples: int = 1000
    level: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        n = self.n_resamples
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n_resamples must be a positive integer, got {n!r}")
        if not (isinstance(self.level, int | float) and 0.0 < self.level < 1.0):
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")

    @property
    def quantiles(self) -> tuple[float, float]:
        """Lower and upper quantile of the percentile interval."""
        return (1.0 - self.level) / 2.0, (1.0 + self.level) / 2.0


# ----------------------------------------------------------------------------- components
@dataclass(frozen=True)
class PooledScore:
    """A pooled score as per-window components and the rule that combines their sums.

    Attributes
    ----------
    components : callable
        ``(forecast, observation, spatial_dims, **params) -> xr.DataArray`` of sums over the
        spatial dims with a trailing :data:`COMPONENT` dim.
    combine : callable
        ``sums (..., component) -> score (...)`` on numpy arrays (NaN for a zero denominator).
    """

    components: Callable[..., xr.DataArray]
    combine: Callable[[np.ndarray], np.ndarray]


POOLED: Registry[PooledScore] = Registry("pooled score")
"""Scores that have a bootstrap decomposition (same names as :data:`SCORES`)."""


def _stack(parts: Sequence[xr.DataArray]) -> xr.DataArray:
    return xr.concat([p.astype("float64") for p in parts], COMPONENT).transpose(..., COMPONENT)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def _error_sums(power: int, absolute: bool = False) -> Callable[..., xr.DataArray]:
    def components(fc: xr.DataArray, obs: xr.DataArray, spatial: tuple[Hashable, ...], **_: Any):
        fc, obs, valid = masked_pair(fc, obs)
        error = fc - obs
        error = abs(error) if absolute else error
        return _stack([(error**power).sum(spatial, skipna=True), valid.sum(spatial)])

    return components


def _mean(sums: np.ndarray) -> np.ndarray:
    return _ratio(sums[..., 0], sums[..., 1])


POOLED.add("mse", PooledScore(_error_sums(2), _mean))
POOLED.add("mae", PooledScore(_error_sums(1, absolute=True), _mean))
POOLED.add("bias", PooledScore(_error_sums(1), _mean))
POOLED.add("rmse", PooledScore(_error_sums(2), lambda s: np.sqrt(_mean(s))))


def _table_sums(
    fc: xr.DataArray, obs: xr.DataArray, spatial: tuple[Hashable, ...], threshold: float = 1.0
) -> xr.DataArray:
    threshold = _check_threshold(threshold)
    fc, obs, valid = masked_pair(fc, obs)
    f_yes, o_yes = fc >= threshold, obs >= threshold  # NaN compares False
    hits, misses, false_alarms = f_yes & o_yes, ~f_yes & o_yes & valid, f_yes & ~o_yes
    return _stack([hits.sum(spatial), misses.sum(spatial), false_alarms.sum(spatial)])


POOLED.add("csi", PooledScore(_table_sums, lambda s: _ratio(s[..., 0], s.sum(-1))))
POOLED.add("pod", PooledScore(_table_sums, lambda s: _ratio(s[..., 0], s[..., 0] + s[..., 1])))
POOLED.add("far", PooledScore(_table_sums, lambda s: _ratio(s[..., 2], s[..., 0] + s[..., 2])))


def _fss_sums(
    fc: xr.DataArray,
    obs: xr.DataArray,
    spatial: tuple[Hashable, ...],
    threshold: float = 1.0,
    scale: int = 1,
) -> xr.DataArray:
    threshold = _check_threshold(threshold)
    fc, obs, valid = masked_pair(fc, obs)
    p_f = event_fractions((fc >= threshold) & valid, int(scale), spatial)  # type: ignore[arg-type]
    p_o = event_fractions((obs >= threshold) & valid, int(scale), spatial)  # type: ignore[arg-type]
    return _stack([((p_f - p_o) ** 2).sum(spatial), (p_f**2 + p_o**2).sum(spatial)])


POOLED.add("fss", PooledScore(_fss_sums, lambda s: 1.0 - _ratio(s[..., 0], s[..., 1])))


def window_components(
    score: str,
    forecast: xr.DataArray,
    observation: xr.DataArray,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
    **params: Any,
) -> xr.DataArray:
    """Per-window sums of ``score`` over the spatial dims.

    Parameters
    ----------
    score : str
        Name in :data:`POOLED` (``mse``, ``mae``, ``rmse``, ``bias``, ``csi``, ``pod``, ``far``,
        ``fss``).
    forecast, observation : xr.DataArray
        ``(init_time, lead_time, [channel,] y, x)`` in the same units; NaN = no data.
    spatial_dims : tuple of str
        The dims summed over.
    **params
        ``threshold`` (fields' units), ``scale`` (pixels) where the score takes them.

    Returns
    -------
    xr.DataArray
        float64 ``(init_time, lead_time, [channel,] component)``.
    """
    return POOLED.get(score).components(forecast, observation, tuple(spatial_dims), **params)


# ----------------------------------------------------------------------------- groups
def contiguous_blocks(
    init_times: np.ndarray, step: np.timedelta64 | pd.Timedelta, block: int
) -> np.ndarray:
    """Group windows into blocks of ``block`` consecutive init steps inside each run.

    Parameters
    ----------
    init_times : np.ndarray of datetime64, shape (N,)
        Init time of each window, sorted ascending within each run (any order across runs).
    step : timedelta
        Time step of the init times; a larger jump starts a new run (event).
    block : int
        Init steps per block (use the window length ``T_in + T_out``: windows of different
        blocks then share no frame except at the block edge).

    Returns
    -------
    np.ndarray of int, shape (N,)
        Group label of each window (0, 1, ... in order of appearance).
    """
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise ValueError(f"block must be a positive number of init steps, got {block!r}")
    times = np.asarray(init_times, dtype="datetime64[ns]")
    delta = pd.Timedelta(step).to_timedelta64()
    if delta <= np.timedelta64(0):
        raise ValueError(f"step must be positive, got {step!r}")
    labels = np.empty(len(times), dtype=np.int64)
    group, run_start = -1, None
    current: tuple[int, int] | None = None
    for i, t in enumerate(times):
        if run_start is None or t - times[i - 1] != delta:
            run_start, run = t, i
        k = int((t - run_start) // delta) // block
        if current != (run, k):
            group, current = group + 1, (run, k)
        labels[i] = group
    return labels


def group_weights(groups: np.ndarray, config: BootstrapConfig) -> np.ndarray:
    """How often each window is drawn in each resample (whole groups drawn with replacement).

    Returns
    -------
    np.ndarray of float64, shape (n_resamples, N)
        Row ``r``: the number of copies of each window in resample ``r``.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size == 0:
        raise ValueError(f"groups must be a non-empty 1-D label array, got shape {groups.shape}")
    names, index = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(config.seed)
    draws = rng.integers(0, len(names), size=(config.n_resamples, len(names)))
    counts = np.zeros((config.n_resamples, len(names)))  # (R, G)
    np.add.at(counts, (np.arange(config.n_resamples)[:, None], draws), 1.0)
    return counts[:, index]  # (R, N)


# ----------------------------------------------------------------------------- intervals
def _resampled(
    score: str, components: xr.DataArray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[Hashable, ...]]:
    """Pooled score and its resamples: ``(value (...), resamples (R, ...), dims)``."""
    parts = components.transpose(INIT_TIME, ..., COMPONENT)
    values = np.nan_to_num(parts.values)  # (N, ..., component); sums of no pixel are 0
    combine = POOLED.get(score).combine
    total = combine(values.sum(0))
    resampled = combine(np.tensordot(weights, values, axes=(1, 0)))  # (R, ..., )
    return total, resampled, parts.dims[1:-1]


def _interval_frame(
    name: str,
    value: np.ndarray,
    resampled: np.ndarray,
    dims: tuple[Hashable, ...],
    coords: dict[Hashable, Any],
    config: BootstrapConfig,
    n_groups: int,
) -> xr.Dataset:
    q = config.quantiles
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(resampled).any(0)
        safe = np.where(np.isfinite(resampled), resampled, np.nan)
        bounds = np.full((2, *value.shape), np.nan)
        if finite.any():
            bounds[:, finite] = np.nanquantile(safe[:, finite], q, axis=0)
    out = xr.Dataset(
        {
            "value": (dims, value),
            "lower": (dims, bounds[0]),
            "upper": (dims, bounds[1]),
        },
        coords=coords,
    )
    out.attrs = {
        "score": name,
        "method": "percentile bootstrap over groups of windows",
        "level": config.level,
        "n_resamples": config.n_resamples,
        "n_groups": n_groups,
        "seed": config.seed,
    }
    return out


def score_interval(
    score: str,
    forecast: xr.DataArray,
    observation: xr.DataArray,
    groups: np.ndarray,
    config: BootstrapConfig | None = None,
    **params: Any,
) -> xr.Dataset:
    """Pooled ``score`` with its bootstrap interval, resampling whole groups of windows.

    Parameters
    ----------
    score : str
        Name in :data:`POOLED`.
    forecast, observation : xr.DataArray
        ``(init_time, lead_time, [channel,] y, x)``, same units, NaN = no data.
    groups : np.ndarray, shape (N,)
        Resampling unit of each ``init_time`` (event id or :func:`contiguous_blocks`).
    config : BootstrapConfig, optional
    **params
        Score parameters (``threshold``, ``scale``).

    Returns
    -------
    xr.Dataset
        ``value`` (the pooled score over all windows, equal to the registered score),
        ``lower``, ``upper`` over the remaining dims (``lead_time``, [``channel``]); attrs give
        the method, level, resamples and number of groups.
    """
    config = config or BootstrapConfig()
    comps = window_components(score, forecast, observation, **params)
    _check_groups(groups, comps)
    value, resampled, dims = _resampled(score, comps, group_weights(groups, config))
    coords = {d: comps[d] for d in dims if d in comps.coords}
    return _interval_frame(score, value, resampled, dims, coords, config, len(np.unique(groups)))


def paired_difference(
    score: str,
    forecast_a: xr.DataArray,
    forecast_b: xr.DataArray,
    observation: xr.DataArray,
    groups: np.ndarray,
    config: BootstrapConfig | None = None,
    **params: Any,
) -> xr.Dataset:
    """Score of A minus score of B on the same windows, with a paired bootstrap interval.

    Both methods are scored on the *same* resampled groups in every resample, so the interval
    reflects how consistently A differs from B, not the spread of the weather.

    Returns
    -------
    xr.Dataset
        ``value`` (A − B pooled over all windows), ``lower``, ``upper``, and ``share_below_zero``
        (fraction of resamples with A − B < 0) over the remaining dims.
    """
    config = config or BootstrapConfig()
    comps_a = window_components(score, forecast_a, observation, **params)
    comps_b = window_components(score, forecast_b, observation, **params)
    _check_groups(groups, comps_a)
    weights = group_weights(groups, config)
    value_a, res_a, dims = _resampled(score, comps_a, weights)
    value_b, res_b, _ = _resampled(score, comps_b, weights)
    coords = {d: comps_a[d] for d in dims if d in comps_a.coords}
    diff = res_a - res_b
    out = _interval_frame(
        score, value_a - value_b, diff, dims, coords, config, len(np.unique(groups))
    )
    with np.errstate(invalid="ignore"):
        out["share_below_zero"] = (dims, (diff < 0).mean(0))
    out.attrs["method"] = "paired percentile bootstrap over groups of windows (A - B)"
    return out


def _check_groups(groups: np.ndarray, components: xr.DataArray) -> None:
    n = components.sizes[INIT_TIME]
    if np.asarray(groups).shape != (n,):
        raise ValueError(f"groups has shape {np.shape(groups)}, expected ({n},): one per window")


def excludes_zero(interval: xr.Dataset) -> xr.DataArray:
    """True where the interval lies wholly above or below zero."""
    return (interval["lower"] > 0) | (interval["upper"] < 0)


def interval_text(value: float, lower: float, upper: float, digits: int = 4) -> str:
    """``"v [lo, hi]"`` with ``digits`` significant digits (``"nan"`` parts as ``–``)."""

    def fmt(x: float) -> str:
        return "–" if not math.isfinite(x) else f"{x:.{digits}g}"

    return f"{fmt(value)} [{fmt(lower)}, {fmt(upper)}]"


__all__ = [
    "POOLED",
    "BootstrapConfig",
    "PooledScore",
    "contiguous_blocks",
    "excludes_zero",
    "group_weights",
    "interval_text",
    "paired_difference",
    "score_interval",
    "window_components",
]
