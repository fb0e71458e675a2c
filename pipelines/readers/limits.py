"""Memory bounded by the catalog grid: what a reader checks before it inflates or decodes.

A file states its own sizes (a RADOLAN ``GP``, a PGM width/height, a netCDF or HDF5
dataset's shape) and may compress them a thousand-fold, so decoding first and checking after
lets a 2 KB file claim gigabytes. Readers therefore

- inflate gzip/bzip2 payloads with :func:`inflate`, streamed, stopping at a cap derived from
  the catalog grid (:func:`payload_cap`: a small multiple of what a real frame takes);
- check an array's declared shape and dtype with :func:`check_declared` before reading it
  (HDF5 datasets, netCDF variables before ``load()``).

A hostile file then costs at most about twice the expected frame, and the ``ValueError``
names the file, the declared size and the catalog's.
"""

from __future__ import annotations

import bz2
import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import h5py
import numpy as np

from data_catalog.spec import SourceSpec

MAX_ITEMSIZE = 8
"""Widest pixel type a reader decodes (float64 / int64), bytes."""
HEADER_SLACK = 1 << 16
"""Bytes allowed beyond the pixels for headers and trailers (64 KiB; RADOLAN/PGM headers are
under 1 KiB, the ESRI ASCII header a few lines)."""
_CHUNK = 1 << 20  # read compressed input 1 MiB at a time


def frame_pixels(spec: SourceSpec) -> int:
    """Pixels of one frame of the catalog grid, ``H * W``."""
    height, width = spec.grid.shape
    return int(height) * int(width)


def payload_cap(spec: SourceSpec, bytes_per_pixel: float, factor: float = 2.0) -> int:
    """Most bytes a decompressed payload of one frame may take: ``factor`` x the expected size.

    Parameters
    ----------
    spec : SourceSpec
        The source; its grid gives ``H * W``.
    bytes_per_pixel : float
        What one pixel takes in the payload (2 for RADOLAN words, 1 for an 8-bit PGM; for
        text, the longest value one expects, e.g. 8 characters).
    factor : float
        Allowed multiple of the expected size.
    """
    return int(factor * frame_pixels(spec) * bytes_per_pixel) + HEADER_SLACK


def _gzip() -> zlib._Decompress:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: gzip header and trailer


def _inflate_stream(make: Callable[[], Any], raw: bytes, cap: int) -> tuple[bytearray, bool, bool]:
    """Decompress ``raw`` with decompressor objects from ``make``, stopping past ``cap`` bytes.

    Returns ``(output, over_cap, complete)``; concatenated members (``cat a.gz b.gz``) are
    read in turn, trailing NUL padding is ignored.
    """
    out = bytearray()
    decompress, pending = make(), raw
    while True:
        out += decompress.decompress(pending, cap + 1 - len(out))  # max_length >= 1
        if len(out) > cap:
            return out, True, False
        if decompress.eof:
            tail = decompress.unused_data
            if not tail.strip(b"\0"):
                return out, False, True
            decompress, pending = make(), tail  # the next member
            continue
        pending = getattr(decompress, "unconsumed_tail", b"")  # zlib keeps unread input
        if not pending and getattr(decompress, "needs_input", True):
            return out, False, False  # input exhausted before the end: truncated


def inflate(raw: bytes, cap: int, path: str, what: str = "file") -> bytes | bytearray:
    """``raw`` decompressed (gzip or bzip2 by its magic bytes; else unchanged), at most ``cap``
    bytes (a ``bytearray`` when inflated: no second copy of the payload).

    Parameters
    ----------
    raw : bytes
        The file's bytes.
    cap : int
        Most decompressed bytes accepted (:func:`payload_cap`).
    path : str
        Named in errors.
    what : str
        The format, for messages (``"RADOLAN file"``).

    Raises
    ------
    ValueError
        Naming ``path`` when the payload is corrupt or truncated, or inflates beyond ``cap``
        (the message gives both sizes); decompression stops there, so memory stays bounded.
    """
    if raw[:2] == b"\x1f\x8b":
        make, kind = _gzip, "gzip"
    elif raw[:3] == b"BZh":
        make, kind = bz2.BZ2Decompressor, "bzip2"
    else:
        if len(raw) > cap:
            raise ValueError(
                f"{path}: {what} has {len(raw):,} bytes, more than the {cap:,} one frame of "
                "its source's grid can take"
            )
        return raw
    try:
        out, over, complete = _inflate_stream(make, raw, cap)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated {kind} {what}: {error}") from None
    if over:
        raise ValueError(
            f"{path}: {kind} {what} of {len(raw):,} bytes inflates beyond {cap:,} bytes, more "
            "than one frame of its source's grid can take (a decompression bomb or the wrong "
            "source); stopped there"
        )
    if not complete:
        raise ValueError(f"{path}: corrupt or truncated {kind} {what} (the stream ends early)")
    return out


def check_declared(
    shape: Sequence[int],
    dtype: np.dtype | type | str,
    spec: SourceSpec,
    path: str,
    name: str,
    max_frames: int | None = 1,
) -> None:
    """Check an array's declared ``shape`` and ``dtype`` before reading it.

    Parameters
    ----------
    shape : sequence of int
        As declared by the file: ``(H, W)`` or ``(T, H, W)`` (``T`` at most ``max_frames``).
    dtype : numpy dtype-like
        Declared element type; must be numeric (bool, integer, float) of at most
        :data:`MAX_ITEMSIZE` bytes.
    spec : SourceSpec
        The source; its grid is the expected ``(H, W)``.
    path, name : str
        The file and the array's name inside it, for messages.
    max_frames : int or None
        Most leading frames accepted; ``None`` for files holding a time series, 0 for a 2-D
        array only.

    Raises
    ------
    ValueError
        Naming the file, the array, the declared shape/dtype and the catalog grid.
    """
    shape = tuple(int(n) for n in shape)
    expected = tuple(spec.grid.shape)
    if len(shape) not in (2, 3) or shape[-2:] != expected:
        raise ValueError(
            f"{path}: grid shape {shape[-2:]} != {expected} of source {spec.name!r} ({name} "
            f"declares {shape}, ~{_size(shape, dtype)}; not read)"
        )
    if len(shape) == 3 and max_frames == 0:
        raise ValueError(
            f"{path}: {name} declares shape {shape}, expected one 2-D frame {expected}; not read"
        )
    if len(shape) == 3 and max_frames is not None and shape[0] > max_frames:
        raise ValueError(
            f"{path}: {name} declares {shape[0]} frames of {expected}, at most {max_frames} "
            "expected in one file of this format; not read"
        )
    kind = np.dtype(dtype)
    if kind.kind not in "biuf" or kind.itemsize > MAX_ITEMSIZE:
        raise ValueError(
            f"{path}: {name} has element type {kind} (a numeric type of at most "
            f"{MAX_ITEMSIZE} bytes expected); not read"
        )


def read_dataset(
    h5: h5py.File, name: str, spec: SourceSpec, path: str, max_frames: int | None = 1
) -> np.ndarray:
    """The HDF5 dataset ``name`` as an array, its shape and dtype checked before it is read.

    Parameters
    ----------
    h5 : h5py.File
        The open file.
    name : str
        Path of the dataset in it.
    spec, path, max_frames
        As for :func:`check_declared`.

    Raises
    ------
    ValueError
        When ``name`` is not a dataset, or its declared shape or dtype does not fit the grid.
    """
    dataset = h5.get(name)
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{path}: {name} is not an HDF5 dataset")
    check_declared(dataset.shape, dataset.dtype, spec, path, name, max_frames)
    return dataset[...]


def _size(shape: Sequence[int], dtype: np.dtype | type | str) -> str:
    try:
        itemsize = np.dtype(dtype).itemsize or 1
    except TypeError:
        itemsize = 1
    nbytes = math.prod(shape) * itemsize
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes} B"  # pragma: no cover


__all__ = [
    "HEADER_SLACK",
    "MAX_ITEMSIZE",
    "check_declared",
    "frame_pixels",
    "inflate",
    "payload_cap",
    "read_dataset",
]
