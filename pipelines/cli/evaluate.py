"""``nowcast evaluate``: score a SimVP checkpoint against the baselines on the test period.

``--cv event`` instead runs a leave-one-event-out cross-validation over the events of the
source(s) (:func:`pipelines.evaluation.cross_validation.cross_validate`): one model per fold, every
held-out event scored, pooled with event-bootstrap intervals.
"""

from __future__ import annotations

import argparse

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir, resolve_sources


@COMMANDS.register("evaluate")
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="verification report: SimVP vs persistence and the other baselines per lead time",
        description=(
            "Forecast every test window of SOURCE (or every window in --start/--end) with the "
            "SimVP checkpoint and the baselines of the source's kind, score them per lead time "
            "with bootstrap intervals and write DIR/reports/SOURCE/ (scores.csv, scores.md, "
            "plots, index.html). SOURCE a+b evaluates a multi-source checkpoint on each member; "
            "a checkpoint of another source is scored zero-shot."
        ),
    )
    parser.add_argument(
        "--source",
        required=True,
        help="catalog source name, e.g. knmi-radar (with --cv: several, mch-radar,knmi-radar)",
    )
    add_data_dir(parser)
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="SimVP bundle, possibly trained on other sources (zero-shot) or on several "
        "(default: DIR/models/SOURCE/best.pt)",
    )
    parser.add_argument(
        "--start", default=None, help="score every window from this time (UTC, ISO 8601)"
    )
    parser.add_argument("--end", default=None, help="... up to this time (inclusive)")
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
            "shipped pretrained model, zero-shot; ensemble baselines (steps) run with --members"
        ),
    )
    parser.add_argument(
        "--members",
        type=int,
        default=20,
        help="members of every ensemble method (STEPS for radar; default 20)",
    )
    cv = parser.add_argument_group("cross-validation (--cv event)")
    cv.add_argument(
        "--cv",
        choices=["event"],
        default=None,
        help="leave-one-event-out: train per fold with the source defaults, pool the held-out "
        "events (report in DIR/reports/SOURCES/cv-event/)",
    )
    cv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these folds")
    cv.add_argument("--epochs", type=int, default=None, help="training epochs per fold")
    cv.add_argument("--max-minutes", type=float, default=None, help="training cap per fold")
    cv.add_argument("--seed", type=int, default=0, help="training and bootstrap seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation (each member of ``a+b`` in turn) and print the summary tables."""
    from data_catalog.catalog import load_catalog
    from pipelines.evaluation.evaluate import SIMVP, evaluate_source
    from pipelines.method.simvp import SimVPMethod
    from pipelines.windows import source_names

    catalog = load_catalog(args.catalog) if args.catalog else None
    resolve_sources(args.source, args.data_dir, args.catalog)  # safe, known names only
    if args.cv == "event":
        return run_cv(args, catalog)
    members = source_names(args.source)
    # One checkpoint for every member: a multi-source model's default is DIR/models/a+b/best.pt.
    method = SimVPMethod.resolve(
        "+".join(members), args.checkpoint, args.data_dir, fallback=False
    )  # evaluation needs a checkpoint; the pretrained model is scored with --baselines pretrained
    for member in members:
        report = evaluate_source(
            member,
            data_dir=args.data_dir,
            checkpoint=method,
            catalog=catalog,
            max_samples=args.max_samples,
            baselines=args.baselines,
            start=args.start,
            end=args.end,
            members=args.members,
        )
        mse = report.scores[report.scores["score"] == "mse"]
        table = mse.pivot_table(index="method", columns="lead_time_minutes", values="value")
        print(f"{report.source}: {report.n_windows} windows; MSE per lead time (minutes):")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        verdict = "yes" if report.beats_persistence(SIMVP, "mse") else "no"
        print(f"SimVP MSE below persistence at every lead: {verdict}")
        crps = report.scores[report.scores["score"] == "crps"]
        if len(crps):
            table = crps.pivot_table(index="method", columns="lead_time_minutes", values="value")
            print(f"CRPS of the ensembles ({args.members} members) per lead time (minutes):")
            print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        print(f"report: {report.directory}")
    return 0


def run_cv(args: argparse.Namespace, catalog: object) -> int:
    """Leave-one-event-out cross-validation; print the paired MSE comparisons."""
    from pipelines.evaluation.cross_validation import CVConfig, cross_validate
    from pipelines.evaluation.ensembles import split_names
    from pipelines.verification.bootstrap import BootstrapConfig

    if args.checkpoint is not None:
        raise ValueError("--cv trains one model per fold: it takes no --checkpoint")
    options = {"seed": args.seed, "progress_bar": False}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.max_minutes is not None:
        options["max_minutes"] = args.max_minutes
    deterministic, ensembles = split_names(args.baselines) if args.baselines else (None, None)
    config = CVConfig(
        bootstrap=BootstrapConfig(seed=args.seed),
        baselines=tuple(deterministic) if deterministic is not None else None,
        ensembles=tuple(ensembles) if ensembles is not None else None,
        members=args.members,
        folds=tuple(args.folds) if args.folds else None,
        max_test_windows=args.max_samples,
    )
    result = cross_validate(args.source, args.data_dir, catalog=catalog, config=config, **options)
    paired = result.comparisons[result.comparisons["score"] == "mse"]
    print(
        f"{len(result.folds)} folds over {len(result.events)} events, {len(result.groups)} "
        f"held-out windows; SimVP - baseline MSE per lead time [{config.bootstrap.level:.0%} "
        "event-bootstrap interval]:"
    )
    for row in paired.itertuples(index=False):
        flag = " *" if row.excludes_zero else ""
        print(
            f"  {row.method} - {row.reference} +{row.lead_time_minutes:g} min: "
            f"{row.difference:.4g} [{row.lower:.4g}, {row.upper:.4g}]{flag}"
        )
    print(f"report: {result.directory}")
    return 0
