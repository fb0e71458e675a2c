"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (default ``$NOWCAST_DATA_DIR`` or ``./data``)."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data directory (default: $NOWCAST_DATA_DIR or ./data); may be an fsspec URL",
    )
