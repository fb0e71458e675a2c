"""Verification of SimVP against the baselines on a source's test period (one code path).

Every method — the SimVP checkpoint and each baseline that applies to the source's kind — is a
function ``history (time, channel, y, x) → forecast (lead_time, channel, y, x)`` in physical
units (the :mod:`pipelines.baselines` contract). :func:`evaluate_methods` runs them all on the
same test windows and scores them with the same :mod:`pipelines.verification` functions, per lead
time; :func:`evaluate_source` does it for a trained checkpoint and writes the report::

    DIR/reports/<source>/scores.csv     method, score, variable, threshold, scale,
                                        lead_time_minutes, value (one row per number)
    DIR/reports/<source>/scores.md      notes and one table per score (method × lead time)
    DIR/reports/<source>/score_<name>.png   score vs lead time, one line per method
    DIR/reports/<source>/examples.png   observed vs forecast frames of one test window
    DIR/reports/<source>/rapsd.png      power spectra per lead (radar: is the forecast blurred?)
    DIR/reports/<source>/comparisons.csv  paired SimVP − baseline differences with intervals
    DIR/reports/<source>/index.html     all of it on one self-contained page

``scores.csv`` rows carry ``lower``/``upper``: a 90 % percentile bootstrap interval resampling
blocks of ``T_in + T_out`` consecutive windows (:mod:`pipelines.verification.bootstrap`).
Which windows: :mod:`pipelines.evaluation.windows` (the test split, one member of a multi-source
checkpoint, or any period of any source: zero-shot).

Test windows: the test split of :mod:`pipelines.windows`, rebuilt from the checkpoint's metadata
(same stores, crop, coarsening, window lengths, split fractions and gap); the frames are prepared
exactly as for training (:func:`pipelines.prepare.prepare_frames`), but kept in physical units
and with their coordinates (times for the climatology baselines, latitude for weighted scores).
Observations keep their NaN (no data) and those pixels are left out of every score. SimVP
cannot take NaN input: :class:`pipelines.method.simvp.SimVPMethod` fills NaN history pixels as in
training (physical zero for ``dbr``/``log1p``, the training mean for ``identity``).

Which baselines and scores apply is declared per source kind in
:data:`pipelines.verification.plans.PLANS` (re-exported here).

Ensemble methods (:data:`pipelines.baselines.ENSEMBLE_BASELINES`: ``steps`` for radar; SimVP's
ensemble once wired) run on the same windows with ``members`` members
(:mod:`pipelines.evaluation.ensembles`) and are scored by the plan's ``ensemble_scores`` with
the same code: rows of their method name with the scores ``crps``, ``brier``, ``bss``,
``roc_auc``, ``reliability``, ``rank_histogram``, ``spread_skill``. The report adds
``reliability.csv`` and ``rank_histogram.csv`` (the diagrams' numbers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from data_catalog.catalog import Catalog, load_catalog
from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, CRS, INIT_TIME, LEAD_TIME, TIME, X, Y
from pipelines.baselines import BaselineFn, EnsembleFn, time_step
from pipelines.evaluation.ensembles import (
    DEFAULT_MEMBERS,
    run_ensemble,
    split_names,
    stack_ensembles,
)
from pipelines.evaluation.scoring import (
    SCORE_COLUMNS,
    SCORE_DIMS,
    SIMVP,
    MethodForecasts,
    beats_persistence,
    concat_forecasts,
    score_and_report,
    score_forecasts,
)
from pipelines.evaluation.windows import evaluation_target, split_test_windows
from pipelines.method.resample import RegularGrid
from pipelines.method.simvp import SimVPMethod
from pipelines.prepare import prepare_frames
from pipelines.verification.bootstrap import BootstrapConfig, contiguous_blocks
from pipelines.verification.intervals import Comparison
from pipelines.verification.plans import PLANS, EvaluationPlan, ScoreRequest
from pipelines.verification.report import wide_table

logger = logging.getLogger(__name__)

PRETRAINED = "pretrained"
"""Method name of the shipped pretrained model, zero-shot (``baselines=[..., "pretrained"]``)."""
STRETCH_FRAMES = 288  # frames read at once by run_methods: a day at 5 min, ~19 MB at 128 x 128


ARCHIVE_BASELINES = frozenset({"climatology", "anomaly_persistence", "last_day"})
"""Baselines that read past frames (the ``archive=`` context)."""


# ----------------------------------------------------------------------------- windows
def subsample(starts: np.ndarray, max_samples: int | None) -> np.ndarray:
    """At most ``max_samples`` starts, evenly spread over the test period (all when None)."""
    if max_samples is None or len(starts) <= max_samples:
        return starts
    if isinstance(max_samples, bool) or max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer or None, got {max_samples!r}")
    picks = np.unique(np.round(np.linspace(0, len(starts) - 1, max_samples)).astype(int))
    return starts[picks]


# ----------------------------------------------------------------------------- methods
def _stack(
    forecasts: Sequence[xr.DataArray], init_times: np.ndarray, template: xr.DataArray
) -> xr.DataArray:
    """Stack per-window forecasts to ``(init_time, lead_time, channel, y, x)``."""
    values = np.stack([np.asarray(f.values) for f in forecasts])  # (N, lead, C, y, x)
    coords = {k: v for k, v in template.coords.items() if set(v.dims) <= {CHANNEL, Y, X}}
    coords[INIT_TIME] = init_times
    coords[LEAD_TIME] = forecasts[0][LEAD_TIME].values
    return xr.DataArray(values, dims=(INIT_TIME, LEAD_TIME, CHANNEL, Y, X), coords=coords)


def run_methods(
    frames: xr.DataArray,
    starts: np.ndarray,
    in_frames: int,
    out_frames: int,
    methods: Mapping[str, BaselineFn],
    archive: xr.DataArray | None = None,
    ensembles: Mapping[str, EnsembleFn] | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 0,
) -> MethodForecasts:
    """Run every method on the windows starting at ``starts`` (one code path for all).

    Parameters
    ----------
    frames : xr.DataArray
        ``(time, channel, y, x)`` physical units (lazy is fine: each window is loaded alone).
    starts : np.ndarray of int
        Window starts (frame indices along ``time``).
    in_frames, out_frames : int
        History and lead-time frames per window.
    methods : mapping of str to callable
        ``name → forecast(history, steps, **context)``.
    archive : xr.DataArray, optional
        Past observations handed to the methods (``archive=`` context).
    ensembles : mapping of str to callable, optional
        ``name → forecast(history, steps, *, members, seed, **context)`` ensemble methods.
    members : int
        Members of every ensemble.
    seed : int
        Seed of the run; each window's is :func:`pipelines.evaluation.ensembles.window_seed`.
    """
    ensembles = dict(ensembles or {})
    if not methods and not ensembles:
        raise ValueError("no method to run: give deterministic methods or ensembles")
    if len(starts) == 0:
        raise ValueError("no test window to evaluate: the test period has no complete window")
    step = time_step(frames.isel({TIME: slice(0, 2)}))
    outputs: dict[str, list[xr.DataArray]] = {name: [] for name in methods}
    members_out: dict[str, list[xr.DataArray]] = {name: [] for name in ensembles}
    truths, histories, inits = [], [], []
    length = in_frames + out_frames
    stretch, lo, hi = None, 0, 0
    for s in (int(v) for v in starts):
        if stretch is None or not lo <= s <= s + length <= hi:
            # Read overlapping windows once: the run of starts less than a window apart.
            lo, hi = s, s + length
            for t in (int(v) for v in starts):
                if hi - length < t <= hi and t + length - lo <= max(STRETCH_FRAMES, length):
                    hi = t + length
            stretch = frames.isel({TIME: slice(lo, hi)}).load()
        window = stretch.isel({TIME: slice(s - lo, s - lo + length)})
        history, truth = (
            window.isel({TIME: slice(0, in_frames)}),
            window.isel({TIME: slice(in_frames, None)}),
        )
        for name, method in methods.items():
            fc = method(history, out_frames, archive=archive, time_step=step)
            if fc.shape != truth.shape:
                raise ValueError(f"method {name!r} returned {fc.shape}, expected {truth.shape}")
            outputs[name].append(fc)
        for name, method in ensembles.items():
            members_out[name].append(
                run_ensemble(
                    name, method, history, truth, members, seed, archive=archive, time_step=step
                )
            )
        truths.append(truth.values)
        histories.append(history.values)
        inits.append(history[TIME].values[-1])
    init_times = np.asarray(inits, dtype="datetime64[ns]")
    template = frames.isel({TIME: 0}, drop=True)
    forecasts = {name: _stack(fcs, init_times, template) for name, fcs in outputs.items()}
    stacked = stack_ensembles(members_out, init_times, template)
    first = next(iter(forecasts.values())) if forecasts else None
    if first is None:  # only ensemble methods: the frame of their first member
        first = next(iter(stacked.values())).isel({"realization": 0}, drop=True)
    observation = first.copy(data=np.stack(truths).astype(first.dtype, copy=False))
    history = xr.DataArray(
        np.stack(histories), dims=(INIT_TIME, "history_frame", CHANNEL, Y, X)
    ).assign_coords({k: v for k, v in first.coords.items() if k != LEAD_TIME})
    return MethodForecasts(observation, forecasts, history, stacked)


# ----------------------------------------------------------------------------- scoring
def evaluate_methods(
    frames: xr.DataArray,
    starts: np.ndarray,
    in_frames: int,
    out_frames: int,
    methods: Mapping[str, BaselineFn],
    plan: EvaluationPlan,
    archive: xr.DataArray | None = None,
    ensembles: Mapping[str, EnsembleFn] | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 0,
) -> tuple[pd.DataFrame, MethodForecasts]:
    """:func:`run_methods` then :func:`score_forecasts` with ``plan``'s scores."""
    result = run_methods(
        frames, starts, in_frames, out_frames, methods, archive, ensembles, members, seed
    )
    scores = score_forecasts(
        result, plan.scores, plan.image_scores, ensemble_requests=plan.ensemble_scores
    )
    return scores, result


# ----------------------------------------------------------------------------- report
@dataclass(frozen=True)
class Report:
    """What :func:`evaluate_source` measured and wrote.

    Attributes
    ----------
    source : str
    directory : str
        ``DIR/reports/<source>``.
    scores : pandas.DataFrame
        The rows of ``scores.csv``.
    n_windows : int
        Test windows scored.
    checkpoint : str
    files : tuple of str
        Every file written.
    """

    source: str
    directory: str
    scores: pd.DataFrame
    n_windows: int
    checkpoint: str = ""
    files: tuple[str, ...] = field(default_factory=tuple)

    def value(
        self,
        method: str,
        score: str,
        lead_time_minutes: float,
        threshold: float | None = None,
        scale: int | None = None,
        variable: str | None = None,
    ) -> float:
        """One number of the table (``ValueError`` if the selection is not exactly one row)."""
        rows = _select(self.scores, method, score, threshold, scale, variable)
        rows = rows[np.isclose(rows["lead_time_minutes"], lead_time_minutes)]
        if len(rows) != 1:
            raise ValueError(
                f"{len(rows)} rows for {method=} {score=} {lead_time_minutes=} {threshold=} "
                f"{scale=} {variable=}"
            )
        return float(rows["value"].iloc[0])

    def table_rows(self) -> list[dict[str, Any]]:
        """Summary rows (one per method, score and threshold/scale) with a column per lead."""
        return wide_table(self.scores).reset_index().to_dict("records")

    def beats_persistence(self, method: str = SIMVP, score: str = "mse") -> bool:
        """True when ``method`` has a lower ``score`` than persistence at every lead time."""
        return beats_persistence(self.scores, method, score)


def _select(
    scores: pd.DataFrame,
    method: str,
    score: str,
    threshold: float | None,
    scale: int | None,
    variable: str | None,
) -> pd.DataFrame:
    rows = scores[(scores["method"] == method) & (scores["score"] == score)]
    if threshold is not None:
        rows = rows[np.isclose(rows["threshold"], threshold)]
    if scale is not None:
        rows = rows[np.isclose(rows["scale"], scale)]
    if variable is not None:
        rows = rows[rows["variable"] == variable]
    return rows


# ----------------------------------------------------------------------------- entry point
def evaluate_source(
    source: str,
    data_dir: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | SimVPMethod | None = None,
    catalog: Catalog | None = None,
    max_samples: int | None = None,
    baselines: Sequence[str] | None = None,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    bootstrap: BootstrapConfig | None = None,
    ensembles: Mapping[str, EnsembleFn] | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 0,
) -> Report:
    """Score a SimVP checkpoint and the baselines of ``source``'s kind on windows of ``source``.

    Parameters
    ----------
    source : str
        Catalog source name (``knmi-radar``, ``era5-t2m-uk``, ``nyc-taxi`` ...).
    data_dir : str or path, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    checkpoint : str, path or SimVPMethod, optional
        SimVP bundle; default :func:`pipelines.method.simvp.default_checkpoint` (the newest
        ``best.pt`` under ``DIR/models/<source>/``). It may be trained on other sources
        (zero-shot) or on several (``mch-radar+knmi-radar``: pass one member as ``source``).
    catalog : Catalog, optional
        Default: the shipped catalog (for the source's kind).
    max_samples : int, optional
        Score at most this many windows, evenly spread (default: all).
    baselines : sequence of str, optional
        Override the kind's baselines and ensemble baselines (:data:`PLANS`); names of
        :data:`pipelines.baselines.ENSEMBLE_BASELINES` (``steps``) run as ensembles.
    start, end : str or Timestamp, optional
        Score every window inside this period instead of the test split
        (:mod:`pipelines.evaluation.windows`); default: the test split for a source the
        checkpoint was trained on, the whole store for another one (zero-shot).
    bootstrap : BootstrapConfig, optional
        Intervals: percentile bootstrap over blocks of ``T_in + T_out`` consecutive windows.
    ensembles : mapping of str to EnsembleFn, optional
        More ensemble methods, by name (added to the baselines' ensembles).
    members : int
        Members of every ensemble (default 20).
    seed : int
        Seed of the ensembles (same seed, same members).

    Returns
    -------
    Report
        Scores (with ``lower``/``upper``) and the files written under ``DIR/reports/<source>/``
        (``DIR/reports/<source>/zero-shot-<trained sources>/`` for a zero-shot checkpoint).
    """
    spec = (catalog or load_catalog()).get(source)
    plan = PLANS.get(spec.kind)
    names = tuple(baselines) if baselines is not None else plan.baselines + plan.ensembles
    # "pretrained": the shipped pretrained model zero-shot on the same prepared frames (to
    # compare a fine-tuned or trained checkpoint with it); not a baseline of the registry.
    zero_shot = PRETRAINED in names
    deterministic, ensemble_methods = split_names([n for n in names if n != PRETRAINED])
    names = tuple(deterministic)
    root = DataDir.resolve(data_dir)
    method = SimVPMethod.resolve(source, checkpoint, root.root, fallback=False)
    target = evaluation_target(method, source, root, catalog, start, end)
    in_frames, out_frames = method.frames()
    chosen = subsample(target.starts, max_samples)
    logger.info(
        "%s: %d of %d windows (%d -> %d), %s",
        source,
        len(chosen),
        len(target.starts),
        in_frames,
        out_frames,
        target.description,
    )
    methods: dict[str, BaselineFn] = {SIMVP: method.as_baseline(), **deterministic}
    # SimVP's ensemble (issue 26, helper B) is wired here, one line:
    #   ensemble_methods[SIMVP] = method.as_ensemble(members=members, seed=seed)
    ensemble_methods.update(ensembles or {})
    store = xr.open_zarr(target.store)
    frames = prepare_frames(store, target.preparation)
    units = store[frames.attrs["variables"][0]].attrs.get("units", "")
    if plan.threshold_units is not None and units != plan.threshold_units:
        raise ValueError(
            f"{source}: score thresholds are in {plan.threshold_units!r} but the variable "
            f"is in {units!r}"
        )
    needs_archive = bool(ARCHIVE_BASELINES & set(names)) or method.needs_archive
    archive = frames.load() if needs_archive else None
    if zero_shot:
        grid = RegularGrid.from_store(frames, pyproj.CRS.from_cf(dict(store[CRS].attrs)))
        methods[PRETRAINED] = SimVPMethod.pretrained(source, store, grid=grid).as_baseline()
    result = run_methods(
        frames, chosen, in_frames, out_frames, methods, archive, ensemble_methods, members, seed
    )
    result.observation.attrs["units"] = units
    bootstrap = bootstrap or BootstrapConfig()
    step = time_step(frames.isel({TIME: slice(0, 2)}))
    groups = contiguous_blocks(result.observation[INIT_TIME].values, step, in_frames + out_frames)
    trained = "+".join(method.preparation().sources) or "unknown"
    # The zero-shot folder is named from checkpoint metadata: DataDir.reports checks the name
    # (catalog rule) and that the folder stays under DIR/reports/<source>/.
    folders = (f"zero-shot-{trained}",) if target.zero_shot else ()
    report_dir = root.reports(source, *folders)
    n_blocks = len(np.unique(groups))
    notes = [
        f"source `{source}` ({spec.kind}), checkpoint `{method.name}` (trained on {trained})",
        f"{len(chosen)} windows (of {len(target.starts)}), {target.description}; "
        f"{in_frames} input -> {out_frames} output frames at {spec.time_step}",
        *target.notes,
        "scores pooled over windows and pixels per lead time; NaN observation pixels excluded",
        f"intervals: {bootstrap.level:.0%} percentile bootstrap over {n_blocks} block(s) of "
        f"{in_frames + out_frames} consecutive windows ({bootstrap.n_resamples} resamples)"
        + (" — one block: no interval" if n_blocks < 2 else ""),
    ]
    if result.ensembles:
        notes.append(
            f"ensembles ({', '.join(result.ensembles)}): {members} members, seed {seed}; "
            "probabilistic scores of the ensemble under the method's name"
        )
    provenance = {
        "source": source,
        "checkpoint": method.name,
        "model version": method.version(),
        "trained on": trained,
        "windows": f"{len(chosen)}: {target.description}",
        "baselines": ", ".join((*names, *ensemble_methods)),
        "bootstrap": f"level {bootstrap.level}, {bootstrap.n_resamples} resamples, "
        f"seed {bootstrap.seed}",
    }
    scores, files = score_and_report(
        result,
        plan,
        groups,
        bootstrap,
        report_dir,
        f"Verification of {source}",
        notes,
        provenance,
        [Comparison(SIMVP, name) for name in names],
    )
    return Report(source, report_dir, scores, len(chosen), method.name, tuple(files))


__all__: list[str] = [
    "PLANS",
    "SCORE_COLUMNS",
    "SCORE_DIMS",
    "SIMVP",
    "EvaluationPlan",
    "MethodForecasts",
    "Report",
    "ScoreRequest",
    "concat_forecasts",
    "evaluate_methods",
    "evaluate_source",
    "run_methods",
    "score_and_report",
    "score_forecasts",
    "split_test_windows",
]
