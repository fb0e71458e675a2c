"""Observation-store layout: time index, template, round trips over chunkings, safe growth."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from pipelines import zarr_transaction
from pipelines.ingest import ingest_source, store_digest
from pipelines.ingest import store as st
from pipelines.ingest.synthetic import field, read_npy, synthetic_spec, write_files
from pipelines.zarr_transaction import StoreBusyError

pytestmark = pytest.mark.timeout(60)
STEP = pd.Timedelta("5min")


def _layout(origin: str = "2024-05-01", tc: int = 4) -> st.StoreLayout:
    return st.StoreLayout(
        source_name="s",
        variables=("v",),
        time_step=STEP,
        time_origin=pd.Timestamp(origin),
        chunks=(tc, 8, 8),
        index_chunk=tc * 4,
    )


def test_origin_is_midnight_plus_phase():
    assert st.origin_for(pd.Timestamp("2016-07-11T20:45"), STEP) == pd.Timestamp("2016-07-11")
    # a source on :02, :07, ... keeps its phase
    assert st.origin_for(pd.Timestamp("2016-07-11T20:47"), STEP) == pd.Timestamp("2016-07-11T00:02")
    assert st.origin_for(pd.Timestamp("2019-03-01T05:00"), pd.Timedelta("1h")) == pd.Timestamp(
        "2019-03-01"
    )


def test_index_of_is_offset_over_step_and_refuses_off_grid_and_early_times():
    layout = _layout()
    times = pd.to_datetime(["2024-05-01T00:00", "2024-05-01T00:05", "2024-05-02T00:00"])
    np.testing.assert_array_equal(layout.index_of(times), [0, 1, 288])  # 288 = 24 h / 5 min
    with pytest.raises(st.StoreError, match="not on the 5min grid"):
        layout.index_of(pd.to_datetime(["2024-05-01T00:07"]))
    with pytest.raises(st.StoreError, match="cannot take earlier times such as 2024-04-30"):
        layout.index_of(pd.to_datetime(["2024-04-30T23:55"]))
    assert layout.padded_length(9) == 12 and layout.padded_length(12) == 12
    assert list(layout.times(1, 3)) == list(times[1:2]) + [pd.Timestamp("2024-05-01T00:10")]


def test_make_layout_resolves_full_grid_chunks_and_index_chunk():
    layout = st.make_layout(
        "s", ["v"], STEP, pd.Timestamp("2024-05-01T10:05"), (640, 710), {"time": 12, "y": -1}
    )
    assert layout.chunks == (12, 640, 710)
    assert layout.index_chunk % 12 == 0 and 4000 <= layout.index_chunk <= 4200
    assert layout.time_origin == pd.Timestamp("2024-05-01")


@pytest.mark.parametrize(
    "chunks",
    [
        {"time": 1, "y": 16, "x": 20},  # one frame per chunk
        {"time": 4, "y": 8, "x": 10},  # tiled grid
        {"time": 6, "y": 5, "x": 7},  # chunks that do not divide the grid
    ],
)
def test_round_trip_over_chunkings(tmp_path, chunks):
    spec = synthetic_spec(tmp_path / "files", chunks=chunks)
    times = pd.date_range("2024-05-01T00:10", periods=10, freq=STEP)
    write_files(spec, times)
    report = ingest_source(
        spec, store_path=str(tmp_path / "s.zarr"), reader=read_npy, progress=False
    )
    ds = xr.open_zarr(report.store, decode_coords="all")
    var = ds["precipitation_rate"]
    tc = chunks["time"]
    assert var.encoding["chunks"] == (tc, chunks["y"], chunks["x"])
    assert [type(c).__name__ for c in var.encoding["compressors"]] == ["ZstdCodec"]
    assert ds.sizes["time"] % tc == 0 and ds.sizes["time"] >= 12  # origin 00:00, 12 frames
    expected = xr.DataArray(
        np.stack([field(t, (16, 20)) for t in times]),  # (T, H, W)
        dims=("time", "y", "x"),
        coords={"time": times, "y": ds["y"], "x": ds["x"]},
        name="precipitation_rate",
    )
    got = var.sel(time=times).drop_vars(["latitude", "longitude", "crs"])
    xr.testing.assert_equal(got.reset_coords(drop=True), expected)
    # slots never ingested: NaN and frame_present False
    assert not bool(ds["frame_present"].sel(time="2024-05-01T00:05"))
    assert np.isnan(var.sel(time="2024-05-01T00:05")).all()
    assert int(ds["frame_present"].sum()) == 10


def test_template_is_cf_and_time_is_exact_int64_seconds(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, pd.date_range("2024-05-01T00:00", periods=4, freq=STEP))
    report = ingest_source(
        spec, store_path=str(tmp_path / "s.zarr"), reader=read_npy, progress=False
    )
    ds = xr.open_zarr(report.store, decode_coords="all")
    assert ds.attrs["Conventions"] == "CF-1.10"
    assert ds.attrs["time_origin"] == "2024-05-01T00:00:00" and ds.attrs["time_step"] == "5min"
    assert "crs" in ds.coords and ds["precipitation_rate"].encoding["grid_mapping"] == "crs"
    assert xr.open_zarr(report.store)["precipitation_rate"].attrs["grid_mapping"] == "crs"
    assert ds["precipitation_rate"].attrs["units"] == "mm/h"
    assert ds["y"].attrs["standard_name"] == "projection_y_coordinate"
    assert ds["latitude"].dims == ("y", "x") and 45 < float(ds["latitude"].mean()) < 48
    group = zarr.open_group(report.store, mode="r")
    assert group["time"].dtype == np.int64
    assert group["time"][0] == pd.Timestamp("2024-05-01").value // 10**9
    assert group["precipitation_rate"].metadata.zarr_format == 3


def test_crash_during_growth_leaves_readable_store_and_is_rolled_forward(tmp_path, monkeypatch):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, pd.date_range("2024-05-01T00:00", periods=4, freq=STEP))
    path = str(tmp_path / "s.zarr")
    ingest_source(spec, store_path=path, reader=read_npy, progress=False)
    layout = st.read_layout(path)
    assert st.committed_length(path) == 4

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before the commit")

    monkeypatch.setattr(st.zarr, "consolidate_metadata", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        st.grow(path, layout, 10)
    monkeypatch.undo()
    # arrays were resized, the commit record was not: readers still see 4 consistent frames
    raw = zarr.open_group(path, mode="r", use_consolidated=False)
    assert raw["precipitation_rate"].shape[0] == 12 and raw["time"].shape[0] == 12
    ds = xr.open_zarr(path)
    assert ds.sizes["time"] == 4 and ds["frame_present"].values.all()
    assert st.recover(path) == 12
    ds = xr.open_zarr(path)
    assert ds.sizes["time"] == 12 and int(ds["frame_present"].sum()) == 4
    assert ds["time"].values[-1] == np.datetime64("2024-05-01T00:55")
    xr.open_zarr(path, consolidated=False)  # unconsolidated readers agree again
    before = store_digest(path)
    assert st.recover(path) == 12 and store_digest(path) == before  # nothing to do: no write


def test_second_writer_waits_then_gets_a_retryable_busy_error(tmp_path):
    path = str(tmp_path / "s.zarr")
    with st.store_lock(path), pytest.raises(StoreBusyError, match="another process") as raised:
        with st.store_lock(path, timeout=0.2):
            pass
    assert isinstance(raised.value, OSError)  # retried by the flows' I/O tasks
    assert path in str(raised.value)
    with st.store_lock(path, timeout=0.2):  # released: the next writer gets it at once
        pass


def _die_while_creating(path: str) -> None:
    spec = synthetic_spec(Path(path).parent / "files")

    def die(*args, **kwargs):
        os._exit(17)  # like kill -9 after the staging copy is written, before its rename

    zarr_transaction.os.rename = die  # only in this forked child
    # synchronous: the parent's dask thread pool does not survive the fork
    ingest_source(spec, store_path=path, reader=read_npy, progress=False, scheduler="synchronous")


def test_killed_create_leaves_a_staging_copy_that_the_next_ingest_removes(tmp_path):
    # Regression: an ingest killed while creating its store left ".s.zarr.<uuid>.tmp" forever.
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, pd.date_range("2024-05-01T00:00", periods=4, freq=STEP))
    path = str(tmp_path / "s.zarr")
    child = multiprocessing.get_context("fork").Process(target=_die_while_creating, args=(path,))
    child.start()
    child.join(30)
    assert child.exitcode == 17 and not Path(path).exists()
    assert len(list(tmp_path.glob(".s.zarr.*.tmp"))) == 1  # the killed writer's staging copy
    ingest_source(spec, store_path=path, reader=read_npy, progress=False)
    assert not list(tmp_path.glob(".s.zarr.*.tmp"))
    assert int(xr.open_zarr(path)["frame_present"].sum()) == 4
    # also when the store exists already (an append does not stage a copy)
    (tmp_path / ".s.zarr.0123.tmp").mkdir()
    ingest_source(spec, store_path=path, reader=read_npy, progress=False)
    assert not list(tmp_path.glob(".s.zarr.*.tmp"))
