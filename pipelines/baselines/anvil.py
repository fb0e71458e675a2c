"""ANVIL: pySTEPS' autoregressive nowcast with growth and decay (Pulkkinen et al. 2020).

ANVIL decomposes the field into a cascade of spatial scales like S-PROG, but models the
*time differences* of each scale with a local ARI(p, 1) process whose parameters vary in space
(estimated in a moving window), so rain can grow and decay where the recent frames show it.
It runs on the rain rate itself (pySTEPS' example ``anvil_nowcast.py`` uses no dB transform).

Steps, as that example:

1. Lucas–Kanade motion (``pysteps.motion.get_method("LK")``) of the last ``motion_frames``
   rain-rate frames;
2. ``pysteps.nowcasts.anvil.forecast`` on the last ``ar_order + 2`` frames with
   ``ar_window_radius`` (pixels of the evaluated grid) and ``n_cascade_levels``;
   ``apply_rainrate_mask`` keeps the forecast inside the area where the last frame has rain.
3. Negative values (the AR model can undershoot) are set to 0 mm/h.

NaN policy: NaN history pixels (no radar data) are 0 mm/h ("no echo") before motion estimation
and forecasting; the forecast is finite and >= 0. Each channel is forecast on its own;
pySTEPS' progress output is captured and logged at DEBUG level.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from pysteps.nowcasts import anvil as pysteps_anvil

from pipelines.baselines._registry import (
    BASELINES,
    as_forecast,
    check_history,
    check_steps,
    time_step,
)
from pipelines.baselines.optical_flow import DEFAULT_MOTION_FRAMES, motion_field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnvilConfig:
    """Parameters of the ANVIL baseline.

    Parameters
    ----------
    n_cascade_levels : int
        Cascade levels (pySTEPS' default 6).
    ar_order : int
        Order of the ARI model (pySTEPS recommends 1 or 2; default 2); the history must hold
        ``ar_order + 2`` frames.
    ar_window_radius : int
        Radius in pixels of the moving window the AR parameters are estimated in. pySTEPS'
        default is 50 px on its 1-km grids; its example uses 25. The default 12 keeps about the
        same share of a 64-px evaluation grid as 50 px of a ~250-px one.
    motion_frames : int
        Last history frames the Lucas–Kanade motion is estimated from (3, as the examples).
    """

    n_cascade_levels: int = 6
    ar_order: int = 2
    ar_window_radius: int = 12
    motion_frames: int = DEFAULT_MOTION_FRAMES

    def __post_init__(self) -> None:
        for name, low in (
            ("n_cascade_levels", 1),
            ("ar_order", 1),
            ("ar_window_radius", 1),
            ("motion_frames", 2),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def anvil_channel(frames: np.ndarray, steps: int, config: AnvilConfig) -> np.ndarray:
    """ANVIL nowcast of one channel: ``frames`` (T, y, x) mm/h → ``(steps, y, x)`` mm/h."""
    needed = max(config.ar_order + 2, config.motion_frames)
    if frames.ndim != 3 or frames.shape[0] < needed:
        raise ValueError(
            f"ANVIL needs >= {needed} history frames (ar_order + 2 = {config.ar_order + 2}, "
            f"motion_frames = {config.motion_frames}), got shape {frames.shape}"
        )
    rain = np.where(np.isfinite(frames), frames, 0.0).astype("float64")  # (T, y, x)
    if not np.any(rain[-1] > 0):
        logger.debug("no rain in the last frame: ANVIL forecast is zero")
        return np.zeros((steps, *frames.shape[1:]))
    velocity = motion_field(rain[-config.motion_frames :])  # (2, y, x) px per step
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):  # pySTEPS prints its progress
        forecast = pysteps_anvil.forecast(
            rain[-(config.ar_order + 2) :],
            velocity,
            steps,
            n_cascade_levels=config.n_cascade_levels,
            ar_order=config.ar_order,
            ar_window_radius=config.ar_window_radius,
        )
    logger.debug("pySTEPS ANVIL output:\n%s", stdout.getvalue())
    return np.clip(np.nan_to_num(np.asarray(forecast), nan=0.0), 0.0, None)


@BASELINES.register("anvil")
def anvil(
    history: xr.DataArray,
    steps: int,
    config: AnvilConfig | None = None,
    **context: Any,
) -> xr.DataArray:
    """ANVIL nowcast from the last frames of ``history`` (see the module for the steps).

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` rain rate (mm/h), at least ``max(ar_order + 2,
        motion_frames)`` frames (4 with the defaults).
    steps : int
        Number of lead times.
    config : AnvilConfig, optional
        Parameters (default :class:`AnvilConfig`).
    **context
        ``time_step``; other keys are ignored.

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)`` mm/h, finite and >= 0.
    """
    config = config or AnvilConfig()
    check_history(history, min_frames=max(config.ar_order + 2, config.motion_frames))
    steps = check_steps(steps)
    step = time_step(history, context.get("time_step"))
    values = np.asarray(history.values, dtype="float64")
    squeeze = values.ndim == 3
    if squeeze:
        values = values[:, None]  # (T, y, x) -> (T, C=1, y, x)
    out = np.empty((steps, *values.shape[1:]), dtype="float64")  # (lead_time, C, y, x)
    for c in range(values.shape[1]):
        if not np.isfinite(values[:, c]).any():
            raise ValueError(f"channel {c}: history frames are all NaN, nothing to extrapolate")
        out[:, c] = anvil_channel(values[:, c], steps, config)
    return as_forecast(history, out[:, 0] if squeeze else out, step)
