"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
import os

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


def resolve_sources(
    text: str, data_dir: str | None, catalog: str | os.PathLike[str] | None = None
) -> list[str]:
    """The source names of ``--source`` (``a``, ``a+b`` or ``a,b``), each known to exist.

    Each member must be a safe name (:func:`data_catalog.names.check_path_name`, the
    catalog's name rule) and name a catalog source or an existing observation store
    ``DIR/stores/<name>.zarr`` (a source ingested with another ``--catalog``), as ``ingest``
    resolves its source through the catalog. So ``--source ../../other/x`` is refused before
    any path is built from it.

    Raises
    ------
    ValueError
        Naming the value and what to do, for an unsafe or unknown name.
    """
    from data_catalog.catalog import load_catalog
    from data_catalog.names import check_path_name
    from data_catalog.paths import DataDir

    members = [m.strip() for m in text.replace(",", "+").split("+")]
    for member in members:
        check_path_name(member, "--source")
    known = load_catalog(catalog).sources
    root = DataDir.resolve(data_dir)
    for member in members:
        if member not in known and not _exists(root.store(member)):
            raise ValueError(
                f"--source {member!r}: no such catalog source ({', '.join(sorted(known))}) "
                f"and no store {root.store(member)}; ingest it first (nowcast ingest {member})"
            )
    return members


def _exists(path: str) -> bool:
    """True when ``path`` (local or fsspec URL) exists."""
    import fsspec

    filesystem, inner = fsspec.core.url_to_fs(path)
    return bool(filesystem.exists(inner))
