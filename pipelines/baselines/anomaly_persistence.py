"""Damped anomaly persistence: the daily-cycle climatology plus the decaying initial anomaly.

``base(t0 + k·step) = clim(t0 + k·step) + a_k · (obs(t0) − clim(t0))``, the forecast a duty
forecaster makes for near-surface temperature: the anomaly of the last observation from the
daily cycle persists and relaxes to the climatology. ``clim`` is exactly the ``climatology``
baseline (mean of the archive frames at the same phase of ``period``, NaN skipped) and the
damping ``a_k`` of lead ``k`` is the least-squares regression coefficient of the anomaly ``k``
steps later on the anomaly now,

    a_k = Σ x_t · x_{t+k} / Σ x_t²,   x = obs − clim,

pooled over the pixels of each channel and over all archive pairs ``(t, t + k·step)``.

Both the climatology and ``a_k`` are fitted on the archive frames at or before the forecast's
``init_time`` only (the same causal archive as ``climatology``), so the baseline is a pure
function of ``(history, archive)``: training, evaluation and forecast rebuild it identically
from the store, and no future observation enters a forecast. ``a_k`` is therefore refitted for
every issue time on all the past there is (for a test window: train, validation and earlier
test frames), not frozen on the train split.

Where the archive has no anomaly variance (e.g. one sample per phase, the first day of a
record), ``obs(t0) − clim(t0)`` is zero too and every ``a_k`` gives the climatology: ``a_k``
is set to 0 there. NaN in the last frame gives NaN at that pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import TIME
from pipelines.baselines._registry import (
    BASELINES,
    as_forecast,
    check_history,
    check_steps,
    time_step,
)
from pipelines.baselines.climatology import _past_archive, _period


def _phase_means(phase: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique phases ``(P,)`` and the NaN-skipping mean of ``values (T, ...)`` at each ``(P, ...)``
    (the ``climatology`` baseline's formula)."""
    phases, inverse = np.unique(phase, return_inverse=True)
    means = np.empty((phases.size, *values.shape[1:]), dtype="float64")
    for p in range(phases.size):
        samples = values[inverse == p]
        count = np.isfinite(samples).sum(axis=0)
        total = np.where(np.isfinite(samples), samples, 0.0).sum(axis=0)
        means[p] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return phases, means


def damping(times: np.ndarray, anomalies: np.ndarray, step: pd.Timedelta, steps: int) -> np.ndarray:
    """Least-squares damping ``a_k`` of the anomaly at ``k = 1..steps`` lead steps.

    Parameters
    ----------
    times : np.ndarray
        ``(T,)`` datetime64[ns] archive times (sorted; gaps allowed).
    anomalies : np.ndarray
        ``(T, [C,] y, x)`` anomalies from the climatology (NaN = no data).
    step : pd.Timedelta
        Lead step.
    steps : int
        Number of leads.

    Returns
    -------
    np.ndarray
        ``(steps, [C])`` float64, ``Σ x_t x_{t+k} / Σ x_t²`` over the archive pairs ``k·step``
        apart and the pixels (0 where ``Σ x_t² = 0`` or there is no pair).
    """
    stamps = times.astype("int64")
    axes = (0, anomalies.ndim - 2, anomalies.ndim - 1)  # time and the two spatial axes
    out = np.zeros((steps, *anomalies.shape[1:-2]), dtype="float64")
    for k in range(1, steps + 1):
        later = np.searchsorted(stamps, stamps + k * step.value)
        paired = later < stamps.size
        paired[paired] = stamps[later[paired]] == stamps[paired] + k * step.value
        x = anomalies[paired]
        y = anomalies[later[paired]]
        both = np.isfinite(x) & np.isfinite(y)
        xy = np.where(both, x * y, 0.0).sum(axis=axes)
        xx = np.where(both, x * x, 0.0).sum(axis=axes)
        out[k - 1] = np.where(xx > 0, xy / np.where(xx > 0, xx, 1.0), 0.0)
    return out


@BASELINES.register("anomaly_persistence")
def anomaly_persistence(
    history: xr.DataArray, steps: int, period: str = "1D", **context: Any
) -> xr.DataArray:
    """Daily-cycle climatology plus the last anomaly damped by a least-squares ``a_k`` per lead.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` physical units; its last frame is ``obs(t0)``.
    steps : int
        Number of lead times.
    period : str
        Cycle of the climatology (pandas duration; ``"1D"`` = same time of day).
    **context
        ``archive`` (required: past observations with the history's dims), ``time_step``.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)`` in the history's units; NaN where the last frame or the
        climatology has no value.
    """
    check_history(history)
    steps = check_steps(steps)
    step = time_step(history, context.get("time_step"))
    times, values = _past_archive(history, context.get("archive"))
    init = pd.Timestamp(history[TIME].values[-1])
    cycle = _period(period).value
    phases, means = _phase_means(times.astype("int64") % cycle, values)
    lookup = {int(p): i for i, p in enumerate(phases)}

    def clim(valid: pd.Timestamp, lead: int) -> np.ndarray:
        i = lookup.get(valid.value % cycle)
        if i is None:
            raise ValueError(
                f"archive has no frame at or before {init} in the phase of lead {lead} "
                f"(period={period!r}); it covers {times.min() if times.size else 'nothing'}"
            )
        return means[i]

    anomalies = values - means[np.searchsorted(phases, times.astype("int64") % cycle)]
    a = damping(times, anomalies, step, steps)[..., None, None]  # (steps, [C,] 1, 1)
    now = np.asarray(history.values[-1], dtype="float64") - clim(init, 0)
    out = np.stack([clim(init + k * step, k) for k in range(1, steps + 1)]) + a * now
    return as_forecast(history, out, step)
