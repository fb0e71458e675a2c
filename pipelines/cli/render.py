"""``nowcast render --source NAME --init-time T``: maps of a stored forecast.

Examples::

    nowcast render --source mch-radar                         # newest complete forecast
    nowcast render --source mch-radar --init-time 2016-10-05T12:00 --panels 6
    nowcast render --source mch-radar --out-dir docs/figures --no-animation
"""

from __future__ import annotations

import argparse
import gc

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir


def _run(args: argparse.Namespace) -> int:
    from pipelines.render.stored import render_stored

    # The imported libraries (torch, xarray, matplotlib, cartopy) hold ~10^6 long-lived objects;
    # freezing them spares the collector re-scanning them (about 1 s per full collection).
    gc.freeze()
    paths = render_stored(
        args.source,
        args.init_time,
        args.data_dir,
        out_dir=args.out_dir,
        n_panels=args.panels,
        variables=args.variable,
        animate=not args.no_animation,
        n_leads=args.leads,
    )
    for path in paths:
        print(f"figure: {path}")
    return 0


@COMMANDS.register("render")
def add_render(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``render`` subcommand."""
    parser = subparsers.add_parser(
        "render",
        help="re-render maps (PNG + GIF) of a stored forecast",
        description=(
            "Draw one init time of DIR/forecasts/SOURCE.zarr (observed inputs for context, "
            "chosen lead times, coastlines and borders; offline) to DIR/figures/SOURCE/."
        ),
    )
    parser.add_argument("--source", required=True, help="catalog source name, e.g. mch-radar")
    parser.add_argument(
        "--init-time", default=None, help="init time (UTC, ISO 8601; default: the newest)"
    )
    parser.add_argument("--panels", type=int, default=4, help="number of lead-time panels")
    parser.add_argument(
        "--variable", action="append", default=None, help="variable to draw (repeatable)"
    )
    parser.add_argument(
        "--out-dir", default=None, help="output folder (default DIR/figures/SOURCE)"
    )
    parser.add_argument("--no-animation", action="store_true", help="PNG only, no GIF")
    parser.add_argument(
        "--leads",
        type=int,
        default=None,
        help="the store written by nowcast forecast --leads N (default: the model's own horizon)",
    )
    add_data_dir(parser)
    parser.set_defaults(func=_run)
