"""Run a leave-one-event-out cross-validation: train per fold, score every held-out event, pool.

For each fold (:mod:`pipelines.evaluation.cross_validation.folds`) :func:`cross_validate` trains
SimVP
with the source's defaults (:func:`pipelines.training.source.train_source`, the same call as
``nowcast train``) on the other events, with validation inside them, into
``OUT/fold_<k>/best.pt``; the checkpoint's test split is exactly the held-out event
(``SplitConfig.holdout``), and its windows are forecast by SimVP and every baseline of the
kind through :func:`pipelines.evaluation.evaluate.run_methods` and scored by
:func:`pipelines.evaluation.evaluate.score_forecasts` — the code path of ``nowcast evaluate``.

All folds' windows are pooled (``init_time`` along the events; the spatial coordinates are
replaced by pixel positions, since stores of different providers have different grids), scored
once, and given bootstrap intervals that resample whole **events**
(:mod:`pipelines.verification.bootstrap`), with paired differences SimVP − each baseline. The
ensemble methods (``steps`` for radar, ``CVConfig.members`` members; SimVP's ensemble once
wired) run on the same windows and get the probabilistic scores with the same event intervals.
The report (``scores.csv`` with ``lower``/``upper``, ``comparisons.csv``, ``folds.csv``,
``reliability.csv``/``rank_histogram.csv``, ``scores.md``, plots and ``index.html``) goes to
``DIR/reports/<sources>/cv-event/``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.catalog import Catalog, get_source, load_catalog
from data_catalog.paths import DataDir
from data_catalog.vocabulary import INIT_TIME, LATITUDE, LONGITUDE, X, Y
from pipelines.baselines import BASELINES, ENSEMBLE_BASELINES, BaselineFn, EnsembleFn
from pipelines.evaluation.cross_validation.folds import (
    Event,
    Fold,
    FoldSplit,
    StoreFrames,
    find_events,
    fold_split_config,
    leave_one_event_out,
)
from pipelines.evaluation.ensembles import DEFAULT_MEMBERS, check_members
from pipelines.evaluation.evaluate import (
    ARCHIVE_BASELINES,
    PLANS,
    SIMVP,
    EvaluationPlan,
    MethodForecasts,
    ScoreRequest,
    concat_forecasts,
    run_methods,
    score_forecasts,
    split_test_windows,
)
from pipelines.evaluation.scoring import ensemble_tables
from pipelines.method.simvp import SimVPMethod
from pipelines.training.source import train_source
from pipelines.verification.bootstrap import BootstrapConfig
from pipelines.verification.intervals import Comparison, comparison_table, interval_rows
from pipelines.verification.report import write_report
from pipelines.verification.spectral import spectra_by_method
from pipelines.windows import KIND_DEFAULTS, open_store, prepare_frames, source_names

logger = logging.getLogger(__name__)

CV_REPORT = "cv-event"
"""Sub-folder of ``DIR/reports/<sources>/`` with the cross-validation report."""


@dataclass(frozen=True)
class CVConfig:
    """What a cross-validation runs.

    Parameters
    ----------
    split : FoldSplit
        Validation share and gap inside the training events.
    bootstrap : BootstrapConfig
        Intervals (resampling whole events).
    baselines : tuple of str, optional
        Baselines to compare with (default: the kind's :data:`pipelines.evaluation.evaluate.PLANS`).
    folds : tuple of int, optional
        Run only these folds (a quick partial run; the report says so). Default: all.
    max_test_windows : int, optional
        Score at most this many windows per held-out event, evenly spread (default: all).
    join_steps : int
        Runs of one store at most this many missing steps apart form one event.
    comparison_thresholds : tuple of float
        Thresholds (fields' units) of the paired CSI comparisons, besides MSE.
    ensembles : tuple of str, optional
        Ensemble baselines (:data:`pipelines.baselines.ENSEMBLE_BASELINES`; default: the
        kind's plan, ``steps`` for radar).
    members : int
        Members of every ensemble.
    ensemble_seed : int
        Seed of the ensembles (each window's seed derives from it and its init time).
    """

    split: FoldSplit = field(default_factory=FoldSplit)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    baselines: tuple[str, ...] | None = None
    folds: tuple[int, ...] | None = None
    max_test_windows: int | None = None
    join_steps: int = 0
    comparison_thresholds: tuple[float, ...] = (1.0,)
    ensembles: tuple[str, ...] | None = None
    members: int = DEFAULT_MEMBERS
    ensemble_seed: int = 0

    def __post_init__(self) -> None:
        for name in self.baselines or ():
            BASELINES.get(name)
        for name in self.ensembles or ():
            ENSEMBLE_BASELINES.get(name)
        check_members(self.members, self.ensemble_seed)
        if self.max_test_windows is not None and self.max_test_windows < 1:
            raise ValueError(f"max_test_windows must be positive, got {self.max_test_windows!r}")


@dataclass
class CVResult:
    """What :func:`cross_validate` measured.

    Attributes
    ----------
    events : list of Event
    folds : list of Fold
        The folds that were run.
    scores : pandas.DataFrame
        Pooled ``scores.csv`` rows with ``lower``/``upper`` (event bootstrap).
    comparisons : pandas.DataFrame
        Paired SimVP − baseline differences with intervals.
    per_fold : pandas.DataFrame
        fold, event, windows, method, lead_time_minutes, mse; and train/eval seconds.
    forecasts : MethodForecasts
        The pooled forecasts (pixel-position grid).
    groups : np.ndarray
        Event id of every pooled window.
    directory : str
        Report folder.
    files : list of str
    seconds : float
        Wall time of the whole run.
    """

    events: list[Event]
    folds: list[Fold]
    scores: pd.DataFrame
    comparisons: pd.DataFrame
    per_fold: pd.DataFrame
    forecasts: MethodForecasts
    groups: np.ndarray
    directory: str
    files: list[str]
    seconds: float


def store_frames(names: Sequence[str], root: DataDir, catalog: Catalog | None) -> list[StoreFrames]:
    """The time axis of each source's store (``frame_present`` marks the valid frames)."""
    out = []
    for name in names:
        spec = get_source(name, catalog)
        path = root.store(name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no store at {path}; ingest it first: nowcast ingest {name}")
        with open_store(path) as ds:
            out.append(
                StoreFrames(
                    name,
                    ds["time"].values,
                    np.asarray(ds["frame_present"].values, dtype=bool),
                    pd.Timedelta(spec.time_step),
                )
            )
    return out


def positional(result: MethodForecasts) -> MethodForecasts:
    """Replace the spatial coordinates by pixel positions so grids of any store can be pooled."""

    def strip(da: xr.DataArray) -> xr.DataArray:
        drop = [c for c in (LATITUDE, LONGITUDE) if c in da.coords]
        da = da.drop_vars(drop)
        return da.assign_coords({Y: np.arange(da.sizes[Y]), X: np.arange(da.sizes[X])})

    return MethodForecasts(
        strip(result.observation),
        {k: strip(v) for k, v in result.forecasts.items()},
        strip(result.history),
        {k: strip(v) for k, v in result.ensembles.items()},
    )


def _evenly(starts: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or len(starts) <= n:
        return starts
    return starts[np.unique(np.round(np.linspace(0, len(starts) - 1, n)).astype(int))]


def score_fold(
    checkpoint: str,
    baselines: Mapping[str, BaselineFn],
    root: DataDir,
    catalog: Catalog | None,
    max_windows: int | None = None,
    ensembles: Mapping[str, EnsembleFn] | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 0,
) -> MethodForecasts:
    """Forecasts of SimVP, ``baselines`` and ``ensembles`` on the test windows of a fold's
    checkpoint."""
    method = SimVPMethod.from_checkpoint(checkpoint)
    meta = method.metadata
    preparation = method.preparation()
    refs, paths = split_test_windows(meta, root, catalog)
    in_frames, out_frames = method.frames()
    methods: dict[str, BaselineFn] = {SIMVP: method.as_baseline(), **baselines}
    # SimVP's ensemble (issue 26, helper B) is wired here, one line:
    #   ensembles = {SIMVP: method.as_ensemble(members=members, seed=seed), **(ensembles or {})}
    parts = []
    for s, path in enumerate(paths):
        starts = np.asarray([r.start for r in refs if r.store == s], dtype=np.int64)
        if not len(starts):
            continue
        frames = prepare_frames(xr.open_zarr(path), preparation)
        # A climatology base or baseline reads past frames (only those before each init time).
        needs = method.needs_archive or bool(ARCHIVE_BASELINES & set(baselines))
        archive = frames.load() if needs else None
        result = run_methods(
            frames,
            _evenly(starts, max_windows),
            in_frames,
            out_frames,
            methods,
            archive,
            ensembles,
            members,
            seed,
        )
        parts.append(positional(result))
    return concat_forecasts(parts)


def _fold_rows(
    fold: Fold, part: MethodForecasts, train_seconds: float, eval_seconds: float
) -> list[dict[str, Any]]:
    """``folds.csv`` rows of one fold: MSE per method and lead, and the fold's timings."""
    n = part.observation.sizes[INIT_TIME]
    return [
        {
            "fold": fold.index,
            "event": fold.test.name,
            "windows": n,
            "method": r.method,
            "lead_time_minutes": r.lead_time_minutes,
            "mse": r.value,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
        }
        for r in score_forecasts(part, [ScoreRequest("mse")]).itertuples(index=False)
    ]


def score_pooled(
    pooled: MethodForecasts,
    groups: np.ndarray,
    plan: EvaluationPlan,
    config: CVConfig,
    baselines: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Scores with event intervals, paired comparisons and the ensembles' tables of all folds.

    Returns
    -------
    scores, comparisons : pandas.DataFrame
    reliability, rank_histograms : pandas.DataFrame or None
        See :func:`pipelines.evaluation.scoring.ensemble_tables`.
    """
    scores = score_forecasts(
        pooled, plan.scores, plan.image_scores, ensemble_requests=plan.ensemble_scores
    )
    scores = interval_rows(
        scores, pooled.observation, pooled.forecasts, groups, config.bootstrap, pooled.ensembles
    )
    comparisons = [Comparison(SIMVP, b) for b in baselines] + [
        Comparison(SIMVP, b, "csi", threshold=t)
        for b in baselines
        for t in config.comparison_thresholds
    ]
    table = comparison_table(
        pooled.observation, pooled.forecasts, comparisons, groups, config.bootstrap
    )
    extra, reliability, ranks = ensemble_tables(pooled, plan, groups, config.bootstrap)
    table = pd.concat([table, extra], ignore_index=True) if len(extra) else table
    return scores, table, reliability, ranks


def _method_notes(config: CVConfig, ensembles: Sequence[str]) -> list[str]:
    """Report notes on the intervals, the training and the ensembles."""
    notes = [
        f"intervals: {config.bootstrap.level:.0%} percentile bootstrap resampling whole events "
        f"({config.bootstrap.n_resamples} resamples, seed {config.bootstrap.seed})",
        "each fold trains with the source defaults on the other events (validation = the last "
        f"{config.split.val_fraction:.0%} of their frames); same scoring code for every method",
    ]
    if ensembles:
        notes.append(
            f"ensembles ({', '.join(ensembles)}): {config.members} members, seed "
            f"{config.ensemble_seed}; probabilistic scores under the method's name"
        )
    return notes


def cross_validate(
    source: str | Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    config: CVConfig | None = None,
    in_frames: int | None = None,
    out_frames: int | None = None,
    ensembles: Mapping[str, EnsembleFn] | None = None,
    **train_options: Any,
) -> CVResult:
    """Leave-one-event-out cross-validation of SimVP against the kind's baselines.

    Parameters
    ----------
    source : str or sequence of str
        One or several catalog sources of one kind (``"mch-radar,knmi-radar"``); their stores
        must exist.
    data_dir : str or path, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    catalog : Catalog or path, optional
    out_dir : str or path, optional
        Where the fold checkpoints go (default ``DIR/models/<sources>/cv-event``).
    config : CVConfig, optional
    in_frames, out_frames : int, optional
        Window lengths (default: the kind's).
    ensembles : mapping of str to EnsembleFn, optional
        More ensemble methods by name (besides ``config.ensembles``).
    **train_options
        Passed to :func:`pipelines.training.source.train_source` for every fold (``epochs``,
        ``max_minutes``, ``preset`` ...); the defaults are the source's.

    Returns
    -------
    CVResult
    """
    started = time.perf_counter()
    config = config or CVConfig()
    if isinstance(catalog, str | os.PathLike):
        catalog = load_catalog(catalog)
    names = source_names(source)
    label = "+".join(names)
    spec = get_source(names[0], catalog)
    plan = PLANS.get(spec.kind)
    defaults = KIND_DEFAULTS.get(spec.kind)
    t_in = in_frames or defaults.in_frames
    t_out = out_frames or defaults.out_frames
    root = DataDir.resolve(data_dir)
    stores = store_frames(names, root, catalog)
    events = find_events(stores, t_in + t_out, config.join_steps)
    folds = leave_one_event_out(events)
    if config.folds is not None:
        folds = [folds[k] for k in config.folds]
    base_names = config.baselines if config.baselines is not None else plan.baselines
    baselines = {name: BASELINES.get(name) for name in base_names}
    ensemble_names = config.ensembles if config.ensembles is not None else plan.ensembles
    ensemble_methods = {name: ENSEMBLE_BASELINES.get(name) for name in ensemble_names}
    ensemble_methods.update(ensembles or {})
    models = (
        os.fspath(out_dir) if out_dir is not None else os.path.join(root.models(label), CV_REPORT)
    )
    logger.info("%s: %d events, %d folds", label, len(events), len(folds))
    parts, groups, rows = [], [], []
    for fold in folds:
        t0 = time.perf_counter()
        fit = train_source(
            names,
            root.root,
            catalog=catalog,
            out_dir=os.path.join(models, f"fold_{fold.index}"),
            split=fold_split_config(fold, config.split, t_in + t_out),
            in_frames=t_in,
            out_frames=t_out,
            **train_options,
        )
        t1 = time.perf_counter()
        part = score_fold(
            fit.checkpoint_path,
            baselines,
            root,
            catalog,
            config.max_test_windows,
            ensemble_methods,
            config.members,
            config.ensemble_seed,
        )
        t2 = time.perf_counter()
        n = part.observation.sizes[INIT_TIME]
        parts.append(part)
        groups.append(np.full(n, fold.test.id))
        rows += _fold_rows(fold, part, t1 - t0, t2 - t1)
        logger.info(
            "fold %d (%s): %d windows, train %.0f s, eval %.0f s",
            fold.index,
            fold.test.name,
            n,
            t1 - t0,
            t2 - t1,
        )
    pooled = concat_forecasts(parts)
    group = np.concatenate(groups)
    scores, table, reliability, ranks = score_pooled(pooled, group, plan, config, list(baselines))
    spectra = spectra_by_method(pooled.observation, pooled.forecasts, (INIT_TIME, Y, X))
    spectra = {k: v.isel(channel=0) for k, v in spectra.items()}
    seconds = time.perf_counter() - started
    per_fold = pd.DataFrame(rows)
    directory = os.path.join(root.reports(label), CV_REPORT)
    os.makedirs(directory, exist_ok=True)
    per_fold.to_csv(os.path.join(directory, "folds.csv"), index=False, float_format="%.6g")
    notes = [
        f"leave-one-event-out over {len(events)} events of {label} ({len(folds)} folds run"
        + ("" if len(folds) == len(events) else ", a partial run")
        + f"), {len(group)} held-out windows, {t_in} -> {t_out} frames at {spec.time_step}",
        *_method_notes(config, sorted(pooled.ensembles)),
        f"wall time {seconds / 60:.1f} min",
    ]
    provenance = {
        "sources": label,
        "events": ", ".join(e.name for e in events),
        "fold checkpoints": models,
        "train options": repr(train_options) or "defaults",
    }
    files = write_report(
        directory,
        scores,
        f"Cross-validation of {label} (leave one event out)",
        notes,
        examples=(pooled.observation, pooled.forecasts, pooled.history),
        spectra=spectra,
        provenance=provenance,
        comparisons=table,
        reliability=reliability,
        rank_histograms=ranks,
        n_groups=len(np.unique(group)),
    )
    return CVResult(
        events, folds, scores, table, per_fold, pooled, group, directory, files, seconds
    )
