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
import functools
import itertools
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.storage import LocalStore

log = logging.getLogger(__name__)

Encoder = Callable[[np.ndarray], bytes]
"""A chunk ``(t, y, x)`` of the array's dtype -> its encoded bytes."""
Check = Callable[[str, np.ndarray, Sequence[str | None]], None]
"""``(array name, gathered chunk (t, y, x), label of each time slot or None)``: raises if the
chunk must not be written (run on the thread that encodes it, while the chunk is in cache)."""


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
    flat = chunk.reshape(-1)
    sample = flat[:: max(1, flat.size // 64)]  # a chunk with data almost always shows it here
    if np.isnan(fill):
        return bool(np.isnan(sample).all() and np.isnan(flat).all())
    return bool((sample == fill).all() and (flat == fill).all())


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


class ChunkWriter:
    """Writes the whole time chunks of a region of ``(time, y, x)`` arrays as their frames arrive.

    A time chunk is gathered, encoded and written (on the thread pool) as soon as every slot
    expected in it has been :meth:`put`, so decoding the next files overlaps with encoding the
    chunks already complete. Use as a context manager: leaving the block waits for every
    chunk submitted; after an exception nothing more is submitted.

    Parameters
    ----------
    arrays : mapping
        Name -> Zarr array opened for writing, all of the same shape and chunks, their time
        axis covering the region.
    start, stop : int
        The region ``[start, stop)`` of time indices, whole time chunks.
    expected : numpy.ndarray
        Time indices that will receive a frame, shape ``(n,)`` int; other slots get the fill
        value.
    threads : int, optional
        Chunks encoded at once (default: the number of CPU cores, at most 8).
    check : callable, optional
        Run on every gathered chunk before it is encoded (:data:`Check`); when it raises, that
        chunk and every later one is left unwritten and the error is raised to the caller (at
        the next :meth:`put` or on leaving the block).

    Raises
    ------
    ValueError
        A region that is not whole time chunks inside the arrays, arrays that disagree, a slot
        outside ``expected`` or put twice, a frame of the wrong shape.
    """

    def __init__(
        self,
        arrays: Mapping[str, zarr.Array],
        start: int,
        stop: int,
        expected: np.ndarray,
        threads: int | None = None,
        check: Check | None = None,
    ) -> None:
        first = next(iter(arrays.values()))
        layouts = {(tuple(a.shape), tuple(a.chunks)) for a in arrays.values()}
        if len(layouts) != 1:
            raise ValueError(f"arrays of different shapes or chunks: {sorted(layouts)}")
        tc = int(first.chunks[0])
        if start % tc or stop % tc or not 0 <= start < stop <= first.shape[0]:
            raise ValueError(
                f"region [{start}, {stop}) is not whole time chunks of {tc} inside the "
                f"array's {first.shape[0]} frames"
            )
        expected = np.unique(np.asarray(expected, dtype="int64"))
        if expected.size and (expected[0] < start or expected[-1] >= stop):
            raise ValueError(f"expected slots {expected} are outside [{start}, {stop})")
        self.arrays = dict(arrays)
        self.start, self.stop, self.tc = start, stop, tc
        self.grid = (int(first.shape[1]), int(first.shape[2]))
        self.slots: dict[str, list[np.ndarray | None]] = {
            n: [None] * (stop - start) for n in arrays
        }
        self.labels: list[str | None] = [None] * (stop - start)  # names a slot in errors
        self._check = check
        self._failed: BaseException | None = None  # the first failed chunk's error
        self._expected = set(expected.tolist())
        chunks = (expected - start) // tc
        self._missing = np.bincount(chunks, minlength=(stop - start) // tc)  # (n_time_chunks,)
        self._encoders = {name: chunk_encoder(array) for name, array in arrays.items()}
        self._threads = max(1, threads or min(8, os.cpu_count() or 1))
        self._pool: cf.ThreadPoolExecutor | None = None
        self._futures: list[cf.Future[int]] = []
        self._made: set[Path] = set()

    def __enter__(self) -> ChunkWriter:
        if self._threads > 1:
            self._pool = cf.ThreadPoolExecutor(self._threads, thread_name_prefix="chunks")
        for chunk in np.flatnonzero(self._missing == 0):  # no frame expected: fill values
            self._submit(int(chunk))
        return self

    def put(self, index: int, frames: Mapping[str, np.ndarray], label: str | None = None) -> None:
        """The frames ``(H, W)`` of time index ``index``, one per array (views are fine:
        they are copied once, into their chunks); ``label`` names them in a failed check."""
        if self._failed is not None:
            raise self._failed  # a chunk failed: stop producing frames
        if index not in self._expected:
            raise ValueError(f"slot {index} is not expected, or was put already")
        if set(frames) != set(self.arrays):
            raise ValueError(f"frames of {sorted(frames)}, the arrays are {sorted(self.arrays)}")
        for name, frame in frames.items():
            if frame.shape != self.grid:
                raise ValueError(f"{name}: frame of shape {frame.shape}, the grid is {self.grid}")
            self.slots[name][index - self.start] = frame
        self.labels[index - self.start] = label
        self._expected.remove(index)
        chunk = (index - self.start) // self.tc
        self._missing[chunk] -= 1
        if self._missing[chunk] == 0:
            self._submit(chunk)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # every chunk submitted is finished or failed
        if error is not None:
            return  # the caller's error propagates
        if self._failed is not None:
            raise self._failed  # the first chunk that failed its check
        for future in self._futures:
            future.result()  # re-raises an I/O or encoding failure
        if self._expected:
            raise ValueError(f"no frame was put for slots {sorted(self._expected)[:5]}")

    @property
    def written(self) -> int:
        """Chunks written so far (all-fill chunks skipped are not counted)."""
        return sum(f.result() for f in self._futures if f.done() and not f.exception())

    def _submit(self, chunk: int) -> None:
        t0 = chunk * self.tc  # slot of the chunk's first frame
        for name, array in self.arrays.items():
            encode = self._encoders[name]
            if encode is None:
                jobs = [functools.partial(self._through_zarr, name, array, t0)]
            else:
                ny, nx = self.grid
                yc, xc = int(array.chunks[1]), int(array.chunks[2])
                jobs = []
                for yi, xi in itertools.product(range(-(-ny // yc)), range(-(-nx // xc))):
                    coords = ((self.start + t0) // self.tc, yi, xi)
                    target = Path(
                        array.store.root, array.path, array.metadata.encode_chunk_key(coords)
                    )
                    if target.parent not in self._made:  # directories here, not in the threads
                        target.parent.mkdir(parents=True, exist_ok=True)
                        self._made.add(target.parent)
                    jobs.append(
                        functools.partial(self._encoded, name, array, encode, t0, yi, xi, target)
                    )
            for job in jobs:
                if self._pool is None:
                    future: cf.Future[int] = cf.Future()
                    future.set_result(job())
                else:
                    future = self._pool.submit(job)
                self._futures.append(future)

    def _encoded(
        self,
        name: str,
        array: zarr.Array,
        encode: Encoder,
        t0: int,
        yi: int,
        xi: int,
        target: Path,
    ) -> int:
        tc, yc, xc = (int(c) for c in array.chunks)
        fill = _fill(array)
        if self._failed is not None:
            return 0  # another chunk failed: write nothing more
        chunk = _gather(self.slots[name], t0, yi * yc, xi * xc, (tc, yc, xc), array.dtype, fill)
        self._run_check(name, chunk, t0)
        if not zarr.config.get("array.write_empty_chunks") and _is_fill(chunk, fill):
            target.unlink(missing_ok=True)  # what Zarr does with an all-fill chunk
            return 0
        _write_atomic(target, encode(chunk))
        return 1

    def _run_check(self, name: str, chunk: np.ndarray, t0: int) -> None:
        if self._check is None:
            return
        try:
            self._check(name, chunk, self.labels[t0 : t0 + self.tc])
        except BaseException as error:
            if self._failed is None:
                self._failed = error
            raise

    def _through_zarr(self, name: str, array: zarr.Array, t0: int) -> int:
        """The general path: the ``(tc, H, W)`` block of the time chunk, written by Zarr."""
        if self._failed is not None:
            return 0
        fill = _fill(array)
        block = _gather(self.slots[name], t0, 0, 0, (self.tc, *self.grid), array.dtype, fill)
        self._run_check(name, block, t0)
        array[self.start + t0 : self.start + t0 + self.tc] = block
        return -(-self.grid[0] // int(array.chunks[1])) * -(-self.grid[1] // int(array.chunks[2]))


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
        ``(H, W)`` (any float dtype, cast on the copy), or None for the fill value.
    threads : int, optional
        Chunks encoded at once (default: the number of CPU cores, at most 8).

    Returns
    -------
    int
        Chunks written (all-fill chunks skipped are not counted).

    Raises
    ------
    ValueError
        See :class:`ChunkWriter`.
    """
    expected = np.array([i for i, f in enumerate(frames) if f is not None], "int64") + start
    with ChunkWriter({"": array}, start, start + len(frames), expected, threads) as writer:
        for i, frame in enumerate(frames):
            if frame is not None:
                writer.put(start + i, {"": frame})
    return writer.written
