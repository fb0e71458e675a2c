"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

import pandas as pd


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (default ``$NOWCAST_DATA_DIR`` or ``./data``)."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data directory (default: $NOWCAST_DATA_DIR or ./data); may be an fsspec URL",
    )


def duration(text: str) -> str:
    """argparse ``type`` for a positive duration such as ``30min``, ``2h`` or ``1d``.

    Returns the text unchanged (the library parses it again); a value pandas cannot read as a
    duration is an argparse error naming the value, not pandas' own wording.
    """
    try:
        value = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30min, 2h or 1d, got {text!r}"
        ) from None
    if value <= pd.Timedelta(0):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return text
