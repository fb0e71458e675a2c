"""Back-fills of the forecast store: a sorted insert without reading or copying any data.

A forecast earlier than the store's newest init time, and not in it yet, goes between two
entries, so every later entry moves one index. :func:`copy_with_gap` builds that in a copy next
to the store, hard-linking the data chunk files (one per init time and variable, never rewritten
in place) and renaming them one slot later, so the cost is one link and one rename per later
entry whatever the grid size; :func:`swap_in` then replaces the store by the committed copy.
The live store is untouched until the swap, so a writer killed at any point leaves either the
old store (and a staging copy the next lock holder removes) or the new one; :func:`recover`
undoes an interrupted two-rename swap.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import zarr

from data_catalog.vocabulary import INIT_TIME

logger = logging.getLogger(__name__)


def copy_with_gap(path: Path, tmp: Path, index: int, n: int) -> None:
    """Copy the store at ``path`` to ``tmp`` with entry ``index`` free and later ones moved.

    Data chunk files are hard-linked and renamed one slot later in the copy (the live store
    keeps its names); the small per-init arrays (times, flags, provenance: a few bytes per init
    time) are shifted in memory. The arrays get length ``n + 1``; slot ``index`` keeps a stale
    copy of its old small values until the caller writes the new entry there.
    """
    _link_copy(path, tmp)
    dst = zarr.open_group(str(tmp), mode="r+", use_consolidated=False)
    for name, target in dst.arrays():
        dims = target.metadata.dimension_names or ()
        if INIT_TIME not in dims:
            continue
        if dims.index(INIT_TIME) != 0:
            raise ValueError(f"{name}: init_time must be the first dim, got {dims}")
        if _is_data_array(tmp / name):
            target.resize((n + 1, *target.shape[1:]))
            _shift_chunk_files(tmp / name, index, n)
        else:  # small per-init arrays: shift in memory
            values = target[...]
            target.resize((n + 1, *target.shape[1:]))
            target[index + 1 :] = values[index:]


def swap_in(tmp: Path, path: Path, stage: Callable[[str], None]) -> None:
    """Replace the store at ``path`` by the committed copy ``tmp``; ``stage`` names each step.

    Linux ``renameat2`` exchanges the two directories atomically (readers see the old or the
    new store, never none); elsewhere two renames, which :func:`recover` undoes if the writer
    dies between them.
    """
    if _exchange(tmp, path):
        stage("swapped")
        shutil.rmtree(tmp, ignore_errors=True)  # now the old store
        return
    old = path.with_name(tmp.name.removesuffix(".tmp") + ".old")
    os.rename(path, old)
    stage("swapped_out")
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def recover(path: Path) -> None:
    """Undo what a killed back-fill left (called under the lock).

    A store swapped out by an interrupted two-rename :func:`swap_in` is renamed back
    and older swapped-out copies are removed (the lock has already removed the staging
    copies, :func:`pipelines.zarr_transaction.write_lock`).
    """
    olds = sorted(path.parent.glob(f".{path.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if olds and not path.exists():
        logger.warning("restoring %s from %s left by an interrupted back-fill", path, olds[-1])
        os.rename(olds[-1], path)
        olds = olds[:-1]
    for leftover in olds:
        logger.warning("removing %s left by an interrupted forecast write", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def _link_copy(path: Path, target: Path) -> None:
    """Copy the store at ``path`` to ``target``, hard-linking the data chunk files.

    Data chunks (one file per init time) are never rewritten in place, only renamed or added,
    so sharing their inodes with the live store is safe and costs no data I/O; metadata and
    the small per-init arrays, which are rewritten, are real copies.
    """

    failures: list[OSError] = []

    def copy(src: str, dst: str) -> None:
        if _is_chunk_file(path, Path(src)):
            try:
                os.link(src, dst)
                return
            except OSError:  # no hard links on this file system: a real copy is as safe
                pass
        try:
            shutil.copy2(src, dst)
        except OSError as error:
            failures.append(error)
            raise

    try:
        shutil.copytree(path, target, copy_function=copy)
    except shutil.Error as error:
        # copytree goes on past a failed file and raises one Error listing them all (thousands
        # of lines on a full disk); the first failure, with its errno (ENOSPC...), says it all.
        if failures:
            raise failures[0] from None
        raise OSError(f"copying {path} to {target} failed for {len(error.args[0])} files") from None


@functools.cache
def _array_meta(meta_file: Path, mtime_ns: int) -> tuple[tuple[str, ...], str]:
    """``(dimension names, chunk key separator)`` of the array whose ``zarr.json`` is given."""
    meta = json.loads(meta_file.read_text())
    if meta.get("node_type") != "array":
        return (), "/"
    encoding = meta.get("chunk_key_encoding") or {}
    separator = (encoding.get("configuration") or {}).get("separator", "/")
    return tuple(meta.get("dimension_names") or ()), separator


def _meta(array_dir: Path) -> tuple[tuple[str, ...], str]:
    meta = array_dir / "zarr.json"
    if not meta.is_file():
        return (), "/"
    return _array_meta(meta, meta.stat().st_mtime_ns)


def _is_data_array(array_dir: Path) -> bool:
    """True for a forecast variable ``(init_time, lead_time, y, x)``: one chunk per init time."""
    dims = _meta(array_dir)[0]
    return len(dims) == 4 and dims[0] == INIT_TIME


def _is_chunk_file(store: Path, file: Path) -> bool:
    """True for a chunk file of a data array (``<array>/c.<i>.0.0.0`` or ``<array>/c/<i>/...``)."""
    parts = file.relative_to(store).parts
    if len(parts) < 2 or not _is_data_array(store / parts[0]):
        return False
    return parts[1] == "c" or parts[1].startswith("c.")


def _shift_chunk_files(array_dir: Path, index: int, n: int) -> None:
    """Rename the chunk files of entries ``index..n-1`` one slot later (last first).

    Handles both chunk-key layouts: flat ``c.<i>.0.0.0`` files (this layout) and the nested
    ``c/<i>/0/0/0`` directories of stores written before it.
    """
    separator = _meta(array_dir)[1]
    by_index: dict[int, list[str]] = {}  # flat layout: entry index -> its chunk file names
    if separator != "/":
        for name in os.listdir(array_dir):
            if name.startswith("c."):
                by_index.setdefault(int(name.split(".")[1]), []).append(name)
    for i in reversed(range(index, n)):
        if separator == "/":
            pairs = [(array_dir / "c" / str(i), array_dir / "c" / str(i + 1))]
        else:
            pairs = [
                (array_dir / name, array_dir / name.replace(f"c.{i}.", f"c.{i + 1}.", 1))
                for name in by_index.get(i, [])
            ]
        for src, dst in pairs:
            if dst.is_dir():
                shutil.rmtree(dst)
            if src.exists():  # an all-NaN chunk is not stored
                os.replace(src, dst)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux ``renameat2`` exchange); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        logger.debug("renameat2 exchange failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True
