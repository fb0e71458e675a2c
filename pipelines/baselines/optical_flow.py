"""Optical-flow extrapolation: pySTEPS Lucas–Kanade motion + semi-Lagrangian advection.

The motion field is estimated by ``pysteps.motion.get_method("LK")`` (dense Lucas–Kanade:
Shi–Tomasi features tracked with OpenCV, vectors interpolated to the grid) from the last
``motion_frames`` history frames, and the last frame is advected along it by
``pysteps.extrapolation.get_method("semilagrangian")`` (backward, constant motion, no growth or
decay). The field itself is moved, so this is the Lagrangian-persistence nowcast.

NaN policy: pySTEPS needs finite fields, so NaN pixels (no radar data) are set to the history's
minimum (0 mm/h for rain rate: "no echo") before motion estimation and advection, and values
advected in from outside the domain are that minimum too. The forecast is therefore finite;
verification drops the pixels where the observation is NaN, the same for every method.
Each channel is extrapolated with its own motion field.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import xarray as xr
from pysteps import extrapolation, motion

from pipelines.baselines._registry import (
    BASELINES,
    as_forecast,
    check_history,
    check_steps,
    time_step,
)

logger = logging.getLogger(__name__)

DEFAULT_MOTION_FRAMES = 3
"""Frames used for the motion field: pySTEPS' examples use the last 3 (two displacements)."""


def motion_field(frames: np.ndarray) -> np.ndarray:
    """Dense Lucas–Kanade motion of finite ``frames`` (T, y, x), T >= 2.

    Returns
    -------
    np.ndarray
        ``(2, y, x)`` float64: ``(u, v)`` in pixels per time step along ``x`` (columns) and
        ``y`` (rows).
    """
    if frames.ndim != 3 or frames.shape[0] < 2 or not np.all(np.isfinite(frames)):
        raise ValueError(f"need >= 2 finite frames (T, y, x), got shape {frames.shape}")
    lucas_kanade = motion.get_method("LK")
    return np.asarray(lucas_kanade(frames.astype("float64"), verbose=False))


def extrapolate(frame: np.ndarray, velocity: np.ndarray, steps: int, outval: float) -> np.ndarray:
    """Semi-Lagrangian advection of one finite ``frame`` (y, x) by ``velocity`` (2, y, x).

    Returns
    -------
    np.ndarray
        ``(steps, y, x)``; pixels advected in from outside the domain are ``outval``.
    """
    advect = extrapolation.get_method("semilagrangian")
    return np.asarray(advect(frame.astype("float64"), velocity, steps, outval=outval))


@BASELINES.register("optical_flow")
def optical_flow(
    history: xr.DataArray,
    steps: int,
    motion_frames: int = DEFAULT_MOTION_FRAMES,
    **context: Any,
) -> xr.DataArray:
    """Extrapolate the last frame along the Lucas–Kanade motion of the last ``motion_frames``.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` physical units (e.g. rain rate mm/h), at least 2 frames.
    steps : int
        Number of lead times (velocity is per history step, so lead ``k`` moves ``k`` steps).
    motion_frames : int
        How many of the last history frames the motion is estimated from (>= 2).
    **context
        ``time_step``; other keys are ignored.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)``, finite (see the module's NaN policy).
    """
    check_history(history, min_frames=2)
    steps = check_steps(steps)
    if isinstance(motion_frames, bool) or not isinstance(motion_frames, int) or motion_frames < 2:
        raise ValueError(f"motion_frames must be an integer >= 2, got {motion_frames!r}")
    step = time_step(history, context.get("time_step"))
    values = np.asarray(history.isel(time=slice(-motion_frames, None)).values, dtype="float64")
    squeeze = values.ndim == 3
    if squeeze:
        values = values[:, None]  # (T, y, x) -> (T, C=1, y, x)
    out = np.empty((steps, *values.shape[1:]), dtype="float64")  # (lead_time, C, y, x)
    for c in range(values.shape[1]):
        frames = values[:, c]
        finite = np.isfinite(frames)
        if not finite.any():
            raise ValueError(f"channel {c}: history frames are all NaN, nothing to extrapolate")
        fill = float(frames[finite].min())
        if not finite.all():
            logger.debug("channel %d: %d NaN pixels set to %g", c, (~finite).sum(), fill)
        frames = np.where(finite, frames, fill)
        velocity = motion_field(frames)
        out[:, c] = extrapolate(frames[-1], velocity, steps, outval=fill)
    return as_forecast(history, out[:, 0] if squeeze else out, step)
