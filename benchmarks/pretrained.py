"""Train the shipped pretrained radar model, and its leave-one-provider-out benchmark.

Run from the repository root::

    nice -n 5 .venv/bin/python -m benchmarks.pretrained --ship            # rebuild the weights
    nice -n 5 .venv/bin/python -m benchmarks.pretrained --exclude-provider fmi-radar
    nice -n 5 .venv/bin/python -m benchmarks.pretrained --exclude-provider all
    .venv/bin/python -m benchmarks.pretrained --tiny --exclude-provider rmi-radar  # plumbing

Data: every catalog source of kind ``radar`` whose sample files exist (the shipped MeteoSwiss,
FMI, KNMI and RMI events), ingested into ``--data-dir`` when their store is missing. Sources at
another time step than the model's (5 min) are excluded, with the reason printed and written
to the model card (they are not resampled in time). All are pooled at one common resolution
(4 km: each 1 km store coarsened 4 x 4 by the conservative block mean; a store whose spacing
does not divide 4 km is excluded, with the reason). Windows: 4 input frames, 4 output frames
(20 min each way; longer leads are rolled out): the shortest shipped events (RMI 9 frames,
FMI 10) still hold complete windows. The split is by *event* on one time line over all stores
(``SplitConfig(by="event", scope="all")``), so validation and test events are never seen in
training. The network, base nowcast, loss, crops and augmentation are the radar kind's
training defaults (:data:`pipelines.training.source.HARDWARE_DEFAULTS`, issue 10's recipe).

``--ship`` trains on all of them and writes ``pipelines/method/pretrained/radar/{weights.pt,
MODEL_CARD.md}`` (the card holds the SHA-256, the events, the recipe, the training time, the
test scores and, when ``benchmarks/results/pretrained_lopo.json`` exists, the cross-validated
leave-one-provider-out scores).

``--exclude-provider P`` trains the same recipe without ``P`` (into ``DIR/pretrained-lopo/P``,
never the package) and scores it zero-shot on every complete window of ``P``'s events against
persistence and Lucas–Kanade extrapolation (same windows, same scoring code as ``nowcast
evaluate``: MSE and CSI at 1 mm/h per lead, on the 4 km grid). When ``P`` holds enough frames
for its own train/val/test split, the zero-shot model is also fine-tuned on ``P`` for at most
``--finetune-minutes`` (default 5) and both are scored on ``P``'s test split. Results:
``benchmarks/results/pretrained_lopo.{json,md}`` (merged per provider).
"""

from __future__ import annotations

import argparse
import glob
import logging
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import torch
import xarray as xr

from benchmarks.pretrained_report import RESULTS, score_table, write_lopo
from data_catalog.catalog import load_catalog
from data_catalog.paths import DataDir
from data_catalog.spec import SourceSpec
from data_catalog.vocabulary import CRS
from pipelines.baselines import BASELINES
from pipelines.evaluation.evaluate import (
    concat_forecasts,
    run_methods,
    score_forecasts,
    split_test_windows,
    subsample,
)
from pipelines.ingest import ingest_source
from pipelines.method.pretrained import PRETRAINED_ROOT, load_pretrained, package_model
from pipelines.method.resample import RegularGrid
from pipelines.method.simvp import SimVPMethod
from pipelines.prepare import Preparation, prepare_frames
from pipelines.training.source import train_source
from pipelines.verification.plans import ScoreRequest
from pipelines.windows import SplitConfig
from simvp_model.checkpoint import load_checkpoint

logger = logging.getLogger("benchmarks.pretrained")

NAME, VERSION = "radar", "v1"
RESOLUTION_M = 4000.0
TIME_STEP = "5min"
UNITS = "mm/h"
IN_FRAMES, OUT_FRAMES = 4, 4
#: Pooled split: whole events on one time line (validation and test events unseen in training).
POOLED_SPLIT = SplitConfig((0.7, 0.15, 0.15), gap=0, by="event", scope="all")
#: A held-out provider's own split for fine-tuning (by event when it has 3 or more, else time).
SCORES = (ScoreRequest("mse"), ScoreRequest("csi", threshold=1.0))
TINY = {"spatial_hidden": 4, "temporal_hidden": 8, "temporal_layers": 2, "limit_train_batches": 2}


# ----------------------------------------------------------------------------- data
def radar_sources(catalog: Any) -> tuple[list[SourceSpec], dict[str, str]]:
    """The catalog's radar sources usable for the model, and why the others are not."""
    used, excluded = [], {}
    step = pd.Timedelta(TIME_STEP)
    for name in catalog.names():
        spec = catalog.get(name)
        if spec.kind != "radar":
            continue
        if pd.Timedelta(pd.tseries.frequencies.to_offset(spec.time_step)) != step:
            excluded[name] = f"time step {spec.time_step}, not the model's {TIME_STEP}"
            continue
        if not _has_files(spec):
            excluded[name] = "no sample files on this machine"
            continue
        if [v.units for v in spec.variables] != [UNITS]:
            excluded[name] = f"variables {[v.units for v in spec.variables]}, not one in {UNITS}"
            continue
        used.append(spec)
    return used, excluded


def _has_files(spec: SourceSpec) -> bool:
    pattern = str(spec.path)
    for code in ("%Y", "%y", "%m", "%d", "%j", "%H", "%M", "%S"):
        pattern = pattern.replace(code, "*")
    samples = Path(__file__).resolve().parents[1] / "data_catalog" / "samples"
    pattern = pattern.replace("${samples}", str(samples))
    return bool(glob.glob(pattern))


def ensure_stores(specs: Sequence[SourceSpec], data_dir: Path) -> None:
    """Ingest every source whose store is missing (all of its sample files)."""
    for spec in specs:
        if not Path(DataDir.resolve(data_dir).store(spec.name)).exists():
            logger.info("ingesting %s", spec.name)
            ingest_source(spec.name, str(data_dir), progress=False)


def coarsening(spec: SourceSpec, data_dir: Path) -> int:
    """Block size taking the store to :data:`RESOLUTION_M` (ValueError if it does not divide)."""
    with xr.open_zarr(DataDir.resolve(data_dir).store(spec.name), chunks=None) as ds:
        spacing = RegularGrid.from_store(ds).resolution_m
    ratio = RESOLUTION_M / spacing
    if abs(ratio - round(ratio)) > 0.01 * ratio or round(ratio) < 1:
        raise ValueError(f"{spec.name}: {spacing:g} m pixels do not divide {RESOLUTION_M:g} m")
    return int(round(ratio))


def events(spec: SourceSpec, data_dir: Path) -> list[dict[str, Any]]:
    """The contiguous runs of present frames of a store: ``[{start, end, frames}]``."""
    with xr.open_zarr(DataDir.resolve(data_dir).store(spec.name), chunks=None) as ds:
        present = np.asarray(ds["frame_present"].values, dtype=bool)
        times = pd.DatetimeIndex(ds["time"].values)
    index = np.flatnonzero(present)
    runs = np.split(index, np.flatnonzero(np.diff(index) > 1) + 1) if len(index) else []
    return [{"start": str(times[r[0]]), "end": str(times[r[-1]]), "frames": len(r)} for r in runs]


# ----------------------------------------------------------------------------- training
def train_pooled(
    specs: Sequence[SourceSpec],
    data_dir: Path,
    out_dir: Path,
    minutes: float,
    tiny: bool,
) -> tuple[Any, float]:
    """Train the recipe on the pooled sources; returns (FitResult, wall seconds)."""
    ks = {spec.name: coarsening(spec, data_dir) for spec in specs}
    if len(set(ks.values())) != 1:
        raise ValueError(f"sources need one coarsening to {RESOLUTION_M:g} m, got {ks}")
    options: dict[str, Any] = {
        "in_frames": IN_FRAMES,
        "out_frames": OUT_FRAMES,
        "coarsen": next(iter(ks.values())),
        "max_minutes": minutes,
        "progress_bar": False,
        "accelerator": "cpu",
    }
    if tiny:
        options.update(TINY, epochs=1)
    start = time.perf_counter()
    result = train_source(
        ",".join(s.name for s in specs), data_dir, split=POOLED_SPLIT, out_dir=out_dir, **options
    )
    return result, time.perf_counter() - start


def package(
    result: Any, directory: Path, specs: Sequence[SourceSpec], data_dir: Path, card: str
) -> Any:
    """Write ``directory/{weights.pt, MODEL_CARD.md}`` from a training result."""
    loaded = load_checkpoint(result.checkpoint_path)
    meta = dict(loaded.metadata)
    meta["events"] = {s.name: events(s, data_dir) for s in specs}
    # the stores of the machine it was trained on mean nothing elsewhere: keep their names
    meta["store"] = Path(str(meta.get("store", ""))).name
    meta["stores"] = [Path(str(p)).name for p in meta.get("stores", [])]
    return package_model(
        directory,
        loaded.model,
        loaded.config,
        loaded.normalisation,
        name=NAME,
        version=VERSION,
        resolution_m=RESOLUTION_M,
        time_step=TIME_STEP,
        units=UNITS,
        card_text=card,
        metadata=meta,
        metrics=loaded.metrics,
    )


# ----------------------------------------------------------------------------- scoring
def _frames(spec: SourceSpec, data_dir: Path, k: int) -> tuple[xr.DataArray, xr.Dataset]:
    store = xr.open_zarr(DataDir.resolve(data_dir).store(spec.name))
    ny, nx = store.sizes["y"], store.sizes["x"]
    crop = (0, ny - ny % k, 0, nx - nx % k)  # whole k x k blocks
    preparation = Preparation(variables=tuple(spec.variable_names), crop=crop, coarsen=k)
    return prepare_frames(store, preparation), store


def complete_starts(store: xr.Dataset, length: int) -> np.ndarray:
    """Starts of every window of ``length`` present, consecutive frames."""
    present = np.asarray(store["frame_present"].values, dtype=bool).astype(int)
    run = np.convolve(present, np.ones(length, dtype=int), mode="valid")
    return np.flatnonzero(run == length)


def _zero_shot(model: Any, spec: SourceSpec, frames: xr.DataArray, store: xr.Dataset) -> Any:
    crs = pyproj.CRS.from_cf(dict(store[CRS].attrs))
    grid = RegularGrid.from_store(frames, crs)
    return SimVPMethod.pretrained(spec.name, store, model=model, grid=grid).as_baseline()


def zero_shot_scores(
    model: Any, spec: SourceSpec, data_dir: Path, max_windows: int | None = None
) -> dict[str, Any]:
    """Zero-shot vs persistence vs LK on the complete windows of ``spec``'s events (at most
    ``max_windows``, evenly spread)."""
    k = coarsening(spec, data_dir)
    frames, store = _frames(spec, data_dir, k)
    starts = complete_starts(store, IN_FRAMES + OUT_FRAMES)
    leads = OUT_FRAMES
    if len(starts) == 0:  # shorter events: score the leads they hold
        for leads in range(OUT_FRAMES - 1, 0, -1):
            starts = complete_starts(store, IN_FRAMES + leads)
            if len(starts):
                break
    methods = {
        "zero-shot": _zero_shot(model, spec, frames, store),
        "persistence": BASELINES.get("persistence"),
        "lucas-kanade": BASELINES.get("optical_flow"),
    }
    chosen = subsample(starts, max_windows)
    result = run_methods(frames, chosen, IN_FRAMES, leads, methods)
    scores = score_table(score_forecasts(result, SCORES))
    return {"windows": len(chosen), "of_windows": len(starts), "leads": leads, "scores": scores}


def fine_tune_scores(
    model: Any, weights: Path, spec: SourceSpec, data_dir: Path, out_dir: Path, minutes: float,
    tiny: bool,
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune on ``spec``'s own train split (≤ ``minutes``); score it and zero-shot on test."""
    n_events = len(events(spec, data_dir))
    split = (
        SplitConfig((0.34, 0.33, 0.33), gap=0, by="event")
        if n_events >= 3
        else SplitConfig((0.34, 0.33, 0.33), gap=0)
    )
    options: dict[str, Any] = {"max_minutes": minutes, "progress_bar": False, "accelerator": "cpu"}
    if tiny:
        options.update(limit_train_batches=2, epochs=1)
    start = time.perf_counter()
    result = train_source(
        spec.name, data_dir, init_from=str(weights), split=split, out_dir=out_dir, **options
    )
    seconds = time.perf_counter() - start
    tuned = SimVPMethod.from_checkpoint(result.checkpoint_path)
    meta = tuned.metadata
    refs, paths = split_test_windows(meta, DataDir.resolve(data_dir))
    preparation = tuned.preparation()
    parts = []
    for s, path in enumerate(paths):
        starts = np.asarray([r.start for r in refs if r.store == s], dtype=np.int64)
        if not len(starts):
            continue
        store = xr.open_zarr(path)
        frames = prepare_frames(store, preparation)
        methods = {
            "fine-tuned": tuned.as_baseline(),
            "zero-shot": _zero_shot(model, spec, frames, store),
            "persistence": BASELINES.get("persistence"),
            "lucas-kanade": BASELINES.get("optical_flow"),
        }
        parts.append(run_methods(frames, starts, IN_FRAMES, OUT_FRAMES, methods))
    scores = score_forecasts(concat_forecasts(parts), SCORES)
    return {
        "split": meta.get("split"),
        "train_windows": meta.get("windows"),
        "test_windows": int(sum(len(p.observation[p.observation.dims[0]]) for p in parts)),
        "seconds": round(seconds, 1),
        "scores": score_table(scores),
    }


# ----------------------------------------------------------------------------- LOPO
def leave_one_out(
    held_out: SourceSpec,
    specs: Sequence[SourceSpec],
    data_dir: Path,
    minutes: float,
    finetune_minutes: float,
    tiny: bool,
    max_windows: int | None = None,
) -> dict[str, Any]:
    """Train without ``held_out``; score zero-shot on it and, if it can, fine-tune on it."""
    others = [s for s in specs if s.name != held_out.name]
    work = data_dir / "pretrained-lopo" / held_out.name
    for path in sorted(work.rglob("*"), reverse=True) if work.exists() else []:
        path.unlink() if path.is_file() else path.rmdir()
    result, seconds = train_pooled(others, data_dir, work / "train", minutes, tiny)
    package(result, work / NAME, others, data_dir, "# LOPO model\n\n{table}\n")
    model = load_pretrained(NAME, root=work)
    row: dict[str, Any] = {
        "held_out": held_out.name,
        "trained_on": [s.name for s in others],
        "train_seconds": round(seconds, 1),
        "train_windows": load_checkpoint(result.checkpoint_path).metadata.get("windows"),
        "recipe": _recipe(model.loaded),
        "zero_shot": zero_shot_scores(model, held_out, data_dir, max_windows),
    }
    try:
        row["fine_tune"] = fine_tune_scores(
            model, model.path, held_out, data_dir, work / "finetune", finetune_minutes, tiny
        )
    except ValueError as error:  # too few frames for its own train/val/test split
        row["fine_tune"] = {"skipped": str(error)}
        logger.warning("%s: no fine-tuning: %s", held_out.name, error)
    return row


def _recipe(loaded: Any) -> dict[str, Any]:
    cfg, meta = loaded.config, loaded.metadata
    return {
        "base": getattr(cfg, "base", "none"),
        "loss": (meta.get("recipe") or {}).get("loss", meta.get("loss", "mse")),
        "network": f"{cfg.spatial}/{cfg.translator} hid_S {cfg.spatial_hidden} "
        f"hid_T {cfg.temporal_hidden} N_S {cfg.spatial_layers} N_T {cfg.temporal_layers}",
        "frames": f"{cfg.in_frames} -> {cfg.out_frames}",
    }


# ----------------------------------------------------------------------------- card
def card_text(
    specs: Sequence[SourceSpec],
    excluded: dict[str, str],
    data_dir: Path,
    result: Any,
    seconds: float,
    minutes: float,
) -> str:
    """The model card's markdown (``{table}`` filled in by ``package_model``)."""
    loaded = load_checkpoint(result.checkpoint_path)
    meta, cfg = loaded.metadata, loaded.config
    recipe = _recipe(loaded)
    ev = []
    for spec in specs:
        for e in events(spec, data_dir):
            ev.append(f"| {spec.name} | {e['start']} | {e['end']} | {e['frames']} |")
    metrics = result.metrics
    lopo = RESULTS / "pretrained_lopo.md"
    lines = [
        f"# Pretrained radar nowcaster `{NAME}` {VERSION}",
        "",
        "SimVP trained on every shipped radar event pooled, for a useful nowcast of any radar "
        "before it has an archive (`nowcast forecast --source NAME` falls back to it; "
        "`nowcast train --source NAME --init-from pretrained` fine-tunes it).",
        "",
        "{table}",
        "",
        "## Model",
        "",
        f"- Network: {recipe['network']} (fully convolutional: any domain at "
        f"{RESOLUTION_M / 1000:g} km).",
        f"- Frames: {cfg.in_frames} input -> {cfg.out_frames} output at {TIME_STEP} "
        "(longer leads rolled out).",
        f"- Base nowcast: `{recipe['base']}`; loss: `{recipe['loss']}`; normalisation: "
        f"{loaded.normalisation}.",
        f"- Units: rain rate in {UNITS} (reflectivity sources are converted at ingest by their "
        "catalog entry's Z-R relation).",
        f"- Grid: {RESOLUTION_M / 1000:g} km on the source's own projection; inputs are "
        "resampled conservatively (area-weighted) to it and the forecast back "
        "(`pipelines.method.resample`).",
        "",
        "## Training data",
        "",
        "| source | first frame | last frame | frames |",
        "|---|---|---|---|",
        *ev,
        "",
        "Excluded: "
        + ("; ".join(f"{k}: {v}" for k, v in excluded.items()) if excluded else "none")
        + ".",
        "",
        f"Split by event over all stores ({meta.get('split')}); windows {meta.get('windows')}; "
        f"train/val/test periods {meta.get('train_period')} / {meta.get('val_period')} / "
        f"{meta.get('test_period')}.",
        "",
        "## Training",
        "",
        f"- {seconds / 60:.1f} min wall on CPU ({platform.machine()}, "
        f"{torch.get_num_threads()} threads, shared machine), limit {minutes:g} min; "
        f"{len(result.history)} epochs; model selection on the validation event(s).",
        f"- Test split (held-out event(s), {(meta.get('windows') or {}).get('test')} windows, "
        f"scored once): MSE per pixel {metrics.get('mse_per_pixel', float('nan')):.4g} vs "
        f"persistence {metrics.get('persistence_mse_per_pixel', float('nan')):.4g} (mm/h)² "
        "(4 km; scored on the non-overlapping 64 x 64 px tiles of the prepared grid).",
        "",
        "## Cross-validated scores (leave one provider out)",
        "",
        lopo.read_text().split("\n", 2)[2].replace("\n## ", "\n### ")
        if lopo.exists()
        else "Not run for this version.",
        "",
        "## Rebuild",
        "",
        "`nice -n 5 .venv/bin/python -m benchmarks.pretrained --ship` (same seed, same data).",
        "",
    ]
    return "\n".join(lines)


def ship(minutes: float, data_dir: Path, tiny: bool, target: Path) -> Any:
    """Train on every usable source and write the model into ``target``."""
    specs, excluded = radar_sources(load_catalog())
    ensure_stores(specs, data_dir)
    result, seconds = train_pooled(specs, data_dir, data_dir / "pretrained-train", minutes, tiny)
    text = card_text(specs, excluded, data_dir, result, seconds, minutes)
    card = package(result, target / NAME, specs, data_dir, text)
    logger.info("wrote %s (%s)", target / NAME, card.label)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--minutes", type=float, default=8.0, help="training limit (wall)")
    parser.add_argument("--finetune-minutes", type=float, default=5.0)
    parser.add_argument(
        "--ship", action="store_true", help="write pipelines/method/pretrained/radar"
    )
    parser.add_argument("--target", type=Path, default=PRETRAINED_ROOT, help="models root")
    parser.add_argument(
        "--exclude-provider", action="append", default=[], help="source name, or 'all'"
    )
    parser.add_argument(
        "--max-windows", type=int, default=24, help="zero-shot windows scored per provider"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny network, 2 steps (plumbing)")
    parser.add_argument("--note", default="", help="label written above the LOPO tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.tiny and args.ship and args.target == PRETRAINED_ROOT:
        raise SystemExit("--tiny weights are never shipped: pass --target DIR")
    specs, _ = radar_sources(load_catalog())
    ensure_stores(specs, args.data_dir)
    names = [s.name for s in specs]
    held = names if "all" in args.exclude_provider else args.exclude_provider
    unknown = sorted(set(held) - set(names))
    if unknown:
        raise SystemExit(f"unknown providers {unknown}; usable: {names}")
    rows = []
    for name in held:
        spec = next(s for s in specs if s.name == name)
        rows.append(
            leave_one_out(
                spec,
                specs,
                args.data_dir,
                args.minutes,
                args.finetune_minutes,
                args.tiny,
                args.max_windows,
            )
        )
    if rows:
        note = args.note or ("TINY plumbing run, not a result" if args.tiny else "")
        setup = (
            f"Grid {RESOLUTION_M / 1000:g} km, {TIME_STEP} steps, {IN_FRAMES} -> {OUT_FRAMES} "
            "frames"
        )
        print(f"wrote {write_lopo(rows, note, setup)}")
    if args.ship:
        ship(args.minutes, args.data_dir, args.tiny, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
