"""Tables of the pretrained-model benchmark (:mod:`benchmarks.pretrained`): JSON + markdown."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def score_table(scores: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """``{method: {"mse": [per lead], "csi_1": [per lead], "lead_minutes": [...]}}``."""
    out: dict[str, dict[str, list[float]]] = {}
    for method, part in scores.groupby("method", sort=False):
        mse = part[part.score == "mse"].sort_values("lead_time_minutes")
        csi = part[(part.score == "csi") & (part.threshold == 1.0)].sort_values("lead_time_minutes")
        out[str(method)] = {
            "lead_minutes": [float(v) for v in mse.lead_time_minutes],
            "mse": [float(v) for v in mse.value],
            "csi_1": [float(v) for v in csi.value],
        }
    return out


def _leads(scores: dict[str, list[float]]) -> str:
    return " / ".join(f"{v:g}" for v in scores["lead_minutes"])


def _fmt(values: Sequence[float]) -> str:
    return " / ".join("nan" if not np.isfinite(v) else f"{v:.3f}" for v in values)


def lopo_markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The leave-one-provider-out tables."""
    lines = [
        "# Pretrained radar model: leave-one-provider-out",
        "",
        f"{meta['note']}",
        "",
        f"Machine: {meta['machine']}; {meta['date']}. {meta['setup']}. Scores pooled over "
        "windows and pixels per lead (NaN observations excluded); values per lead separated by "
        "`/`.",
        "",
        "## Zero-shot on the held-out provider (every complete window of its events)",
        "",
        "| held out | windows scored (of) | leads (min) | method | MSE (mm/h)² | CSI@1 mm/h |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        zs = row["zero_shot"]
        for method, sc in zs["scores"].items():
            lines.append(
                f"| {row['held_out']} | {zs['windows']} ({zs.get('of_windows', zs['windows'])}) "
                f"| {_leads(sc)} | {method} "
                f"| {_fmt(sc['mse'])} | {_fmt(sc['csi_1'])} |"
            )
    lines += [
        "",
        "Zero-shot beats persistence at every lead (MSE): "
        + ", ".join(f"{r['held_out']} {'yes' if _beats(r['zero_shot']) else 'no'}" for r in rows),
        "",
        "## Fine-tuning on the held-out provider's own train split vs zero-shot (its test split)",
        "",
        "| provider | fine-tune s | test windows | method | MSE (mm/h)² | CSI@1 mm/h |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ft = row["fine_tune"]
        if "skipped" in ft:
            lines.append(f"| {row['held_out']} | — | — | skipped: {ft['skipped']} | | |")
            continue
        for method, sc in ft["scores"].items():
            lines.append(
                f"| {row['held_out']} | {ft['seconds']} | {ft['test_windows']} | {method} "
                f"| {_fmt(sc['mse'])} | {_fmt(sc['csi_1'])} |"
            )
    lines += ["", "Training per held-out provider:", ""]
    for row in rows:
        lines.append(
            f"- without {row['held_out']}: trained on {', '.join(row['trained_on'])} in "
            f"{row['train_seconds']} s, windows {row['train_windows']}, recipe {row['recipe']}"
        )
    return "\n".join(lines) + "\n"


def _beats(block: dict[str, Any], method: str = "zero-shot") -> bool:
    scores = block["scores"]
    return all(
        a < b for a, b in zip(scores[method]["mse"], scores["persistence"]["mse"], strict=True)
    )


def write_lopo(rows: Sequence[dict[str, Any]], note: str, setup: str) -> Path:
    """Merge ``rows`` into ``benchmarks/results/pretrained_lopo.{json,md}`` (by provider)."""
    path = RESULTS / "pretrained_lopo.json"
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    merged = {r["held_out"]: r for r in old.get("rows", [])}
    merged.update({r["held_out"]: r for r in rows})
    meta = {
        "note": note,
        "setup": setup,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%MZ"),
    }
    ordered = [merged[k] for k in sorted(merged)]
    path.write_text(json.dumps({**meta, "rows": ordered}, indent=1) + "\n")
    (RESULTS / "pretrained_lopo.md").write_text(lopo_markdown(ordered, meta))
    return path
