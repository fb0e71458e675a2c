"""The one data directory everything the pipeline writes lives under.

Layout (``DIR`` = ``--data-dir``, else ``$NOWCAST_DATA_DIR``, else ``./data``)::

    DIR/stores/<source>.zarr      ingested observations
    DIR/forecasts/<source>.zarr   forecast cubes at the checkpoint's own horizon
    DIR/forecasts/<source>-<N>leads.zarr   forecast cubes of another lead count N
    DIR/models/<source>/          checkpoints
    DIR/figures/<source>/         maps and animations
    DIR/reports/<source>/         verification reports

``DIR`` may be a local path or an fsspec URL (``s3://bucket/prefix``); URLs are joined with ``/``.

Every name joined here (``<source>``, sub-folders of a report) is checked by
:func:`data_catalog.names.check_path_name` and the joined path by
:func:`data_catalog.names.check_inside`: nothing built from a name leaves ``DIR``, whatever the
name's origin (command line, catalog, checkpoint metadata).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data_catalog.names import check_inside, check_path_name

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
        """Pick ``data_dir``, else ``$NOWCAST_DATA_DIR``, else ``./data``.

        Raises
        ------
        ValueError
            When the chosen value (argument or environment variable) is empty or blank.
        """
        if data_dir is not None:
            root, origin = os.fspath(data_dir), "--data-dir"
        elif DATA_DIR_ENV in os.environ:
            root, origin = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
        else:
            root, origin = DEFAULT_DATA_DIR, "default"
        if not root.strip():
            # An empty value is almost always an unset shell variable (--data-dir "$DIR");
            # writing into ./data of wherever the command runs would hide that.
            raise ValueError(
                f"data directory must not be empty, got {origin} {root!r}; "
                f"give a path, or leave it out for ./data"
            )
        if root.startswith("file://"):
            root = root[len("file://") :]
        if not is_url(root):
            root = str(Path(root).expanduser().resolve())
        return cls(root)

    def _join(self, *parts: str) -> str:
        if is_url(self.root):
            path = "/".join([self.root.rstrip("/"), *parts])
        else:
            path = str(Path(self.root, *parts))
        return check_inside(self.root, path)

    def store(self, source: str) -> str:
        """Path of the observation store of ``source``.

        Raises
        ------
        ValueError
            When ``source`` is not a safe name (:func:`data_catalog.names.check_path_name`).
        """
        return self._join("stores", f"{check_path_name(source)}.zarr")

    def forecast_store(self, source: str, n_leads: int | None = None) -> str:
        """Path of the forecast store of ``source`` for one lead configuration.

        Parameters
        ----------
        source : str
            Catalog source name.
        n_leads : int, optional
            ``None`` for the checkpoint's own horizon (``forecasts/<source>.zarr``); a lead
            count that differs from it gets its own store, ``forecasts/<source>-<N>leads.zarr``,
            since one store holds one ``lead_time`` axis.
        """
        check_path_name(source)
        if n_leads is None:
            return self._join("forecasts", f"{source}.zarr")
        if isinstance(n_leads, bool) or not isinstance(n_leads, int) or n_leads < 1:
            raise ValueError(f"n_leads must be a positive integer or None, got {n_leads!r}")
        return self._join("forecasts", f"{source}-{n_leads}leads.zarr")

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
        """Directory of the checkpoints trained on ``source`` (``a+b`` for several)."""
        return self._join("models", check_path_name(source))

    def figures(self, source: str) -> str:
        """Directory of the maps rendered for ``source``."""
        return self._join("figures", check_path_name(source))

    def reports(self, source: str, *folders: str) -> str:
        """Directory of the verification reports of ``source``, or a sub-folder of it.

        Parameters
        ----------
        source : str
            Source name (``a+b`` for several).
        *folders : str
            Sub-folders, e.g. ``"zero-shot-mch-radar"`` or ``"cv-event"``; each must be a
            safe name like ``source``.

        Raises
        ------
        ValueError
            When a name is not safe (:func:`data_catalog.names.check_path_name`).
        """
        names = [check_path_name(source)]
        names += [check_path_name(f, "report folder") for f in folders]
        return self._join("reports", *names)

    def verification(self, source: str, n_leads: int | None = None) -> str:
        """Directory of the live verification store of ``source`` (Parquet, one file per day).

        ``n_leads`` names the verification of ``forecast_store(source, n_leads)``:
        ``verification/<source>`` for the checkpoint's own horizon, else
        ``verification/<source>-<N>leads``.
        """
        name = Path(self.forecast_store(source, n_leads)).name.removesuffix(".zarr")
        return self._join("verification", name)
