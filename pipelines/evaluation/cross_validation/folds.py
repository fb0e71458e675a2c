"""Leave-one-event-out folds over the events of one or several sources of one kind.

Events
    An *event* is a run of consecutive valid frames in one store (:func:`find_events`): the
    shipped radar samples hold 7 (MeteoSwiss 3, FMI 2, KNMI 1, RMI 1), each a few hours of one
    rain situation. Runs shorter than one window cannot be scored and are left out; runs closer
    than ``join_steps`` time steps in one store may be joined into one event (default 0: a
    missing frame separates events, the strict reading).

Folds
    :func:`leave_one_event_out` makes one fold per event: the event is the *test* split; the
    frames of every other event are the training data, cut on one time line (all stores'
    events ordered by time) into *train* and *validation* by ``val_fraction`` — validation is
    the chronologically last share of the training events, more than ``gap`` steps after the
    last train frame, so model selection never sees the held-out event. Frames of the training
    events within ``gap`` steps of the held-out event (same store) are not used.
    :func:`fold_labels` gives every frame of every store its split (``TRAIN``, ``VAL``,
    ``TEST``, ``UNUSED``), the form :mod:`pipelines.windows` cuts windows from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.windows import SplitConfig, contiguous_runs, holdout_labels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreFrames:
    """The time axis of one store as the splitting logic sees it.

    Parameters
    ----------
    source : str
        Catalog source the store belongs to.
    times : np.ndarray of datetime64[ns], shape (T,)
    valid : np.ndarray of bool, shape (T,)
        Frame usable (present, not all-NaN).
    step : pd.Timedelta
        Regular time step of the store.
    """

    source: str
    times: np.ndarray
    valid: np.ndarray
    step: pd.Timedelta

    def __post_init__(self) -> None:
        if np.shape(self.times) != np.shape(self.valid) or np.ndim(self.times) != 1:
            raise ValueError(
                f"{self.source}: times {np.shape(self.times)} and valid {np.shape(self.valid)} "
                "must be 1-D of one length"
            )
        if pd.Timedelta(self.step) <= pd.Timedelta(0):
            raise ValueError(f"{self.source}: step must be positive, got {self.step!r}")

    @property
    def breaks(self) -> np.ndarray:
        """True where frame ``i`` does not follow frame ``i - 1`` by one ``step``."""
        out = np.ones(len(self.times), dtype=bool)
        out[1:] = np.diff(self.times) != pd.Timedelta(self.step).to_timedelta64()
        return out


@dataclass(frozen=True)
class Event:
    """A run of consecutive valid frames of one store.

    Attributes
    ----------
    id : int
        Position in the list of events (ordered by store, then time).
    store : int
        Index of the store in the fold's store list.
    source : str
    start, stop : int
        Half-open frame range in the store.
    first, last : str
        Times of the first and last frame (ISO 8601, UTC).
    """

    id: int
    store: int
    source: str
    start: int
    stop: int
    first: str
    last: str

    @property
    def frames(self) -> int:
        """Number of frames (valid ones: the run has no gap unless events were joined)."""
        return self.stop - self.start

    @property
    def name(self) -> str:
        """``source@YYYY-mm-ddTHH:MM`` (unique: a store has one event starting at a time)."""
        return f"{self.source}@{self.first[:16]}"


def _iso(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_events(stores: Sequence[StoreFrames], min_frames: int, join_steps: int = 0) -> list[Event]:
    """The events of the stores: runs of consecutive valid frames, at least ``min_frames`` long.

    Parameters
    ----------
    stores : sequence of StoreFrames
        One per store, in the order the stores are trained on.
    min_frames : int
        Least frames an event needs (one window, ``T_in + T_out``); shorter runs are skipped.
    join_steps : int
        Runs of one store separated by at most this many missing time steps form one event.

    Returns
    -------
    list of Event
        Ordered by store, then time; ``id`` is the position.
    """
    if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
        raise ValueError(f"min_frames must be a positive integer, got {min_frames!r}")
    if isinstance(join_steps, bool) or not isinstance(join_steps, int) or join_steps < 0:
        raise ValueError(f"join_steps must be a non-negative integer, got {join_steps!r}")
    events: list[Event] = []
    for s, store in enumerate(stores):
        step = pd.Timedelta(store.step).to_timedelta64()
        runs: list[list[int]] = []
        for a, b in contiguous_runs(store.valid, store.breaks):
            if runs and (store.times[a] - store.times[runs[-1][1] - 1]) // step - 1 <= join_steps:
                runs[-1][1] = b
            else:
                runs.append([a, b])
        for a, b in runs:
            if int(store.valid[a:b].sum()) < min_frames:
                logger.info(
                    "%s: run %s (%d frames) shorter than a window, not an event",
                    store.source,
                    _iso(store.times[a]),
                    b - a,
                )
                continue
            events.append(
                Event(
                    len(events),
                    s,
                    store.source,
                    a,
                    b,
                    _iso(store.times[a]),
                    _iso(store.times[b - 1]),
                )
            )
    return events


@dataclass(frozen=True)
class Fold:
    """One leave-one-event-out fold.

    Attributes
    ----------
    index : int
    test : Event
        The held-out event.
    train : tuple of Event
        The events the model is trained and validated on.
    """

    index: int
    test: Event
    train: tuple[Event, ...]

    def holdout(self) -> tuple[tuple[int, str, str], ...]:
        """The held-out period as :attr:`pipelines.windows.SplitConfig.holdout` entries."""
        return ((self.test.store, self.test.first, self.test.last),)


def leave_one_event_out(events: Sequence[Event]) -> list[Fold]:
    """One fold per event (``ValueError`` for fewer than 2 events)."""
    if len(events) < 2:
        raise ValueError(f"leave-one-event-out needs at least 2 events, got {len(events)}")
    return [
        Fold(k, event, tuple(e for e in events if e.id != event.id))
        for k, event in enumerate(events)
    ]


@dataclass(frozen=True)
class FoldSplit:
    """How a fold's training events are cut into train and validation.

    Parameters
    ----------
    val_fraction : float
        Share of the training events' frames (the chronologically last) used for validation.
    gap : int or None
        Time steps strictly between the last train frame and the first validation frame, and
        between the held-out event and any training frame of the same store; None = one
        window length (no window shares a frame across splits).
    """

    val_fraction: float = 0.15
    gap: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.val_fraction, int | float) and 0 < self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        gap = self.gap
        if gap is not None and (isinstance(gap, bool) or not isinstance(gap, int) or gap < 0):
            raise ValueError(f"gap must be a non-negative integer or None, got {gap!r}")

    def gap_for(self, window_length: int) -> int:
        """The gap in time steps (default: one window length)."""
        return int(window_length) if self.gap is None else int(self.gap)


def fold_labels(
    stores: Sequence[StoreFrames], fold: Fold, split: FoldSplit, min_frames: int
) -> list[np.ndarray]:
    """Split label of every frame of every store for ``fold``.

    This is what :func:`pipelines.windows.build_splits` computes for
    :func:`fold_split_config` (:func:`pipelines.windows.holdout_labels`).

    Parameters
    ----------
    stores : sequence of StoreFrames
        The stores the events were found in (same order).
    fold : Fold
    split : FoldSplit
    min_frames : int
        One window (train and validation each need at least this many frames).

    Returns
    -------
    list of np.ndarray of int8
        One per store, shape (T,): ``TRAIN``, ``VAL``, ``TEST`` or ``UNUSED``.

    Raises
    ------
    ValueError
        When the training events cannot hold a train and a validation window.
    """
    steps_of = {pd.Timedelta(s.step) for s in stores}
    if len(steps_of) != 1:
        raise ValueError(f"events of one time line need one time step, got {sorted(steps_of)}")
    # Only the frames of events: runs too short to be events stay unused.
    in_events = [np.zeros(len(s.times), dtype=bool) for s in stores]
    for event in (fold.test, *fold.train):
        in_events[event.store][event.start : event.stop] = True
    try:
        return holdout_labels(
            [s.times for s in stores],
            [s.valid & mask for s, mask in zip(stores, in_events, strict=True)],
            next(iter(steps_of)),
            fold.holdout(),
            (1.0 - split.val_fraction, split.val_fraction),
            split.gap_for(min_frames),
            min_frames,
        )
    except ValueError as err:
        raise ValueError(f"fold {fold.index} (test {fold.test.name}): {err}") from err


def fold_split_config(fold: Fold, split: FoldSplit, window_length: int) -> SplitConfig:
    """The :class:`pipelines.windows.SplitConfig` that trains ``fold`` (test = its event)."""
    return SplitConfig(
        (1.0 - split.val_fraction, split.val_fraction, 0.0),
        gap=split.gap_for(window_length),
        scope="all",
        holdout=fold.holdout(),
    )


def window_count(labels: np.ndarray, split: int, length: int, breaks: np.ndarray) -> int:
    """Windows of ``length`` frames lying wholly inside ``split`` (for logging and checks)."""
    runs = contiguous_runs(np.asarray(labels) == split, breaks)
    return int(sum(max(0, b - a - length + 1) for a, b in runs))


def describe_folds(folds: Sequence[Fold]) -> pd.DataFrame:
    """One row per fold: index, held-out event, its frames, training events."""
    return pd.DataFrame(
        {
            "fold": [f.index for f in folds],
            "test_event": [f.test.name for f in folds],
            "test_frames": [f.test.frames for f in folds],
            "train_events": [len(f.train) for f in folds],
        }
    )


__all__ = [
    "Event",
    "Fold",
    "FoldSplit",
    "StoreFrames",
    "describe_folds",
    "find_events",
    "fold_labels",
    "fold_split_config",
    "leave_one_event_out",
    "window_count",
]
