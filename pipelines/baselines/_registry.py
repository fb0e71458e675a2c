"""The ``BASELINES`` registry and the helpers every baseline shares (time step, output frame)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import INIT_TIME, LEAD_TIME, REALIZATION, TIME
from simvp_model.registry import Registry

BaselineFn = Callable[..., xr.DataArray]
"""``forecast(history, steps, **context) -> xr.DataArray`` (see :mod:`pipelines.baselines`)."""

BASELINES: Registry[BaselineFn] = Registry("baseline")

EnsembleFn = Callable[..., xr.DataArray]
"""``forecast(history, steps, *, members, seed, **context) -> xr.DataArray`` with a leading
``realization`` dim (see :mod:`pipelines.baselines`)."""

ENSEMBLE_BASELINES: Registry[EnsembleFn] = Registry("ensemble baseline")


def check_history(history: xr.DataArray, min_frames: int = 1) -> None:
    """Raise ``ValueError`` unless ``history`` is ``(time, [channel,] y, x)`` with enough frames."""
    if not isinstance(history, xr.DataArray):
        raise TypeError(f"history must be an xr.DataArray, got {type(history).__name__}")
    if history.ndim not in (3, 4) or history.dims[0] != TIME:
        raise ValueError(
            f"history must have dims (time, y, x) or (time, channel, y, x), got {history.dims}"
        )
    if history.sizes[TIME] < min_frames:
        raise ValueError(f"need at least {min_frames} history frame(s), got {history.sizes[TIME]}")
    if TIME not in history.coords or not np.issubdtype(history[TIME].dtype, np.datetime64):
        raise ValueError("history needs a datetime64 'time' coordinate")


def check_steps(steps: int) -> int:
    """Return ``steps`` if it is a positive integer number of lead times."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


def time_step(history: xr.DataArray, step: str | pd.Timedelta | None = None) -> pd.Timedelta:
    """The forecast time step: ``step`` if given, else the (regular) spacing of ``history``."""
    if step is not None:
        delta = pd.Timedelta(step)
    else:
        if history.sizes[TIME] < 2:
            raise ValueError("one history frame: pass time_step=... to set the lead times")
        diffs = np.unique(np.diff(history[TIME].values))
        if diffs.size != 1:
            raise ValueError(f"history times are not regular: spacings {diffs}")
        delta = pd.Timedelta(diffs[0])
    if delta <= pd.Timedelta(0):
        raise ValueError(f"time step must be positive, got {delta}")
    return delta


def as_forecast(history: xr.DataArray, values: np.ndarray, step: pd.Timedelta) -> xr.DataArray:
    """Wrap ``values`` (lead_time, [channel,] y, x) as a forecast issued at the last history time.

    The result has dims ``(lead_time, *history.dims[1:])``, ``lead_time`` = ``step · (1..steps)``
    (timedelta64), a scalar ``init_time`` coordinate and the history's non-time coordinates.
    """
    frame = history.isel({TIME: -1}, drop=False)
    if values.shape[1:] != frame.shape:
        raise ValueError(f"forecast frames {values.shape[1:]} do not match history {frame.shape}")
    leads = pd.to_timedelta(np.arange(1, values.shape[0] + 1) * step)
    coords = {k: v for k, v in frame.coords.items() if k != TIME}
    out = xr.DataArray(
        values.astype(history.dtype, copy=False),
        dims=(LEAD_TIME, *frame.dims),
        coords={**coords, LEAD_TIME: leads.values, INIT_TIME: frame[TIME].values},
        attrs=dict(history.attrs),
        name=history.name,
    )
    return out


def forecast_per_channel(
    history: xr.DataArray,
    steps: int,
    channel_nowcast: Callable[[np.ndarray, int], np.ndarray],
    min_frames: int,
    step: str | pd.Timedelta | None = None,
) -> xr.DataArray:
    """Run a single-field nowcast on every channel of ``history`` and wrap the result.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` in physical units, at least ``min_frames`` frames.
    steps : int
        Number of lead times.
    channel_nowcast : callable
        ``(frames (T, y, x) float64, steps) -> (steps, y, x)`` for one channel.
    min_frames : int
        The fewest history frames the nowcast needs.
    step : str or pd.Timedelta, optional
        The time step (default: from ``history``'s times).

    Returns
    -------
    xr.DataArray
        ``(lead_time, [channel,] y, x)`` (see :func:`as_forecast`).

    Raises
    ------
    ValueError
        Too few frames, a bad ``steps``, or a channel whose history is all NaN.
    """
    check_history(history, min_frames=min_frames)
    steps = check_steps(steps)
    step = time_step(history, step)
    values = np.asarray(history.values, dtype="float64")
    squeeze = values.ndim == 3
    if squeeze:
        values = values[:, None]  # (T, y, x) -> (T, C=1, y, x)
    out = np.empty((steps, *values.shape[1:]), dtype="float64")  # (lead_time, C, y, x)
    for c in range(values.shape[1]):
        if not np.isfinite(values[:, c]).any():
            raise ValueError(f"channel {c}: history frames are all NaN, nothing to extrapolate")
        out[:, c] = channel_nowcast(values[:, c], steps)
    return as_forecast(history, out[:, 0] if squeeze else out, step)


def check_members(members: int, seed: int) -> tuple[int, int]:
    """Return ``(members, seed)`` if both are integers, ``members >= 1`` and ``seed >= 0``."""
    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(members), int(seed)


def as_ensemble(history: xr.DataArray, values: np.ndarray, step: pd.Timedelta) -> xr.DataArray:
    """Wrap ``values`` (realization, lead_time, [channel,] y, x) as an ensemble forecast.

    The result is :func:`as_forecast` of each member with a leading ``realization`` dim
    (integer coordinate ``0..M-1``, CF ``standard_name: realization``).
    """
    template = as_forecast(history, values[0], step)
    members = xr.DataArray(
        np.arange(values.shape[0]),
        dims=REALIZATION,
        attrs={"standard_name": "realization", "long_name": "ensemble member"},
    )
    return xr.DataArray(
        values.astype(history.dtype, copy=False),
        dims=(REALIZATION, *template.dims),
        coords={**template.coords, REALIZATION: members},
        attrs=template.attrs,
        name=template.name,
    )


def ensemble_per_channel(
    history: xr.DataArray,
    steps: int,
    channel_nowcast: Callable[[np.ndarray, int], np.ndarray],
    min_frames: int,
    step: str | pd.Timedelta | None = None,
) -> xr.DataArray:
    """Run a single-field ensemble nowcast on every channel of ``history`` and wrap the result.

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` in physical units, at least ``min_frames`` frames.
    steps : int
        Number of lead times.
    channel_nowcast : callable
        ``(frames (T, y, x) float64, steps) -> (members, steps, y, x)`` for one channel.
    min_frames : int
        The fewest history frames the nowcast needs.
    step : str or pd.Timedelta, optional
        The time step (default: from ``history``'s times).

    Returns
    -------
    xr.DataArray
        ``(realization, lead_time, [channel,] y, x)`` (see :func:`as_ensemble`).
    """
    check_history(history, min_frames=min_frames)
    steps = check_steps(steps)
    step = time_step(history, step)
    values = np.asarray(history.values, dtype="float64")
    squeeze = values.ndim == 3
    if squeeze:
        values = values[:, None]  # (T, y, x) -> (T, C=1, y, x)
    parts = []
    for c in range(values.shape[1]):
        if not np.isfinite(values[:, c]).any():
            raise ValueError(f"channel {c}: history frames are all NaN, nothing to extrapolate")
        parts.append(channel_nowcast(values[:, c], steps))  # (M, lead_time, y, x)
    out = np.stack(parts, axis=2)  # (M, lead_time, C, y, x)
    return as_ensemble(history, out[:, :, 0] if squeeze else out, step)
