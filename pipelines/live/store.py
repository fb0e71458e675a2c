"""The verification store ``DIR/verification/<source>/``: score rows of every verified forecast.

Layout: one Parquet file per UTC day of ``init_time``, ``day=YYYY-MM-DD.parquet``, holding the
tidy rows of every forecast entry initialised that day (columns :data:`COLUMNS`; one row per
init time, lead, method, score, variable and threshold, plus ``bin``/``count`` for reliability
rows). Each row carries its entry's ``fingerprint`` (what the scores were computed from: see
:func:`pipelines.live.verify.entry_fingerprint`) so a rerun recognises entries already scored.

Why Parquet and not Zarr: the scores are a long, sparse, growing table (thresholds, reliability
bins and probabilistic scores exist only for some entries, methods come and go), read by time
range and grouped by lead/method — a table, not a grid. Parquet keeps the ``scores.csv`` columns
with their dtypes, compresses them well, and a day file is rewritten whole in a few
milliseconds, so replacing one entry's rows (a late observation, a re-run forecast) is a plain
atomic file replace rather than a resize/region protocol. Reading the last 30 days touches at
most 31 files whatever the archive's length, which keeps the hourly page flat in time and memory.

Crash safety: every write holds ``<dir>.lock`` (:func:`pipelines.zarr_transaction.write_lock`)
and replaces a day file atomically (write ``.day=….parquet.<uuid>.tmp``, fsync, ``os.replace``);
a writer killed at any point leaves each day file either old or new, and the next writer removes
its temporary files. Readers need no lock.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from pipelines.zarr_transaction import write_lock

logger = logging.getLogger(__name__)

COLUMNS = (
    "init_time",
    "lead_time_minutes",
    "method",
    "score",
    "variable",
    "threshold",
    "bin",
    "count",
    "value",
    "fingerprint",
)
"""Columns of every row (``threshold``/``bin``/``count`` NaN where they do not apply)."""

_DTYPES = {
    "init_time": "datetime64[ns]",
    "lead_time_minutes": "float64",
    "method": "object",
    "score": "object",
    "variable": "object",
    "threshold": "float64",
    "bin": "float64",
    "count": "float64",
    "value": "float64",
    "fingerprint": "object",
}

_FAULT_HOOK: Callable[[str], None] | None = None
"""Test hook called with the name of each write stage (tests kill the process there)."""


def stage(name: str) -> None:
    """Call the fault hook (tests), else the ``NOWCAST_LIVE_KILL_AT`` hook, at stage ``name``.

    ``NOWCAST_LIVE_KILL_AT=<stage>`` makes the process SIGKILL itself at that stage: the
    resume tests run ``nowcast verify`` in a subprocess killed exactly there.
    """
    if _FAULT_HOOK is not None:
        _FAULT_HOOK(name)
    if os.environ.get("NOWCAST_LIVE_KILL_AT") == name:
        import signal

        logger.warning("NOWCAST_LIVE_KILL_AT=%s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)


def empty_rows() -> pd.DataFrame:
    """An empty frame with the store's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})


def normalise(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every column of :data:`COLUMNS` (missing ones NaN), in order and dtype."""
    out = rows.copy()
    for column in COLUMNS:
        if column not in out:
            out[column] = float("nan") if _DTYPES[column] == "float64" else None
    out = out[list(COLUMNS)]
    out["init_time"] = pd.to_datetime(out["init_time"], utc=True).dt.tz_localize(None)
    return out.astype(_DTYPES)


def _day(t: pd.Timestamp) -> str:
    return f"day={pd.Timestamp(t):%Y-%m-%d}.parquet"


class VerificationStore:
    """The Parquet day files of one source's verification.

    Parameters
    ----------
    path : str or os.PathLike
        The store directory, ``DataDir.verification(source)``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def day_files(self) -> list[Path]:
        """The committed day files, oldest first."""
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob("day=*.parquet"))

    def read(
        self, since: pd.Timestamp | str | None = None, until: pd.Timestamp | str | None = None
    ) -> pd.DataFrame:
        """Rows with ``since <= init_time <= until`` (naive UTC; None = unbounded).

        Only the day files of the period are opened, so the cost depends on the period, not on
        the length of the archive.
        """
        lo = None if since is None else pd.Timestamp(since).tz_localize(None).floor("D")
        hi = None if until is None else pd.Timestamp(until).tz_localize(None)
        frames = []
        for file in self.day_files():
            day = pd.Timestamp(file.stem.removeprefix("day="))
            if (lo is not None and day < lo) or (hi is not None and day > hi):
                continue
            frames.append(pd.read_parquet(file))
        if not frames:
            return empty_rows()
        rows = normalise(pd.concat(frames, ignore_index=True))
        if since is not None:
            rows = rows[rows["init_time"] >= pd.Timestamp(since).tz_localize(None)]
        if hi is not None:
            rows = rows[rows["init_time"] <= hi]
        return rows.reset_index(drop=True)

    def fingerprints(
        self, since: pd.Timestamp | str | None = None, until: pd.Timestamp | str | None = None
    ) -> dict[pd.Timestamp, str]:
        """``init_time -> fingerprint`` of the entries scored in the period."""
        rows = self.read(since, until)
        first = rows.drop_duplicates("init_time")
        return dict(zip(first["init_time"], first["fingerprint"], strict=True))

    def write(self, entries: Mapping[pd.Timestamp, pd.DataFrame], lock_timeout: float = 600.0):
        """Replace the rows of each init time in ``entries`` (idempotent; atomic per day).

        Parameters
        ----------
        entries : mapping of Timestamp to pandas.DataFrame
            Per init time (naive UTC), all its rows (:data:`COLUMNS`); rows of other init
            times already stored are kept.
        lock_timeout : float
            Seconds to wait for another writer.
        """
        by_day: dict[str, dict[pd.Timestamp, pd.DataFrame]] = {}
        for init, rows in entries.items():
            by_day.setdefault(_day(init), {})[pd.Timestamp(init)] = normalise(rows)
        self.path.mkdir(parents=True, exist_ok=True)
        with write_lock(self.path, timeout=lock_timeout):
            self._discard_tmp()
            for name, day_entries in sorted(by_day.items()):
                self._write_day(self.path / name, day_entries)

    def _write_day(self, file: Path, entries: Mapping[pd.Timestamp, pd.DataFrame]) -> None:
        old = normalise(pd.read_parquet(file)) if file.exists() else empty_rows()
        keep = old[~old["init_time"].isin(list(entries))]
        new = pd.concat([keep, *entries.values()], ignore_index=True)
        new = new.sort_values(["init_time", "method", "score", "lead_time_minutes"], kind="stable")
        tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
        new.reset_index(drop=True).to_parquet(tmp, index=False)
        stage("day_written")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, file)
        stage("day_committed")
        logger.debug("wrote %d rows (%d entries replaced) to %s", len(new), len(entries), file)

    def _discard_tmp(self) -> None:
        for tmp in self.path.glob(".day=*.tmp"):
            logger.warning("removing %s left by a killed writer", tmp)
            tmp.unlink()
