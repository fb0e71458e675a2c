"""What one ingest did, in terms a person reads: frames written, events and gaps.

A radar archive is often a set of separate *events* (a few hours each, years apart) rather
than a continuous record. The store's time axis is regular, so the slots between events are
empty; counting them as "missing" (180,424 for the shipped three-event MeteoSwiss sample)
says nothing useful. The report instead lists the *events* (runs of consecutive time steps
holding a frame) and the *gaps* (runs without one) inside the period of the ingest, so
``3 events, 2 gaps between them`` and ``1 event with 2 gaps of 1 step`` read differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SHOWN = 3
"""Events and gaps listed by name in :meth:`IngestReport.summary` (the rest are counted)."""


@dataclass(frozen=True)
class Span:
    """A run of consecutive time steps: ``first`` .. ``last`` inclusive, ``steps`` long."""

    first: pd.Timestamp
    last: pd.Timestamp
    steps: int

    def text(self, step: pd.Timedelta, unit: str) -> str:
        """``2015-05-15 15:45..19:00 (40 frames, 3 h 20 min)``: ``unit`` names the steps."""
        first, last = self.first, self.last
        same_day = first.normalize() == last.normalize()
        end = last.strftime("%H:%M") if same_day else last.strftime("%Y-%m-%d %H:%M")
        span = f"{first:%Y-%m-%d %H:%M}" if self.steps == 1 else f"{first:%Y-%m-%d %H:%M}..{end}"
        unit = unit if self.steps == 1 else f"{unit}s"
        return f"{span} ({self.steps} {unit}, {_duration(self.steps * step)})"


def _duration(delta: pd.Timedelta) -> str:
    """``5 min``, ``2 h 5 min``, ``1 y 57 d``: a duration rounded for reading."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days >= 365:
        return f"{days // 365} y {days % 365} d"
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def spans(present: np.ndarray, times: pd.DatetimeIndex) -> tuple[list[Span], list[Span]]:
    """Runs of ``True`` (events) and of ``False`` (gaps) in ``present``.

    Parameters
    ----------
    present : numpy.ndarray
        Whether each time step holds a frame, shape ``(n,)`` bool.
    times : pandas.DatetimeIndex
        The time of each step, shape ``(n,)``.
    """
    if len(present) != len(times):
        raise ValueError(f"{len(present)=} differs from {len(times)=}")
    if not len(present):
        return [], []
    edges = np.flatnonzero(np.diff(present.astype(np.int8))) + 1  # starts of runs after the 1st
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(present)]])
    events: list[Span] = []
    gaps: list[Span] = []
    for a, b in zip(starts, stops, strict=True):
        run = Span(times[a], times[b - 1], int(b - a))
        (events if present[a] else gaps).append(run)
    return events, gaps


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did.

    Parameters
    ----------
    source : str
        Catalog source name.
    store : str
        Store path.
    files : int
        Files read.
    frames_written : int
        Frames written by this run (new or rewritten).
    frames_new : int
        Of those, frames that were not in the store before.
    period : (pandas.Timestamp, pandas.Timestamp) or None
        The period the events and gaps describe: ``[start, end]`` as requested (clipped to
        the store's origin), an open end replaced by the first/last frame read.
    period_requested : bool
        True when the caller gave both ``start`` and ``end`` (a gap is then a time the caller
        asked for and no file gave); False when (part of) the period is implied by the files
        (gaps then separate the events of the archive).
    events : tuple of Span
        Runs of consecutive time steps of ``period`` holding a frame (after the run).
    gaps : tuple of Span
        Runs of time steps of ``period`` without a frame.
    first, last : pandas.Timestamp or None
        Time range of the frames written.
    store_frames : int
        Length of the store's time axis (including NaN slots).
    store_bytes : int
        Size of the store on disk (local stores).
    seconds : float
        Wall-clock duration.
    time_step : pandas.Timedelta
        The store's time step.
    value_ranges : dict
        Variable name -> ``(min, max)`` of the finite values written.
    masked : int
        Out-of-range pixels the reader masked to NaN (0 unless the reader reports them).
    batches : int
        Write tasks (batches of whole time chunks).
    scheduler : str
        Where the tasks ran (``threads (2)``, ``synchronous``, ``distributed (4 threads)``).
    """

    source: str
    store: str
    files: int
    frames_written: int
    frames_new: int
    period: tuple[pd.Timestamp, pd.Timestamp] | None
    period_requested: bool
    events: tuple[Span, ...]
    gaps: tuple[Span, ...]
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    store_frames: int
    store_bytes: int
    seconds: float
    time_step: pd.Timedelta = pd.Timedelta("5min")
    value_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    masked: int = 0
    batches: int = 0
    scheduler: str = ""

    @property
    def missing_steps(self) -> int:
        """Time steps of :attr:`period` without a frame (the gaps' total length)."""
        return sum(gap.steps for gap in self.gaps)

    @property
    def missing(self) -> pd.DatetimeIndex:
        """Every time step of :attr:`period` without a frame (may be long: prefer ``gaps``)."""
        if not self.gaps:
            return pd.DatetimeIndex([], dtype="datetime64[ns]")
        return pd.DatetimeIndex(
            np.concatenate(
                [pd.date_range(g.first, g.last, freq=self.time_step).values for g in self.gaps]
            )
        )

    def events_text(self) -> str:
        """``3 events: A; B; C`` (the first :data:`SHOWN` named)."""
        return _listing(self.events, "event", "frame", self.time_step)

    def gaps_text(self, where: bool = True) -> str:
        """``no gap`` or ``2 gaps: ...`` (with ``where``: whether they lie in a requested
        period or between the events of the files)."""
        if not self.gaps:
            return "no gap"
        text = _listing(self.gaps, "gap", "step", self.time_step)
        if not where:
            return text
        where_text = "in the requested period" if self.period_requested else "between the events"
        return f"{text} ({where_text})"

    def summary(self) -> str:
        """One human-readable paragraph (logged by the library, printed by the CLI)."""
        masked = f"; {self.masked} out-of-range pixels masked to NaN" if self.masked else ""
        return (
            f"{self.source}: {self.frames_written} frames written ({self.frames_new} new) from "
            f"{self.files} files; {self.events_text()}; {self.gaps_text()}{masked}; store "
            f"{self.store}: {self.store_frames} time steps, {self.store_bytes / 2**20:.1f} MiB; "
            f"{self.seconds:.1f} s"
        )


def _listing(runs: tuple[Span, ...], noun: str, unit: str, step: pd.Timedelta) -> str:
    if not runs:
        return f"no {noun}"
    shown = "; ".join(run.text(step, unit) for run in runs[:SHOWN])
    more = f"; and {len(runs) - SHOWN} more" if len(runs) > SHOWN else ""
    plural = noun if len(runs) == 1 else f"{noun}s"
    return f"{len(runs)} {plural}: {shown}{more}"
