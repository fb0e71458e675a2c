"""The one data directory everything the pipeline writes lives under.

Layout (``DIR`` = ``--data-dir``, else ``$NOWCAST_DATA_DIR``, else ``./data``)::

    DIR/stores/<source>.zarr      ingested observations
    DIR/forecasts/<source>.zarr   forecast cubes
    DIR/models/<source>/          checkpoints
    DIR/figures/<source>/         maps and animations
    DIR/reports/<source>/         verification reports

``DIR`` may be a local path or an fsspec URL (``s3://bucket/prefix``); URLs are joined with ``/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "NOWCAST_DATA_DIR"
DEFAULT_DATA_DIR = "data"


def is_url(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an fsspec URL such as ``s3://bucket/key`` (not a local path)."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class DataDir:
    """Resolved data directory with the standard sub-locations.

    Parameters
    ----------
    root : str
        Local path or fsspec URL of the data directory.
    """

    root: str

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike[str] | None = None) -> DataDir:
        """Pick ``data_dir``, else ``$NOWCAST_DATA_DIR``, else ``./data``."""
        chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
        root = os.fspath(chosen) if chosen else DEFAULT_DATA_DIR
        if not root.strip():
            raise ValueError(f"data directory must not be empty, got {root!r}")
        if root.startswith("file://"):
            root = root[len("file://") :]
        if not is_url(root):
            root = str(Path(root).expanduser().resolve())
        return cls(root)

    def _join(self, *parts: str) -> str:
        if is_url(self.root):
            return "/".join([self.root.rstrip("/"), *parts])
        return str(Path(self.root, *parts))

    def store(self, source: str) -> str:
        """Path of the observation store of ``source``."""
        return self._join("stores", f"{source}.zarr")

    def forecast_store(self, source: str) -> str:
        """Path of the forecast store of ``source``."""
        return self._join("forecasts", f"{source}.zarr")

    @classmethod
    def of_store(cls, store: str | os.PathLike[str]) -> DataDir:
        """The data directory holding the observation store ``store`` (``DIR/stores/<s>.zarr``).

        Raises
        ------
        ValueError
            When ``store`` is not laid out as ``<DIR>/stores/<source>.zarr``.
        """
        text = os.fspath(store).rstrip("/")
        head, _, name = text.rpartition("/")
        root, _, folder = head.rpartition("/")
        if folder != "stores" or not name.endswith(".zarr") or not root:
            raise ValueError(f"{text!r} is not an observation store path DIR/stores/<source>.zarr")
        return cls.resolve(root)

    def models(self, source: str) -> str:
        """Directory of the checkpoints trained on ``source``."""
        return self._join("models", source)

    def figures(self, source: str) -> str:
        """Directory of the maps rendered for ``source``."""
        return self._join("figures", source)

    def reports(self, source: str) -> str:
        """Directory of the verification reports of ``source``."""
        return self._join("reports", source)
