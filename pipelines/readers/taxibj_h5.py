"""TaxiBJ crowd flows (Zhang et al., ST-ResNet), HDF5 layout ``BJ<yy>_M32x32_T30_InOut.h5``.

Layout: ``date`` ``(N,)`` byte strings ``YYYYMMDDSS`` where ``SS`` is the half-hour slot of the
day, ``01``..``48`` (slot 01 starts at 00:00); ``data`` ``(N, 2, 32, 32)`` with channel 0 =
inflow and channel 1 = outflow (counts). The frame time is the slot's start:
``YYYYMMDD + (SS - 1) x 30 min``; slots per day come from ``reader_options.slots_per_day``
(default 48). Real TaxiBJ files have gaps (missing slots), which is allowed; duplicate or
out-of-order slots are an error. Variable ``source``: ``inflow`` or ``outflow``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import Frames, check_shape, convert_units, open_hdf5
from pipelines.readers.limits import check_declared

CHANNELS = {"inflow": 0, "outflow": 1}


def slot_times(dates: np.ndarray, slots_per_day: int, path: str) -> np.ndarray:
    """``datetime64[ns]`` starts of TaxiBJ slot strings like ``b"2013070101"``, shape ``(N,)``."""
    step = pd.Timedelta(days=1) / slots_per_day
    out = []
    for raw in dates:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if len(text) != 10 or not text.isdigit():
            raise ValueError(f"{path}: bad TaxiBJ date slot {text!r}, expected YYYYMMDDSS")
        slot = int(text[8:])
        if not 1 <= slot <= slots_per_day:
            raise ValueError(f"{path}: slot {slot} of {text!r} is outside 1..{slots_per_day}")
        try:
            day = pd.to_datetime(text[:8], format="%Y%m%d")
        except ValueError:
            raise ValueError(f"{path}: bad date in TaxiBJ slot {text!r}") from None
        out.append(day + (slot - 1) * step)
    return pd.DatetimeIndex(out).to_numpy("datetime64[ns]")


@register_reader("taxibj-h5", options=("slots_per_day",))
def read_taxibj_h5(path: str, spec: SourceSpec) -> Frames:
    """Read one TaxiBJ HDF5 file into ``N`` frames (see the module docstring)."""
    with open_hdf5(path) as h5:
        if "date" not in h5 or "data" not in h5:
            raise ValueError(f"{path}: not the TaxiBJ layout (needs 'date' and 'data')")
        dates = h5["date"][...]
        shape = h5["data"].shape  # (N, 2, H, W): spatial sizes checked before reading
        check_declared((shape[0], *shape[2:]) if len(shape) == 4 else shape,
                       h5["data"].dtype, spec, path, "data", max_frames=None)  # fmt: skip
        cube = h5["data"][...]
    if cube.ndim != 4 or cube.shape[0] != len(dates):
        raise ValueError(f"{path}: data has shape {cube.shape}, expected (N={len(dates)}, 2, H, W)")
    check_shape(cube.shape, spec, path)
    times = slot_times(dates, spec.reader_options.slots_per_day or 48, path)
    data, notes = {}, {}
    for var in spec.variables:
        if var.source not in CHANNELS:
            raise ValueError(f"{path}: unknown quantity {var.source!r}; allowed: {list(CHANNELS)}")
        channel = CHANNELS[var.source]
        if channel >= cube.shape[1]:
            raise ValueError(f"{path}: no {var.source} channel in data of shape {cube.shape}")
        values, note = convert_units(cube[:, channel].astype(np.float64), "count", var, path)
        data[var.name] = values
        notes[var.name] = f"TaxiBJ data[:, {channel}] ({var.source}); {note}"
    return Frames(path, times, data, notes)
