"""Store scanning: valid frames, time steps and per-frame statistics, read chunk by chunk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipelines.prepare import SpatialConfig, block_mean, store_time_step
from pipelines.windows.config import SCAN_BLOCK_FRAMES
from pipelines.windows.splits import contiguous_runs


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
