"""Which windows an evaluation scores: a checkpoint's test split, or any period of any source.

``nowcast evaluate --source NAME --checkpoint C [--start --end]`` covers three cases:

- **the checkpoint's own source, no period**: its test split, rebuilt from the metadata
  (:func:`pipelines.evaluate.split_test_windows`);
- **a member of a multi-source checkpoint** (``mch-radar`` of ``mch-radar+knmi-radar``): the
  test windows of that member's store, prepared with that member's crop;
- **a period and/or a source the model was not trained on** (zero-shot): every window of
  ``T_in + T_out`` consecutive present frames wholly inside ``[start, end]`` of the source's
  store (:func:`period_starts`). The frames are prepared like the checkpoint's (variables,
  coarsening) on the source's centred crop of the checkpoint's grid size
  (:func:`zero_shot_crop`), so the network sees the grid it was built for. When such a period
  overlaps the checkpoint's train or validation period the report says so: a score on
  training data is not a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipelines.windows import contiguous_runs


def _time(value: str | pd.Timestamp | None) -> np.datetime64 | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_datetime64()


def period_starts(
    times: np.ndarray,
    present: np.ndarray,
    step: pd.Timedelta,
    length: int,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> np.ndarray:
    """Starts of the windows of ``length`` consecutive present frames inside ``[start, end]``.

    Parameters
    ----------
    times : np.ndarray of datetime64, shape (T,)
        The store's time axis (sorted).
    present : np.ndarray of bool, shape (T,)
        ``frame_present``.
    step : pd.Timedelta
        The regular time step (a larger jump breaks a window).
    length : int
        ``T_in + T_out``.
    start, end : str or Timestamp, optional
        Inclusive bounds on every frame of a window (UTC; aware values are converted);
        default: the whole store.

    Returns
    -------
    np.ndarray of int64
        Frame index of each window's first frame, ascending.
    """
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 1:
        raise ValueError(f"length must be a positive number of frames, got {length!r}")
    times = np.asarray(times, dtype="datetime64[ns]")
    t0, t1 = _time(start), _time(end)
    if t0 is not None and t1 is not None and t0 > t1:
        raise ValueError(f"start {start} is after end {end}")
    inside = np.asarray(present, dtype=bool).copy()
    if t0 is not None:
        inside &= times >= t0
    if t1 is not None:
        inside &= times <= t1
    breaks = np.ones(len(times), dtype=bool)
    breaks[1:] = np.diff(times) != pd.Timedelta(step).to_timedelta64()
    starts: list[int] = []
    for a, b in contiguous_runs(inside, breaks):
        starts.extend(range(a, b - length + 1))
    return np.asarray(starts, dtype=np.int64)


def zero_shot_crop(
    store_shape: tuple[int, int], grid: Sequence[int], coarsen: int
) -> tuple[int, int, int, int] | None:
    """The centred crop of a store that prepares to the checkpoint's ``grid`` at ``coarsen``.

    Parameters
    ----------
    store_shape : (ny, nx)
        The store's grid.
    grid : (H, W)
        The checkpoint's prepared grid.
    coarsen : int
        The checkpoint's block size.

    Returns
    -------
    (y0, y1, x0, x1) or None
        None when the whole store grid is exactly that size.

    Raises
    ------
    ValueError
        When the store is smaller than ``grid × coarsen`` (naming both sizes).
    """
    ny, nx = (int(v) for v in store_shape)
    h, w = (int(v) * int(coarsen) for v in grid)
    if h > ny or w > nx:
        raise ValueError(
            f"the checkpoint needs {h} x {w} store pixels ({list(grid)} at coarsening "
            f"{coarsen}) but the store grid is {ny} x {nx}"
        )
    if (h, w) == (ny, nx):
        return None
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    return (y0, y0 + h, x0, x0 + w)


def overlapping_periods(
    first: np.datetime64, last: np.datetime64, periods: dict[str, Sequence[str] | None]
) -> list[str]:
    """Names of the ``periods`` (``name → [first, last]``, ISO) that ``[first, last]`` meets."""
    out = []
    for name, period in periods.items():
        if not period:
            continue
        a, b = _time(period[0]), _time(period[1])
        if a is not None and b is not None and first <= b and last >= a:
            out.append(name)
    return out
