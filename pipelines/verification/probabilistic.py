"""Probabilistic scores of ensemble forecasts: CRPS, Brier (skill) score, reliability, ROC area,
rank histogram and spread/skill ratio, and the exceedance probabilities they start from.

Contract (as every score of :mod:`pipelines.verification`, with an ensemble as the forecast):
``score(forecast, observation, dims=None, **params) -> xr.DataArray``, where

- ``forecast`` is an ensemble: an ``xr.DataArray`` with a ``realization`` dim (members
  ``0..M-1``) and otherwise the dims of ``observation`` (``(init_time, lead_time, [channel,]
  y, x)``), in the same physical units;
- ``dims`` are the dims pooled over (``realization`` is always reduced; ``None`` = all);
- NaN policy: a pixel is left out where the observation or *any* member is NaN; a score with
  no valid pixel, or a zero denominator, is NaN;
- an *event* is a value ``>= threshold`` (as CSI/POD/FAR and FSS here); the probability of
  the event is the fraction of members in it (:func:`exceedance_probability`).

Every score is a **pooled** score: sums over the pooled pixels (the ``component`` dim) and a
rule that combines them, registered both in :data:`~pipelines.verification.SCORES` and in the
bootstrap's :data:`~pipelines.verification.bootstrap.POOLED`, so the value of the registered
score is by construction the pooled value the bootstrap resamples.

Scores (``M`` members, ``N`` valid pixels, ``p`` = event probability, ``o`` = 1 if observed)

``crps``
    Continuous ranked probability score of the empirical ensemble CDF (units of the field,
    0 is best): ``mean_i |x_i - y| - 1/(2 M²) Σ_ij |x_i - x_j|`` — the usual ``crps_ensemble``
    of ``properscoring`` and pySTEPS' ``verification.probscores.CRPS`` (Hersbach 2000), not
    the "fair" estimator (``fair=True``: ``1/(2 M (M - 1))``, Ferro 2014).
``brier``
    ``Σ (p - o)² / N`` at ``threshold`` (0 is best).
``bss``
    Brier skill score ``1 - BS / BS_clim`` against the sample climatology of the pooled
    pixels (``BS_clim = ō (1 - ō)``, ``ō`` the observed event frequency); 1 is best, > 0
    beats climatology. A skill score against another method is the paired difference of
    ``brier`` (:func:`pipelines.verification.bootstrap.paired_difference`).
``reliability``
    The reliability term of the Brier score's decomposition (Murphy 1973) over ``bins``
    equal probability bins ``[k/K, (k+1)/K)`` (last one closed): ``Σ_k n_k (p̄_k - ō_k)² / N``
    (0 is perfectly reliable). The table behind it (the reliability diagram) is
    :func:`reliability_table`.
``roc_auc``
    Area under the ROC curve of the ensemble's own probability levels ``j/M`` (decision
    "event if at least ``j`` members are in it", ``j = M+1 .. 0``), trapezoidal; 0.5 is no
    skill, 1 is perfect; NaN without both observed events and non-events.
``rank_histogram``
    Flatness of the rank histogram (Talagrand): ``Σ_r |f_r - 1/(M+1)|`` over the ``M + 1``
    ranks of the observation among the members (Delle Monache et al. 2006's reliability
    index; 0 = flat). Ties (e.g. no rain in the observation and several members) are spread
    evenly over the tied ranks — the expectation of pySTEPS' random tie breaking. With
    ``threshold`` (pySTEPS' ``X_min``) values below it tie, and only pixels where the
    observation or a member reaches it count. The histogram is :func:`rank_histogram_table`.
``spread_skill``
    ``sqrt(mean((M+1)/M · s²)) / RMSE(ensemble mean)``, ``s²`` the unbiased member variance
    (Fortin et al. 2014: for a reliable ensemble the ensemble-mean RMSE is
    ``sqrt((M+1)/M)`` times the mean spread); 1 is a reliable spread, < 1 under-dispersed.
    Needs ``M >= 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from data_catalog.vocabulary import REALIZATION, THRESHOLD
from pipelines.verification._common import Dims, as_dims
from pipelines.verification._registry import SCORES
from pipelines.verification.bootstrap import COMPONENT, POOLED, PooledScore
from pipelines.verification.categorical import _check_threshold

RELIABILITY_BINS = 10  # equal-width probability bins of the reliability diagram (0.1 wide)
PROBABILITY_BIN = "probability_bin"
"""Dim of the reliability table."""
RANK = "rank"
"""Dim of the rank histogram (0 .. M)."""


# ----------------------------------------------------------------------------- inputs
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


def _check_ensemble(ensemble: xr.DataArray, min_members: int = 1) -> xr.DataArray:
    if not isinstance(ensemble, xr.DataArray):
        raise TypeError(f"an ensemble is an xr.DataArray, got {type(ensemble).__name__}")
    if REALIZATION not in ensemble.dims:
        raise ValueError(f"an ensemble needs a {REALIZATION!r} dim, got dims {ensemble.dims}")
    if ensemble.sizes[REALIZATION] < min_members:
        raise ValueError(
            f"need at least {min_members} member(s), got {ensemble.sizes[REALIZATION]}"
        )
    return ensemble


def ensemble_pair(
    ensemble: xr.DataArray, observation: xr.DataArray, min_members: int = 1
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Align exactly and NaN both fields where the observation or any member is NaN.

    Parameters
    ----------
    ensemble : xr.DataArray
        ``(realization, ...)`` members.
    observation : xr.DataArray
        The other dims of ``ensemble`` (no ``realization``), same units.
    min_members : int
        Raise ``ValueError`` with fewer members.

    Returns
    -------
    ensemble, observation : xr.DataArray
        NaN where a pixel is invalid; ``observation`` broadcast to the ensemble's other dims;
        without coordinates (see :func:`with_coords`).
    valid : xr.DataArray of bool
        Without ``realization``.
    """
    ensemble = _check_ensemble(ensemble, min_members)
    if not isinstance(observation, xr.DataArray) or REALIZATION in observation.dims:
        raise ValueError(
            f"the observation must be an xr.DataArray without a {REALIZATION!r} dim, "
            f"got {getattr(observation, 'dims', type(observation).__name__)}"
        )
    ensemble, observation = xr.align(ensemble, observation, join="exact")
    # Aligned once: the many element-wise steps below run without coordinates (no re-alignment
    # per operation, which dominates the cost on small grids); callers re-attach them.
    ensemble = ensemble.drop_vars(list(ensemble.coords))
    observation = observation.drop_vars(list(observation.coords))
    valid = ensemble.notnull().all(REALIZATION) & observation.notnull()
    observation = observation.broadcast_like(valid).where(valid)
    return ensemble.where(valid), observation, valid


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


def with_coords(result: xr.DataArray, *sources: xr.DataArray) -> xr.DataArray:
    """``result`` with the coordinates of ``sources`` that lie on its dims."""
    coords = {}
    for source in sources:
        for name, coord in source.coords.items():
            if name not in coords and coord.dims and set(coord.dims) <= set(result.dims):
                coords[name] = coord.variable
    return result.assign_coords(coords)


# ----------------------------------------------------------------------------- sums
def _stack(parts: Sequence[xr.DataArray]) -> xr.DataArray:
    return xr.concat([p.astype("float64") for p in parts], COMPONENT).transpose(..., COMPONENT)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def _reduce(dims: Dims, ensemble: xr.DataArray, observation: xr.DataArray) -> tuple:
    return tuple(d for d in as_dims(dims, ensemble, observation) if d != REALIZATION)


def crps_pixels(
    ensemble: xr.DataArray, observation: xr.DataArray, fair: bool = False
) -> xr.DataArray:
    """CRPS of every pixel (see the module; NaN where invalid), in the fields' units.

    Uses ``Σ_ij |x_i - x_j| = 2 Σ_k (2k - M - 1) x_(k)`` over the sorted members ``x_(k)``,
    ``k = 1..M``, so the cost is a sort, not ``M²`` differences.
    """
    ens, obs, valid = ensemble_pair(ensemble, observation, 2 if fair else 1)
    m = ens.sizes[REALIZATION]
    ordered = xr.apply_ufunc(
        np.sort,
        ens,
        input_core_dims=[[REALIZATION]],
        output_core_dims=[[REALIZATION]],
        kwargs={"axis": -1},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    weights = xr.DataArray(2.0 * np.arange(1, m + 1) - m - 1, dims=REALIZATION)
    pairs = (ordered * weights).sum(REALIZATION)  # = Σ_{i<j} |x_i - x_j|
    spread = pairs / (m * (m - 1)) if fair else pairs / m**2
    return with_coords((abs(ens - obs).mean(REALIZATION) - spread).where(valid), observation)


def _event_pair(
    ensemble: xr.DataArray, observation: xr.DataArray, threshold: float
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, int]:
    """Members in the event per pixel, observed event (0/1), valid mask, member count."""
    threshold = _check_threshold(threshold)
    ens, obs, valid = ensemble_pair(ensemble, observation)
    in_event = (ens >= threshold).sum(REALIZATION).where(valid)
    observed = (obs >= threshold).astype("float64").where(valid)
    return in_event, observed, valid, ens.sizes[REALIZATION]


def _crps_sums(fc: xr.DataArray, obs: xr.DataArray, dims: Dims, fair: bool = False) -> xr.DataArray:
    pixels = crps_pixels(fc, obs, fair)
    reduce = _reduce(dims, fc, obs)
    return _stack([pixels.sum(reduce, skipna=True), pixels.notnull().sum(reduce)])


def _brier_sums(
    fc: xr.DataArray, obs: xr.DataArray, dims: Dims, threshold: float = 1.0
) -> xr.DataArray:
    in_event, observed, valid, m = _event_pair(fc, obs, threshold)
    reduce = _reduce(dims, fc, obs)
    error = (in_event / m - observed) ** 2
    return _stack(
        [error.sum(reduce, skipna=True), observed.sum(reduce, skipna=True), valid.sum(reduce)]
    )


def _brier(s: np.ndarray) -> np.ndarray:
    return _ratio(s[..., 0], s[..., 2])


def _bss(s: np.ndarray) -> np.ndarray:
    base = _ratio(s[..., 1], s[..., 2])
    return 1.0 - _ratio(_brier(s), base * (1.0 - base))


def _bin_of(probability: xr.DataArray, bins: int) -> xr.DataArray:
    # + 1e-9: p = j/M lands in the bin it starts despite rounding (0.3 * 10 = 2.9999...).
    return np.floor(probability * bins + 1e-9).clip(0, bins - 1)


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return int(bins)


def _reliability_sums(
    fc: xr.DataArray,
    obs: xr.DataArray,
    dims: Dims,
    threshold: float = 1.0,
    bins: int = RELIABILITY_BINS,
) -> xr.DataArray:
    """Per bin ``k``: count, Σ p, Σ o (components ``[n_0..n_K-1, Σp_0.., Σo_0..]``)."""
    bins = _check_bins(bins)
    in_event, observed, valid, m = _event_pair(fc, obs, threshold)
    reduce = _reduce(dims, fc, obs)
    probability = in_event / m
    which = _bin_of(probability, bins)
    counts, sum_p, sum_o = [], [], []
    for k in range(bins):
        mask = (which == k) & valid
        counts.append(mask.sum(reduce))
        sum_p.append(probability.where(mask).sum(reduce, skipna=True))
        sum_o.append(observed.where(mask).sum(reduce, skipna=True))
    return _stack(counts + sum_p + sum_o)


def _reliability(s: np.ndarray) -> np.ndarray:
    n, sum_p, sum_o = np.split(s, 3, axis=-1)  # (..., K) each
    p_bar, o_bar = _ratio(sum_p, n), _ratio(sum_o, n)
    term = np.where(n > 0, n * (p_bar - o_bar) ** 2, 0.0)
    return _ratio(term.sum(-1), n.sum(-1))


def _roc_sums(
    fc: xr.DataArray, obs: xr.DataArray, dims: Dims, threshold: float = 1.0
) -> xr.DataArray:
    """Per level ``j = 0..M`` (members in the event): observed events, then non-events."""
    in_event, observed, valid, m = _event_pair(fc, obs, threshold)
    reduce = _reduce(dims, fc, obs)
    yes = [((in_event == j) & (observed == 1)).sum(reduce) for j in range(m + 1)]
    no = [((in_event == j) & (observed == 0)).sum(reduce) for j in range(m + 1)]
    return _stack(yes + no)


def _roc_auc(s: np.ndarray) -> np.ndarray:
    yes, no = np.split(s, 2, axis=-1)  # (..., M + 1) by members in the event
    # Decision "event if >= j members": hits and false alarms for j = M+1 (none) .. 0 (all).
    hits = np.concatenate([np.zeros_like(yes[..., :1]), np.cumsum(yes[..., ::-1], -1)], -1)
    false = np.concatenate([np.zeros_like(no[..., :1]), np.cumsum(no[..., ::-1], -1)], -1)
    hit_rate = _ratio(hits, hits[..., -1:])
    false_rate = _ratio(false, false[..., -1:])
    widths = np.diff(false_rate, axis=-1)
    return (widths * (hit_rate[..., 1:] + hit_rate[..., :-1]) / 2.0).sum(-1)


def _rank_sums(
    fc: xr.DataArray, obs: xr.DataArray, dims: Dims, threshold: float | None = None
) -> xr.DataArray:
    """Per rank ``r = 0..M``: the (fractional, ties spread evenly) number of observations."""
    ens, observation, valid = ensemble_pair(fc, obs)
    m = ens.sizes[REALIZATION]
    if threshold is not None:
        threshold = _check_threshold(threshold)
        counted = (observation >= threshold) | (ens >= threshold).any(REALIZATION)
        valid = valid & counted
        ens = ens.where((ens >= threshold) | ens.isnull(), -np.inf)  # below: one tied value
        observation = observation.where((observation >= threshold) | observation.isnull(), -np.inf)
    below = (ens < observation).sum(REALIZATION)
    tied = (ens == observation).sum(REALIZATION)
    reduce = _reduce(dims, fc, obs)
    share = (1.0 / (tied + 1)).where(valid)
    ranks = [share.where((below <= r) & (r <= below + tied)).sum(reduce) for r in range(m + 1)]
    return _stack(ranks)


def _rank_flatness(s: np.ndarray) -> np.ndarray:
    frequency = _ratio(s, s.sum(-1, keepdims=True))
    return np.abs(frequency - 1.0 / s.shape[-1]).sum(-1)


def _spread_sums(fc: xr.DataArray, obs: xr.DataArray, dims: Dims) -> xr.DataArray:
    ens, observation, valid = ensemble_pair(fc, obs, min_members=2)
    m = ens.sizes[REALIZATION]
    variance = ens.var(REALIZATION, ddof=1) * (m + 1) / m
    error = (ens.mean(REALIZATION) - observation) ** 2
    reduce = _reduce(dims, fc, obs)
    return _stack(
        [variance.sum(reduce, skipna=True), error.sum(reduce, skipna=True), valid.sum(reduce)]
    )


def _spread_skill(s: np.ndarray) -> np.ndarray:
    return np.sqrt(_ratio(s[..., 0], s[..., 1]))


# ----------------------------------------------------------------------------- registration
def _pooled_score(
    name: str, sums: Callable[..., xr.DataArray], combine: Callable[[np.ndarray], np.ndarray]
) -> Callable[..., xr.DataArray]:
    """Register ``name`` as a score (combine of the sums over ``dims``) and as pooled."""

    def score(
        forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None, **params: Any
    ) -> xr.DataArray:
        totals = with_coords(sums(forecast, observation, dims, **params), observation, forecast)
        return xr.apply_ufunc(
            combine,
            totals,
            input_core_dims=[[COMPONENT]],
            dask="parallelized",
            output_dtypes=[np.float64],
        ).astype("float64")

    def components(
        fc: xr.DataArray, obs: xr.DataArray, spatial: tuple[Hashable, ...], **params: Any
    ) -> xr.DataArray:
        return with_coords(sums(fc, obs, spatial, **params), obs, fc)

    score.__name__ = name
    score.__doc__ = f"Pooled ``{name}`` of an ensemble (see :mod:`{__name__}`)."
    SCORES.add(name, score)
    POOLED.add(name, PooledScore(components, combine))
    return score


crps = _pooled_score("crps", _crps_sums, lambda s: _ratio(s[..., 0], s[..., 1]))
brier = _pooled_score("brier", _brier_sums, _brier)
bss = _pooled_score("bss", _brier_sums, _bss)
reliability = _pooled_score("reliability", _reliability_sums, _reliability)
roc_auc = _pooled_score("roc_auc", _roc_sums, _roc_auc)
rank_histogram = _pooled_score("rank_histogram", _rank_sums, _rank_flatness)
spread_skill = _pooled_score("spread_skill", _spread_sums, _spread_skill)

PROBABILISTIC_SCORES: tuple[str, ...] = (
    "crps",
    "brier",
    "bss",
    "reliability",
    "roc_auc",
    "rank_histogram",
    "spread_skill",
)
"""Scores that take an ensemble forecast (the rest of :data:`SCORES` take one field)."""


# ----------------------------------------------------------------------------- tables
def reliability_table(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    threshold: float,
    dims: Dims = None,
    bins: int = RELIABILITY_BINS,
) -> xr.Dataset:
    """The reliability diagram's numbers at ``threshold``, pooled over ``dims``.

    Returns
    -------
    xr.Dataset
        Over ``(..., probability_bin)``: ``forecast_probability`` (mean probability of the
        bin's pixels), ``observed_frequency`` (event frequency among them; NaN in an empty
        bin), ``count`` (pixels, int64), and coords ``bin_lower``/``bin_upper``.
    """
    bins = _check_bins(bins)
    sums = with_coords(
        _reliability_sums(forecast, observation, dims, threshold, bins), observation, forecast
    )
    n, sum_p, sum_o = (sums.isel({COMPONENT: slice(i * bins, (i + 1) * bins)}) for i in range(3))
    n, sum_p, sum_o = (
        a.rename({COMPONENT: PROBABILITY_BIN}).drop_vars(COMPONENT, errors="ignore")
        for a in (n, sum_p, sum_o)
    )
    edges = np.linspace(0.0, 1.0, bins + 1)
    return xr.Dataset(
        {
            "forecast_probability": sum_p / n.where(n > 0),
            "observed_frequency": sum_o / n.where(n > 0),
            "count": n.astype("int64"),
        },
        coords={
            "bin_lower": (PROBABILITY_BIN, edges[:-1]),
            "bin_upper": (PROBABILITY_BIN, edges[1:]),
        },
        attrs={"threshold": float(threshold)},
    )


def rank_histogram_table(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    threshold: float | None = None,
) -> xr.Dataset:
    """The rank histogram pooled over ``dims`` (ties spread evenly, see the module).

    Returns
    -------
    xr.Dataset
        Over ``(..., rank)`` with ``rank = 0..M``: ``count`` (pixels, fractional where tied)
        and ``frequency`` (share of the counted pixels; ``1/(M+1)`` each when flat).
    """
    counts = with_coords(_rank_sums(forecast, observation, dims, threshold), observation, forecast)
    counts = counts.rename({COMPONENT: RANK})
    counts = counts.drop_vars(COMPONENT, errors="ignore")
    counts = counts.assign_coords({RANK: np.arange(counts.sizes[RANK])})
    total = counts.sum(RANK)
    return xr.Dataset({"count": counts, "frequency": counts / total.where(total > 0)})


__all__ = [
    "PROBABILISTIC_SCORES",
    "RELIABILITY_BINS",
    "brier",
    "bss",
    "crps",
    "crps_pixels",
    "ensemble_pair",
    "exceedance_probability",
    "rank_histogram",
    "rank_histogram_table",
    "reliability",
    "reliability_table",
    "roc_auc",
    "spread_skill",
]
