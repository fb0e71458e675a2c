"""Readers: decode source files into frames on the catalog grid, in physical units.

The contract
------------
Every reader is registered in :data:`READERS` under the name a catalog entry gives in
``reader`` and is a function ``read_file(path: str, spec: SourceSpec) -> Frames`` for ONE
file (local path or fsspec URL). :func:`read_source_frames` is what callers use:

``read_source_frames(spec, paths) -> xarray.Dataset`` with

- dims ``(time, y, x)`` (``data_catalog.vocabulary``); row 0 is the file's first row (north
  for radar, ``y_origin`` in the grid spec says which);
- one **float32** data variable per catalog variable (catalog order), in the spec's
  **physical units** (radar: rain rate ``mm/h``; accumulations over ``n`` minutes are
  multiplied by ``60/n``; reflectivity goes through ``Z = a R^b`` with the spec's
  ``reader_options`` ``zr_a``/``zr_b``, 223/1.53 for FMI as in pysteps; the attr
  ``conversion`` says what was done), attrs ``units``, ``standard_name``, ``long_name``,
  ``valid_min``/``valid_max``, ``grid_mapping = "crs"``;
- **NaN** wherever the file says no data (``undetect``/zero-echo values are 0 rain);
- coord ``time``: ``datetime64[ns]``, UTC, strictly increasing, from the file's content when it
  carries a time (checked against the file name when both exist), else from the file name;
- coords 1-D ``y``/``x`` (pixel centres; projected metres, or degrees for geographic grids) and
  2-D ``latitude``/``longitude`` (degrees) computed from the spec grid with pyproj;
- a scalar ``crs`` variable whose attrs are ``pyproj.CRS(spec.grid.crs).to_cf()``;
- global attrs ``Conventions``, ``source_name``, ``time_step``.

Checks (each a ``ValueError`` naming the file): unreadable/corrupt/truncated file, grid shape
differing from the spec, a CRS or extent in the file differing from the spec's, unknown units
or quantity, duplicate or non-monotonic timestamps (within a file or across files), values
outside ``valid_range``, file-name time disagreeing with the file's own time.

Options: the catalog's ``reader_options`` are a typed
:class:`data_catalog.reader_options.ReaderOptions`. Every reader shares ``out_of_range``
(quality control of values outside ``valid_range``: ``fail``, the default, or ``mask`` → NaN,
counted per frame in :attr:`Frames.qc_masked`) and declares the other options it accepts when
it registers (:data:`READER_OPTIONS`); an option it does not accept is a ``ValueError`` naming
the reader and listing its options. The table of all options is ``docs/readers.md``.

Thread safety: HDF5, netCDF-C and ecCodes are not thread-safe; every reader opening and
decoding such a file holds :data:`pipelines.readers.base.NATIVE_IO_LOCK` while doing so, so
reads are safe under Dask's threaded scheduler (and per process under ``distributed``).

Adding a format: write ``pipelines/readers/<format>.py`` with a function decorated
``@register_reader("<name>", options=(...))`` and import it below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import fields

import xarray as xr

from data_catalog.spec import ReaderOptions, SourceSpec
from pipelines.readers.base import Frames, ReadFile, frames_to_dataset, validate_frames
from simvp_model.registry import Registry

log = logging.getLogger(__name__)

READERS: Registry[ReadFile] = Registry("reader")
"""Reader name (catalog ``reader`` field) -> ``read_file(path, spec) -> Frames``."""

SHARED_OPTIONS: tuple[str, ...] = ("out_of_range",)
"""Reader options every reader accepts (applied by :func:`validate_frames`)."""
READER_OPTIONS: dict[str, tuple[str, ...]] = {}
"""Reader name -> the ``reader_options`` it accepts (:data:`SHARED_OPTIONS` included)."""


def register_reader(name: str, options: Sequence[str] = ()) -> Callable[[ReadFile], ReadFile]:
    """Decorator registering a reader under ``name`` with the ``reader_options`` it accepts.

    Raises
    ------
    ValueError
        When ``name`` is taken or an option is not a :class:`ReaderOptions` field.
    """
    known = {f.name for f in fields(ReaderOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"reader {name!r}: options {unknown} are not ReaderOptions fields")

    def decorator(func: ReadFile) -> ReadFile:
        READERS.add(name, func)
        READER_OPTIONS[name] = (*SHARED_OPTIONS, *options)
        return func

    return decorator


def check_reader_options(spec: SourceSpec) -> None:
    """``ValueError`` naming the reader and listing its options when ``spec`` sets another."""
    READERS.get(spec.reader)
    accepted = READER_OPTIONS[spec.reader]
    wrong = [name for name in spec.reader_options.given() if name not in accepted]
    if wrong:
        raise ValueError(
            f"source {spec.name!r}: reader {spec.reader!r} does not accept reader_options "
            f"{wrong}; its options: {list(accepted)} (docs/readers.md)"
        )


def read_file(spec: SourceSpec, path: str) -> Frames:
    """Decode one file of ``spec`` and check it against the spec (see the module contract)."""
    reader = READERS.get(spec.reader)
    check_reader_options(spec)
    log.debug("reading %s with %s", path, spec.reader)
    return validate_frames(reader(str(path), spec), spec)


def read_source_frames(spec: SourceSpec, paths: Sequence[str]) -> xr.Dataset:
    """Read ``paths`` of source ``spec`` into one dataset following the module contract.

    Parameters
    ----------
    spec : SourceSpec
        The catalog source (its ``reader`` picks the decoder).
    paths : sequence of str
        Files (local paths or fsspec URLs), e.g. ``[f.path for f in list_files(spec)]``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``, float32 variables in physical units, NaN = no data.
    """
    if isinstance(paths, str):
        raise ValueError(f"paths must be a sequence of paths, got the string {paths!r}")
    frames = [read_file(spec, p) for p in paths]
    ds = frames_to_dataset(spec, frames)
    if spec.reader_options.out_of_range == "mask":
        for var in spec.variable_names:
            total = sum(int(f.qc_masked[var].sum()) for f in frames)
            ds[var].attrs["qc_masked_count"] = total
    return ds


# Importing the format modules registers them.
from pipelines.readers import (  # noqa: E402
    cf_netcdf,  # noqa: F401
    fmi_pgm,  # noqa: F401
    grib,  # noqa: F401
    knmi_hdf5,  # noqa: F401
    mch_gif,  # noqa: F401
    nyc_taxi_npz,  # noqa: F401
    odim_h5,  # noqa: F401
    radolan,  # noqa: F401
    taxibj_h5,  # noqa: F401
)

__all__ = [
    "READERS",
    "READER_OPTIONS",
    "SHARED_OPTIONS",
    "Frames",
    "check_reader_options",
    "read_file",
    "read_source_frames",
    "register_reader",
]
