"""Pure index logic: valid runs, leak-free split labels and window starts (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pipelines.windows.config import SPLITS, TEST, TRAIN, UNUSED, SplitConfig, WindowConfig

if TYPE_CHECKING:  # type only: scan.py reads stores, this module never does
    from pipelines.windows.scan import StoreIndex


# ----------------------------------------------------------------- pure index logic
def contiguous_runs(valid: np.ndarray, breaks: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Half-open ``[start, stop)`` runs of consecutive True frames.

    Parameters
    ----------
    valid : np.ndarray of bool, shape (T,)
        Frame usable or not.
    breaks : np.ndarray of bool, shape (T,), optional
        ``breaks[i]`` True when frame ``i`` does not follow frame ``i - 1`` at the regular step;
        a run never continues across a break.

    Returns
    -------
    list of (int, int)
    """
    valid = np.asarray(valid, dtype=bool)
    runs: list[tuple[int, int]] = []
    start = None
    for i, ok in enumerate(valid):
        broken = breaks is not None and i > 0 and bool(breaks[i])
        if start is not None and (not ok or broken):
            runs.append((start, i))
            start = None
        if ok and start is None:
            start = i
    if start is not None:
        runs.append((start, len(valid)))
    return runs


def window_starts(
    labels: np.ndarray, split: int, length: int, stride: int = 1, breaks: np.ndarray | None = None
) -> np.ndarray:
    """Start indices of the windows lying wholly inside one split.

    Parameters
    ----------
    labels : np.ndarray of int, shape (T,)
        Split of each frame (``TRAIN``, ``VAL``, ``TEST``; ``UNUSED`` = invalid or gap).
    split : int
        Which split.
    length : int
        Frames per window (``T_in + T_out``).
    stride : int
        Step between starts inside one run.
    breaks : np.ndarray of bool, optional
        Irregular time steps (see :func:`contiguous_runs`).

    Returns
    -------
    np.ndarray of int64
        Frame ``s`` starts a window when frames ``s .. s + length - 1`` all carry ``split``.
    """
    starts: list[int] = []
    for a, b in contiguous_runs(np.asarray(labels) == split, breaks):
        starts.extend(range(a, b - length + 1, stride))
    return np.asarray(starts, dtype=np.int64)


def assign_splits(
    valid: np.ndarray,
    fractions: Sequence[float],
    gap: int,
    min_frames: int,
    by: Literal["time", "event"] = "time",
    breaks: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """Label each frame of one store with its split.

    ``by="time"``: with ``N`` valid frames and ``n_gaps`` gaps between the non-empty splits, the
    frames ``M = N - n_gaps·gap`` are shared by ``fractions`` (val and test get
    ``floor(f·M)`` but at least ``min_frames`` each when non-zero; train gets the rest). Train
    takes the first ``n_train`` valid frames; the next split starts at the first valid frame more
    than ``gap`` steps after the previous split's last frame and takes ``n_val`` valid frames;
    test takes every valid frame after the next gap. Missing stretches count towards a gap.

    ``by="event"``: the contiguous segments are given, in time order, to train / val / test as
    whole segments, choosing the cut points whose cumulative frame shares are closest to the
    fractions; frames within ``gap`` steps of the previous split's last frame are dropped.

    Parameters
    ----------
    valid : np.ndarray of bool, shape (T,)
    fractions : sequence of 3 float
        Train, val, test shares.
    gap : int
        Time steps that must lie strictly between two splits: the first frame of a split is more
        than ``gap`` steps after the last frame of the previous one.
    min_frames : int
        Least frames a non-empty split needs (one window).
    by : {"time", "event"}
    breaks : np.ndarray of bool, optional
        Irregular time steps (they also end segments for ``by="event"``).
    steps : np.ndarray of int, shape (T,), optional
        Position of each frame in time steps (default ``arange(T)``: a regular axis).

    Returns
    -------
    np.ndarray of int8, shape (T,)
        ``TRAIN``, ``VAL``, ``TEST`` or ``UNUSED`` (invalid or inside a gap).

    Raises
    ------
    ValueError
        When the store is too short for the requested splits.
    """
    valid = np.asarray(valid, dtype=bool)
    steps = np.arange(len(valid)) if steps is None else np.asarray(steps, dtype=np.int64)
    labels = np.full(valid.shape, UNUSED, dtype=np.int8)
    active = [k for k, f in enumerate(fractions) if f > 0]
    if by == "event":
        return _assign_by_event(valid, fractions, gap, active, breaks, steps, labels)
    n_valid = int(valid.sum())
    needed = len(active) * min_frames + (len(active) - 1) * gap
    if n_valid < needed:
        raise ValueError(
            f"only {n_valid} valid frames; {len(active)} splits of at least {min_frames} frames "
            f"(one window) and {len(active) - 1} gaps of {gap} steps need {needed}"
        )
    share = n_valid - (len(active) - 1) * gap
    counts = {k: max(min_frames, math.floor(fractions[k] * share)) for k in active if k != TRAIN}
    counts[TRAIN] = max(min_frames, share - sum(counts.values()))
    index = np.flatnonzero(valid)
    position = 0  # first candidate in ``index``
    for k in active:
        chunk = index[position:] if k == active[-1] else index[position : position + counts[k]]
        labels[chunk] = k
        if k == active[-1] or len(chunk) == 0:
            break
        # Next split: first valid frame more than ``gap`` steps after this split's last frame.
        position = int(np.searchsorted(steps[index], steps[chunk[-1]] + gap, side="right"))
    return labels


def _assign_by_event(
    valid: np.ndarray,
    fractions: Sequence[float],
    gap: int,
    active: list[int],
    breaks: np.ndarray | None,
    steps: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    segments = contiguous_runs(valid, breaks)
    if len(segments) < len(active):
        raise ValueError(
            f"by='event' needs at least one contiguous segment per split: {len(segments)} "
            f"segments for {len(active)} non-empty splits"
        )
    sizes = np.array([b - a for a, b in segments], dtype=float)
    cum = np.concatenate([[0.0], np.cumsum(sizes) / sizes.sum()])
    targets = np.cumsum([fractions[k] for k in active])[:-1]
    n = len(segments)
    # Cut points c_1 < ... < c_{m-1} in 1..n-1: segments [c_j, c_{j+1}) go to split j.
    candidates = _increasing_tuples(1, n - 1, len(active) - 1)
    costs = [
        sum(abs(cum[c] - t) for c, t in zip(cuts, targets, strict=True)) for cuts in candidates
    ]
    bounds = (0, *candidates[int(np.argmin(costs))], n)
    previous_last: int | None = None  # step of the previous split's last frame
    for j, k in enumerate(active):
        for a, b in segments[bounds[j] : bounds[j + 1]]:
            keep = np.arange(a, b)
            if previous_last is not None:
                keep = keep[steps[keep] > previous_last + gap]
            labels[keep] = k
        used = np.flatnonzero(labels == k)
        if len(used) == 0:
            raise ValueError(
                f"by='event': split {SPLITS[k]!r} lost all its frames to the {gap}-step gap"
            )
        previous_last = int(steps[used[-1]])
    return labels


def _increasing_tuples(lo: int, hi: int, m: int) -> list[tuple[int, ...]]:
    """All strictly increasing m-tuples of integers in [lo, hi]."""
    if m == 0:
        return [()]
    return [(c, *rest) for c in range(lo, hi + 1) for rest in _increasing_tuples(c + 1, hi, m - 1)]


@dataclass(frozen=True)
class WindowRef:
    """One window: which store and which frame starts it."""

    store: int
    start: int


@dataclass
class WindowSplits:
    """The windows of each split and what they were cut from.

    Attributes
    ----------
    window : WindowConfig
    windows : dict of str to list of WindowRef
        ``"train"``, ``"val"``, ``"test"``.
    indexes : list of StoreIndex
    labels : list of np.ndarray
        Split label of every frame of each store (``TRAIN``, ``VAL``, ``TEST``, ``UNUSED``).
    periods : dict of str to list of str or None
        ``[first input time, last target time]`` of each split over all stores (ISO 8601, UTC).
    """

    window: WindowConfig
    windows: dict[str, list[WindowRef]]
    indexes: list[StoreIndex]
    labels: list[np.ndarray]
    periods: dict[str, list[str] | None]

    def counts(self) -> dict[str, int]:
        """Number of windows per split."""
        return {name: len(refs) for name, refs in self.windows.items()}

    def frames_in(self, name: str, store: int) -> np.ndarray:
        """Bool mask, shape (T,), of the frames of ``store`` inside a window of split ``name``."""
        mask = np.zeros(len(self.indexes[store].times), dtype=bool)
        for ref in self.windows[name]:
            if ref.store == store:
                mask[ref.start : ref.start + self.window.length] = True
        return mask


def build_splits(
    indexes: Sequence[StoreIndex], window: WindowConfig, split: SplitConfig
) -> WindowSplits:
    """Split the scanned stores (each on its own or on one time line) and list the windows.

    Parameters
    ----------
    indexes : sequence of StoreIndex
        From :func:`scan_store`, one per store.
    window : WindowConfig
    split : SplitConfig

    Returns
    -------
    WindowSplits
    """
    gap = split.gap_for(window)
    if split.holdout:
        labels = holdout_labels(
            [index.times for index in indexes],
            [index.valid for index in indexes],
            _one_step(indexes),
            split.holdout,
            split.fractions[:2],
            gap,
            window.length,
        )
    elif split.scope == "all":
        labels = _assign_on_one_timeline(indexes, split, gap, window.length)
    else:
        labels = [
            assign_splits(
                index.valid,
                split.fractions,
                gap,
                window.length,
                split.by,
                index.breaks,
                index.steps,
            )
            for index in indexes
        ]
    windows: dict[str, list[WindowRef]] = {name: [] for name in SPLITS}
    spans: dict[str, list[np.datetime64]] = {name: [] for name in SPLITS}
    for s, (index, lab) in enumerate(zip(indexes, labels, strict=True)):
        for k, name in enumerate(SPLITS):
            starts = window_starts(lab, k, window.length, window.stride, index.breaks)
            windows[name].extend(WindowRef(s, int(a)) for a in starts)
            if len(starts):
                spans[name] += [index.times[starts[0]], index.times[starts[-1] + window.length - 1]]
    periods = {name: [_iso(min(v)), _iso(max(v))] if v else None for name, v in spans.items()}
    return WindowSplits(window, windows, list(indexes), labels, periods)


def _one_step(indexes: Sequence[StoreIndex]) -> pd.Timedelta:
    steps_of = {index.step for index in indexes}
    if len(steps_of) != 1:
        raise ValueError(f"one time line needs stores with one time step, got {sorted(steps_of)}")
    return next(iter(steps_of))


def holdout_labels(
    times: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    step: pd.Timedelta,
    holdout: Sequence[tuple[int, str, str]],
    fractions: Sequence[float],
    gap: int,
    min_frames: int,
) -> list[np.ndarray]:
    """Labels of every store with held-out test periods and train / val cut from the rest.

    Parameters
    ----------
    times, valid : sequence of np.ndarray, shape (T_s,)
        Frame times (datetime64) and validity of each store.
    step : pd.Timedelta
        The stores' common time step.
    holdout : sequence of (store position, first, last)
        Held-out periods (inclusive ISO 8601 times): their valid frames are ``TEST``.
    fractions : (train, val)
        Shares of the remaining valid frames, cut chronologically on one time line (all stores
        ordered by time, ties by store); val is the latest share.
    gap : int
        Time steps strictly between train and val, and between a held-out period and any
        train / val frame of the same store.
    min_frames : int
        One window: train and val need at least this many frames each.

    Returns
    -------
    list of np.ndarray of int8
        ``TRAIN``, ``VAL``, ``TEST`` or ``UNUSED`` per frame of each store.
    """
    delta = pd.Timedelta(step).to_timedelta64()
    labels = [np.full(len(t), UNUSED, dtype=np.int8) for t in times]
    candidates = [np.asarray(v, dtype=bool).copy() for v in valid]
    for store, first, last in holdout:
        if store >= len(times):
            raise ValueError(f"holdout store position {store} but only {len(times)} stores")
        t0 = pd.Timestamp(first).tz_localize(None).to_datetime64()
        t1 = pd.Timestamp(last).tz_localize(None).to_datetime64()
        t = times[store]
        inside = (t >= t0) & (t <= t1)
        if not (inside & valid[store]).any():
            raise ValueError(
                f"holdout period {first} .. {last} has no valid frame in store {store}"
            )
        labels[store][inside & valid[store]] = TEST
        near = (t > t0 - (gap + 1) * delta) & (t < t1 + (gap + 1) * delta)
        candidates[store] &= ~near
    origin = min(t[c][0] for t, c in zip(times, candidates, strict=True) if c.any())
    store_ids = np.concatenate([np.full(int(c.sum()), s) for s, c in enumerate(candidates)])
    frame_ids = np.concatenate([np.flatnonzero(c) for c in candidates])
    positions = np.concatenate(
        [
            ((t[c] - origin) // delta).astype(np.int64)
            for t, c in zip(times, candidates, strict=True)
        ]
    )
    order = np.lexsort((store_ids, positions))  # time order; ties: store order
    store_ids, frame_ids, positions = store_ids[order], frame_ids[order], positions[order]
    # A segment continues only with the next frame of the same store, one step later.
    breaks = np.ones(len(positions), dtype=bool)
    breaks[1:] = (np.diff(positions) != 1) | (np.diff(store_ids) != 0)
    merged = assign_splits(
        np.ones(len(positions), dtype=bool),
        (float(fractions[0]), float(fractions[1]), 0.0),
        gap,
        min_frames,
        "time",
        breaks,
        positions,
    )
    for s, lab in enumerate(labels):
        mine = store_ids == s
        lab[frame_ids[mine]] = merged[mine]
    return labels


def _assign_on_one_timeline(
    indexes: Sequence[StoreIndex], split: SplitConfig, gap: int, min_frames: int
) -> list[np.ndarray]:
    """Labels of every store from one cut of the valid frames of all stores ordered by time."""
    steps_of = {index.step for index in indexes}
    if len(steps_of) != 1:
        raise ValueError(f"scope='all' needs stores with one time step, got {sorted(steps_of)}")
    step = next(iter(steps_of)).to_timedelta64()
    origin = min(index.times[0] for index in indexes)
    store_ids = np.concatenate([np.full(int(ix.valid.sum()), s) for s, ix in enumerate(indexes)])
    frame_ids = np.concatenate([np.flatnonzero(ix.valid) for ix in indexes])
    steps = np.concatenate(
        [((ix.times[ix.valid] - origin) // step).astype(np.int64) for ix in indexes]
    )
    order = np.argsort(steps, kind="stable")  # ties: store order
    store_ids, frame_ids, steps = store_ids[order], frame_ids[order], steps[order]
    # A segment continues only with the next frame of the same store, one step later.
    breaks = np.ones(len(steps), dtype=bool)
    breaks[1:] = (np.diff(steps) != 1) | (np.diff(store_ids) != 0)
    merged = assign_splits(
        np.ones(len(steps), dtype=bool), split.fractions, gap, min_frames, split.by, breaks, steps
    )
    labels = [np.full(len(ix.times), UNUSED, dtype=np.int8) for ix in indexes]
    for s, lab in enumerate(labels):
        mine = store_ids == s
        lab[frame_ids[mine]] = merged[mine]
    return labels


def _iso(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")
