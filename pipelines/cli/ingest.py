"""``nowcast ingest SOURCE``: decode a catalog source's files into ``DIR/stores/SOURCE.zarr``.

Examples::

    nowcast ingest mch-radar                               # every file of the pattern
    nowcast ingest knmi-radar --start 2010-08-26T00:00 --end 2010-08-26T01:00
    nowcast ingest my-radar --catalog my_catalog.yaml --data-dir /data/nowcast
    nowcast ingest fmi-radar --scheduler tcp://127.0.0.1:8786 --no-progress
"""

from __future__ import annotations

import argparse

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir


def _run(args: argparse.Namespace) -> int:
    from pipelines.ingest import ingest_source

    report = ingest_source(
        args.source,
        data_dir=args.data_dir,
        start=args.start,
        end=args.end,
        catalog=args.catalog,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    print(f"store:     {report.store}")
    print(
        f"frames:    {report.frames_written} written ({report.frames_new} new) from "
        f"{report.files} files"
    )
    span = f"{report.first} .. {report.last}" if report.first is not None else "-"
    print(f"period:    {span}")
    print(f"events:    {report.events_text()}")
    print(f"gaps:      {report.gaps_text()}")
    if report.masked:
        print(f"masked:    {report.masked} out-of-range pixels set to NaN")
    print(f"size:      {report.store_bytes / 2**20:.1f} MiB, {report.store_frames} time steps")
    print(f"seconds:   {report.seconds:.1f} ({report.scheduler})")
    return 0


@COMMANDS.register("ingest")
def add_ingest(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` subcommand."""
    parser = subparsers.add_parser(
        "ingest",
        help="ingest a catalog source into its observation store (Zarr)",
        description=(
            "Decode the files of a catalog source and write them, at the slots their "
            "timestamps determine, into DIR/stores/SOURCE.zarr. Re-running a period is "
            "idempotent; bad input is reported with the file name and leaves the store as it was."
        ),
    )
    parser.add_argument("source", help="catalog source name, e.g. mch-radar")
    parser.add_argument("--start", default=None, help="first time to ingest (UTC, ISO 8601)")
    parser.add_argument("--end", default=None, help="last time to ingest (UTC, inclusive)")
    add_data_dir(parser)
    parser.add_argument(
        "--catalog", default=None, help="catalog YAML file (default: the shipped catalog)"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="where files are decoded and written: 'threads' (default, this process), "
        "'synchronous' or a dask.distributed scheduler address such as tcp://host:8786 (its "
        "workers decode and write; the store must be on storage they can write)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
