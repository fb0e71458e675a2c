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

from pipelines.prepare import (
    KIND_DEFAULTS,
    KindDefaults,
    Preparation,
    SpatialConfig,
    block_mean,
    centred_crop,
    nan_fill_values,
    prepare_frames,
    spatial_config_from,
    store_time_step,
)
from pipelines.windows.config import (
    DEFAULT_CACHE_BYTES,
    SCAN_BLOCK_FRAMES,
    SPLITS,
    TEST,
    TRAIN,
    UNUSED,
    VAL,
    SplitConfig,
    WindowConfig,
)
from pipelines.windows.dataset import ZarrWindows
from pipelines.windows.scan import (
    FrameStats,
    StoreIndex,
    open_store,
    read_prepared,
    scan_store,
    time_chunk,
)
from pipelines.windows.source import (
    SourceWindows,
    normalisation_from_stats,
    source_names,
    source_splits,
    source_windows,
    windows_from_metadata,
)
from pipelines.windows.splits import (
    WindowRef,
    WindowSplits,
    assign_splits,
    build_splits,
    contiguous_runs,
    holdout_labels,
    window_starts,
)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "KIND_DEFAULTS",
    "SCAN_BLOCK_FRAMES",
    "SPLITS",
    "TEST",
    "TRAIN",
    "UNUSED",
    "VAL",
    "FrameStats",
    "KindDefaults",
    "Preparation",
    "SourceWindows",
    "SpatialConfig",
    "SplitConfig",
    "StoreIndex",
    "WindowConfig",
    "WindowRef",
    "WindowSplits",
    "ZarrWindows",
    "assign_splits",
    "block_mean",
    "build_splits",
    "centred_crop",
    "contiguous_runs",
    "holdout_labels",
    "nan_fill_values",
    "normalisation_from_stats",
    "open_store",
    "prepare_frames",
    "read_prepared",
    "scan_store",
    "source_names",
    "source_splits",
    "source_windows",
    "spatial_config_from",
    "store_time_step",
    "time_chunk",
    "window_starts",
    "windows_from_metadata",
]
