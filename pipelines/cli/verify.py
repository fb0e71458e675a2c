"""``nowcast verify --source NAME``: score the issued forecasts whose observations arrived.

Examples::

    nowcast verify --source mch-radar                       # now; entries of the last day
    nowcast verify --source mch-radar --as-of 2016-07-11T20:00 --since 2016-07-11
    nowcast verify --source mch-radar --skill-window 7D --min-skill 0.1 --max-input-age none

Exit status: 0 when all is well, 3 when an alert fired (skill against persistence below the
floor, or stale inputs; the reason is printed on one line), 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir, duration

ALERT_EXIT = 3
"""Exit status of a run whose verification alerted (distinct from bad input, 2)."""


def _max_age(text: str) -> str | None:
    return None if text.lower() == "none" else duration(text)


def _run(args: argparse.Namespace) -> int:
    from pipelines.live import AlertConfig, ScoreConfig, verify_source

    alerts = AlertConfig(
        window=args.skill_window,
        min_skill=args.min_skill,
        min_entries=args.min_entries,
        max_input_age=args.max_input_age,
    )
    config = ScoreConfig(thresholds=tuple(args.thresholds)) if args.thresholds else None
    report = verify_source(
        args.source,
        args.data_dir,
        since=args.since,
        as_of=args.as_of,
        leads=args.leads,
        config=config,
        alerts=alerts,
        render=not args.no_page,
    )
    print(f"as of:      {report.as_of:%Y-%m-%dT%H:%MZ}")
    print(
        f"scored:     {len(report.scored)} forecasts ({report.unchanged} already scored, "
        f"{report.pending} awaiting observations)"
    )
    print(f"store:      {report.store}")
    if report.page:
        print(f"page:       {report.page}")
    print("seconds:    " + ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items()))
    if report.alerts:
        print(f"nowcast verify: ALERT: {report.alerts[0]}", file=sys.stderr)
        return ALERT_EXIT
    return 0


@COMMANDS.register("verify")
def add_verify(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="score issued forecasts against the observations that arrived; live page; alerts",
        description=(
            "Score every entry of DIR/forecasts/SOURCE.zarr whose valid times are observed and "
            "not yet scored (SimVP, persistence and Lucas-Kanade recomputed for the same init "
            "times), append the scores to DIR/verification/SOURCE/ and rebuild "
            "DIR/reports/SOURCE/live.html. Reruns add nothing; late observations and re-run "
            "forecasts are re-scored. Exits 3 with a one-line reason when an alert fires."
        ),
    )
    parser.add_argument("--source", required=True, help="catalog source name, e.g. mch-radar")
    parser.add_argument(
        "--since", default=None, help="oldest init time to check (default: as-of - 1 day)"
    )
    parser.add_argument(
        "--as-of", default=None, help="verification time, UTC ISO 8601 (default: now)"
    )
    parser.add_argument("--leads", type=int, default=None, help="verify SOURCE-Nleads.zarr")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=None, help="CSI thresholds (source units)"
    )
    parser.add_argument("--skill-window", type=duration, default="24h", help="alert window")
    parser.add_argument(
        "--min-skill", type=float, default=0.0, help="alert below this skill vs persistence"
    )
    parser.add_argument(
        "--min-entries", type=int, default=3, help="verified forecasts needed before alerting"
    )
    parser.add_argument(
        "--max-input-age",
        type=_max_age,
        default="90min",
        help="alert when the newest observation is older than this at --as-of ('none': never)",
    )
    parser.add_argument("--no-page", action="store_true", help="do not rebuild live.html")
    add_data_dir(parser)
    parser.set_defaults(func=_run)
