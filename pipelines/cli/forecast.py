"""``nowcast forecast --source NAME``: one SimVP forecast into ``DIR/forecasts/NAME.zarr``.

Examples::

    nowcast forecast --source mch-radar                       # latest frames, newest best.pt
    nowcast forecast --source mch-radar --init-time 2016-10-05T12:00 --leads 24
    nowcast forecast --source knmi-radar --checkpoint runs/knmi/best.pt --no-render
    nowcast forecast --source mch-radar --fallback latest-complete  # older inputs if frames miss
    nowcast forecast --source new-radar  # no trained model: the shipped pretrained one, zero-shot
"""

from __future__ import annotations

import argparse
import gc

from data_catalog.vocabulary import duration_text
from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir, duration, resolve_sources


def _run(args: argparse.Namespace) -> int:
    from pipelines.forecast.export import export_weatherbench2
    from pipelines.forecast.run import run_forecast
    from pipelines.render.run import render_forecast

    # The imported libraries (torch, xarray, matplotlib, cartopy) hold ~10^6 long-lived objects;
    # freezing them spares the collector re-scanning them (about 1 s per full collection).
    gc.freeze()
    (source,) = resolve_one(args.source, args.data_dir)
    result = run_forecast(
        source,
        init_time=args.init_time,
        checkpoint=args.checkpoint,
        data_dir=args.data_dir,
        lead_times=args.leads,
        fallback=args.fallback,
        max_age=args.max_age,
        time_step_policy=args.time_step_policy,
    )
    if not args.no_render:
        result = render_forecast(result, args.data_dir)
    leads = result.lead_times
    print(f"store:      {result.store} (init_time index {result.index})")
    print(f"init time:  {result.init_time:%Y-%m-%dT%H:%MZ}")
    print(f"lead times: {len(leads)} ({duration_text(leads[0])} .. {duration_text(leads[-1])})")
    print(f"checkpoint: {result.checkpoint}")
    for path in result.figures:
        print(f"figure:     {path}")
    if args.export_wb2:
        export_weatherbench2(result.store, args.export_wb2)
        print(f"export:     {args.export_wb2} (WeatherBench2 naming)")
    print("seconds:    " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    return 0


def resolve_one(text: str, data_dir: str | None) -> list[str]:
    """``--source`` as one known, safe source name (a catalog source or an existing store)."""
    names = resolve_sources(text, data_dir)
    if len(names) != 1:
        raise ValueError(f"--source: forecast takes one source, got {text!r}")
    return names


@COMMANDS.register("forecast")
def add_forecast(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``forecast`` subcommand."""
    parser = subparsers.add_parser(
        "forecast",
        help="forecast from the latest observations into the forecast store (Zarr) + maps",
        description=(
            "Take the T_in frames ending at the init time from DIR/stores/SOURCE.zarr, predict "
            "the lead times with a SimVP checkpoint (roll-out beyond its native horizon), and "
            "write them to DIR/forecasts/SOURCE.zarr (SOURCE-Nleads.zarr for --leads N other than "
            "the model's own horizon; re-running an init time replaces it) with "
            "maps under DIR/figures/SOURCE/. Missing or stale inputs are an error unless "
            "--fallback latest-complete is given."
        ),
    )
    parser.add_argument("--source", required=True, help="catalog source name, e.g. mch-radar")
    parser.add_argument(
        "--init-time",
        default=None,
        help="forecast reference time (UTC, ISO 8601; default: the store's newest frame)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help=(
            "checkpoint file (default: newest best.pt under DIR/models/SOURCE/, else the "
            "shipped pretrained radar model, zero-shot)"
        ),
    )
    parser.add_argument(
        "--leads",
        type=int,
        default=None,
        help="number of lead times (default: the model's out_frames; more are rolled out); "
        "another count than out_frames goes to its own store, DIR/forecasts/SOURCE-Nleads.zarr",
    )
    parser.add_argument(
        "--fallback",
        choices=("none", "latest-complete"),
        default="none",
        help="missing inputs: fail (none, default) or use the newest complete window before",
    )
    parser.add_argument(
        "--max-age",
        type=duration,
        default=None,
        help="refuse inputs older than this before now, e.g. 30min (default: no limit)",
    )
    parser.add_argument(
        "--time-step-policy",
        choices=("error", "nearest"),
        default="error",
        help="store step != model step: fail (default) or use every k-th frame (nearest)",
    )
    parser.add_argument("--no-render", action="store_true", help="skip the maps and animation")
    parser.add_argument(
        "--export-wb2",
        default=None,
        metavar="ZARR",
        help="also export the whole forecast store with WeatherBench2 naming to this Zarr path",
    )
    add_data_dir(parser)
    parser.set_defaults(func=_run)
