"""Catalog sources → train / val / test :class:`ZarrWindows`, normalisation and metadata."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from data_catalog.catalog import Catalog, get_source, load_catalog
from data_catalog.paths import DataDir, is_url
from pipelines.prepare import (
    KIND_DEFAULTS,
    Preparation,
    SpatialConfig,
    centred_crop,
    nan_fill_values,
)
from pipelines.windows.config import SPLITS, SplitConfig, WindowConfig
from pipelines.windows.dataset import ZarrWindows
from pipelines.windows.scan import open_store, scan_store
from pipelines.windows.splits import WindowSplits, build_splits
from simvp_model.normalisation import TRANSFORMS, Normalisation
from simvp_model.train_config import DataSplits

log = logging.getLogger(__name__)


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
        """The :class:`simvp_model.train_config.DataSplits` for
        :func:`simvp_model.lightning_module.fit`."""
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
    base: str | None = None,
    augment: bool = False,
    normalisation: Normalisation | None = None,
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
        Seed of the random train tiles (and augmentation).
    base : str, optional
        Base nowcast every sample carries (``(x, base, y)``; :mod:`pipelines.method.base_nowcasts`).
    augment : bool
        Random rotations/flips of the train samples (:mod:`pipelines.windows.augment`).
    normalisation : Normalisation, optional
        Use this one instead of fitting one on the train split (fine-tuning keeps the initial
        model's); its transform and channel count must fit the variables.

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
    if normalisation is None:
        normalisation = normalisation_from_stats(
            *sums,
            transform,
            threshold,
            [h.offset for h in hints],
            [h.scale for h in hints],
        )
    elif normalisation.channels != len(variables) or normalisation.transform != transform:
        raise ValueError(
            f"given normalisation {normalisation} does not fit {list(variables)} "
            f"(transform {transform!r})"
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
            base=base,
            augment=augment and name == "train",
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
        "split": split.to_dict(window),
        "windows": counts,
        "nan_fill": fill_kind,
        "base": base or "none",
        "augment": bool(augment),
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
    datasets = {
        "train": dataset("train", tile_mode if tiled else "grid"),
        "val": dataset("val", "grid"),
        "test": dataset("test", "grid"),
    }
    if base is not None:  # windows without a base are left out (counts as used)
        metadata["windows"] = {k: len(d.windows) for k, d in datasets.items()}
    return SourceWindows(
        datasets["train"],
        datasets["val"],
        datasets["test"],
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
    """:func:`source_windows` as the engine's :class:`~simvp_model.train_config.DataSplits`.

    ``description`` holds the checkpoint metadata; ``options`` are the keyword arguments of
    :func:`source_windows`.
    """
    return source_windows(
        source, data_dir, in_frames, out_frames, catalog, tile=tile, **options
    ).data_splits()


def windows_from_metadata(
    metadata: Mapping[str, Any] | Preparation,
    data_dir: str | os.PathLike[str] | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
) -> SourceWindows:
    """Rebuild the windows a checkpoint was trained with (same crops, windows and splits).

    Parameters
    ----------
    metadata : mapping or Preparation
        A checkpoint's ``metadata`` (written by :func:`source_windows`), read by
        :meth:`pipelines.prepare.Preparation.from_dict`.
    data_dir : str or path-like, optional
        Where the stores live now; default: the stores recorded in ``metadata`` (for several
        sources: the data directory holding them, :meth:`DataDir.of_store`).
    catalog : Catalog or path, optional
    """
    prep = metadata if isinstance(metadata, Preparation) else Preparation.from_dict(metadata)
    if prep.in_frames is None or prep.out_frames is None or not prep.sources:
        raise ValueError(f"metadata lacks in_frames, out_frames or the source: {prep}")
    names = list(prep.sources)
    crop: Any = prep.crops if prep.crops else (prep.crop if prep.crop is not None else "full")
    stores = None
    if data_dir is None and len(names) == 1:
        stores = list(prep.stores)
    elif data_dir is None:
        # several sources: their stores were recorded in source order under one data dir
        data_dir = DataDir.of_store(prep.stores[0]).root
    return source_windows(
        names,
        data_dir,
        prep.in_frames,
        prep.out_frames,
        catalog,
        crop=crop,
        coarsen=prep.coarsen,
        tile=prep.tile,
        split=SplitConfig.from_dict(prep.split),
        stride=prep.stride,
        stores=stores,
        base=None if prep.base in (None, "none") else prep.base,
    )
