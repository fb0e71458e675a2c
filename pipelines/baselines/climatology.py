"""Historical baselines from an archive of past observations: daily-cycle climatology, last day.

Both read ``archive`` (``xr.DataArray`` with the history's dims, passed in the context) and use
only frames at or before the forecast's ``init_time`` (the last history frame), so an archive
holding the whole store cannot leak the future.

- ``climatology``: the mean of the archive frames at the same phase of a cycle (``period``,
  default one day: same time of day) as each valid time, ``period=None`` for the plain mean.
  This is the historical-average baseline of crowd flow and the daily-cycle climatology of
  near-surface temperature. NaN frames (missing data) are skipped; a pixel with no valid
  sample at that phase is NaN.
- ``last_day``: the frame exactly ``period`` (one day) before each valid time; NaN where that
  frame is missing. Leads longer than ``period`` would need the future and are refused.
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


def _past_archive(history: xr.DataArray, archive: Any) -> tuple[np.ndarray, np.ndarray]:
    """Archive times (datetime64[ns]) and values (time, ...) at or before the init time."""
    if archive is None:
        raise ValueError("this baseline needs archive=<past observations (time, ...)> in context")
    if not isinstance(archive, xr.DataArray) or archive.dims != history.dims:
        raise ValueError(
            f"archive must be an xr.DataArray with the history's dims {history.dims}, got "
            f"{getattr(archive, 'dims', type(archive).__name__)}"
        )
    if archive.shape[1:] != history.shape[1:]:
        raise ValueError(f"archive frames {archive.shape[1:]} != history {history.shape[1:]}")
    init = history[TIME].values[-1]
    times = archive[TIME].values.astype("datetime64[ns]")
    keep = times <= init
    return times[keep], np.asarray(archive.values[keep], dtype="float64")


def _period(value: Any) -> pd.Timedelta:
    period = pd.Timedelta(value)
    if period <= pd.Timedelta(0):
        raise ValueError(f"period must be a positive duration, got {value!r}")
    return period


@BASELINES.register("climatology")
def climatology(
    history: xr.DataArray, steps: int, period: str | None = "1D", **context: Any
) -> xr.DataArray:
    """Mean of the past archive frames at each valid time's phase of ``period``.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)``; only its last time (the init time) and layout are used.
    steps : int
        Number of lead times.
    period : str or None
        Cycle length (pandas duration, ``"1D"`` = same time of day; ``"7D"`` = same hour of the
        week); ``None`` = mean of all past frames.
    **context
        ``archive`` (required), ``time_step``.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)`` in the history's units; NaN where no valid sample.
    """
    check_history(history)
    steps = check_steps(steps)
    step = time_step(history, context.get("time_step"))
    times, values = _past_archive(history, context.get("archive"))
    init = pd.Timestamp(history[TIME].values[-1])
    out = np.empty((steps, *history.shape[1:]), dtype="float64")  # (lead_time, [C,] y, x)
    if period is None:
        selections = [np.ones(times.shape, bool)] * steps
    else:
        cycle = _period(period).value
        phase = times.astype("int64") % cycle
        valid = [(init + k * step).value % cycle for k in range(1, steps + 1)]
        selections = [phase == v for v in valid]
    for k, selected in enumerate(selections):
        if not selected.any():
            raise ValueError(
                f"archive has no frame at or before {init} in the phase of lead {k + 1} "
                f"(period={period!r}); it covers {times.min() if times.size else 'nothing'}"
            )
        samples = values[selected]
        count = np.isfinite(samples).sum(axis=0)
        total = np.where(np.isfinite(samples), samples, 0.0).sum(axis=0)
        out[k] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return as_forecast(history, out, step)


@BASELINES.register("last_day")
def last_day(history: xr.DataArray, steps: int, period: str = "1D", **context: Any) -> xr.DataArray:
    """The observation ``period`` (one day) before each valid time.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)``; its last time is the init time.
    steps : int
        Number of lead times; ``steps · step`` must not exceed ``period``.
    period : str
        Look-back (pandas duration).
    **context
        ``archive`` (required; the history frames count too), ``time_step``.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)``; NaN where the look-back frame is missing.
    """
    check_history(history)
    steps = check_steps(steps)
    step = time_step(history, context.get("time_step"))
    lookback = _period(period)
    if steps * step > lookback:
        raise ValueError(f"last_day covers leads up to {lookback}, asked for {steps} x {step}")
    times, values = _past_archive(history, context.get("archive"))
    index = {t: i for i, t in enumerate(times.astype("int64"))}
    init = pd.Timestamp(history[TIME].values[-1])
    out = np.full((steps, *history.shape[1:]), np.nan)  # (lead_time, [C,] y, x)
    for k in range(steps):
        i = index.get((init + (k + 1) * step - lookback).value)
        if i is not None:
            out[k] = values[i]
    return as_forecast(history, out, step)
