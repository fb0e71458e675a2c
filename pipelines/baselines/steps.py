"""STEPS: pySTEPS' stochastic ensemble nowcast (Bowler, Pierce & Seed 2006), the probabilistic
anchor a learned ensemble must beat.

Same inputs as :mod:`pipelines.baselines.sprog` (S-PROG is STEPS' deterministic core):

1. rain rate (mm/h) → dBR with :func:`pipelines.baselines.sprog.to_db` (``10 log10 R``,
   sub-threshold and NaN pixels → ``dB(threshold) - 5``);
2. Lucas–Kanade motion of the last ``motion_frames`` dBR frames
   (:func:`pipelines.baselines.optical_flow.motion_field`);
3. ``pysteps.nowcasts.steps.forecast`` on the last ``ar_order + 1`` dBR frames with
   ``n_ens_members = members``, ``seed``, ``precip_thr = dB(threshold)`` and pySTEPS'
   defaults otherwise (non-parametric noise, "bps" motion perturbation, incremental mask,
   CDF probability matching), as in pySTEPS' example ``plot_steps_nowcast.py``;
   ``kmperpixel`` from the ``x`` coordinate (its spacing and ``units``: ``m`` or ``km``) and
   ``timestep`` (minutes) from the history;
4. back to mm/h with the inverse ``dB_transform``.

Same seed ⇒ identical members (pySTEPS seeds every member's generators from ``seed``).
NaN policy as S-PROG: NaN history pixels are "no rain", the forecast is finite and >= 0.
When the AR model cannot be fitted (a constant cascade level: everything advected out), every
member is the Lagrangian extrapolation of the last dBR frame (no spread), with a WARNING.
Each channel is forecast on its own with the same seed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pysteps.nowcasts import steps as pysteps_steps

from data_catalog.vocabulary import X
from pipelines.baselines._registry import (
    ENSEMBLE_BASELINES,
    check_members,
    ensemble_per_channel,
    time_step,
)
from pipelines.baselines.optical_flow import DEFAULT_MOTION_FRAMES, extrapolate, motion_field
from pipelines.baselines.sprog import SprogConfig, from_db, to_db

logger = logging.getLogger(__name__)

DEFAULT_MEMBERS = 20
"""Members of the STEPS ensemble (the SimVP ensemble's default size, for a fair comparison)."""
_KM_PER_UNIT = {"m": 1e-3, "metre": 1e-3, "meter": 1e-3, "km": 1.0}


@dataclass(frozen=True)
class StepsConfig:
    """Parameters of the STEPS baseline (the rest are pySTEPS' defaults).

    Parameters
    ----------
    threshold : float
        Smallest observable rain rate (mm/h), as :class:`SprogConfig`.
    n_cascade_levels : int
        Cascade levels (6, as S-PROG here: suits 64–128-px grids).
    ar_order : int
        AR order per cascade level (2); the history must hold ``ar_order + 1`` frames.
    motion_frames : int
        Last history frames of the Lucas–Kanade motion (3).
    noise_method, vel_pert_method, mask_method, probmatching_method : str or None
        pySTEPS' options (its defaults: ``"nonparametric"``, ``"bps"``, ``"incremental"``,
        ``"cdf"``).
    kmperpixel : float, optional
        Grid spacing in km; default: from the history's ``x`` coordinate.
    """

    threshold: float = 0.1
    n_cascade_levels: int = 6
    ar_order: int = 2
    motion_frames: int = DEFAULT_MOTION_FRAMES
    noise_method: str | None = "nonparametric"
    vel_pert_method: str | None = "bps"
    mask_method: str | None = "incremental"
    probmatching_method: str | None = "cdf"
    kmperpixel: float | None = None

    def __post_init__(self) -> None:
        SprogConfig(  # the shared checks of threshold, levels, order and motion frames
            threshold=self.threshold,
            n_cascade_levels=self.n_cascade_levels,
            ar_order=self.ar_order,
            motion_frames=self.motion_frames,
        )
        if self.kmperpixel is not None and not (
            math.isfinite(self.kmperpixel) and self.kmperpixel > 0
        ):
            raise ValueError(f"kmperpixel must be a positive distance, got {self.kmperpixel!r}")

    @property
    def transform(self) -> SprogConfig:
        """The dB transform's parameters (shared with S-PROG)."""
        return SprogConfig(threshold=self.threshold)

    @property
    def min_frames(self) -> int:
        """History frames needed."""
        return max(self.ar_order + 1, self.motion_frames)


def pixel_km(history: xr.DataArray) -> float:
    """Grid spacing (km) from the regular ``x`` coordinate and its ``units`` (``m`` or ``km``)."""
    if X not in history.coords or history.sizes.get(X, 0) < 2:
        raise ValueError("STEPS needs an 'x' coordinate (or StepsConfig(kmperpixel=...))")
    units = history[X].attrs.get("units")
    if units not in _KM_PER_UNIT:
        raise ValueError(
            f"x coordinate units {units!r} are not a distance in {sorted(_KM_PER_UNIT)}; "
            "pass StepsConfig(kmperpixel=...)"
        )
    spacing = np.unique(np.round(np.abs(np.diff(history[X].values.astype("float64"))), 6))
    if spacing.size != 1 or spacing[0] <= 0:
        raise ValueError(f"x coordinate is not regular: spacings {spacing}")
    return float(spacing[0]) * _KM_PER_UNIT[units]


def steps_channel(
    frames: np.ndarray,
    steps: int,
    members: int,
    seed: int,
    config: StepsConfig,
    kmperpixel: float,
    minutes: float,
) -> np.ndarray:
    """STEPS ensemble of one channel: ``frames`` (T, y, x) mm/h → ``(members, steps, y, x)``."""
    if frames.ndim != 3 or frames.shape[0] < config.min_frames:
        raise ValueError(
            f"STEPS needs >= {config.min_frames} history frames, got shape {frames.shape}"
        )
    transform = config.transform
    db = to_db(frames, transform)  # (T, y, x) dBR
    if not np.any(db > transform.zerovalue_db):
        logger.debug("no rain above %g in the history: STEPS forecast is zero", config.threshold)
        return np.zeros((members, steps, *frames.shape[1:]))
    velocity = motion_field(db[-config.motion_frames :])  # (2, y, x) px per step
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):  # pySTEPS prints its progress
            forecast_db = pysteps_steps.forecast(
                db[-(config.ar_order + 1) :],
                velocity,
                steps,
                n_ens_members=members,
                n_cascade_levels=config.n_cascade_levels,
                precip_thr=transform.threshold_db,
                kmperpixel=kmperpixel,
                timestep=minutes,
                noise_method=config.noise_method,
                ar_order=config.ar_order,
                vel_pert_method=config.vel_pert_method,
                mask_method=config.mask_method,
                probmatching_method=config.probmatching_method,
                seed=seed,
            )
    except ValueError as err:
        if "non-finite" not in str(err):
            raise
        logger.warning(
            "STEPS undefined (%s: a constant cascade level); Lagrangian extrapolation used", err
        )
        single = extrapolate(db[-1], velocity, steps, outval=transform.zerovalue_db)
        forecast_db = np.repeat(np.asarray(single)[None], members, axis=0)
    logger.debug("pySTEPS STEPS output:\n%s", stdout.getvalue())
    return from_db(np.asarray(forecast_db), transform)


@ENSEMBLE_BASELINES.register("steps")
def steps(
    history: xr.DataArray,
    steps: int,
    *,
    members: int = DEFAULT_MEMBERS,
    seed: int = 0,
    config: StepsConfig | None = None,
    **context: Any,
) -> xr.DataArray:
    """STEPS ensemble nowcast from the last frames of ``history`` (see the module).

    Parameters
    ----------
    history : xr.DataArray
        ``(time, [channel,] y, x)`` rain rate (mm/h) with a projected ``x`` coordinate (units
        ``m`` or ``km``), at least ``max(ar_order + 1, motion_frames)`` frames.
    steps : int
        Number of lead times.
    members : int
        Ensemble members (default 20).
    seed : int
        Seed of pySTEPS' noise and motion perturbations (same seed ⇒ same members).
    config : StepsConfig, optional
    **context
        ``time_step``; other keys are ignored.

    Returns
    -------
    xr.DataArray
        ``(realization, lead_time, [channel,] y, x)`` mm/h, finite and >= 0.
    """
    members, seed = check_members(members, seed)
    config = config or StepsConfig()
    kmperpixel = config.kmperpixel or pixel_km(history)
    step = context.get("time_step")
    minutes = time_step(history, step) / pd.Timedelta(minutes=1)
    return ensemble_per_channel(
        history,
        steps,
        lambda frames, n: steps_channel(frames, n, members, seed, config, kmperpixel, minutes),
        min_frames=config.min_frames,
        step=step,
    )
