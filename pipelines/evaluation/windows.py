"""Which windows an evaluation scores: a checkpoint's test split, or any period of any source.

``nowcast evaluate --source NAME --checkpoint C [--start --end]`` covers three cases:

- **the checkpoint's own source, no period**: its test split, rebuilt from the metadata
  (:func:`pipelines.evaluation.evaluate.split_test_windows`);
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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from data_catalog.catalog import Catalog
from data_catalog.paths import DataDir, is_url
from pipelines.method.simvp import SimVPMethod
from pipelines.prepare import Preparation, store_time_step
from pipelines.windows import contiguous_runs, open_store
from pipelines.windows.source import windows_from_metadata


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


def split_test_windows(
    metadata: Mapping[str, Any], data_dir: DataDir, catalog: Catalog | None = None
) -> tuple[list[Any], list[str]]:
    """The test-split windows a checkpoint was trained with (:mod:`pipelines.windows`).

    The splits are rebuilt from the checkpoint's metadata by
    :func:`pipelines.windows.windows_from_metadata` (same stores, crop, coarsening, window
    lengths, split fractions and gap), from the recorded stores when they all exist, else from
    ``DIR/stores/<source>.zarr``.

    Returns
    -------
    refs : list of pipelines.windows.WindowRef
        ``(store, start)`` of each test window, in time order per store.
    paths : list of str
        The stores the ``store`` indices refer to.
    """
    recorded = Preparation.from_dict(metadata).stores
    here = bool(recorded) and all(is_url(p) or os.path.exists(p) for p in recorded)
    windows = windows_from_metadata(metadata, None if here else data_dir.root, catalog)
    return list(windows.splits.windows["test"]), list(windows.test.paths)


@dataclass(frozen=True)
class EvaluationTarget:
    """The windows of one store an evaluation scores, and how to prepare its frames.

    Attributes
    ----------
    source : str
    store : str
        Store path.
    preparation : Preparation
        Variables, crop and coarsening for this store (the checkpoint's, or the zero-shot crop).
    starts : np.ndarray of int64
        First frame of each window, ascending.
    description : str
        "test split ..." or "period ... (zero-shot)", for the report.
    zero_shot : bool
        The checkpoint was not trained on ``source``.
    notes : tuple of str
        Caveats for the report (overlap with training periods).
    """

    source: str
    store: str
    preparation: Preparation
    starts: np.ndarray
    description: str
    zero_shot: bool = False
    notes: tuple[str, ...] = ()


def evaluation_target(
    method: SimVPMethod,
    source: str,
    data_dir: DataDir,
    catalog: Catalog | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> EvaluationTarget:
    """Which windows of ``source`` to score ``method`` on (see the module for the three cases).

    Raises
    ------
    ValueError
        For a store too small for the checkpoint's grid, or no window.
    FileNotFoundError
        When ``source`` has no store.
    """
    prep = method.preparation()
    in_frames, out_frames = method.frames()
    trained = list(prep.sources)
    own = source in trained
    meta = method.metadata
    if own and start is None and end is None:
        refs, paths = split_test_windows(meta, data_dir, catalog)
        s = trained.index(source) if len(paths) == len(trained) else 0
        starts = np.asarray([r.start for r in refs if r.store == s], dtype=np.int64)
        return EvaluationTarget(
            source,
            paths[s],
            prep,
            starts,
            f"test split of {'+'.join(trained)} in {meta.get('test_period')}",
        )
    path = data_dir.store(source)
    if not is_url(path) and not os.path.exists(path):
        raise FileNotFoundError(f"no store at {path}; ingest it first: nowcast ingest {source}")
    with open_store(path) as ds:
        times = ds["time"].values
        present = np.asarray(ds["frame_present"].values, dtype=bool)
        shape = (ds.sizes["y"], ds.sizes["x"])
        step = store_time_step(ds)
    if not own:
        # The prepared grid trained on (a tile-trained network still sees whole grids here).
        cfg = method.loaded.config
        grid = tuple(meta.get("grid") or (int(cfg.height), int(cfg.width)))
        prep = replace(prep, crop=zero_shot_crop(shape, grid, prep.coarsen), crops=None)
    starts = period_starts(times, present, step, in_frames + out_frames, start, end)
    if not len(starts):
        raise ValueError(
            f"{source}: no window of {in_frames + out_frames} consecutive present frames in "
            f"[{start or 'start of store'}, {end or 'end of store'}]"
        )
    first = times[starts[0]]
    last = times[starts[-1] + in_frames + out_frames - 1]
    notes: list[str] = []
    if own:
        periods = {k: meta.get(f"{k}_period") for k in ("train", "val")}
        seen = overlapping_periods(first, last, periods)
        if not any(periods.values()):
            notes.append(
                "the checkpoint records no train/val period: these windows may include frames "
                "it was trained on"
            )
        elif seen:
            notes.append(
                f"the period overlaps the checkpoint's {' and '.join(seen)} period(s): "
                "these scores include frames the model was trained or selected on"
            )
    else:
        notes.append(
            f"zero-shot: the checkpoint was trained on {'+'.join(trained) or 'unknown'}, "
            f"not on {source}; crop {list(prep.crop) if prep.crop else 'full grid'}"
        )
    span = f"{pd.Timestamp(first):%Y-%m-%dT%H:%M}Z .. {pd.Timestamp(last):%Y-%m-%dT%H:%M}Z"
    return EvaluationTarget(
        source,
        path,
        prep,
        starts,
        f"period {span}" + (" (zero-shot)" if not own else ""),
        zero_shot=not own,
        notes=tuple(notes),
    )
