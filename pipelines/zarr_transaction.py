"""One transaction layer for the Zarr stores this package writes (observations and forecasts).

Both stores (:mod:`pipelines.ingest.store`, :mod:`pipelines.forecast.store`) follow the same
protocol, defined here once:

Lock (one writer per store)
    :func:`write_lock` holds an ``fcntl.flock`` on ``<store>.lock`` (local file systems; a no-op
    for fsspec URLs, whose writers must be serialised by their scheduler). The operating system
    releases it when the holder dies, so a killed writer never leaves a stale lock. Whoever
    takes the lock first removes the staging siblings (below) a killed writer left.
    **A second writer waits** for the lock, polling, up to ``timeout`` seconds (default
    :data:`DEFAULT_LOCK_TIMEOUT_S`), then raises :class:`StoreBusyError`, a ``TimeoutError``
    (hence an ``OSError``) that names the store: the flows' I/O tasks retry it with backoff,
    the CLI reports it in one line.
Staged create + rename
    :func:`staged_create` writes a new store into a hidden sibling ``.<name>.<uuid>.tmp`` and
    renames it into place, so a store path either does not exist or holds a complete store.
    :func:`discard_staging` removes the siblings a killed writer left (recovery); every
    :func:`write_lock` runs it as soon as it holds the lock, so the next write of either store
    cleans up after a killed one.
Resize
    :func:`resize_along` sets the length of every array along one dimension (metadata only;
    chunks beyond the new length are dropped by zarr).
Commit
    The consolidated metadata in the root ``zarr.json`` is the commit record: readers
    (``xr.open_zarr``) see the shapes recorded there. :func:`commit` rewrites it in one atomic
    file write, after the data and the resized arrays are in place.
Quiet consolidation
    :func:`quiet_consolidation` silences zarr's "consolidated metadata is not part of the Zarr
    v3 specification" warning, the one filter every reader and writer here needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import zarr

from data_catalog.paths import is_url

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "StoreBusyError",
    "commit",
    "discard_staging",
    "quiet_consolidation",
    "resize_along",
    "staged_create",
    "staging_path",
    "write_lock",
]

log = logging.getLogger(__name__)

#: How long a second writer waits for the lock: longer than any single write of either store
#: (a forecast write takes seconds, an ingest of a chunk of frames well under a minute), short
#: enough that a wedged writer surfaces as an error within the hour of a scheduled run.
DEFAULT_LOCK_TIMEOUT_S = 600.0
#: Polling interval while waiting for the lock.
LOCK_POLL_S = 0.05


class StoreBusyError(TimeoutError):
    """Another process holds the store's write lock beyond the timeout (retryable)."""


@contextlib.contextmanager
def quiet_consolidation() -> Iterator[None]:
    """Silence zarr's warning that consolidated metadata is not in the Zarr v3 spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


@contextlib.contextmanager
def write_lock(
    path: str | os.PathLike[str], timeout: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the exclusive write lock of the store at ``path`` (no-op for URLs).

    Parameters
    ----------
    path : str or path-like
        The store; the lock file is ``<path>.lock``.
    timeout : float
        Seconds to wait for another writer (0 = do not wait).

    Raises
    ------
    StoreBusyError
        If the lock is not acquired within ``timeout`` seconds.
    """
    if is_url(os.fspath(path)):
        yield
        return
    lock = Path(f"{os.fspath(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(lock, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store {os.fspath(path)} is being written by another process (lock "
                        f"{lock} still held after {timeout:g} s); retry later"
                    ) from None
                time.sleep(LOCK_POLL_S)
        try:
            # Staging siblings are only made under this lock, so any present now were left by
            # a writer that was killed: remove them before this writer starts.
            discard_staging(path)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def staging_path(final: str | os.PathLike[str]) -> Path:
    """A fresh hidden sibling ``.<name>.<uuid>.tmp`` of ``final`` to build a store in."""
    final = Path(final)
    return final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")


def staged_create(
    final: str | os.PathLike[str],
    write: Callable[[Path], None],
    on_written: Callable[[], None] | None = None,
) -> None:
    """Build a new local store with ``write(staging)`` and rename it to ``final``.

    Parameters
    ----------
    final : str or path-like
        Where the store goes; must not exist.
    write : callable
        Writes the complete store at the staging path it is given.
    on_written : callable, optional
        Called between the write and the rename (tests stop the process there).

    Raises
    ------
    FileExistsError
        If ``final`` exists already.
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} exists already")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(final)
    try:
        write(staging)
        if on_written is not None:
            on_written()
        os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def discard_staging(final: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging siblings of ``final`` left by killed writers (call under the lock)."""
    final = Path(final)
    leftovers = sorted(final.parent.glob(f".{final.name}.*.tmp"))
    for leftover in leftovers:
        log.warning("removing %s left by an interrupted write", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    return leftovers


def resize_along(path: str | os.PathLike[str], dim: str, length: int) -> list[str]:
    """Set the ``dim`` length of every array of the store at ``path`` to ``length``.

    Not a commit: readers keep the consolidated shapes until :func:`commit`.

    Returns
    -------
    list of str
        Names of the arrays that have ``dim``, sorted with ``dim`` itself last.
    """
    group = zarr.open_group(os.fspath(path), mode="r+", use_consolidated=False)
    names = []
    for name, array in group.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        if dim not in dims:
            continue
        names.append(name)
        axis = dims.index(dim)
        if array.shape[axis] != length:
            shape = list(array.shape)
            shape[axis] = length
            array.resize(tuple(shape))
    return sorted(names, key=lambda name: (name == dim, name))


def commit(path: str | os.PathLike[str]) -> None:
    """Make the store's current array shapes visible: rewrite the consolidated metadata."""
    with quiet_consolidation():
        zarr.consolidate_metadata(os.fspath(path))
