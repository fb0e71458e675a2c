"""``nowcast evaluate``: score a SimVP checkpoint against the baselines on the test period."""

from __future__ import annotations

import argparse

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir


@COMMANDS.register("evaluate")
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="verification report: SimVP vs persistence and the other baselines per lead time",
        description=(
            "Forecast every test window of SOURCE with the SimVP checkpoint and the baselines "
            "of the source's kind, score them per lead time and write DIR/reports/SOURCE/ "
            "(scores.csv, scores.md, score plots, example frames)."
        ),
    )
    parser.add_argument("--source", required=True, help="catalog source name, e.g. knmi-radar")
    add_data_dir(parser)
    parser.add_argument(
        "--checkpoint", default=None, help="SimVP bundle (default: newest DIR/models/SOURCE/*.pt)"
    )
    parser.add_argument("--catalog", default=None, help="catalog YAML (default: the shipped one)")
    parser.add_argument(
        "--max-samples", type=int, default=None, help="score at most N test windows (default all)"
    )
    parser.add_argument(
        "--baselines",
        nargs="+",
        default=None,
        metavar="NAME",
        help=(
            "baselines to run instead of the source kind's default set; 'pretrained' adds the "
            "shipped pretrained model, zero-shot"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    from data_catalog.catalog import load_catalog
    from pipelines.evaluate import SIMVP, evaluate_source

    catalog = load_catalog(args.catalog) if args.catalog else None
    report = evaluate_source(
        args.source,
        data_dir=args.data_dir,
        checkpoint=args.checkpoint,
        catalog=catalog,
        max_samples=args.max_samples,
        baselines=args.baselines,
    )
    mse = report.scores[report.scores["score"] == "mse"]
    table = mse.pivot_table(index="method", columns="lead_time_minutes", values="value")
    print(f"{report.source}: {report.n_windows} test windows; MSE per lead time (minutes):")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    verdict = "yes" if report.beats_persistence(SIMVP, "mse") else "no"
    print(f"SimVP MSE below persistence at every lead: {verdict}")
    print(f"report: {report.directory}")
    return 0
