"""Bad input: a clear error naming the file and the problem; the store stays byte-identical."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from data_catalog.catalog import get_source, list_files
from pipelines.ingest import IngestError, StoreError, ingest_source, store_digest
from pipelines.ingest.synthetic import read_npy, synthetic_spec, write_files
from pipelines.readers.base import Frames, frames_to_dataset

pytestmark = pytest.mark.timeout(60)
TIMES = pd.date_range("2024-05-01T00:00", periods=16, freq="5min")
BAD = TIMES[13]  # in the last write batch: the whole run is validated before any write
BAD_NAME = BAD.strftime("syn_%Y%m%d%H%M.npy")


def _as_dataset(path, spec):
    return frames_to_dataset(spec, [read_npy(path, spec)])


def _wrong_crs(path, spec):
    ds = _as_dataset(path, spec)
    ds["crs"].attrs = pyproj.CRS("EPSG:3035").to_cf()
    return ds


def _unknown_units(path, spec):
    ds = _as_dataset(path, spec)
    ds["precipitation_rate"].attrs["units"] = "furlong/fortnight"
    return ds


def _shifted_grid(path, spec):
    return _as_dataset(path, spec).assign_coords(x=lambda d: d.x + 500.0)


def _negative_rain(path, spec):
    frames = read_npy(path, spec)
    return Frames(path, frames.times, {"precipitation_rate": frames.data["precipitation_rate"] - 5})


def _infinite(path, spec):
    frames = read_npy(path, spec)
    values = frames.data["precipitation_rate"].copy()
    values[0, 5, 5] = np.inf
    return Frames(path, frames.times, {"precipitation_rate": values})


def _wrong_shape(path, spec):
    frames = read_npy(path, spec)
    return Frames(
        path, frames.times, {"precipitation_rate": frames.data["precipitation_rate"][:, 1:]}
    )


def _time_differs_from_name(path, spec):
    frames = read_npy(path, spec)
    return Frames(path, frames.times + np.timedelta64(5, "m"), frames.data)


def _truncated(path, spec):
    with open(path, "rb") as handle:
        head = handle.read(100)
    with open(path, "wb") as handle:
        handle.write(head)
    return read_npy(path, spec)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_truncated, "cannot read"),
        (_wrong_shape, r"shape \(1, 15, 20\), expected \(1, 16, 20\)"),
        (_wrong_crs, "CRS .* differs from the catalog CRS"),
        (_shifted_grid, "'x' coordinates differ from the catalog grid"),
        (_unknown_units, "unknown units 'furlong/fortnight'"),
        (_negative_rain, r"outside the valid range \[0.0, 1000.0\]"),
        (_infinite, "1 infinite values"),
        (_time_differs_from_name, "but its name says 2024-05-01T01:05"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_bad_file_raises_naming_it_and_store_unchanged(tmp_path, mutate, message):
    spec = synthetic_spec(tmp_path / "files", chunks={"time": 4, "y": 16, "x": 20})
    write_files(spec, TIMES)
    path = str(tmp_path / "s.zarr")
    kwargs = {"store_path": path, "progress": False, "batch_bytes": 1}  # one chunk per batch
    ingest_source(spec, end=TIMES[5], reader=read_npy, **kwargs)
    before = store_digest(path)

    def reader(file, source):
        return mutate(file, source) if file.endswith(BAD_NAME) else read_npy(file, source)

    with pytest.raises(IngestError, match=message) as caught:
        ingest_source(spec, reader=reader, **kwargs)
    assert BAD_NAME in str(caught.value)
    assert store_digest(path) == before


def _multi_frame_spec(tmp_path):
    return synthetic_spec(tmp_path / "files", path=str(tmp_path / "files" / "block_*.npz"))


def _read_block(path, spec):
    with np.load(path) as block:
        return Frames(path, block["times"], {"precipitation_rate": block["data"]})


def _write_block(path, times):
    data = np.zeros((len(times), 16, 20), dtype="float32")
    np.savez(path, times=np.asarray(times, dtype="datetime64[ns]"), data=data)


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            {"a": ["2024-05-01T00:00", "2024-05-01T00:10", "2024-05-01T00:05"]},
            "timestamps not increasing: 2024-05-01T00:10:00 is followed by 2024-05-01T00:05",
        ),
        (
            {"a": ["2024-05-01T00:00", "2024-05-01T00:00"]},
            "duplicate timestamp 2024-05-01T00:00",
        ),
        (
            {"a": ["2024-05-01T00:00", "2024-05-01T00:05"], "b": ["2024-05-01T00:05"]},
            "duplicate timestamp 2024-05-01T00:05:00: in .*block_a.npz and in .*block_b.npz",
        ),
        ({"a": ["2024-05-01T00:00", "2024-05-01T00:07"]}, "not on the 5min grid"),
    ],
    ids=["non-monotonic", "duplicate-in-file", "duplicate-across-files", "off-grid"],
)
def test_bad_timestamps_raise_and_store_unchanged(tmp_path, blocks, message):
    spec = _multi_frame_spec(tmp_path)
    (tmp_path / "files").mkdir()
    _write_block(tmp_path / "files" / "block_0.npz", ["2024-05-01T00:20"])
    path = str(tmp_path / "s.zarr")
    ingest_source(spec, store_path=path, reader=_read_block, progress=False)
    before = store_digest(path)
    for name, times in blocks.items():
        _write_block(tmp_path / "files" / f"block_{name}.npz", pd.to_datetime(times))
    with pytest.raises((IngestError, StoreError), match=message):
        ingest_source(spec, store_path=path, reader=_read_block, progress=False)
    assert store_digest(path) == before


def test_catalog_grid_changed_against_existing_store(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, TIMES[:4])
    path = str(tmp_path / "s.zarr")
    ingest_source(spec, store_path=path, reader=read_npy, progress=False)
    before = store_digest(path)
    moved = synthetic_spec(
        tmp_path / "files",
        grid={**spec.to_dict()["grid"], "extent": [601000.0, 621000.0, 184000.0, 200000.0]},
    )
    with pytest.raises(IngestError, match="'x' coordinates differ from the existing store"):
        ingest_source(moved, store_path=path, reader=read_npy, progress=False)
    assert store_digest(path) == before


def test_truncated_real_mch_gif_names_the_file_and_store_unchanged(tmp_path):
    spec = get_source("mch-radar")
    files = list_files(spec)[:6]
    root = tmp_path / "samples"
    copies = []
    for file in files:
        rel = file.path.split("/data_catalog/samples/", 1)[1]
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file.path, target)
        copies.append(target)
    path = str(tmp_path / "mch.zarr")
    first = ingest_source(
        spec, store_path=path, samples=str(root), end=files[3].time, progress=False
    )
    assert first.frames_written == 4
    before = store_digest(path)
    copies[5].write_bytes(copies[5].read_bytes()[:300])  # truncated download
    with pytest.raises(IngestError, match=copies[5].name):
        ingest_source(spec, store_path=path, samples=str(root), progress=False)
    assert store_digest(path) == before
    ds = xr.open_zarr(path)
    assert int(ds["frame_present"].sum()) == 4


def test_bad_arguments_fail_before_touching_anything(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, TIMES[:2])
    path = str(tmp_path / "s.zarr")
    kwargs = {"store_path": path, "reader": read_npy, "progress": False}
    with pytest.raises(ValueError, match="unknown scheduler 'fast'"):
        ingest_source(spec, scheduler="fast", **kwargs)
    with pytest.raises(ValueError, match="is after end"):
        ingest_source(spec, start=TIMES[1], end=TIMES[0], **kwargs)
    with pytest.raises(FileNotFoundError, match="no file"):
        ingest_source(spec, start="2030-01-01", **kwargs)
    ingest_source(spec, **kwargs)
    before = store_digest(path)
    other = synthetic_spec(tmp_path / "files", name="other-radar")
    with pytest.raises(StoreError, match="holds 'synthetic-radar'"):
        ingest_source(other, **kwargs)
    hourly = synthetic_spec(tmp_path / "files", time_step="10min")
    with pytest.raises(StoreError, match="time step"):
        ingest_source(hourly, **kwargs)
    assert store_digest(path) == before
