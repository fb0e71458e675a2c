"""Frame preparation shared by training, evaluation, forecasting and rendering (torch-free).

Contract
--------
A :class:`Preparation` is the typed form of what a checkpoint's ``metadata`` says about its data
(variables, crop, coarsening, frame counts, time step, stores; ``docs/ARCHITECTURE.md``):
:meth:`Preparation.from_dict` is the one place that metadata dict is read, and
:func:`prepare_frames` turns an observation store ``(time, y, x)`` into the ``(time, channel, y,
x)`` frames the model saw in training (variables stacked, crop, NaN-aware block-mean coarsening).
:data:`KIND_DEFAULTS` holds the one set of per-kind defaults (frames, crop size, coarsening).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from simvp_model.registry import Registry

if TYPE_CHECKING:  # type only: the normalisation module imports torch
    from simvp_model.normalisation import Normalisation

__all__ = [
    "KIND_DEFAULTS",
    "KindDefaults",
    "Preparation",
    "SpatialConfig",
    "block_mean",
    "centred_crop",
    "nan_fill_values",
    "prepare_frames",
    "spatial_config_from",
    "store_time_step",
]

Crop = tuple[int, int, int, int]


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


def _crop(value: Any) -> Crop | None:
    return None if value is None else tuple(int(v) for v in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class Preparation:
    """What a checkpoint's metadata says about its data, typed (the one parse of that dict).

    Parameters
    ----------
    variables : tuple of str
        Data variables stacked as channels, in order.
    in_frames : int or None
        ``T_in`` (None where only the spatial preparation is described).
    out_frames : int or None
        ``T_out`` (None where only inputs are described, e.g. a forecast store's attribute).
    crop : (y0, y1, x0, x1) or None
        Half-open store-grid indices (None = whole grid).
    crops : mapping of str to crop, or None
        One crop per source for a model trained on several sources (picked by the store's
        ``source_name``).
    coarsen : int
        Block size of the NaN-aware mean (1 = native grid).
    tile : (H, W) or None
        Training tiles (evaluation scores whole grids only).
    stride : int
        Step between window starts.
    time_step : str or None
        The sources' time step (pandas offset string).
    sources : tuple of str
        Catalog sources trained on (empty when unknown).
    stores : tuple of str
        The stores the windows were cut from, in source order.
    split : mapping or None
        The recorded ``SplitConfig`` fields (see :meth:`pipelines.windows.SplitConfig.from_dict`).
    base : str or None
        Base nowcast the windows carried (``"none"``/None: plain windows; see
        :mod:`pipelines.method.base_nowcasts`).
    """

    variables: tuple[str, ...]
    in_frames: int | None = None
    out_frames: int | None = None
    crop: Crop | None = None
    crops: Mapping[str, Crop | None] | None = None
    coarsen: int = 1
    tile: tuple[int, int] | None = None
    stride: int = 1
    time_step: str | None = None
    sources: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    split: Mapping[str, Any] | None = field(default=None, compare=False)
    base: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.variables, str) or not self.variables:
            raise ValueError(f"variables must be a non-empty list of names, got {self.variables!r}")
        object.__setattr__(self, "variables", tuple(str(v) for v in self.variables))
        for name in ("stride", "coarsen"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("in_frames", "out_frames"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | np.integer) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        object.__setattr__(self, "crop", _crop(self.crop))
        if self.crops is not None:
            object.__setattr__(self, "crops", {str(k): _crop(v) for k, v in self.crops.items()})
        if self.tile is not None:
            object.__setattr__(self, "tile", tuple(int(v) for v in self.tile))
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        object.__setattr__(self, "stores", tuple(str(s) for s in self.stores))

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any]) -> Preparation:
        """Read a checkpoint's ``metadata`` (or a forecast's ``input_preparation``).

        Missing optional keys take the defaults older checkpoints were written with (no crop,
        ``coarsen`` 1, ``stride`` 1); ``variables`` is required.
        """
        if metadata.get("variables") is None:
            raise ValueError(f"metadata lacks 'variables' (has {sorted(metadata)})")
        sources = metadata.get("sources") or (
            [metadata["source"]] if metadata.get("source") else []
        )
        stores = metadata.get("stores") or ([metadata["store"]] if metadata.get("store") else [])
        in_frames, out_frames = metadata.get("in_frames"), metadata.get("out_frames")
        return cls(
            variables=tuple(metadata["variables"]),
            in_frames=None if in_frames is None else int(in_frames),
            out_frames=None if out_frames is None else int(out_frames),
            crop=metadata.get("crop"),
            crops=metadata.get("crops") or None,
            coarsen=int(metadata.get("coarsen", 1) or 1),
            tile=metadata.get("tile"),
            stride=int(metadata.get("stride", 1) or 1),
            time_step=metadata.get("time_step"),
            sources=tuple(sources),
            stores=tuple(stores),
            split=metadata.get("split"),
            base=metadata.get("base"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able form read back by :meth:`from_dict`.

        ``variables``, ``crop`` and ``coarsen`` are always written; the other
        fields only when set (so :meth:`inputs` gives the forecast store's ``input_preparation``).
        """
        out: dict[str, Any] = {
            "variables": list(self.variables),
            "crop": None if self.crop is None else list(self.crop),
            "coarsen": int(self.coarsen),
        }
        if self.in_frames is not None:
            out["in_frames"] = int(self.in_frames)
        if self.crops:
            out["crops"] = {k: None if v is None else list(v) for k, v in self.crops.items()}
        if self.out_frames is not None:
            out["out_frames"] = int(self.out_frames)
        if self.tile is not None:
            out["tile"] = list(self.tile)
        if self.stride != 1:
            out["stride"] = int(self.stride)
        if self.time_step is not None:
            out["time_step"] = self.time_step
        if self.sources:
            out["sources"] = list(self.sources)
        if self.stores:
            out["stores"] = list(self.stores)
        if self.split is not None:
            out["split"] = dict(self.split)
        if self.base not in (None, "none"):
            out["base"] = self.base
        return out

    def inputs(self) -> Preparation:
        """Only what preparing input frames needs (variables, crops, coarsening, ``T_in``)."""
        return Preparation(
            self.variables, self.in_frames, crop=self.crop, crops=self.crops, coarsen=self.coarsen
        )

    def with_frames(self, in_frames: int, out_frames: int) -> Preparation:
        """A copy with other frame counts."""
        return replace(self, in_frames=int(in_frames), out_frames=int(out_frames))

    def spatial(self, source_name: str | None = None) -> SpatialConfig:
        """The crop/coarsening for a store of ``source_name`` (tiles do not apply here).

        A model trained on several sources records one crop per source in ``crops``;
        ``source_name`` (the store's ``source_name`` attribute) picks it.
        """
        crops = self.crops or {}
        if source_name is not None and source_name in crops:
            crop = crops[source_name]
        elif crops and len(crops) > 1:
            raise ValueError(
                f"the metadata has one crop per source ({sorted(crops)}); "
                f"store source_name {source_name!r} is none of them"
            )
        else:
            crop = self.crop
        return SpatialConfig(crop=crop, coarsen=self.coarsen)


def spatial_config_from(
    metadata: Mapping[str, Any] | Preparation, source_name: str | None = None
) -> SpatialConfig:
    """The crop/coarsening recorded in a checkpoint's ``metadata`` (:meth:`Preparation.spatial`)."""
    return _as_preparation(metadata).spatial(source_name)


def _as_preparation(value: Mapping[str, Any] | Preparation) -> Preparation:
    return value if isinstance(value, Preparation) else Preparation.from_dict(value)


def prepare_frames(
    store_ds: xr.Dataset, preparation: Preparation | Mapping[str, Any]
) -> xr.DataArray:
    """Variable selection, crop and coarsening of a store, exactly as used for training.

    Parameters
    ----------
    store_ds : xr.Dataset
        An observation store (dims ``(time, y, x)``), ideally opened lazily with ``xr.open_zarr``.
    preparation : Preparation or mapping
        What to prepare; a mapping (a checkpoint's ``metadata`` or a forecast's
        ``input_preparation``) is read by :meth:`Preparation.from_dict`.

    Returns
    -------
    xr.DataArray, dims (time, channel, y, x)
        Physical units, NaN = no data; ``channel`` holds the variable names. Lazy (dask) when the
        store is; coordinates ``y``/``x``/``latitude``/``longitude`` are block means of the
        originals and ``frame_present`` is kept when the store has it.
    """
    prep = _as_preparation(preparation)
    variables = list(prep.variables)
    missing = [v for v in variables if v not in store_ds.data_vars]
    if missing:
        raise ValueError(f"variables {missing} not in the store (has {sorted(store_ds.data_vars)})")
    spatial = prep.spatial(store_ds.attrs.get("source_name"))
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
# windows would leave no room for three splits. The whole domain at 4 km (coarsen 4, e.g.
# MeteoSwiss 160 x 176 px); training takes random 64 px crops (pipelines.training.source), the
# fully convolutional network forecasts the whole grid (before: a 512 km square at 8 km).
KIND_DEFAULTS.add("radar", KindDefaults(6, 6, None, 4))
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


def nan_fill_values(normalisation: Normalisation) -> tuple[str, np.ndarray]:
    """What NaN pixels become, in normalised units, shape ``(C,)``.

    ``dbr``/``log1p`` (rain rate, counts): the encoded physical zero (kind ``"zero"``);
    ``identity``: 0, the normalised train mean (kind ``"mean"``).
    """
    C = normalisation.channels
    if normalisation.transform in ("dbr", "log1p"):
        zero = np.zeros((1, C, 1, 1), dtype=np.float32)  # (T, C, H, W) of physical zeros
        return "zero", np.asarray(normalisation.encode(zero), dtype=np.float32).reshape(C)
    return "mean", np.zeros(C, dtype=np.float32)
