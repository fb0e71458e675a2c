"""Skill on unseen events: leave-one-event-out over the 7 shipped radar events, with intervals.

Run from the repository root (the full pySTEPS sample data in ``../shared/data``)::

    .venv/bin/python -m benchmarks.cv_skill                       # all 7 folds, source defaults
    .venv/bin/python -m benchmarks.cv_skill --epochs 2 --steps-per-epoch 50 --max-test-windows 12
    .venv/bin/python -m benchmarks.cv_skill --quick               # 1 fold, minutes (a smoke run)

Training is capped by epochs and optimiser steps per epoch (``--steps-per-epoch``: Lightning's
``limit_train_batches``), never by wall time, so the same seed gives the same numbers on an
idle or a loaded machine (issue 26: a 1.5-minute cap trained further when the machine was idle).

Setup: the four radar sources (``mch-radar`` 3 events, ``fmi-radar`` 2, ``knmi-radar`` 1,
``rmi-radar`` 1; 5-min rain rate) are ingested from ``$NOWCAST_SAMPLES_DIR`` (default
``../shared/data``) into ``--data-dir`` unless their stores exist there. Then
:func:`pipelines.evaluation.cross_validation.cross_validate` trains one SimVP per fold with the
radar
defaults (CPU: the reduced ``radar-small`` on 64 × 64 px at 8 km), 6 → 6 frames, on the six
other events (validation = the last 15 % of their frames), and scores every held-out window of
the left-out event with SimVP, persistence, Lucas–Kanade extrapolation and S-PROG through the
``nowcast evaluate`` code path, and with the STEPS ensemble (``--members``, default 20):
probabilistic scores (CRPS, Brier skill score, ROC area, spread/skill, reliability at 1 mm/h).
SimVP's own ensemble joins once it is wired into the cross-validation (issue 26, part B);
until then its probabilistic targets are reported as "not evaluated". All folds are pooled;
intervals are 90 % percentile bootstrap intervals resampling whole events (1000 resamples,
seed 0).

Targets (issue 12): SimVP MSE below persistence at every lead with the 90 % interval of the
paired difference below zero; SimVP MSE ≤ S-PROG's at +30 min; CSI ≥ 1 mm/h at +30 min ≥
Lucas–Kanade's; the whole run within one CPU hour on 2 cores.

Results: ``benchmarks/results/cv_skill.{json,md}`` (``--tag`` appends a suffix, e.g. for a
reduced run) and the full report under ``DIR/reports/<sources>/cv-event/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SOURCES = ("mch-radar", "fmi-radar", "knmi-radar", "rmi-radar")
BASELINES = ("persistence", "optical_flow", "sprog")
TARGET_MINUTES = 60.0
PROBABILISTIC = ("crps", "bss", "roc_auc", "spread_skill", "brier")
"""Probabilistic scores reported per lead (``bss``/``brier``/``roc_auc`` at 1 and 5 mm/h)."""
QUICK = {
    "folds": [0],
    "epochs": 1,
    "steps_per_epoch": 20,
    "max_test_windows": 4,
    "members": 6,
    "tag": "quick",
}
"""``--quick``: one fold, 20 optimiser steps, 4 test windows, 6 members (a smoke run, minutes)."""


def ensure_stores(data_dir: Path, samples: str) -> None:
    """Ingest the radar sources whose store is missing under ``data_dir``."""
    from pipelines.ingest.ingest import ingest_source

    for name in SOURCES:
        if not (data_dir / "stores" / f"{name}.zarr").exists():
            ingest_source(name, str(data_dir), samples=samples, progress=False)


def _mse_table(result: Any) -> pd.DataFrame:
    rows = result.scores[result.scores["score"] == "mse"]
    return rows[["method", "lead_time_minutes", "value", "lower", "upper"]]


def _interval_rows(scores: pd.DataFrame, names: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = scores[scores["score"].isin(names)]
    rows = rows[
        rows["threshold"].isna()
        | np.isclose(rows["threshold"], 1.0)
        | np.isclose(rows["threshold"], 5.0)
    ]
    columns = ["method", "score", "threshold", "lead_time_minutes", "value", "lower", "upper"]
    return rows[columns].to_dict("records")


def probabilistic_targets(result: Any) -> dict[str, Any]:
    """Issue 26's probabilistic targets (None = not evaluated: no SimVP ensemble)."""
    from pipelines.evaluation.evaluate import SIMVP
    from pipelines.verification.ensemble_tables import reliability_rows

    ensembles = result.forecasts.ensembles
    targets: dict[str, Any] = {
        "crps_le_0.9_steps_every_lead_paired_excludes_zero_from_10min": None,
        "bss_vs_steps_positive_1_and_5mm_every_lead": None,
        "reliability_1mm_within_0.1_bins_ge_200px": None,
        "spread_skill_at_30_in_0.8_1.2": None,
    }
    if SIMVP not in ensembles:
        return targets
    scores, comps = result.scores, result.comparisons
    crps = scores[scores["score"] == "crps"].pivot_table(
        index="lead_time_minutes", columns="method", values="value"
    )
    paired = comps[(comps["score"] == "crps") & (comps["reference"] == "steps")]
    targets["crps_le_0.9_steps_every_lead_paired_excludes_zero_from_10min"] = bool(
        (crps[SIMVP] <= 0.9 * crps["steps"]).all()
        and (paired[paired["lead_time_minutes"] >= 10]["upper"] < 0).all()
    )
    brier = scores[scores["score"] == "brier"]
    ok = True
    for t in (1.0, 5.0):
        at = brier[np.isclose(brier["threshold"], t)].pivot_table(
            index="lead_time_minutes", columns="method", values="value"
        )
        ok = ok and bool((1.0 - at[SIMVP] / at["steps"] > 0).all())
    targets["bss_vs_steps_positive_1_and_5mm_every_lead"] = ok
    table = reliability_rows(result.forecasts.observation, {SIMVP: ensembles[SIMVP]}, [1.0])
    big = table[table["count"] >= 200]
    targets["reliability_1mm_within_0.1_bins_ge_200px"] = bool(
        (abs(big["observed_frequency"] - big["forecast_probability"]) <= 0.1).all()
    )
    spread = scores[(scores["score"] == "spread_skill") & (scores["method"] == SIMVP)]
    at30 = spread[np.isclose(spread["lead_time_minutes"], 30.0)]["value"]
    targets["spread_skill_at_30_in_0.8_1.2"] = bool(len(at30) and 0.8 <= at30.iloc[0] <= 1.2)
    return targets


def summarise(result: Any, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """The numbers and the verdict on each target."""
    from pipelines.evaluation.evaluate import SIMVP

    comps = result.comparisons
    mse = _mse_table(result)
    csi = result.scores[
        (result.scores["score"] == "csi") & np.isclose(result.scores["threshold"], 1.0)
    ]
    last = float(mse["lead_time_minutes"].max())

    def value(table: pd.DataFrame, method: str, lead: float) -> float:
        row = table[(table["method"] == method) & np.isclose(table["lead_time_minutes"], lead)]
        return float(row["value"].iloc[0])

    vs_persistence = comps[
        (comps["reference"] == "persistence") & (comps["score"] == "mse")
    ].sort_values("lead_time_minutes")
    at30 = 30.0 if np.isclose(mse["lead_time_minutes"], 30.0).any() else last
    targets = {
        "mse_below_persistence_every_lead_interval_excludes_zero": bool(
            len(vs_persistence) and (vs_persistence["upper"] < 0).all()
        ),
        "mse_at_30_le_sprog": value(mse, SIMVP, at30) <= value(mse, "sprog", at30),
        "csi1_at_30_ge_optical_flow": value(csi, SIMVP, at30) >= value(csi, "optical_flow", at30),
        "within_one_hour": seconds / 60 <= TARGET_MINUTES,
    }
    return {
        "benchmark": "cv_skill",
        "reduced": bool(args.tag),
        "tag": args.tag,
        "sources": list(SOURCES),
        "events": [e.name for e in result.events],
        "folds_run": [f.index for f in result.folds],
        "n_windows": int(len(result.groups)),
        "windows_per_event": {e.name: int((result.groups == e.id).sum()) for e in result.events},
        "interval": "90 % percentile bootstrap over whole events (1000 resamples, seed 0)",
        "train_options": {
            k: v for k, v in vars(args).items() if k in ("epochs", "steps_per_epoch")
        },
        "max_test_windows": args.max_test_windows,
        "ensembles": sorted(result.forecasts.ensembles),
        "members": args.members,
        "probabilistic": _interval_rows(result.scores, PROBABILISTIC),
        "probabilistic_targets": probabilistic_targets(result),
        "mse": mse.to_dict("records"),
        "csi_1mm": csi[["method", "lead_time_minutes", "value", "lower", "upper"]].to_dict(
            "records"
        ),
        "paired": comps.to_dict("records"),
        "per_fold": result.per_fold.to_dict("records"),
        "targets": targets,
        "wall_minutes": seconds / 60,
        "report": result.directory,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_end": os.getloadavg(),
        },
    }


def markdown(info: dict[str, Any]) -> str:
    """The results as a markdown page."""
    title = "Leave-one-event-out skill on the 7 shipped radar events"
    lines = [f"# {title}" + (f" — REDUCED run ({info['tag']})" if info["reduced"] else ""), ""]
    lines += [
        f"- events: {', '.join(info['events'])}; folds run: {info['folds_run']}",
        f"- {info['n_windows']} held-out windows pooled "
        f"({', '.join(f'{k}: {v}' for k, v in info['windows_per_event'].items())})",
        f"- intervals: {info['interval']}"
        + (
            " — ONE event scored: every interval below is a point, not an uncertainty"
            if sum(v > 0 for v in info["windows_per_event"].values()) < 2
            else ""
        ),
        f"- training per fold: radar source defaults, options {info['train_options']}; "
        f"max test windows per event {info['max_test_windows']}",
        f"- wall time {info['wall_minutes']:.1f} min on {info['machine']['cpus']} CPUs "
        f"(load average at the end {info['machine']['load_average_at_end'][0]:.1f})",
        "",
        "## MSE (mm²/h²) per lead time, pooled, [90 % interval]",
        "",
    ]
    mse = pd.DataFrame(info["mse"])
    leads = sorted(mse["lead_time_minutes"].unique())
    lines.append("| method | " + " | ".join(f"+{m:g} min" for m in leads) + " |")
    lines.append("|---|" + "---|" * len(leads))
    for method, rows in mse.groupby("method", sort=False):
        rows = rows.set_index("lead_time_minutes")
        cells = [
            f"{rows.loc[m, 'value']:.4g} [{rows.loc[m, 'lower']:.3g}, {rows.loc[m, 'upper']:.3g}]"
            for m in leads
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired differences SimVP − baseline [90 % interval]", ""]
    paired = pd.DataFrame(info["paired"])
    for (score, ref, thr), rows in paired.groupby(
        ["score", "reference", "threshold"], sort=False, dropna=False
    ):
        label = f"{score}" + ("" if pd.isna(thr) else f" ≥ {thr:g} mm/h")
        rows = rows.set_index("lead_time_minutes")
        cells = [
            f"{rows.loc[m, 'difference']:.3g} [{rows.loc[m, 'lower']:.3g}, "
            f"{rows.loc[m, 'upper']:.3g}]{' *' if rows.loc[m, 'excludes_zero'] else ''}"
            for m in leads
        ]
        lines.append(f"- {label}, simvp − {ref}: " + "; ".join(cells))
    lines += ["", "(* = interval excludes zero)", ""]
    lines += probabilistic_markdown(info, leads)
    lines += ["", "## Targets", ""]
    for name, ok in info["targets"].items():
        lines.append(f"- {name}: {'PASS' if ok else 'FAIL'}")
    for name, ok in info["probabilistic_targets"].items():
        verdict = "not evaluated (no SimVP ensemble)" if ok is None else "PASS" if ok else "FAIL"
        lines.append(f"- {name}: {verdict}")
    lines += ["", f"Full report: `{info['report']}/index.html`", ""]
    return "\n".join(lines)


def _cell(part: pd.DataFrame, lead: float) -> str:
    row = part.loc[lead]
    return f"{row['value']:.4g} [{row['lower']:.3g}, {row['upper']:.3g}]"


def probabilistic_markdown(info: dict[str, Any], leads: list[float]) -> list[str]:
    """Tables of the ensembles' probabilistic scores (method × lead, [90 % interval])."""
    rows = pd.DataFrame(info["probabilistic"])
    if rows.empty:
        return []
    lines = [
        f"## Probabilistic scores ({', '.join(info['ensembles'])}, {info['members']} members) "
        "per lead time, pooled, [90 % event interval]",
        "",
    ]
    for (score, thr), block in rows.groupby(["score", "threshold"], sort=False, dropna=False):
        label = score + ("" if pd.isna(thr) else f" at {thr:g} mm/h")
        lines += [f"### {label}", ""]
        lines.append("| method | " + " | ".join(f"+{m:g} min" for m in leads) + " |")
        lines.append("|---|" + "---|" * len(leads))
        for method, part in block.groupby("method", sort=False):
            part = part.set_index("lead_time_minutes")
            cells = [_cell(part, m) if m in part.index else "–" for m in leads]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the cross-validation and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/nowcast-cv-skill")
    parser.add_argument(
        "--samples",
        default=os.environ.get("NOWCAST_SAMPLES_DIR", str(REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: the radar recipe")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="optimiser steps per epoch (training batches; default: the whole training set)",
    )
    parser.add_argument("--max-test-windows", type=int, default=None, help="per held-out event")
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="default: all 7")
    parser.add_argument("--members", type=int, default=20, help="ensemble members (STEPS)")
    parser.add_argument("--anvil", action="store_true", help="add ANVIL to the baselines")
    parser.add_argument("--tag", default="", help="suffix of the result files (reduced runs)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from pipelines.evaluation.cross_validation import CVConfig, cross_validate

    data_dir = Path(args.data_dir)
    ensure_stores(data_dir, args.samples)
    options: dict[str, Any] = {"progress_bar": False}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.steps_per_epoch is not None:
        options["limit_train_batches"] = args.steps_per_epoch
    config = CVConfig(
        baselines=BASELINES + (("anvil",) if args.anvil else ()),
        folds=tuple(args.folds) if args.folds else None,
        max_test_windows=args.max_test_windows,
        ensembles=("steps",),
        members=args.members,
    )
    started = time.perf_counter()
    result = cross_validate(",".join(SOURCES), data_dir, config=config, **options)
    seconds = time.perf_counter() - started
    info = summarise(result, seconds, args)
    stem = "cv_skill" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(info))
    print(markdown(info))
    return info


if __name__ == "__main__":
    main()
