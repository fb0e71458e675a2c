"""The torch ``Dataset`` of lazily read windows (the only torch import of the package).

With a base nowcast (``base=``, :mod:`pipelines.method.base_nowcasts`) each sample is ``(x, base,
y)``: the base
is computed once per window from the observed frames on the whole prepared grid (cached), then
cut to the sample's tile with the same origin as the frames; with ``augment=True`` one random
symmetry of the square (:mod:`pipelines.windows.augment`) turns inputs, base and targets together.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

from pipelines.method.base_nowcasts import (
    ARCHIVE_BASES,
    CHANNEL,
    BaseCache,
    base_available,
    base_nowcast,
)
from pipelines.prepare import SpatialConfig
from pipelines.windows.augment import augment as augment_arrays
from pipelines.windows.config import DEFAULT_CACHE_BYTES, WindowConfig
from pipelines.windows.scan import open_store, read_prepared, time_chunk
from pipelines.windows.splits import WindowRef

log = logging.getLogger(__name__)


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
    base : str or None
        Base nowcast (name in :data:`pipelines.method.base_nowcasts.BASES`) to compute per window
        and yield
        between inputs and targets; windows without one (``climatology`` in the first day of a
        store) are left out.
    augment : bool
        Apply a random rotation/flip to each sample (inputs, base and targets alike).

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
        base: str | None = None,
        augment: bool = False,
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
        self.base = base
        self.augment = bool(augment)
        self._bases = BaseCache()
        self._archives: dict[int, xr.DataArray] = {}
        if base is not None:
            self.windows = self._with_base(self.windows)

    def _with_base(self, windows: list[WindowRef]) -> list[WindowRef]:
        """The windows whose base exists (see
        :func:`pipelines.method.base_nowcasts.base_available`).
        """
        kept = []
        for ref in windows:
            times = self._store(ref.store)["time"].values
            init = times[ref.start + self.window.in_frames - 1]
            step = pd.Timedelta(times[1] - times[0])
            if base_available(self.base, init, times[0], step):  # type: ignore[arg-type]
                kept.append(ref)
        if len(kept) < len(windows):
            log.info(
                "%d of %d windows have no %s base (too early in the store) and are left out",
                len(windows) - len(kept),
                len(windows),
                self.base,
            )
        return kept

    def archive(self, store: int) -> xr.DataArray:
        """Prepared frames of the whole store ``(time, channel, y, x)``, physical units (the
        climatology base's archive; only frames up to each window's init time are used)."""
        if store not in self._archives:
            ds = self._store(store)
            frames = read_prepared(ds, self.variables, self.spatials[store], 0, ds.sizes["time"])
            self._archives[store] = xr.DataArray(
                frames, dims=("time", CHANNEL, "y", "x"), coords={"time": ds["time"].values}
            )
        return self._archives[store]

    def base_frames(self, store: int, start: int, frames: np.ndarray) -> np.ndarray:
        """Base nowcast ``(T_out, C, H, W)`` of the window at ``start`` from its whole-grid
        ``frames (L, C, H, W)`` (physical units; cached per window)."""
        T_in = self.window.in_frames

        def compute() -> np.ndarray:
            times = self._store(store)["time"].values[start : start + T_in]
            archive = self.archive(store) if self.base in ARCHIVE_BASES else None
            return base_nowcast(
                self.base,  # type: ignore[arg-type]
                frames[:T_in],
                times,
                self.window.out_frames,
                archive=archive,
            )

        return self._bases.get((store, start), compute)

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
        state["_bases"] = BaseCache()
        state["_archives"] = {}
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
        return self.read_sample(item)[0]

    def read_sample(self, item: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames ``(T_in + T_out, C, H, W)`` and base ``(T_out, C, H, W)`` (None without a
        base) of sample ``item``, physical units, NaN kept, cut to the same tile."""
        if not 0 <= item < len(self):
            raise IndexError(f"sample {item} out of range for {len(self)} samples")
        ref = self.windows[item // len(self._tiles)]
        origin = self._tiles[item % len(self._tiles)]
        frames = self._read_window(ref.store, ref.start)  # (L, C, H, W), whole prepared grid
        base = None if self.base is None else self.base_frames(ref.store, ref.start, frames)
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
            if base is not None:
                base = base[:, :, i : i + th, j : j + tw]  # (T_out, C, th, tw)
        return frames, base

    def _tensor(self, frames: np.ndarray) -> torch.Tensor:
        """Physical ``(T, C, H, W)`` → normalised float32 tensor, NaN filled."""
        values = self.encode(frames) if self.encode is not None else frames
        values = np.asarray(values, dtype=np.float32)
        nan = ~np.isfinite(values)
        if nan.any():
            values = np.where(nan, self.fill[None, :, None, None], values)  # (T, C, H, W)
        return torch.from_numpy(np.ascontiguousarray(values))

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        frames, base = self.read_sample(item)
        if self.augment:
            frames, *rest = augment_arrays(
                [frames] + ([base] if base is not None else []), self._rng
            )
            base = rest[0] if rest else None
        tensor = self._tensor(frames)
        T_in = self.window.in_frames
        if base is None:
            return tensor[:T_in], tensor[T_in:]
        return tensor[:T_in], self._tensor(base), tensor[T_in:]

    def __repr__(self) -> str:
        return (
            f"ZarrWindows({len(self.windows)} windows x {len(self._tiles)} tiles, "
            f"{self.window.in_frames}->{self.window.out_frames}, C,H,W={self.sample_shape}, "
            f"base={self.base}, augment={self.augment}, "
            f"stores={self.paths})"
        )
