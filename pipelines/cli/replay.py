"""``nowcast replay --source NAME --start T0 --end T1``: play an archive as if it were live.

Each simulated hour ingests the frames that would have arrived, issues the forecast and
verifies it (:func:`pipelines.live.replay.replay_source`); the live page ends up as it would
have looked at ``T1``::

    nowcast replay --source mch-radar --start 2016-07-11T15:00 --end 2016-07-11T18:00 --leads 12
"""

from __future__ import annotations

import argparse

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir, duration


def _run(args: argparse.Namespace) -> int:
    from pipelines.live.replay import replay_source

    records = replay_source(
        args.source,
        args.start,
        args.end,
        args.data_dir,
        checkpoint=args.checkpoint,
        leads=args.leads,
        warmup=args.warmup,
        render=not args.no_page,
    )
    print("hour              forecast  scored  seconds  peak_rss_mb  alert")
    for r in records:
        alert = r.alerts[0] if r.alerts else ""
        print(
            f"{r.hour:%Y-%m-%dT%H:%MZ} {str(r.forecast):8s}  {r.scored:6d}  {r.seconds:7.2f}  "
            f"{r.peak_rss_mb:11.0f}  {alert}"
        )
    return 0


@COMMANDS.register("replay")
def add_replay(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand."""
    parser = subparsers.add_parser(
        "replay",
        help="play an archive hour by hour: ingest, forecast, verify (as if live)",
        description=(
            "For each hour from --start to --end: ingest the source's files that would have "
            "arrived, forecast at that hour and verify with that hour as 'now'."
        ),
    )
    parser.add_argument("--source", required=True, help="catalog source name, e.g. mch-radar")
    parser.add_argument("--start", required=True, help="first simulated hour (UTC)")
    parser.add_argument("--end", required=True, help="last simulated hour (UTC)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default as for forecast)")
    parser.add_argument("--leads", type=int, default=None, help="lead times per forecast")
    parser.add_argument("--warmup", type=duration, default="1h", help="archive before --start")
    parser.add_argument("--no-page", action="store_true", help="do not rebuild live.html")
    add_data_dir(parser)
    parser.set_defaults(func=_run)
