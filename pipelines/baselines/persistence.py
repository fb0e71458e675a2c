"""Persistence (Eulerian): every lead time repeats the last observed frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from pipelines.baselines._registry import (
    BASELINES,
    as_forecast,
    check_history,
    check_steps,
    time_step,
)


@BASELINES.register("persistence")
def persistence(history: xr.DataArray, steps: int, **context: Any) -> xr.DataArray:
    """Repeat the last frame of ``history`` for ``steps`` lead times.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` physical units.
    steps : int
        Number of lead times.
    **context
        ``time_step`` if ``history`` has a single frame; other keys are ignored.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)``; NaN where the last frame is NaN.
    """
    check_history(history)
    steps = check_steps(steps)
    step = time_step(history, context.get("time_step"))
    last = np.asarray(history.isel(time=-1).values)
    values = np.broadcast_to(last, (steps, *last.shape)).copy()  # (lead_time, [C,] y, x)
    return as_forecast(history, values, step)
