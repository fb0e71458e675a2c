"""Matching a store's time step to a model's: a clear error, or an explicit ``nearest`` choice.

A model trained on 5-min frames must not be fed 10-min or 2.5-min frames as if they were 5-min
ones: the motion it learned per step would be wrong by the ratio. :func:`match_time_step`
returns the store unchanged when the steps agree and otherwise

- ``policy="error"`` (default): raises :class:`TimeStepMismatchError` naming both steps;
- ``policy="nearest"``: when the model's step is a whole multiple ``k`` of the store's, keeps
  every ``k``-th frame of the store, phased so that the requested (or newest) init time is kept
  (each model step takes the store frame at exactly that time: the nearest one). The choice is
  logged and returned as a note for the forecast's provenance. A store coarser than the model
  (10-min data for a 5-min model) would need invented frames, and is refused even then.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import TIME, duration_text
from pipelines.forecast.inputs import TimeLike, newest_observation
from pipelines.prepare import store_time_step

logger = logging.getLogger(__name__)

TimeStepPolicy = Literal["error", "nearest"]
TIME_STEP_POLICIES: tuple[str, ...] = ("error", "nearest")

__all__ = ["TIME_STEP_POLICIES", "TimeStepMismatchError", "TimeStepPolicy", "match_time_step"]


class TimeStepMismatchError(ValueError):
    """The observation store's time step differs from the model's."""


def _freq(step: pd.Timedelta) -> str:
    return duration_text(step)  # as the catalog spells time steps


def match_time_step(
    store_ds: xr.Dataset,
    model_step: str | pd.Timedelta | None,
    policy: TimeStepPolicy = "error",
    init_time: TimeLike | None = None,
    as_of: TimeLike | None = None,
    source: str = "",
) -> tuple[xr.Dataset, str]:
    """The store on the model's time step, and a provenance note (``""`` if unchanged).

    Parameters
    ----------
    store_ds : xarray.Dataset
        Observation store (regular ``time`` axis).
    model_step : str or Timedelta or None
        The model's time step (None: unknown, no check).
    policy : {"error", "nearest"}
        See the module docstring.
    init_time, as_of : datetime-like, optional
        The requested init time (None = newest observation at or before ``as_of``): the frame
        the thinned axis must keep.
    source : str
        Source name, for messages.

    Raises
    ------
    TimeStepMismatchError
        Steps differ and ``policy="error"``, or ``nearest`` cannot apply.
    """
    if policy not in TIME_STEP_POLICIES:
        raise ValueError(f"time_step_policy must be one of {TIME_STEP_POLICIES}, got {policy!r}")
    step = store_time_step(store_ds)
    if model_step is None or model_step == "":
        return store_ds, ""
    want = (
        model_step
        if isinstance(model_step, pd.Timedelta)
        else pd.Timedelta(pd.tseries.frequencies.to_offset(model_step))
    )
    if want == step:
        return store_ds, ""
    name = f"{source!r}" if source else "the source"
    if policy == "error":
        raise TimeStepMismatchError(
            f"the model works on {_freq(want)} steps but {name}'s store is at {_freq(step)}: "
            "refusing a silent mismatch; train a model on this source, or pass "
            "--time-step-policy nearest (only where the model step is a multiple of the store's)"
        )
    ratio = want / step
    if ratio < 1 or ratio != int(ratio):
        raise TimeStepMismatchError(
            f"--time-step-policy nearest needs the model step ({_freq(want)}) to be a whole "
            f"multiple of {name}'s store step ({_freq(step)}); a coarser store would need "
            "frames that do not exist"
        )
    k = int(ratio)
    times = pd.DatetimeIndex(store_ds[TIME].values)
    if init_time is not None:
        anchor = pd.Timestamp(init_time)
        anchor = anchor.tz_convert("UTC").tz_localize(None) if anchor.tzinfo else anchor
    else:
        newest = newest_observation(store_ds, as_of if as_of is not None else times[-1])
        anchor = newest if newest is not None else times[-1]
    position = int(np.searchsorted(times.values, anchor.to_datetime64()))
    thinned = store_ds.isel({TIME: slice(position % k, None, k)})
    thinned.attrs = {**store_ds.attrs, "time_step": _freq(want)}
    note = (
        f"time step: nearest, every {k}th frame of the {_freq(step)} store "
        f"for the model's {_freq(want)} step"
    )
    logger.warning("%s: %s", source or "forecast", note)
    return thinned, note
