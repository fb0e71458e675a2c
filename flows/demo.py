"""``make demo``: the whole pipeline on the shipped radar sample, through the Prefect flows.

Runs :func:`flows.pipeline.nowcast_pipeline` in Prefect's ephemeral mode (no server to set
up: Prefect starts a temporary local API for the run and stops it afterwards), then prints
where each output is and the forecast's skill against persistence::

    python -m flows.demo [--source mch-radar] [--data-dir DIR] [--minutes 2.5]

This module is the output layer: it prints; the flows log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from flows.deployments import SOURCE_PARAMETERS
from flows.pipeline import PipelineResult, nowcast_pipeline
from flows.tasks import format_table


def _minutes(value: str) -> float:
    minutes = float(value)
    if not minutes > 0:
        raise argparse.ArgumentTypeError(f"training minutes must be > 0, got {value!r}")
    return minutes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo",
        description="Ingest, train, forecast and verify one catalog source through the flows.",
    )
    parser.add_argument("--source", default="mch-radar", help="catalog source (mch-radar)")
    parser.add_argument(
        "--data-dir", default=None, help="data directory (default $NOWCAST_DATA_DIR or ./data)"
    )
    parser.add_argument(
        "--preset", default=None, help="SimVP preset (default: the source kind's defaults)"
    )
    parser.add_argument(
        "--minutes",
        type=_minutes,
        default=None,
        help="training wall-clock budget in minutes (default: the source's deployment default)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument(
        "--max-samples", type=int, default=None, help="test windows to score (default: all)"
    )
    parser.add_argument("--no-render", action="store_true", help="skip the forecast map")
    return parser


def _rel(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(r: PipelineResult, wall: float) -> str:
    """The text printed at the end of the demo (paths and skill)."""
    report, fit, fc, ev = r.ingest, r.fit, r.forecast, r.evaluation
    leads = fc.lead_times
    lines = [
        f"simvp-nowcast demo on {r.source}: done in {wall / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in r.seconds.items())})",
        "",
        f"  observations : {_rel(report.store)}  ({report.frames_written} frames, "
        f"{report.first} .. {report.last})",
        f"  checkpoint   : {_rel(fit.checkpoint_path)}",
        f"  forecast     : {_rel(fc.store)}  (init_time {fc.init_time}, {len(leads)} leads "
        f"to +{leads[-1].total_seconds() / 60:.0f} min, entry {fc.index})",
    ]
    lines += [f"  map          : {_rel(path)}" for path in fc.figures]
    lines += [
        f"  report       : {_rel(ev.directory)}  ({ev.n_windows} test windows)",
        "",
        "Skill on the test period (MSE/MAE averaged over lead times, physical units; "
        "skill = 1 - MSE/MSE_persistence, > 0 beats persistence):",
        "",
    ]
    rows = [
        {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()} for row in r.skill
    ]
    lines += ["  " + line for line in format_table(rows).splitlines()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Progress of the pipeline steps in the terminal; not Lightning's GPU/TPU/tips chatter.
    # Lightning sets its logger to INFO when first imported, so import it before lowering it.
    import lightning.pytorch  # noqa: F401

    for name in ("pipelines", "simvp_model"):
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    # torch's pytree deprecation raised inside Lightning: nothing a demo user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # The same training parameters as the source's train-simvp deployment (e.g. the settings
    # that fit the shipped three-event MeteoSwiss sample), unless overridden on the command line.
    training = dict(SOURCE_PARAMETERS.get(args.source, {}).get("train-simvp", {}))
    start = time.perf_counter()
    result = nowcast_pipeline(
        source=args.source,
        data_dir=args.data_dir,
        preset=args.preset,
        epochs=args.epochs or training.get("epochs"),
        max_minutes=args.minutes or training.get("max_minutes", 2.5),
        split=training.get("split"),
        train_overrides=training.get("overrides"),
        max_samples=args.max_samples,
        render=not args.no_render,
    )
    print("\n" + summary(result, time.perf_counter() - start), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
