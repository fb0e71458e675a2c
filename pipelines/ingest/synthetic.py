"""A synthetic radar-like source for tests and benchmarks of the ingest path.

``synthetic_spec(root)`` is a catalog entry whose files are ``root/syn_%Y%m%d%H%M.npy``;
``write_files(spec, times)`` writes deterministic fields there (a rain blob that moves one
pixel per step over a dry background, with a NaN no-data corner), and ``read_npy`` is its
reader (``(path, spec) -> Frames``, the contract of :mod:`pipelines.readers`). With
``generate=True`` the files are empty markers and ``read_generated`` computes the field from
the time in the name (benchmarks of many frames without writing gigabytes first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_catalog.catalog import parse_time
from data_catalog.spec import SourceSpec
from pipelines.readers.base import Frames

PATTERN = "syn_%Y%m%d%H%M.npy"
SWISS_LV03 = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs"
)


def synthetic_spec(
    root: str | Path,
    shape: tuple[int, int] = (16, 20),
    chunks: Mapping[str, int] | None = None,
    name: str = "synthetic-radar",
    time_step: str = "5min",
    **overrides: Any,
) -> SourceSpec:
    """A radar-like source on a 1-km Swiss grid of ``shape`` with files under ``root``.

    ``overrides`` replace fields of the catalog entry (e.g. ``path`` for multi-frame files).
    """
    ny, nx = shape
    entry: dict[str, Any] = {
        "kind": "radar",
        "reader": "synthetic-npy",
        "path": str(Path(root) / PATTERN),
        "time_step": time_step,
        "variables": [
            {
                "name": "precipitation_rate",
                "units": "mm/h",
                "source": "synthetic",
                "standard_name": "rainfall_rate",
                "long_name": "synthetic precipitation rate",
                "valid_range": [0.0, 1000.0],
            }
        ],
        "grid": {
            "crs": SWISS_LV03,
            "shape": [ny, nx],
            "extent": [600000.0, 600000.0 + 1000.0 * nx, 200000.0 - 1000.0 * ny, 200000.0],
            "y_origin": "upper",
        },
        "chunks": dict(chunks or {"time": 4, "y": ny, "x": nx}),
    }
    entry.update(overrides)
    return SourceSpec.from_dict(entry, name=name)


def field(time: pd.Timestamp, shape: tuple[int, int]) -> np.ndarray:
    """Deterministic rain field at ``time``: float32 ``(H, W)`` mm/h, NaN in one corner."""
    ny, nx = shape
    step = int(pd.Timestamp(time).value // 300_000_000_000)  # 5-min steps since 1970
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)  # (H, W) each
    cy, cx = ny / 2, (step % nx)
    rain = 20.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.15 * max(ny, nx)) ** 2))
    rain = np.where(rain < 0.05, 0.0, rain).astype(np.float32)
    rain[: max(1, ny // 8), : max(1, nx // 8)] = np.nan  # outside radar coverage
    return rain


def write_files(
    spec: SourceSpec, times: Iterable[pd.Timestamp], generate: bool = False
) -> list[str]:
    """Write one file per time (the field, or an empty marker with ``generate``)."""
    paths = []
    for time in times:
        path = pd.Timestamp(time).strftime(spec.path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if generate:
            Path(path).write_bytes(b"")
        else:
            np.save(path, field(pd.Timestamp(time), spec.grid.shape))
        paths.append(path)
    return paths


def _frames(path: str, spec: SourceSpec, values: np.ndarray) -> Frames:
    time = parse_time(spec.path, path)
    if time is None:
        raise ValueError(f"{path}: no time in its name")
    name = spec.variables[0].name
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), {name: values})


def read_npy(path: str, spec: SourceSpec) -> Frames:
    """Reader of :func:`write_files` output: one frame ``(1, H, W)`` per file."""
    values = np.load(path)
    return _frames(path, spec, values[np.newaxis])


def read_generated(path: str, spec: SourceSpec) -> Frames:
    """Reader for ``generate=True`` markers: the field computed from the name's time."""
    time = parse_time(spec.path, path)
    if time is None:
        raise ValueError(f"{path}: no time in its name")
    return _frames(path, spec, field(time, spec.grid.shape)[np.newaxis])
