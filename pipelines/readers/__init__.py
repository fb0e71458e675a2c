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

Adding a format: write ``pipelines/readers/<format>.py`` with a function decorated
``@READERS.register("<name>")`` and import it below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import xarray as xr

from data_catalog.spec import SourceSpec
from pipelines.readers.base import Frames, ReadFile, frames_to_dataset, validate_frames
from simvp_model.registry import Registry

log = logging.getLogger(__name__)

READERS: Registry[ReadFile] = Registry("reader")
"""Reader name (catalog ``reader`` field) -> ``read_file(path, spec) -> Frames``."""


def read_file(spec: SourceSpec, path: str) -> Frames:
    """Decode one file of ``spec`` and check it against the spec (see the module contract)."""
    reader = READERS.get(spec.reader)
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
    return frames_to_dataset(spec, [read_file(spec, p) for p in paths])


# Importing the format modules registers them.
from pipelines.readers import (  # noqa: E402
    cf_netcdf,  # noqa: F401
    fmi_pgm,  # noqa: F401
    grib,  # noqa: F401
    knmi_hdf5,  # noqa: F401
    mch_gif,  # noqa: F401
    nyc_taxi_npz,  # noqa: F401
    odim_h5,  # noqa: F401
    taxibj_h5,  # noqa: F401
)

__all__ = ["READERS", "Frames", "read_file", "read_source_frames"]
