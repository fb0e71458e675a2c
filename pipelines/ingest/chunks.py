"""Write whole chunks of a ``(time, y, x)`` Zarr array straight from decoded frames.

An ingest region is a run of whole time chunks whose slots each hold a decoded frame, a frame
the store already holds, or nothing (fill value). :func:`write_frames` writes such a region
one chunk at a time, without first assembling a ``(T_region, H, W)`` block:

1. *gather* the chunk's ``(t_chunk, y_chunk, x_chunk)`` values from the frames (the one copy
   of the data; Zarr makes the same copy when it cuts a chunk out of a larger array), the
   fill value in slots without a frame and beyond the grid's edge (Zarr v3 stores edge chunks
   at full size);
2. *skip* a chunk that holds only the fill value, deleting what was stored there, unless
   ``zarr.config["array.write_empty_chunks"]`` is set (what ``zarr`` and ``xr.Dataset.to_zarr``
   do);
3. *encode* it with the array's own codecs and *write* it atomically (a temporary file renamed
   over the chunk, as Zarr's ``LocalStore`` does): a crash leaves each chunk either old or new.

Chunks are encoded on a small thread pool (zstd and the NumPy copies release the GIL), like
Zarr's own writes. The fast path (steps 1-3 done here) is taken for local stores whose array is
float, C-order, with codecs ``bytes`` (little-endian) + optional ``zstd``, what
:func:`pipelines.ingest.store.template` creates; it produces the same bytes as Zarr's writer
(``tests/pipelines/test_ingest_chunks.py`` compares them file by file). Any other store or
codec chain gathers each time chunk and hands it to Zarr (``array[t0:t1] = block``), which is
slower (Zarr's asyncio round trips per chunk) but general.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.storage import LocalStore

log = logging.getLogger(__name__)

Encoder = Callable[[np.ndarray], bytes]
"""A chunk ``(t, y, x)`` of the array's dtype -> its encoded bytes."""


def chunk_encoder(array: zarr.Array) -> Encoder | None:
    """The encoder of ``array``'s chunks if this module can write them itself, else None.

    Supported: a Zarr v3 float array in a local store with the codecs ``bytes`` (little-endian
    or unspecified) followed by at most one ``zstd``.
    """
    meta = array.metadata
    if getattr(meta, "zarr_format", None) != 3 or not isinstance(array.store, LocalStore):
        return None
    if array.dtype.kind != "f" or sys.byteorder != "little":
        return None
    codecs = tuple(meta.codecs)
    if not codecs or not isinstance(codecs[0], BytesCodec):
        return None
    if codecs[0].endian is not None and codecs[0].endian.name != "little":
        return None
    rest = codecs[1:]
    if len(rest) > 1 or (rest and not isinstance(rest[0], ZstdCodec)):
        return None
    if not rest:
        return lambda chunk: chunk.tobytes()
    zstd = numcodecs.Zstd(level=rest[0].level, checksum=rest[0].checksum)  # what ZstdCodec runs
    return lambda chunk: bytes(zstd.encode(chunk))


def _fill(array: zarr.Array) -> float:
    return float(array.fill_value) if array.fill_value is not None else 0.0


def _is_fill(chunk: np.ndarray, fill: float) -> bool:
    """True when every value of ``chunk`` is the fill value (NaN fill: every value NaN)."""
    return bool(np.isnan(chunk).all()) if np.isnan(fill) else bool((chunk == fill).all())


def _gather(
    frames: Sequence[np.ndarray | None],
    t0: int,
    y0: int,
    x0: int,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    fill: float,
) -> np.ndarray:
    """The chunk ``(tc, yc, xc)`` starting at slot ``t0``, pixel ``(y0, x0)`` of ``frames``."""
    tc, yc, xc = shape
    chunk = np.empty(shape, dtype=dtype)
    for t in range(tc):
        frame = frames[t0 + t]
        if frame is None:
            chunk[t] = fill
            continue
        part = frame[y0 : y0 + yc, x0 : x0 + xc]  # (h, w), smaller at the grid's edge
        h, w = part.shape
        chunk[t, :h, :w] = part
        if h < yc or w < xc:  # Zarr v3 edge chunk: full size, fill value beyond the grid
            chunk[t, h:] = fill
            chunk[t, :h, w:] = fill
    return chunk


def _write_atomic(target: Path, data: bytes) -> None:
    """``target`` holds ``data`` or its old content, never a torn write (as Zarr does)."""
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_frames(
    array: zarr.Array,
    start: int,
    frames: Sequence[np.ndarray | None],
    threads: int | None = None,
) -> int:
    """Write ``frames`` into whole time chunks of ``array`` from index ``start``.

    Parameters
    ----------
    array : zarr.Array
        A ``(time, y, x)`` array opened for writing; its shape must cover the region.
    start : int
        First time index of the region, a multiple of the time chunk.
    frames : sequence of (numpy.ndarray or None)
        One entry per slot of the region (length a multiple of the time chunk): a frame
        ``(H, W)`` in the array's units (any float dtype, cast on the copy), or None for the
        fill value.
    threads : int, optional
        Chunks encoded at once (default: the number of CPU cores, at most 8).

    Returns
    -------
    int
        Chunks written (all-fill chunks skipped are not counted).

    Raises
    ------
    ValueError
        A region that is not whole time chunks, outside the array, or a frame of the wrong
        shape.
    """
    tc, yc, xc = (int(c) for c in array.chunks)
    n, ny, nx = (int(s) for s in array.shape)
    if start % tc or len(frames) % tc or start + len(frames) > n:
        raise ValueError(
            f"region [{start}, {start + len(frames)}) is not whole time chunks of {tc} inside "
            f"the array's {n} frames"
        )
    for frame in frames:
        if frame is not None and frame.shape != (ny, nx):
            raise ValueError(f"frame of shape {frame.shape}, the array's grid is {(ny, nx)}")
    encode = chunk_encoder(array)
    fill = _fill(array)
    if encode is None:
        return _write_through_zarr(array, start, frames, fill)
    assert isinstance(array.store, LocalStore)  # chunk_encoder checked it
    root = Path(array.store.root, array.path)
    write_empty = bool(zarr.config.get("array.write_empty_chunks"))
    shape = (tc, yc, xc)
    made: set[Path] = set()

    def one(t0: int, yi: int, xi: int) -> int:
        chunk = _gather(frames, t0, yi * yc, xi * xc, shape, array.dtype, fill)
        coords = ((start + t0) // tc, yi, xi)
        target = root / array.metadata.encode_chunk_key(coords)
        if not write_empty and _is_fill(chunk, fill):
            target.unlink(missing_ok=True)  # what Zarr does with an all-fill chunk
            return 0
        _write_atomic(target, encode(chunk))
        return 1

    jobs = list(
        itertools.product(range(0, len(frames), tc), range(-(-ny // yc)), range(-(-nx // xc)))
    )
    for t0, yi, xi in jobs:  # the chunk directories first (cheap; keeps the threads simple)
        parent = (root / array.metadata.encode_chunk_key(((start + t0) // tc, yi, xi))).parent
        if parent not in made:
            parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)
    workers = max(1, min(len(jobs), threads or min(8, os.cpu_count() or 1)))
    if workers == 1:
        return sum(one(*job) for job in jobs)
    with cf.ThreadPoolExecutor(workers, thread_name_prefix="chunks") as pool:
        futures = [pool.submit(one, *job) for job in jobs]
    return sum(future.result() for future in futures)  # re-raises the first failure


def _write_through_zarr(
    array: zarr.Array, start: int, frames: Sequence[np.ndarray | None], fill: float
) -> int:
    """The general path: one ``(tc, H, W)`` block per time chunk, written by Zarr."""
    tc = int(array.chunks[0])
    ny, nx = (int(s) for s in array.shape[1:])
    for t0 in range(0, len(frames), tc):
        block = _gather(frames, t0, 0, 0, (tc, ny, nx), array.dtype, fill)
        array[start + t0 : start + t0 + tc] = block
    return -(-ny // int(array.chunks[1])) * -(-nx // int(array.chunks[2])) * len(frames) // tc
