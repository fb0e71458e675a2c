"""NYC taxi pickup volumes on a lon/lat grid, numpy ``.npz`` (``Rajahn/CS5834-Project`` layout).

Each file holds ``reader_options.key`` (default ``volume``): an array ``(T, X_lon, Y_lat, C)`` of
counts per 30-min slot, with lon bin 0 the westernmost and lat bin 0 the southernmost
(``y_origin: lower`` in the catalog). It is transposed to ``(T, H=Y_lat, W=X_lon)`` per channel.
The files carry no times: ``reader_options.start_times`` maps each file name to the time of its
first slot, and slots follow at the source's ``time_step``. Variable ``source``: ``pickups``
(channel 0) or ``channel<k>``.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import Frames, check_shape, convert_units, read_bytes

CHANNELS = {"pickups": 0}


def _channel(source: str, n_channels: int, path: str) -> int:
    if source in CHANNELS:
        index = CHANNELS[source]
    elif source.startswith("channel") and source[7:].isdigit():
        index = int(source[7:])
    else:
        raise ValueError(f"{path}: unknown quantity {source!r}; allowed: pickups, channel<k>")
    if index >= n_channels:
        raise ValueError(f"{path}: channel {index} requested, the file has {n_channels}")
    return index


@register_reader("nyc-taxi-npz", options=("key", "start_times"))
def read_nyc_taxi_npz(path: str, spec: SourceSpec) -> Frames:
    """Read one NYC taxi volume ``.npz`` into ``T`` frames (see the module docstring)."""
    key = spec.reader_options.key or "volume"
    starts = dict(spec.reader_options.start_times or ())
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name not in starts:
        raise ValueError(
            f"{path}: no start time for {name!r} in reader_options.start_times {sorted(starts)}"
        )
    raw = read_bytes(path)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            if key not in npz.files:
                raise ValueError(f"{path}: no array {key!r}; has {npz.files}")
            volume = npz[key]
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npz (corrupt or truncated?): {error}") from None
    if volume.ndim != 4:
        raise ValueError(f"{path}: {key} has shape {volume.shape}, expected (T, X_lon, Y_lat, C)")
    cube = volume.transpose(0, 3, 2, 1)  # (T, X, Y, C) -> (T, C, H=Y, W=X)
    check_shape(cube.shape, spec, path)
    start = pd.Timestamp(starts[name])
    times = pd.date_range(start, periods=cube.shape[0], freq=spec.time_delta).to_numpy(
        "datetime64[ns]"
    )
    data, notes = {}, {}
    for var in spec.variables:
        channel = _channel(var.source, cube.shape[1], path)
        values, note = convert_units(cube[:, channel].astype(np.float64), "count", var, path)
        data[var.name] = values
        notes[var.name] = f"npz {key}[..., {channel}] transposed to (time, y, x); {note}"
    return Frames(path, times, data, notes)
