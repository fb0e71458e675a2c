"""Observation stores → SimVP training windows, lazily, with leak-free time splits.

Contract
--------
Input: one or more observation stores (``DIR/stores/<source>.zarr``, see ``docs/ARCHITECTURE.md``):
data variables with dims ``(time, y, x)``, float32, physical units, NaN = no data, and a
``frame_present(time)`` mask. Output: torch ``Dataset`` s yielding ``(x, y)`` float32 tensors of
shapes ``(T_in, C, H, W)`` and ``(T_out, C, H, W)`` in *normalised* units (``C`` = the selected
variables in order, ``H``/``W`` = the grid after crop, coarsening and tiling).

The steps, in the order they are applied to every frame (training, evaluation and forecasting all
use :func:`prepare_frames` or the identical numpy path inside :class:`ZarrWindows`):

1. **variables** are stacked along ``channel`` in the order given;
2. **crop** ``[y0, y1, x0, x1]`` selects grid *indices* (half-open) on the store grid;
3. **coarsen** by ``k`` replaces each ``k × k`` block by the mean of its finite pixels (NaN only
   when the whole block is NaN); the cropped extent must be divisible by ``k``;
4. **tiles** (optional) cut ``(H, W)`` pieces of the coarsened grid: a fixed non-overlapping grid
   (``"grid"``, every tile of every window is one sample) or one random position per sample
   (``"random"``, training only);
5. **normalisation** (:class:`simvp_model.normalisation.Normalisation`, fitted on the train split
   only) maps physical units to model units;
6. **NaN fill**: pixels still NaN inside a valid frame (outside radar range, masked cells) are set
   to the *normalised physical zero* for precipitation/count transforms (``dbr``, ``log1p``: "no
   rain", "no pickups") and to the *normalised train mean* (``0``) for ``identity`` (temperature).
   Targets are filled the same way, so the loss sees finite numbers everywhere.

Which frames make windows
    A frame is *valid* when ``frame_present`` is True and no selected variable is all-NaN on the
    prepared grid. A window is ``T_in + T_out`` consecutive valid frames at the store's regular
    ``time_step``: windows never cross a missing frame or an irregular time step.

Splits (no leakage)
    By default each store is split on its own (events of one source live in one store, separated
    by missing frames; ``SplitConfig.scope="all"`` instead cuts the frames of all stores on one
    time line). ``by="time"`` (default) cuts the valid frames chronologically into train / val /
    test by the given fractions; ``by="event"`` gives whole contiguous segments (events) to the
    splits, in time order. In both modes more than ``gap`` time steps (default: one window
    length) lie between the last frame of one split and the first frame of the next one, so
    ``train max target time + gap·step < val min input time`` and no window straddles a boundary.

Laziness
    Stores are opened once per process/DataLoader worker with ``xr.open_zarr(chunks=None)`` and
    each sample reads only the Zarr time chunks holding its ``T_in + T_out`` frames, of the
    cropped area; prepared chunks are kept in a bounded LRU cache (``DEFAULT_CACHE_BYTES``), so
    memory stays flat however long the store is. Building the index reads every *present* frame
    once, chunk-aligned block by block (validity and the train-split normalisation statistics).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

from data_catalog.catalog import Catalog, get_source, load_catalog
from data_catalog.paths import DataDir, is_url
from simvp_model.normalisation import TRANSFORMS, Normalisation
from simvp_model.registry import Registry

if TYPE_CHECKING:  # the engine pulls in Lightning: imported only where DataSplits are built
    from simvp_model.engine import DataSplits

log = logging.getLogger(__name__)

SPLITS: tuple[str, str, str] = ("train", "val", "test")
TRAIN, VAL, TEST, UNUSED = 0, 1, 2, -1
# Frames read per block while scanning a store (rounded up to whole time chunks): bounded
# memory (block x C x H x W floats).
SCAN_BLOCK_FRAMES = 32
# Per-process cache of prepared (cropped, coarsened) time-chunk blocks of ZarrWindows: a window
# overlaps the next one by all but one frame, and decompressing a chunk costs the same whether
# one or all of its frames are used. 64 MiB keeps memory bounded however large the store is.
DEFAULT_CACHE_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class WindowConfig:
    """Length of one sample in frames.

    Parameters
    ----------
    in_frames : int
        ``T_in``, input frames.
    out_frames : int
        ``T_out``, target frames.
    stride : int
        Step in frames between consecutive window starts (1 = every start).
    """

    in_frames: int
    out_frames: int
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("in_frames", "out_frames", "stride"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def length(self) -> int:
        """``T_in + T_out``, the frames one window spans."""
        return self.in_frames + self.out_frames


@dataclass(frozen=True)
class SpatialConfig:
    """Crop, coarsening and tiling applied to every frame.

    Parameters
    ----------
    crop : tuple of 4 int or None
        ``(y0, y1, x0, x1)`` half-open *index* ranges on the store grid; None = whole grid.
    coarsen : int
        Block size ``k``: each ``k × k`` block becomes the NaN-aware mean (``H = (y1 - y0) / k``).
    tile : tuple of 2 int or None
        ``(H, W)`` of a tile on the coarsened grid; None = the whole (cropped, coarsened) grid.
    tile_mode : {"grid", "random"}
        ``"grid"``: non-overlapping tiles from the top-left corner, each one a sample (leftover
        rows/columns at the bottom/right are not covered); ``"random"``: one random tile position
        per sample (use for training only; validation and test always use ``"grid"``).
    """

    crop: tuple[int, int, int, int] | None = None
    coarsen: int = 1
    tile: tuple[int, int] | None = None
    tile_mode: Literal["grid", "random"] = "grid"

    def __post_init__(self) -> None:
        if self.crop is not None:
            crop = tuple(int(v) for v in self.crop)
            if (
                len(crop) != 4
                or crop[0] < 0
                or crop[2] < 0
                or crop[1] <= crop[0]
                or crop[3] <= crop[2]
            ):
                raise ValueError(
                    f"crop must be (y0, y1, x0, x1) with y0 < y1, x0 < x1, got {self.crop!r}"
                )
            object.__setattr__(self, "crop", crop)
        if not isinstance(self.coarsen, int | np.integer) or self.coarsen < 1:
            raise ValueError(f"coarsen must be a positive integer, got {self.coarsen!r}")
        if self.tile is not None:
            tile = tuple(int(v) for v in self.tile)
            if len(tile) != 2 or min(tile) < 1:
                raise ValueError(f"tile must be (H, W) with positive sizes, got {self.tile!r}")
            object.__setattr__(self, "tile", tile)
        if self.tile_mode not in ("grid", "random"):
            raise ValueError(f"tile_mode must be 'grid' or 'random', got {self.tile_mode!r}")

    def prepared_shape(self, ny: int, nx: int) -> tuple[int, int]:
        """``(H, W)`` of a store grid ``(ny, nx)`` after crop and coarsening (before tiling)."""
        y0, y1, x0, x1 = self.crop if self.crop is not None else (0, ny, 0, nx)
        if y1 > ny or x1 > nx:
            raise ValueError(f"crop {self.crop} exceeds the store grid (y={ny}, x={nx})")
        k = self.coarsen
        if (y1 - y0) % k or (x1 - x0) % k:
            raise ValueError(
                f"cropped extent ({y1 - y0}, {x1 - x0}) is not divisible by coarsen={k}; "
                "choose a crop that is"
            )
        return (y1 - y0) // k, (x1 - x0) // k


@dataclass(frozen=True)
class SplitConfig:
    """How the frames of each store are split into train / val / test.

    Parameters
    ----------
    fractions : tuple of 3 float
        Shares of the valid frames for train, val, test (sum 1; val/test may be 0).
    gap : int or None
        Time steps that must lie strictly between two splits; None = the window length.
    by : {"time", "event"}
        ``"time"``: chronological cut of the valid frames; ``"event"``: whole contiguous segments
        go to one split each (needs at least one segment per non-empty split).
    scope : {"store", "all"}
        ``"store"``: each store is split on its own (every store contributes to every split);
        ``"all"``: the valid frames of all stores are put on one time line (same time step
        required) and cut once, so e.g. the latest events of all stores form the test split.
    holdout : tuple of (int, str, str)
        Held-out periods ``(store position, first time, last time)`` (ISO 8601, inclusive):
        when given, the test split is exactly their valid frames (cross-validation folds), and
        train / val are cut chronologically from the other valid frames of all stores on one
        time line by ``fractions[:2]`` (``fractions[2]`` must be 0); training frames of the
        same store within ``gap`` steps of a held-out period are not used.
    """

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gap: int | None = None
    by: Literal["time", "event"] = "time"
    scope: Literal["store", "all"] = "store"
    holdout: tuple[tuple[int, str, str], ...] = ()

    def __post_init__(self) -> None:
        fr = tuple(float(f) for f in self.fractions)
        if (
            len(fr) != 3
            or min(fr) < 0
            or fr[0] <= 0
            or not math.isclose(sum(fr), 1.0, abs_tol=1e-6)
        ):
            raise ValueError(
                "fractions must be 3 non-negative shares summing to 1 with train > 0, "
                f"got {self.fractions!r}"
            )
        object.__setattr__(self, "fractions", fr)
        if self.gap is not None and (not isinstance(self.gap, int | np.integer) or self.gap < 0):
            raise ValueError(f"gap must be a non-negative integer or None, got {self.gap!r}")
        if self.by not in ("time", "event"):
            raise ValueError(f"by must be 'time' or 'event', got {self.by!r}")
        if self.scope not in ("store", "all"):
            raise ValueError(f"scope must be 'store' or 'all', got {self.scope!r}")
        holdout = tuple(tuple(h) for h in self.holdout)
        for entry in holdout:
            if (
                len(entry) != 3
                or isinstance(entry[0], bool)
                or not isinstance(entry[0], int | np.integer)
                or entry[0] < 0
                or pd.Timestamp(entry[1]) > pd.Timestamp(entry[2])
            ):
                raise ValueError(
                    f"holdout entries are (store position, first time, last time), got {entry!r}"
                )
        if holdout and (fr[2] != 0 or self.by != "time"):
            raise ValueError(
                f"with holdout periods the test split is the held-out frames: fractions[2] must "
                f"be 0 and by='time', got fractions={fr} by={self.by!r}"
            )
        object.__setattr__(self, "holdout", tuple((int(a), str(b), str(c)) for a, b, c in holdout))

    def gap_for(self, window: WindowConfig) -> int:
        """The gap in time steps for ``window`` (default: its length)."""
        return window.length if self.gap is None else int(self.gap)


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


# --------------------------------------------------------------- spatial preparation
def block_mean(frames: np.ndarray, k: int) -> np.ndarray:
    """NaN-aware ``k × k`` block mean over the last two axes.

    Parameters
    ----------
    frames : np.ndarray, shape (..., H·k, W·k)
    k : int

    Returns
    -------
    np.ndarray, shape (..., H, W), float32
        Mean of the finite pixels of each block; NaN where a block has none.
    """
    if k == 1:
        return frames.astype(np.float32, copy=False)
    *lead, ny, nx = frames.shape
    if ny % k or nx % k:
        raise ValueError(f"grid ({ny}, {nx}) is not divisible by coarsen={k}")
    blocks = frames.reshape(*lead, ny // k, k, nx // k, k)  # (..., H, k, W, k)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0.0).sum(axis=(-3, -1), dtype=np.float64)
    count = finite.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return mean.astype(np.float32)


def spatial_config_from(
    metadata: Mapping[str, Any], source_name: str | None = None
) -> SpatialConfig:
    """The crop/coarsening recorded in a checkpoint's ``metadata`` (tiles do not apply there).

    A model trained on several sources records one crop per source in ``metadata["crops"]``;
    ``source_name`` (the store's ``source_name`` attribute) picks it.
    """
    crops = metadata.get("crops") or {}
    if source_name is not None and source_name in crops:
        crop = crops[source_name]
    elif crops and len(crops) > 1:
        raise ValueError(
            f"the metadata has one crop per source ({sorted(crops)}); "
            f"store source_name {source_name!r} is none of them"
        )
    else:
        crop = metadata.get("crop")
    return SpatialConfig(
        crop=tuple(crop) if crop is not None else None, coarsen=int(metadata.get("coarsen", 1))
    )


def prepare_frames(store_ds: xr.Dataset, metadata: Mapping[str, Any]) -> xr.DataArray:
    """Variable selection, crop and coarsening of a store, exactly as used for training.

    Parameters
    ----------
    store_ds : xr.Dataset
        An observation store (dims ``(time, y, x)``), ideally opened lazily with ``xr.open_zarr``.
    metadata : mapping
        A checkpoint's ``metadata`` (or any mapping) with ``variables`` (list of str) and optional
        ``crop`` (``[y0, y1, x0, x1]`` indices or None) and ``coarsen`` (int, default 1).

    Returns
    -------
    xr.DataArray, dims (time, channel, y, x)
        Physical units, NaN = no data; ``channel`` holds the variable names. Lazy (dask) when the
        store is; coordinates ``y``/``x``/``latitude``/``longitude`` are block means of the
        originals and ``frame_present`` is kept when the store has it.
    """
    variables = list(metadata["variables"])
    missing = [v for v in variables if v not in store_ds.data_vars]
    if missing:
        raise ValueError(f"variables {missing} not in the store (has {sorted(store_ds.data_vars)})")
    spatial = spatial_config_from(metadata, store_ds.attrs.get("source_name"))
    ny, nx = store_ds.sizes["y"], store_ds.sizes["x"]
    spatial.prepared_shape(ny, nx)  # validates crop bounds and divisibility
    da = store_ds[variables].to_dataarray(dim="channel").transpose("time", "channel", "y", "x")
    if spatial.crop is not None:
        y0, y1, x0, x1 = spatial.crop
        da = da.isel(y=slice(y0, y1), x=slice(x0, x1))
    k = spatial.coarsen
    if k > 1:
        if da.chunks is None:
            # Lazily indexed backend array: wrap in dask so coarsening stays lazy.
            da = da.chunk({"time": 1})
        da = da.coarsen(y=k, x=k, boundary="exact").mean()  # NaN-aware (skipna)
    da.name = "frames"
    da.attrs.update(
        {"crop": list(spatial.crop) if spatial.crop else None, "coarsen": k, "variables": variables}
    )
    return da


# ------------------------------------------------------------------- store scanning
def store_time_step(ds: xr.Dataset) -> pd.Timedelta:
    """The regular time step of a store: ``attrs["time_step"]``, else the smallest spacing."""
    step = ds.attrs.get("time_step")
    if step:
        try:
            return pd.Timedelta(pd.tseries.frequencies.to_offset(step))
        except ValueError:
            return pd.Timedelta(step)
    times = ds["time"].values
    if len(times) < 2:
        raise ValueError(
            f"cannot infer the time step of a store with {len(times)} time(s) and no time_step attr"
        )
    return pd.Timedelta(np.diff(times).min())


@dataclass
class FrameStats:
    """Per-frame, per-channel sums of the *transformed* finite values (for NaN-aware fitting).

    Arrays of shape ``(T, C)``; frames never read (not present) hold zeros.
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    def reduce(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(count, sum, sum of squares)`` per channel, shape ``(C,)``, over a frame mask."""
        return (
            self.count[frames].sum(axis=0),
            self.total[frames].sum(axis=0),
            self.total_sq[frames].sum(axis=0),
        )


@dataclass
class StoreIndex:
    """What the scan of one store found (one entry per time step).

    Attributes
    ----------
    path : str
    times : np.ndarray of datetime64[ns], shape (T,)
    valid : np.ndarray of bool, shape (T,)
        ``frame_present`` and no channel all-NaN on the prepared grid.
    breaks : np.ndarray of bool, shape (T,)
        True where frame ``i`` does not follow frame ``i - 1`` by ``step``.
    steps : np.ndarray of int64, shape (T,)
        Position of each frame in time steps from the first one.
    step : pd.Timedelta
    shape : tuple of 2 int
        ``(H, W)`` after crop and coarsening.
    units : list of str
        ``units`` attribute of each variable.
    stats : FrameStats
        Per-frame sums of the transformed values.
    """

    path: str
    times: np.ndarray
    valid: np.ndarray
    breaks: np.ndarray
    steps: np.ndarray
    step: pd.Timedelta
    shape: tuple[int, int]
    units: list[str]
    stats: FrameStats


def open_store(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open an observation store lazily without dask (reads happen per ``isel``)."""
    return xr.open_zarr(os.fspath(path), chunks=None)


def time_chunk(ds: xr.Dataset, variables: Sequence[str]) -> int:
    """Frames per Zarr chunk along ``time`` of the first variable (1 when unknown)."""
    encoding = ds[variables[0]].encoding
    preferred = encoding.get("preferred_chunks") or {}
    if "time" in preferred:
        return int(preferred["time"])
    chunks = encoding.get("chunks")
    return int(chunks[0]) if chunks else 1


def read_prepared(
    ds: xr.Dataset, variables: Sequence[str], spatial: SpatialConfig, start: int, stop: int
) -> np.ndarray:
    """Read frames ``start:stop`` of ``ds`` cropped and coarsened.

    Returns
    -------
    np.ndarray, shape (stop - start, C, H, W), float32, physical units (NaN kept)
    """
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    y0, y1, x0, x1 = spatial.crop if spatial.crop is not None else (0, ny, 0, nx)
    planes = [
        ds[v].isel(time=slice(start, stop), y=slice(y0, y1), x=slice(x0, x1)).values
        for v in variables
    ]
    frames = np.stack(planes, axis=1)  # (T, C, y1 - y0, x1 - x0)
    return block_mean(frames, spatial.coarsen)  # (T, C, H, W)


def scan_store(
    path: str | os.PathLike[str],
    variables: Sequence[str],
    spatial: SpatialConfig,
    transform: Any | None = None,
) -> StoreIndex:
    """Find the valid frames of a store and per-frame statistics, reading present frames once.

    Parameters
    ----------
    path : str or path-like
        The Zarr store.
    variables : sequence of str
        Data variables to use as channels.
    spatial : SpatialConfig
        Crop and coarsening (tiles do not affect validity).
    transform : callable or None
        ``np.ndarray (T, C, H, W) -> np.ndarray`` applied before the statistics (the
        normalisation's transform, e.g. dBR); None = identity.

    Returns
    -------
    StoreIndex
        With ``stats`` (:class:`FrameStats`) of the transformed finite values.
    """
    ds = open_store(path)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ValueError(
            f"variables {missing} not in store {os.fspath(path)!r} (has {sorted(ds.data_vars)})"
        )
    for v in variables:
        if ds[v].dims != ("time", "y", "x"):
            raise ValueError(
                f"variable {v!r} of {os.fspath(path)!r} has dims {ds[v].dims}, "
                "expected (time, y, x)"
            )
    shape = spatial.prepared_shape(ds.sizes["y"], ds.sizes["x"])
    times = ds["time"].values.astype("datetime64[ns]")
    step = store_time_step(ds)
    breaks = np.zeros(len(times), dtype=bool)
    if len(times) > 1:
        breaks[1:] = np.diff(times) != step.to_timedelta64()
    if "frame_present" in ds:
        present = np.asarray(ds["frame_present"].values, dtype=bool)
    else:
        present = np.ones(len(times), dtype=bool)
    n_channels = len(variables)
    stats = FrameStats(
        count=np.zeros((len(times), n_channels), dtype=np.int64),
        total=np.zeros((len(times), n_channels), dtype=np.float64),
        total_sq=np.zeros((len(times), n_channels), dtype=np.float64),
    )
    chunk = time_chunk(ds, variables)
    block = -(-SCAN_BLOCK_FRAMES // chunk) * chunk  # whole time chunks
    for a, b in contiguous_runs(present):
        for start in range(a - a % chunk, b, block):  # aligned to the chunks
            start, stop = max(start, a), min(b, start + block)
            frames = read_prepared(ds, variables, spatial, start, stop)  # (t, C, H, W)
            values = transform(frames) if transform is not None else frames
            finite = np.isfinite(values)
            clean = np.where(finite, values, 0.0).astype(np.float64)
            stats.count[start:stop] = finite.sum(axis=(2, 3))
            stats.total[start:stop] = clean.sum(axis=(2, 3))
            stats.total_sq[start:stop] = (clean**2).sum(axis=(2, 3))
    # A frame is valid when present and no channel is all-NaN on the prepared grid.
    valid = present & (stats.count > 0).all(axis=1)
    units = [str(ds[v].attrs.get("units", "")) for v in variables]
    ds.close()
    steps = ((times - times[0]) // step.to_timedelta64()).astype(np.int64) if len(times) else times
    return StoreIndex(os.fspath(path), times, valid, breaks, steps, step, shape, units, stats)


# ---------------------------------------------------------------------- the dataset
@dataclass(frozen=True)
class WindowRef:
    """One window: which store and which frame starts it."""

    store: int
    start: int


class ZarrWindows(Dataset):
    """``(x, y)`` windows cut lazily from one or more observation stores.

    Parameters
    ----------
    paths : sequence of str
        Zarr stores (all with ``variables`` and the same prepared/tiled ``(H, W)``).
    variables : sequence of str
        Channels, in order.
    windows : sequence of WindowRef
        The windows of this dataset (see :func:`build_splits`).
    window : WindowConfig
    spatial : SpatialConfig or sequence of SpatialConfig
        Crop, coarsening, tiles; one per store when the stores' grids differ (the tiles and
        tile mode of the first apply to all).
    encode : callable or None
        ``np.ndarray (T, C, H, W)`` physical → normalised; None = no normalisation.
    fill : np.ndarray of float, shape (C,), or None
        Normalised value written where pixels are NaN (see the module docstring); None = 0.
    grid_shape : tuple of 2 int
        ``(H, W)`` of the prepared (untiled) grid, for the tile positions.
    seed : int
        Seed of the random tile positions.
    cache_bytes : int
        Budget of the per-process cache of prepared blocks (0 = no cache).

    Notes
    -----
    Each store is opened on first use in each process (DataLoader worker) and never loaded
    whole: a sample reads the Zarr time chunks holding frames ``start .. start + T_in + T_out
    - 1``, of the cropped area only, one aligned block of ``time_chunk`` frames at a time. The
    prepared blocks (physical units, after crop and coarsening) are kept in a least-recently
    used cache of at most ``cache_bytes``, so overlapping windows decompress each chunk once.
    ``frames_read`` counts the frames read from the stores by this process (to check laziness).
    """

    def __init__(
        self,
        paths: Sequence[str],
        variables: Sequence[str],
        windows: Sequence[WindowRef],
        window: WindowConfig,
        spatial: SpatialConfig | Sequence[SpatialConfig],
        grid_shape: tuple[int, int],
        encode: Any | None = None,
        fill: np.ndarray | None = None,
        seed: int = 0,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.variables = list(variables)
        self.windows = list(windows)
        self.window = window
        per_store = [spatial] * len(self.paths) if isinstance(spatial, SpatialConfig) else spatial
        if len(per_store) != len(self.paths):
            raise ValueError(f"{len(per_store)} spatial configs for {len(self.paths)} stores")
        self.spatials = list(per_store)
        self.spatial = self.spatials[0]
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        self.encode = encode
        self.fill = (
            np.zeros(len(self.variables), dtype=np.float32)
            if fill is None
            else np.asarray(fill, dtype=np.float32).reshape(len(self.variables))
        )
        self.seed = seed
        self.frames_read = 0
        self.cache_bytes = int(cache_bytes)
        self._handles: dict[int, xr.Dataset] = {}
        self._chunks: dict[int, int] = {}
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._tiles = self._tile_origins()
        self._rng = np.random.default_rng(seed)

    def _tile_origins(self) -> list[tuple[int, int]]:
        H, W = self.grid_shape
        if self.spatial.tile is None:
            return [(0, 0)]
        th, tw = self.spatial.tile
        if th > H or tw > W:
            raise ValueError(
                f"tile {self.spatial.tile} is larger than the prepared grid {self.grid_shape}"
            )
        if self.spatial.tile_mode == "random":
            return [(-1, -1)]
        return [(i, j) for i in range(0, H - th + 1, th) for j in range(0, W - tw + 1, tw)]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every sample."""
        h, w = self.spatial.tile if self.spatial.tile is not None else self.grid_shape
        return len(self.variables), h, w

    def __len__(self) -> int:
        return len(self.windows) * len(self._tiles)

    def __getstate__(self) -> dict[str, Any]:
        # Open handles are per process: DataLoader workers reopen their own.
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_cache"] = OrderedDict()
        state["_cached_bytes"] = 0
        return state

    def _store(self, index: int) -> xr.Dataset:
        if index not in self._handles:
            self._handles[index] = open_store(self.paths[index])
            self._chunks[index] = time_chunk(self._handles[index], self.variables)
        return self._handles[index]

    def _block(self, store: int, block: int) -> np.ndarray:
        """Prepared frames of time chunk ``block`` of ``store``, ``(chunk, C, H, W)``."""
        key = (store, block)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        ds = self._store(store)
        chunk = self._chunks[store]
        start = block * chunk
        stop = min(start + chunk, ds.sizes["time"])
        frames = read_prepared(ds, self.variables, self.spatials[store], start, stop)
        self.frames_read += stop - start
        if frames.nbytes <= self.cache_bytes:
            self._cache[key] = frames
            self._cached_bytes += frames.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= dropped.nbytes
        return frames

    def _read_window(self, store: int, start: int) -> np.ndarray:
        """Prepared frames ``start .. start + L - 1`` of ``store``, ``(L, C, H, W)``."""
        self._store(store)
        chunk = self._chunks[store]
        stop = start + self.window.length
        blocks = [self._block(store, b) for b in range(start // chunk, (stop - 1) // chunk + 1)]
        joined = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # (n·chunk, C, H, W)
        offset = start - (start // chunk) * chunk
        return joined[offset : offset + self.window.length].copy()  # never a view of the cache

    def read_physical(self, item: int) -> np.ndarray:
        """Sample ``item`` in physical units, ``(T_in + T_out, C, H, W)``, NaN kept."""
        if not 0 <= item < len(self):
            raise IndexError(f"sample {item} out of range for {len(self)} samples")
        ref = self.windows[item // len(self._tiles)]
        origin = self._tiles[item % len(self._tiles)]
        frames = self._read_window(ref.store, ref.start)  # (L, C, H, W), whole prepared grid
        if self.spatial.tile is not None:
            th, tw = self.spatial.tile
            if origin == (-1, -1):
                H, W = self.grid_shape
                origin = (
                    int(self._rng.integers(0, H - th + 1)),
                    int(self._rng.integers(0, W - tw + 1)),
                )
            i, j = origin
            frames = frames[:, :, i : i + th, j : j + tw]  # (L, C, th, tw)
        return frames

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self.read_physical(item)
        values = self.encode(frames) if self.encode is not None else frames
        values = np.asarray(values, dtype=np.float32)
        nan = ~np.isfinite(values)
        if nan.any():
            values = np.where(nan, self.fill[None, :, None, None], values)  # (L, C, H, W)
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        T_in = self.window.in_frames
        return tensor[:T_in], tensor[T_in:]

    def __repr__(self) -> str:
        return (
            f"ZarrWindows({len(self.windows)} windows x {len(self._tiles)} tiles, "
            f"{self.window.in_frames}->{self.window.out_frames}, C,H,W={self.sample_shape}, "
            f"stores={self.paths})"
        )


# ----------------------------------------------------------------- building splits
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


# ----------------------------------------------------------- catalog sources → splits
@dataclass(frozen=True)
class KindDefaults:
    """Window and grid defaults for one source kind (sized for CPU training).

    Parameters
    ----------
    in_frames, out_frames : int
        ``T_in``, ``T_out``.
    crop_size : tuple of 2 int or None
        Side lengths of the centred default crop on the store grid; None = the whole grid.
    coarsen : int
        Default block size.
    """

    in_frames: int
    out_frames: int
    crop_size: tuple[int, int] | None
    coarsen: int


KIND_DEFAULTS: Registry[KindDefaults] = Registry("source kind")
# Radar, 5-min: 6 -> 6 (30 min -> 30 min); the shipped events hold 39..92 frames, so 12 -> 12
# windows would leave no room for three splits. A centred 512 km square coarsened 8x = 64 x 64
# px at 8 km, small enough for a few CPU minutes per epoch.
KIND_DEFAULTS.add("radar", KindDefaults(6, 6, (512, 512), 8))
# Crowd flow, 30-min: TaxiBJ's 4 -> 4 on the native grid.
KIND_DEFAULTS.add("crowd-flow", KindDefaults(4, 4, None, 1))
# Climate, hourly: WeatherBench's 12 -> 12 on the native grid.
KIND_DEFAULTS.add("climate", KindDefaults(12, 12, None, 1))


def centred_crop(
    ny: int, nx: int, size: tuple[int, int] | None, multiple: int
) -> tuple[int, int, int, int]:
    """The centred crop of a ``(ny, nx)`` grid whose sides are multiples of ``multiple``.

    Parameters
    ----------
    ny, nx : int
        Store grid.
    size : tuple of 2 int or None
        Wanted sides (capped at the grid); None = the whole grid.
    multiple : int
        Each side is rounded *down* to a multiple of this (coarsening × model downsampling).

    Returns
    -------
    tuple of 4 int
        ``(y0, y1, x0, x1)``.
    """
    want_y, want_x = size if size is not None else (ny, nx)
    h = min(want_y, ny) // multiple * multiple
    w = min(want_x, nx) // multiple * multiple
    if h == 0 or w == 0:
        raise ValueError(f"grid ({ny}, {nx}) has no {multiple}-multiple crop of size {size}")
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    return y0, y0 + h, x0, x0 + w


def normalisation_from_stats(
    count: np.ndarray,
    total: np.ndarray,
    total_sq: np.ndarray,
    transform: str,
    threshold: float | None,
    offsets: Sequence[float | None],
    scales: Sequence[float | None],
) -> Normalisation:
    """Per-channel mean/std of transformed values from running sums (as ``fit_from``).

    Parameters
    ----------
    count, total, total_sq : np.ndarray, shape (C,)
        Finite values, their sum and sum of squares, in transformed units.
    transform : str
    threshold : float or None
    offsets, scales : sequence of float or None, length C
        Fixed constants from the catalog hint; None = the fitted mean / standard deviation.

    Returns
    -------
    Normalisation
    """
    fitted_offset: list[float] = []
    fitted_scale: list[float] = []
    for c in range(len(count)):
        if count[c] == 0:
            raise ValueError(f"channel {c} has no finite value in the train split")
        mean = float(total[c] / count[c])
        var = max(float(total_sq[c] / count[c]) - mean * mean, 0.0)
        std = math.sqrt(var)
        offset = mean if offsets[c] is None else float(offsets[c])  # type: ignore[arg-type]
        scale = std if scales[c] is None else float(scales[c])  # type: ignore[arg-type]
        if not scale > 0:
            raise ValueError(f"channel {c} is constant in the train split ({mean=}); cannot scale")
        fitted_offset.append(offset)
        fitted_scale.append(scale)
    return Normalisation(transform, tuple(fitted_offset), tuple(fitted_scale), threshold)


def nan_fill_values(normalisation: Normalisation) -> tuple[str, np.ndarray]:
    """What NaN pixels become, in normalised units, shape ``(C,)``.

    ``dbr``/``log1p`` (rain rate, counts): the encoded physical zero; ``identity``: 0, the
    normalised train mean.
    """
    C = normalisation.channels
    if normalisation.transform in ("dbr", "log1p"):
        zero = np.zeros((1, C, 1, 1), dtype=np.float32)  # (T, C, H, W) of physical zeros
        return "zero", np.asarray(normalisation.encode(zero), dtype=np.float32).reshape(C)
    return "mean", np.zeros(C, dtype=np.float32)


@dataclass
class SourceWindows:
    """Train / val / test windows of a catalog source, its normalisation and provenance.

    Attributes
    ----------
    train, val, test : ZarrWindows
    normalisation : Normalisation
        Fitted on the frames of the train windows (NaN-aware).
    metadata : dict
        Plain provenance for the checkpoint (``docs/ARCHITECTURE.md``).
    splits : WindowSplits
    """

    train: ZarrWindows
    val: ZarrWindows
    test: ZarrWindows
    normalisation: Normalisation
    metadata: dict[str, Any]
    splits: WindowSplits

    def data_splits(self) -> DataSplits:
        """The :class:`simvp_model.engine.DataSplits` for :func:`simvp_model.engine.fit`."""
        from simvp_model.engine import DataSplits

        return DataSplits(self.train, self.val, self.test, self.normalisation, self.metadata)


def source_names(source: str | Sequence[str]) -> list[str]:
    """``"a,b"``, ``"a+b"`` or ``["a", "b"]`` → ``["a", "b"]``; one name stays one."""
    if isinstance(source, str):
        names = [n.strip() for n in source.replace("+", ",").split(",")]
    else:
        names = [str(n).strip() for n in source]
    if not names or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"source must name one or more distinct sources, got {source!r}")
    return names


def source_windows(
    source: str | Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    in_frames: int | None = None,
    out_frames: int | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    *,
    crop: Sequence[int] | Mapping[str, Sequence[int] | None] | Literal["full"] | None = None,
    coarsen: int | None = None,
    tile: Sequence[int] | None = None,
    tile_mode: Literal["grid", "random"] = "random",
    split: SplitConfig | None = None,
    stride: int = 1,
    multiple: int = 1,
    stores: Sequence[str | os.PathLike[str]] | None = None,
    seed: int = 0,
) -> SourceWindows:
    """Cut the windows of one or more catalog sources from their stores; fit the normalisation.

    Parameters
    ----------
    source : str or sequence of str
        Catalog source name, or several (``"mch-radar,knmi-radar"`` or a list) of one kind with
        the same variables, units and normalisation hint: their stores become one dataset (each
        store with its own centred crop, all prepared to the same grid).
    data_dir : str or path-like, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``); the store of each source
        is ``DIR/stores/<source>.zarr``.
    in_frames, out_frames : int, optional
        ``T_in``, ``T_out``; default per kind (:data:`KIND_DEFAULTS`).
    catalog : Catalog or path, optional
        Catalog object or YAML file; default: the shipped catalog.
    crop : (y0, y1, x0, x1), {source: crop}, "full" or None
        Store-grid indices (a mapping gives one per source; None inside it = whole grid);
        ``"full"`` = whole grid; None = the kind's centred default crop (capped by the smallest
        store grid) with sides that are multiples of ``coarsen × multiple``.
    coarsen : int, optional
        Block size (default per kind).
    tile : (H, W), optional
        Tiles of the coarsened grid; train uses ``tile_mode``, val/test the fixed grid.
    tile_mode : {"random", "grid"}
        Tiling of the train split.
    split : SplitConfig, optional
        Default: chronological 70/15/15 within each store, with a gap of one window.
    stride : int
        Step between window starts.
    multiple : int
        Downsampling of the network: prepared sides of the default crop are multiples of it.
    stores : sequence of path, optional
        Stores of a single source to use as one dataset (default: the data dir's store).
    seed : int
        Seed of the random train tiles.

    Returns
    -------
    SourceWindows

    Raises
    ------
    FileNotFoundError
        When a store does not exist (ingest first).
    ValueError
        Bad arguments, sources that do not fit together, or an empty split.
    """
    if isinstance(catalog, str | os.PathLike):
        catalog = load_catalog(catalog)
    names = source_names(source)
    specs = [get_source(name, catalog) for name in names]
    spec = specs[0]
    for other in specs[1:]:
        mine = [(v.name, v.units, v.normalisation) for v in spec.variables]
        theirs = [(v.name, v.units, v.normalisation) for v in other.variables]
        if other.kind != spec.kind or theirs != mine or other.time_step != spec.time_step:
            raise ValueError(
                f"sources {spec.name!r} and {other.name!r} differ in kind, time step or "
                f"variables/units/normalisation: {spec.kind}/{spec.time_step}/{mine} vs "
                f"{other.kind}/{other.time_step}/{theirs}"
            )
    defaults = KIND_DEFAULTS.get(spec.kind)
    window = WindowConfig(
        in_frames if in_frames is not None else defaults.in_frames,
        out_frames if out_frames is not None else defaults.out_frames,
        stride,
    )
    split = split or SplitConfig()
    k = coarsen if coarsen is not None else defaults.coarsen
    if stores and len(names) > 1:
        raise ValueError(f"stores= applies to a single source, got sources {names}")
    if stores:
        paths = [os.fspath(p) for p in stores]
        owners = [names[0]] * len(paths)
    else:
        root = DataDir.resolve(data_dir)
        paths, owners = [root.store(name) for name in names], list(names)
    for path, owner in zip(paths, owners, strict=True):
        if not is_url(path) and not os.path.exists(path):
            raise FileNotFoundError(
                f"no store at {path}; ingest it first: nowcast ingest --source {owner}"
            )
    hints = [v.normalisation for v in spec.variables]
    if len({(h.transform, h.threshold) for h in hints}) != 1:
        raise ValueError(
            f"source {spec.name!r}: variables need one transform/threshold to share a "
            f"Normalisation, got {[(h.transform, h.threshold) for h in hints]}"
        )
    transform, threshold = hints[0].transform, hints[0].threshold
    variables = spec.variable_names
    grids = []
    for path in paths:
        with open_store(path) as ds:
            grids.append((ds.sizes["y"], ds.sizes["x"]))
    # Default crop: the kind's size, capped by the smallest grid so all stores share one shape.
    want_y, want_x = defaults.crop_size or (max(g[0] for g in grids), max(g[1] for g in grids))
    common = (min([want_y, *(g[0] for g in grids)]), min([want_x, *(g[1] for g in grids)]))
    crops: list[tuple[int, int, int, int] | None] = []
    for (ny, nx), owner in zip(grids, owners, strict=True):
        wanted: Any = crop[owner] if isinstance(crop, Mapping) else crop
        if isinstance(crop, Mapping) and owner not in crop:
            raise ValueError(f"crop mapping {dict(crop)} has no entry for source {owner!r}")
        if wanted is None and not isinstance(crop, Mapping):
            box: tuple[int, int, int, int] | None = centred_crop(ny, nx, common, k * multiple)
        elif wanted is None or wanted == "full":
            box = None
        else:
            box = tuple(int(v) for v in wanted)  # type: ignore[assignment]
        crops.append(None if box == (0, ny, 0, nx) else box)
    spatials = [SpatialConfig(crop=box, coarsen=k) for box in crops]
    forward = TRANSFORMS.get(transform).forward

    def transformed(frames: np.ndarray) -> np.ndarray:
        return forward(frames, threshold)

    indexes = [
        scan_store(p, variables, sp, transformed) for p, sp in zip(paths, spatials, strict=True)
    ]
    shapes = {index.shape for index in indexes}
    if len(shapes) != 1:
        raise ValueError(
            f"stores {paths} prepare to different grids {sorted(shapes)}; choose crops of one size"
        )
    grid = indexes[0].shape
    splits = build_splits(indexes, window, split)
    counts = splits.counts()
    label = "+".join(names)
    for name, fraction in zip(SPLITS, split.fractions, strict=True):
        if fraction > 0 and counts[name] == 0:
            raise ValueError(
                f"source {label!r}: the {name} split has no {window.in_frames}->"
                f"{window.out_frames} window (windows per split: {counts}); use shorter windows, "
                "a smaller gap or more data"
            )
    sums = [np.zeros(len(variables)) for _ in range(3)]
    for s, index in enumerate(indexes):
        for total, part in zip(sums, index.stats.reduce(splits.frames_in("train", s)), strict=True):
            total += part
    normalisation = normalisation_from_stats(
        *sums,
        transform,
        threshold,
        [h.offset for h in hints],
        [h.scale for h in hints],
    )
    fill_kind, fill = nan_fill_values(normalisation)
    tiled = tuple(int(v) for v in tile) if tile is not None else None

    def dataset(name: str, mode: Literal["grid", "random"]) -> ZarrWindows:
        per_store = [
            SpatialConfig(crop=box, coarsen=k, tile=tiled, tile_mode=mode)  # type: ignore[arg-type]
            for box in crops
        ]
        return ZarrWindows(
            paths,
            variables,
            splits.windows[name],
            window,
            per_store,
            grid,
            normalisation.encode,
            fill,
            seed,
        )

    metadata: dict[str, Any] = {
        "source": label,
        "sources": list(names),
        "kind": spec.kind,
        "variables": list(variables),
        "units": list(indexes[0].units),
        "time_step": spec.time_step,
        "coarsen": k,
        "crop": list(crops[0]) if crops[0] is not None else None,
        "crops": {o: list(c) if c is not None else None for o, c in zip(owners, crops, strict=True)}
        if len(names) > 1
        else None,
        "tile": list(tiled) if tiled is not None else None,
        "grid": list(grid),
        "in_frames": window.in_frames,
        "out_frames": window.out_frames,
        "stride": window.stride,
        "store": paths[0],
        "stores": list(paths),
        "split": {
            "fractions": list(split.fractions),
            "gap": split.gap_for(window),
            "by": split.by,
            "scope": split.scope,
            "holdout": [list(h) for h in split.holdout],
        },
        "windows": counts,
        "nan_fill": fill_kind,
        "train_period": splits.periods["train"],
        "val_period": splits.periods["val"],
        "test_period": splits.periods["test"],
    }
    log.info(
        "%s: %d/%d/%d train/val/test windows of %d->%d on %s grid, %s",
        label,
        counts["train"],
        counts["val"],
        counts["test"],
        window.in_frames,
        window.out_frames,
        grid,
        normalisation,
    )
    return SourceWindows(
        dataset("train", tile_mode if tiled else "grid"),
        dataset("val", "grid"),
        dataset("test", "grid"),
        normalisation,
        metadata,
        splits,
    )


def source_splits(
    source: str | Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    in_frames: int | None = None,
    out_frames: int | None = None,
    catalog: Catalog | None = None,
    tile: Sequence[int] | None = None,
    **options: Any,
) -> DataSplits:
    """:func:`source_windows` as the engine's :class:`~simvp_model.engine.DataSplits`.

    ``description`` holds the checkpoint metadata; ``options`` are the keyword arguments of
    :func:`source_windows`.
    """
    return source_windows(
        source, data_dir, in_frames, out_frames, catalog, tile=tile, **options
    ).data_splits()


def windows_from_metadata(
    metadata: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
) -> SourceWindows:
    """Rebuild the windows a checkpoint was trained with (same crops, windows and splits).

    Parameters
    ----------
    metadata : mapping
        A checkpoint's ``metadata`` (written by :func:`source_windows`).
    data_dir : str or path-like, optional
        Where the stores live now; default: the stores recorded in ``metadata``.
    catalog : Catalog or path, optional
    """
    split_meta = metadata.get("split") or {}
    split = SplitConfig(
        tuple(split_meta.get("fractions", (0.7, 0.15, 0.15))),  # type: ignore[arg-type]
        split_meta.get("gap"),
        split_meta.get("by", "time"),
        split_meta.get("scope", "store"),
        tuple(tuple(h) for h in split_meta.get("holdout") or ()),  # type: ignore[misc]
    )
    names = metadata.get("sources") or [metadata["source"]]
    crops = metadata.get("crops")
    crop: Any = (
        crops if crops else (metadata["crop"] if metadata.get("crop") is not None else "full")
    )
    stores = None
    if data_dir is None and len(names) == 1:
        stores = metadata.get("stores") or [metadata["store"]]
    elif data_dir is None:
        # several sources: their stores were recorded in source order
        data_dir = os.path.dirname(os.path.dirname(metadata["stores"][0]))
    return source_windows(
        names,
        data_dir,
        int(metadata["in_frames"]),
        int(metadata["out_frames"]),
        catalog,
        crop=crop,
        coarsen=int(metadata.get("coarsen", 1)),
        tile=metadata.get("tile"),
        split=split,
        stride=int(metadata.get("stride", 1)),
        stores=stores,
    )
