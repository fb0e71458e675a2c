"""Which observed frames a forecast starts from, and whether they are fresh enough.

Input selection
---------------
The inputs are the ``T_in`` frames (the checkpoint's ``in_frames``) ending **at** the init time,
on the observation store's regular time grid. ``init_time=None`` means the store's newest present
frame (the store's axis is padded with absent slots to whole chunks, so its last time step is not
the newest observation). Nothing is silently substituted: :class:`StaleInputError` (a
``ValueError``) is raised when

- the store's newest present frame is before the init time (stale store, or the last frames
  absent), or older than ``max_age`` before ``as_of`` when that limit is given,
- the init time is off the store's time grid or the store starts too late for ``T_in`` frames,
- any input frame is absent (``frame_present`` False, or a variable all-NaN on the model grid),
  including the last frames and gaps inside the window.

The only alternative is the explicit ``fallback="latest-complete"``: the newest init time at or
before the requested one whose ``T_in`` frames are all present is used instead; this is logged
as a warning and recorded in the forecast's ``fallback`` provenance variable.

Staleness (one rule for the CLI and the flows)
    ``as_of`` is the time the forecast is wanted for (default: now, UTC). With
    ``init_time=None`` the newest present frame *at or before* ``as_of`` is used. The inputs'
    age is ``as_of - init_time`` (:func:`input_age`); :func:`stale_message` says whether it is
    over a limit. :func:`select_inputs` raises with it when ``max_age`` is given (the CLI's
    ``--max-age``); the forecast flow writes the forecast and reports the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, TIME, X, Y
from pipelines.prepare import Preparation, prepare_frames, store_time_step

logger = logging.getLogger(__name__)

TimeLike = str | np.datetime64 | pd.Timestamp | datetime

Fallback = Literal["none", "latest-complete"]
FALLBACKS: tuple[str, ...] = ("none", "latest-complete")


class StaleInputError(ValueError):
    """The input frames for the requested init time are missing, stale or off-grid."""


@dataclass(frozen=True)
class InputSelection:
    """The input frames chosen for one forecast.

    Parameters
    ----------
    init_time : pandas.Timestamp
        Forecast reference time (time of the last input frame), tz-aware UTC.
    times : pandas.DatetimeIndex
        ``(T_in,)`` input times, oldest first, tz-aware UTC.
    start : int
        Index of the first input frame on the store's ``time`` axis.
    fallback : str
        ``""`` or a description of the fallback used.
    """

    init_time: pd.Timestamp
    times: pd.DatetimeIndex
    start: int
    fallback: str = ""


def _naive_utc(t: TimeLike) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if pd.isna(ts):
        raise ValueError(f"init time must be a valid time, got {t!r}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _span(delta: pd.Timedelta) -> str:
    """``"45 min"``, ``"1 h 05 min"``, ``"3 d 02 h 00 min"`` (whole minutes)."""
    minutes = int(pd.Timedelta(delta) / pd.Timedelta("1min"))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _freq(step: pd.Timedelta) -> str:
    return str(pd.tseries.frequencies.to_offset(step).freqstr)


def _iso(t: pd.Timestamp | np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%MZ")


def select_inputs(
    store_ds: xr.Dataset,
    in_frames: int,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    present: np.ndarray | None = None,
    fallback: Fallback = "none",
    max_age: str | pd.Timedelta | None = None,
    as_of: TimeLike | None = None,
) -> InputSelection:
    """Choose the ``in_frames`` frames ending at ``init_time`` and check they are all there.

    Parameters
    ----------
    store_ds : xarray.Dataset
        Observation store (``time`` axis regular at its ``time_step``).
    in_frames : int
        ``T_in``.
    init_time : datetime-like or None
        Requested init time (UTC; naive = UTC); None = the store's newest present frame at or
        before ``as_of``.
    present : np.ndarray of bool, optional
        ``(time,)`` frame availability; default the store's ``frame_present`` (all True if absent).
        The caller may AND it with "not all-NaN on the model grid".
    fallback : {"none", "latest-complete"}
        What to do when a frame of the window is absent (see the module docstring).
    max_age : str or pandas.Timedelta, optional
        Refuse inputs whose init time is more than this older than ``as_of`` (wall-clock
        staleness for operational runs); None = no limit (archives).
    as_of : datetime-like, optional
        When the forecast is wanted (UTC; naive = UTC): bound of the default init time and
        reference of ``max_age``. Default: no bound, and now for ``max_age``.

    Returns
    -------
    InputSelection

    Raises
    ------
    StaleInputError
        Store ending before the init time, init time off-grid or too early, missing frames.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if in_frames < 1:
        raise ValueError(f"in_frames must be >= 1, got {in_frames}")
    times = pd.DatetimeIndex(store_ds[TIME].values)
    if len(times) == 0:
        raise StaleInputError("the observation store holds no time steps")
    step = store_time_step(store_ds)
    if present is None:
        present = (
            np.asarray(store_ds["frame_present"].values, dtype=bool)
            if "frame_present" in store_ds
            else np.ones(len(times), dtype=bool)
        )
    if not present.any():
        raise StaleInputError("the observation store holds no present frame")
    newest = times[present][-1]  # the axis may be padded with absent slots beyond it
    if init_time is None and as_of is not None:
        bounded = newest_present(times, present, as_of)
        if bounded is None:
            raise StaleInputError(
                f"the observation store holds no observation at or before {_iso(_naive_utc(as_of))}"
            )
        newest = bounded
    requested = newest if init_time is None else _naive_utc(init_time)
    if requested < times[0]:
        raise StaleInputError(
            f"init time {_iso(requested)} precedes the observation store's start {_iso(times[0])}"
        )
    if (requested - times[0]) % step != pd.Timedelta(0):
        earlier = times[0] + ((requested - times[0]) // step) * step
        raise StaleInputError(
            f"init time {_iso(requested)} is not on the store's {_freq(step)} time grid; nearest "
            f"earlier time step {_iso(earlier)}"
        )
    stale = ""
    if requested > newest:
        stale = (
            f"the observation store's newest frame is at {_iso(newest)}, before the init time "
            f"{_iso(requested)} (stale by {_span(requested - newest)}); ingest newer data first"
        )
        if fallback == "none":
            raise StaleInputError(f"{stale}, or pass {FALLBACK_FLAG}")
    end = int(times.get_indexer([requested])[0]) if requested <= times[-1] else len(times) - 1
    if end < 0:
        raise StaleInputError(f"init time {_iso(requested)} is missing from the store's time axis")
    first_problem = stale
    for stop in _candidate_stops(present, end, in_frames, fallback):
        start = stop - in_frames + 1
        if start < 0:
            problem = (
                f"{in_frames} input frames ending at {_iso(times[stop])} need data from "
                f"{_iso(times[stop] - (in_frames - 1) * step)}, but the store starts at "
                f"{_iso(times[0])}"
            )
        else:
            window = times[start : stop + 1]
            expected = pd.date_range(end=times[stop], periods=in_frames, freq=step)
            if not window.equals(expected):
                absent = expected.difference(window)
                problem = f"the store's time axis has gaps in the input window: {_list(absent)}"
            else:
                missing = window[~present[start : stop + 1]]
                if len(missing) == 0:
                    chosen = times[stop]
                    note = ""
                    if chosen != requested:
                        note = (
                            f"latest-complete: requested {_iso(requested)} ({first_problem}); "
                            f"used {_iso(chosen)}"
                        )
                        logger.warning("input fallback: %s", note)
                    _check_age(chosen, max_age, as_of)
                    utc = (chosen.tz_localize("UTC"), window.tz_localize("UTC"))
                    return InputSelection(*utc, start, note)
                problem = (
                    f"input frames absent at {_list(missing)} (window {_iso(window[0])} to "
                    f"{_iso(window[-1])})"
                )
        first_problem = first_problem or problem
        if fallback == "none":
            break
    hint = "" if fallback != "none" else f"; pass {FALLBACK_FLAG} to use older inputs"
    raise StaleInputError(f"cannot forecast from {_iso(requested)}: {first_problem}{hint}")


FALLBACK_FLAG = "--fallback latest-complete"
"""How messages name the fallback: as the CLI spells it (Python and flows: ``fallback=``)."""
_SEARCH_CHUNK = 8192
"""Time steps of ``present`` examined per step of the backward search (~4 weeks at 5 min)."""


def newest_complete_stop(
    present: np.ndarray, stop: int, in_frames: int, chunk: int = _SEARCH_CHUNK
) -> int | None:
    """Newest index ``<= stop`` ending ``in_frames`` consecutive present steps, or None.

    Searches backwards one chunk at a time with vectorised window sums, so a fallback across
    a gap of months costs a few array operations, not one Python iteration per time step.

    Parameters
    ----------
    present : np.ndarray of bool
        ``(time,)`` frame availability.
    stop : int
        Newest candidate end index.
    in_frames : int
        Window length ``T_in``.
    chunk : int
        Window ends examined per step.
    """
    hi = stop + 1  # exclusive end of the block of time steps examined
    while hi >= in_frames:
        lo = max(0, hi - chunk - (in_frames - 1))
        block = np.asarray(present[lo:hi], dtype=np.int32)  # (hi - lo,)
        sums = np.convolve(block, np.ones(in_frames, dtype=np.int32), "valid")  # (hi-lo-T_in+1,)
        full = np.flatnonzero(sums == in_frames)  # window k covers lo + k .. lo + k + T_in - 1
        if full.size:
            return lo + int(full[-1]) + in_frames - 1
        if lo == 0:
            return None
        hi = lo + in_frames - 1  # window ends before lo + T_in - 1 are not examined yet
    return None


def _candidate_stops(
    present: np.ndarray, end: int, in_frames: int, fallback: Fallback
) -> Iterator[int]:
    """Window ends to try: ``end``, then (with the fallback) each earlier complete window."""
    yield end
    if fallback == "none":
        return
    stop = end - 1
    while stop >= 0:
        found = newest_complete_stop(present, stop, in_frames)
        if found is None:
            return
        yield found  # rejected only if the store's time axis has a gap inside the window
        stop = found - 1


def newest_present(
    times: pd.DatetimeIndex, present: np.ndarray, as_of: TimeLike
) -> pd.Timestamp | None:
    """Newest time with ``present`` True at or before ``as_of`` (UTC), or None.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        ``(time,)`` the store's time axis (naive UTC).
    present : np.ndarray of bool
        ``(time,)`` frame availability.
    as_of : datetime-like
        Upper bound (aware, or naive = UTC).
    """
    candidates = pd.DatetimeIndex(times)[np.asarray(present, dtype=bool)]
    candidates = candidates[candidates <= _naive_utc(as_of)]
    return None if len(candidates) == 0 else candidates[-1]


def newest_observation(store_ds: xr.Dataset, as_of: TimeLike) -> pd.Timestamp | None:
    """Newest ``frame_present`` time of an observation store at or before ``as_of`` (UTC)."""
    times = pd.DatetimeIndex(store_ds[TIME].values)
    present = (
        np.asarray(store_ds["frame_present"].values, dtype=bool)
        if "frame_present" in store_ds
        else np.ones(len(times), dtype=bool)
    )
    return newest_present(times, present, as_of)


def input_age(init_time: TimeLike, as_of: TimeLike | None = None) -> pd.Timedelta:
    """How much older the inputs ending at ``init_time`` are than ``as_of`` (default now)."""
    reference = _naive_utc(as_of) if as_of is not None else _naive_utc(pd.Timestamp.now(tz="UTC"))
    return reference - _naive_utc(init_time)


def stale_message(
    init_time: TimeLike, max_age: str | pd.Timedelta, as_of: TimeLike | None = None
) -> str:
    """Why inputs ending at ``init_time`` are too old at ``as_of`` ("" when they are not)."""
    age = input_age(init_time, as_of)
    if age <= pd.Timedelta(max_age):
        return ""
    reference = _naive_utc(as_of) if as_of is not None else _naive_utc(init_time) + age
    return (
        f"the newest usable inputs end at {_iso(_naive_utc(init_time))}, {_span(age)} before "
        f"{_iso(reference)}: older than max_age {_span(pd.Timedelta(max_age))}"
    )


def _check_age(
    init: pd.Timestamp, max_age: str | pd.Timedelta | None, as_of: TimeLike | None
) -> None:
    if max_age is None:
        return
    message = stale_message(init, max_age, as_of)
    if message:
        raise StaleInputError(f"{message}; ingest newer data first")


def _list(times: pd.DatetimeIndex, limit: int = 6) -> str:
    shown = ", ".join(_iso(t) for t in times[:limit])
    return shown + (f" … ({len(times)} in all)" if len(times) > limit else "")


def read_inputs(
    store_ds: xr.Dataset,
    metadata: Mapping[str, Any] | Preparation,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    fallback: Fallback = "none",
    max_age: str | pd.Timedelta | None = None,
    as_of: TimeLike | None = None,
) -> tuple[InputSelection, xr.DataArray]:
    """Select and read the model inputs for ``init_time``.

    Parameters
    ----------
    store_ds : xarray.Dataset
        Observation store.
    metadata : mapping or Preparation
        Checkpoint metadata (``in_frames``, ``variables``, ``crop``, ``coarsen``), typed by
        :meth:`pipelines.prepare.Preparation.from_dict`.
    init_time, fallback, max_age, as_of
        See :func:`select_inputs`.

    Returns
    -------
    InputSelection, xarray.DataArray
        The selection and the prepared frames ``(time=T_in, channel=C, y=H, x=W)`` in physical
        units (NaN kept), loaded in memory.
    """
    preparation = metadata if isinstance(metadata, Preparation) else Preparation.from_dict(metadata)
    if preparation.in_frames is None:
        raise ValueError(f"the checkpoint metadata lacks in_frames: {preparation}")
    in_frames = preparation.in_frames
    present = (
        np.asarray(store_ds["frame_present"].values, dtype=bool)
        if "frame_present" in store_ds
        else np.ones(store_ds.sizes[TIME], dtype=bool)
    )
    while True:
        selection = select_inputs(store_ds, in_frames, init_time, present, fallback, max_age, as_of)
        window = slice(selection.start, selection.start + in_frames)
        # Prepare only the T_in frames of the window: the store may hold years of time steps.
        frames = prepare_frames(
            store_ds.isel({TIME: window}), preparation
        ).load()  # (T_in, C, H, W)
        empty = frames.isnull().all([Y, X]).any(CHANNEL).values  # (T_in,) a variable all-NaN
        if not empty.any():
            return selection, frames
        if fallback == "none":
            raise StaleInputError(
                f"cannot forecast from {_iso(selection.init_time)}: input frames all-NaN at "
                f"{_list(selection.times[empty])}; pass {FALLBACK_FLAG} to use older "
                "inputs"
            )
        # Mark the empty frames absent and look further back: reads T_in frames per attempt.
        present = present.copy()
        present[np.arange(window.start, window.stop)[empty]] = False
