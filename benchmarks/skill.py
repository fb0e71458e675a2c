"""Forecast skill of SimVP with the shipped per-kind defaults, against the baselines, per lead.

For every shipped source: ingest (``$NOWCAST_SAMPLES_DIR``: default the shipped samples; the
fuller ``../shared/data`` where present), train with the defaults of its kind
(:data:`pipelines.training.source.HARDWARE_DEFAULTS`: base nowcast, loss, grid, crops) for a fixed
number of epochs (no wall-clock cap, so the same seed gives the same numbers), then score the
test split once with ``nowcast evaluate``'s code
(:func:`pipelines.evaluation.evaluate.evaluate_source`):
MSE per lead time for SimVP, persistence, Lucas–Kanade optical flow (radar), the daily-cycle
climatology (crowd flow, climate) and damped anomaly persistence (climate), CSI at 1 and
5 mm/h (radar), and the number of test windows.

Targets (issue 10): on MeteoSwiss, and pooled over the other radar sources, SimVP MSE below
persistence at every lead and mean MSE <= 0.9 x Lucas–Kanade's; CSI@1 mm/h at +30 min >= LK's;
CSI@5 mm/h > 0 at every lead. NYC taxi: below persistence and climatology at every lead. ERA5:
below both at every lead to +12 h. "Pooled" radar scores are the means over the sources'
test windows (each source's per-lead score weighted by its number of windows).

Run from the repository root (about 2-4 CPU minutes per source)::

    NOWCAST_SAMPLES_DIR=../shared/data .venv/bin/python -m benchmarks.skill
    .venv/bin/python -m benchmarks.skill --sources mch-radar --epochs 5
    .venv/bin/python -m benchmarks.skill --sources era5-t2m-uk --merge  # rerun one row

Results: ``benchmarks/results/skill.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SOURCES = ("mch-radar", "nyc-taxi", "era5-t2m-uk", "fmi-radar", "knmi-radar", "rmi-radar")
# Epochs per kind on CPU: a few CPU minutes each on the 2-core box (radar: 46 MeteoSwiss train
# windows in 64 px crops, 6 steps an epoch; NYC 1,025 windows, 64 steps; ERA5 465, 29 steps).
EPOCHS = {"radar": 12, "crowd-flow": 3, "climate": 8}
SEED = 42
BASELINES = ("persistence", "optical_flow", "climatology", "anomaly_persistence")
log = logging.getLogger("benchmarks.skill")


def score_table(scores: pd.DataFrame, score: str, threshold: float | None = None) -> dict:
    """``{method: {lead_minutes: value}}`` of one score (and threshold) of a report."""
    rows = scores[scores["score"] == score]
    if threshold is not None:
        rows = rows[np.isclose(rows["threshold"].astype(float), threshold)]
    table: dict[str, dict[str, float]] = {}
    for (method, lead), value in (
        rows.groupby(["method", "lead_time_minutes"])["value"].mean().items()
    ):
        table.setdefault(str(method), {})[f"{float(lead):g}"] = float(value)
    return table


def run_source(source: str, data_dir: Path, epochs: int | None, seed: int) -> dict[str, Any]:
    """Ingest, train with the kind's defaults, evaluate; the per-lead scores of one source."""
    from data_catalog.catalog import load_catalog
    from pipelines.evaluation.evaluate import evaluate_source
    from pipelines.ingest.ingest import ingest_source
    from pipelines.training.source import train_source

    spec = load_catalog().get(source)
    n_epochs = epochs if epochs is not None else EPOCHS[spec.kind]
    start = time.perf_counter()
    ingest_source(source, data_dir=str(data_dir), progress=False)
    try:
        fit = train_source(
            source, data_dir, epochs=n_epochs, seed=seed, progress_bar=False, num_workers=0
        )
    except ValueError as error:  # e.g. too few frames for three splits
        return {"source": source, "kind": spec.kind, "error": str(error)}
    trained = time.perf_counter() - start
    report = evaluate_source(source, data_dir, checkpoint=fit.checkpoint_path)
    from simvp_model.checkpoint import load_checkpoint

    meta = load_checkpoint(fit.checkpoint_path).metadata
    out: dict[str, Any] = {
        "source": source,
        "kind": spec.kind,
        "test_windows": int(report.n_windows),
        "epochs": n_epochs,
        "recipe": meta.get("recipe"),
        "train_seconds": round(trained, 1),
        "mse": score_table(report.scores, "mse"),
    }
    if spec.kind == "radar":
        out["csi1"] = score_table(report.scores, "csi", 1.0)
        out["csi5"] = score_table(report.scores, "csi", 5.0)
    return out


def pooled(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """Window-weighted mean of ``key`` tables over several sources (leads they share)."""
    rows = [r for r in rows if key in r]
    total: dict[str, dict[str, float]] = {}
    weight: dict[str, dict[str, float]] = {}
    for r in rows:
        for method, leads in r[key].items():
            for lead, value in leads.items():
                total.setdefault(method, {}).setdefault(lead, 0.0)
                weight.setdefault(method, {}).setdefault(lead, 0.0)
                total[method][lead] += value * r["test_windows"]
                weight[method][lead] += r["test_windows"]
    return {m: {k: total[m][k] / weight[m][k] for k in total[m]} for m in total}


def verdicts(entry: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets that apply to one (or a pooled) entry."""
    mse = entry["mse"]
    simvp = mse.get("simvp", {})
    leads = sorted(simvp, key=float)
    out: dict[str, bool] = {}
    if "persistence" in mse:
        out["mse below persistence at every lead"] = all(
            simvp[k] < mse["persistence"][k] for k in leads
        )
    if "optical_flow" in mse:
        ratio = np.mean([simvp[k] for k in leads]) / np.mean(
            [mse["optical_flow"][k] for k in leads]
        )
        entry["mean_mse_ratio_to_lk"] = float(ratio)
        out["mean mse <= 0.9 x LK"] = bool(ratio <= 0.9)
    if "csi1" in entry:
        last = leads[-1]
        out[f"CSI@1 at +{last} min >= LK"] = (
            entry["csi1"]["simvp"][last] >= entry["csi1"]["optical_flow"][last]
        )
        out["CSI@5 > 0 at every lead"] = all(entry["csi5"]["simvp"][k] > 0 for k in leads)
    if "climatology" in mse:
        upto = [k for k in leads if float(k) <= 12 * 60]
        out["mse below climatology at every lead (to +12 h)"] = all(
            simvp[k] < mse["climatology"][k] for k in upto
        )
    return out


def rerun_note(result: dict[str, Any]) -> str:
    """`` (rows of A, B rerun with --merge: N s)`` where some rows were rerun, else ``""``."""
    rerun = result.get("rerun")
    if not rerun:
        return ""
    return f" (rows of {', '.join(rerun['sources'])} rerun with --merge: {rerun['seconds']:.0f} s)"


def markdown(result: dict[str, Any]) -> str:
    """The results as markdown tables (one per source and score)."""
    lines = [
        "# Forecast skill with the shipped defaults (benchmarks/skill.py)",
        "",
        f"seed {result['seed']}; {result['machine']}; samples from `{result['samples']}`; "
        f"{result['seconds']:.0f} s in all{rerun_note(result)}. Scores of `nowcast evaluate` on "
        "each test split "
        "(pixels with no observation excluded); pooled radar = window-weighted mean over sources.",
        "",
    ]
    for entry in result["entries"]:
        name = entry["source"]
        if "error" in entry:
            lines += [f"## {name}", "", f"not trained: {entry['error']}", ""]
            continue
        recipe = entry.get("recipe") or {}
        lines += [
            f"## {name} ({entry['test_windows']} test windows)",
            "",
            f"recipe: {json.dumps(recipe)}; epochs {entry.get('epochs', '-')}",
            "",
        ]
        for key, title in (("mse", "MSE"), ("csi1", "CSI ≥ 1 mm/h"), ("csi5", "CSI ≥ 5 mm/h")):
            if key not in entry:
                continue
            table = entry[key]
            leads = sorted(table.get("simvp", {}), key=float)
            lines.append(f"| {title} | " + " | ".join(f"+{k} min" for k in leads) + " |")
            lines.append("|---" * (len(leads) + 1) + "|")
            for method in ("simvp", *BASELINES):
                if method in table:
                    cells = " | ".join(f"{table[method].get(k, float('nan')):.4g}" for k in leads)
                    lines.append(f"| {method} | {cells} |")
            lines.append("")
        if "mean_mse_ratio_to_lk" in entry:
            lines.append(f"mean MSE / LK mean MSE: {entry['mean_mse_ratio_to_lk']:.3f}")
            lines.append("")
        for target, ok in entry.get("targets", {}).items():
            lines.append(f"- {target}: {'met' if ok else '**missed**'}")
        lines.append("")
    return "\n".join(lines)


def merged(path: Path, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of the results file ``path`` with those of ``entries``' sources replaced.

    Sources keep their order in the file (new ones are appended); the pooled radar entry is
    dropped, to be recomputed from the merged rows.
    """
    if not path.exists():
        raise FileNotFoundError(f"--merge: no results file {path} to merge into")
    new = {e["source"]: e for e in entries}
    old = [e for e in json.loads(path.read_text())["entries"] if "(pooled)" not in e["source"]]
    out = [new.pop(e["source"], e) for e in old]
    return out + list(new.values())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``benchmarks/results/skill.{json,md}``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.skill", description=__doc__)
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--epochs", type=int, default=None, help="override every kind's epochs")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--data-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--name", default="skill", help="results file stem")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the benchmarked sources' rows in an existing results file",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # Lightning sets its loggers to INFO when first imported: import it, then quiet it.
    import lightning.pytorch  # noqa: F401

    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "pipelines.ingest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(args.data_dir or tmp)
        entries = []
        for source in [s.strip() for s in args.sources.split(",") if s.strip()]:
            log.info("benchmark %s", source)
            try:
                entries.append(run_source(source, data_dir, args.epochs, args.seed))
            except Exception as error:  # report the row, keep benchmarking the others
                log.exception("benchmark of %s failed", source)
                entries.append({"source": source, "error": f"{type(error).__name__}: {error}"})
    seconds = time.perf_counter() - start
    rerun = None
    if args.merge:
        path = RESULTS / f"{args.name}.json"
        rerun = {"sources": [e["source"] for e in entries], "seconds": seconds}
        seconds = json.loads(path.read_text())["seconds"] if path.exists() else seconds
        entries = merged(path, entries)
    radar = [e for e in entries if e.get("kind") == "radar" and "error" not in e]
    others = [e for e in radar if e["source"] != "mch-radar"]
    if others:
        pooled_entry = {
            "source": "+".join(e["source"] for e in others) + " (pooled)",
            "kind": "radar",
            "test_windows": sum(e["test_windows"] for e in others),
            "mse": pooled(others, "mse"),
            "csi1": pooled(others, "csi1"),
            "csi5": pooled(others, "csi5"),
        }
        entries.append(pooled_entry)
    for entry in entries:
        if "error" not in entry:
            entry["targets"] = verdicts(entry)
    result = {
        "benchmark": "skill",
        "seed": args.seed,
        "samples": os.environ.get("NOWCAST_SAMPLES_DIR", "data_catalog/samples"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "seconds": seconds,
        **({"rerun": rerun} if rerun else {}),
        "entries": entries,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
