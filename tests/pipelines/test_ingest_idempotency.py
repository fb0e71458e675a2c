"""Idempotent ingest: repeats, overlaps, reverse order, crashes and retries, eager == Dask."""

from __future__ import annotations

import collections
import os
import threading

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.ingest import IngestError, StoreError, ingest_source, store_digest
from pipelines.ingest import ingest as ingest_mod
from pipelines.ingest.synthetic import field, read_npy, synthetic_spec, write_files

pytestmark = pytest.mark.timeout(60)
STEP = "5min"
T0 = pd.Timestamp("2024-05-01T00:00")
TIMES = pd.date_range(T0, periods=30, freq=STEP)  # 00:00 .. 02:25
FRAME_BYTES = 16 * 20 * 4


@pytest.fixture
def spec(tmp_path):
    spec = synthetic_spec(tmp_path / "files", chunks={"time": 4, "y": 8, "x": 10})
    write_files(spec, TIMES)
    return spec


def _ingest(spec, path, start=None, end=None, **kwargs):
    kwargs.setdefault("batch_bytes", 4 * FRAME_BYTES)  # one time chunk per batch: many batches
    return ingest_source(
        spec, store_path=str(path), start=start, end=end, reader=read_npy, progress=False, **kwargs
    )


def _assert_same_store(a, b):
    """Byte-identical chunk and array files; identical datasets apart from ``history``."""
    digest_a, digest_b = store_digest(a), store_digest(b)
    digest_a.pop("zarr.json")  # the root metadata holds the history line (a timestamp)
    digest_b.pop("zarr.json")
    assert digest_a == digest_b
    ds_a, ds_b = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    for ds in (ds_a, ds_b):
        ds.attrs.pop("history")
    xr.testing.assert_identical(ds_a, ds_b)


@pytest.fixture
def reference(spec, tmp_path):
    """The store of one ingest of all 30 frames."""
    path = tmp_path / "reference.zarr"
    report = _ingest(spec, path)
    assert report.frames_written == 30 and report.frames_new == 30 and report.batches > 2
    return path


def test_reference_store_holds_every_frame_at_its_time(reference):
    ds = xr.open_zarr(reference)
    assert ds.sizes["time"] == 32  # 30 frames padded to whole chunks of 4
    assert pd.Timestamp(ds["time"].values[0]) == T0
    assert bool(ds["frame_present"][:30].all()) and not bool(ds["frame_present"][30:].any())
    np.testing.assert_array_equal(
        ds["precipitation_rate"].sel(time=TIMES[17]).values, field(TIMES[17], (16, 20))
    )


def test_same_range_twice_is_identical(spec, tmp_path, reference):
    path = tmp_path / "twice.zarr"
    _ingest(spec, path)
    report = _ingest(spec, path)
    assert report.frames_written == 30 and report.frames_new == 0
    _assert_same_store(path, reference)
    assert len(xr.open_zarr(path).attrs["history"].splitlines()) == 2


def test_overlapping_ranges_equal_one_ingest(spec, tmp_path, reference):
    path = tmp_path / "overlap.zarr"
    _ingest(spec, path, end=TIMES[13])
    report = _ingest(spec, path, start=TIMES[6])
    assert report.frames_written == 24 and report.frames_new == 16
    _assert_same_store(path, reference)


def test_reverse_order_of_batches_equals_one_ingest(spec, tmp_path, reference):
    path = tmp_path / "reverse.zarr"
    for lo, hi in ((21, 29), (9, 20), (0, 8)):  # ranges that split time chunks
        _ingest(spec, path, start=TIMES[lo], end=TIMES[hi])
    _assert_same_store(path, reference)


def test_gaps_are_nan_frames_recorded_as_missing(spec, tmp_path):
    for i in (3, 4, 11):
        (tmp_path / "files" / TIMES[i].strftime("syn_%Y%m%d%H%M.npy")).unlink()
    report = _ingest(spec, tmp_path / "gaps.zarr", end=TIMES[15])
    assert list(report.missing) == [TIMES[3], TIMES[4], TIMES[11]]
    ds = xr.open_zarr(report.store)
    present = ds["frame_present"].values
    assert present[:16].sum() == 13 and not present[[3, 4, 11]].any()
    assert np.isnan(ds["precipitation_rate"][[3, 4, 11]].values).all()
    # the time axis is not closed up: frame 12 is still at 01:00
    assert pd.Timestamp(ds["time"].values[12]) == TIMES[12]


def test_extending_later_grows_the_axis_by_whole_chunks(spec, tmp_path, reference):
    path = tmp_path / "grow.zarr"
    first = _ingest(spec, path, end=TIMES[5])
    assert first.store_frames == 8
    second = _ingest(spec, path, start=TIMES[6])
    assert second.store_frames == 32
    _assert_same_store(path, reference)


def test_times_before_the_origin_are_refused_and_store_unchanged(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, pd.date_range("2024-04-30T23:50", periods=4, freq=STEP))
    path = tmp_path / "early.zarr"
    _ingest(spec, path, start="2024-05-01")  # origin 2024-05-01 00:00
    before = store_digest(path)
    with pytest.raises(StoreError, match="cannot take earlier times such as 2024-04-30T23:50"):
        _ingest(spec, path)
    assert store_digest(path) == before


def test_crash_after_first_region_write_leaves_readable_store_and_retry_completes(
    spec, tmp_path, reference, monkeypatch
):
    path = tmp_path / "crash.zarr"
    real_write = ingest_mod.wr.write_region
    calls = []
    lock = threading.Lock()  # write tasks run in parallel: exactly one of them succeeds

    def crash_after_first(*args, **kwargs):
        with lock:
            first = not calls
            calls.append(first)
        if not first:
            raise RuntimeError("simulated crash")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(ingest_mod.wr, "write_region", crash_after_first)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _ingest(spec, path)
    monkeypatch.undo()
    # readable, consistent: the one batch written is marked present (even when another task
    # failed first, the client waits for the tasks in flight), nothing else was written
    ds = xr.open_zarr(path)
    present = ds["frame_present"].values
    assert ds.sizes["time"] == 32 and int(present.sum()) == 4
    assert np.isnan(ds["precipitation_rate"].values[~present]).all()
    _ingest(spec, path)
    _assert_same_store(path, reference)


def test_a_file_changed_before_its_batch_is_written_loses_no_stored_frame(
    spec, tmp_path, reference
):
    """Phase 2 checks each file again: a file that went bad after phase 1 stops its batch part
    way (the batch's first time chunk is already written); stored frames stay, the batch's
    frames stay marked absent, and the retry completes the store."""
    path = tmp_path / "changed.zarr"
    _ingest(spec, path, end=TIMES[9])  # slots 0..9 stored and marked present
    stored = xr.open_zarr(path)["precipitation_rate"].values[:10]
    changed = TIMES[13].strftime(spec.path)  # time chunk 3, in the batch of chunks 2 and 3
    reads: collections.Counter[str] = collections.Counter()

    def reader(file, source):
        frames = read_npy(file, source)
        reads[file] += 1
        if file == changed and reads[file] == 2:  # phase 2's read: the file changed
            frames.data["precipitation_rate"][:] = 5000.0  # outside valid_range [0, 1000]
        return frames

    with pytest.raises(IngestError, match=f"{changed}.*outside the valid range"):
        ingest_source(
            spec,
            store_path=str(path),
            reader=reader,
            progress=False,
            scheduler="synchronous",  # batches of two time chunks, written in order
            batch_bytes=8 * FRAME_BYTES,
        )
    ds = xr.open_zarr(path)
    present = ds["frame_present"].values
    assert present[:10].all() and not present[10:].any()
    np.testing.assert_array_equal(ds["precipitation_rate"].values[:10], stored)
    assert not (ds["precipitation_rate"].values == 5000.0).any()
    _ingest(spec, path)
    _assert_same_store(path, reference)


@pytest.mark.parametrize("how", [{"use_dask": False}, {"scheduler": "synchronous"}])
def test_inline_equals_threads(spec, tmp_path, reference, how):
    report = _ingest(spec, tmp_path / "inline.zarr", **how)
    assert report.scheduler == "synchronous"
    _assert_same_store(report.store, reference)


def test_distributed_scheduler_address(spec, tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        report = _ingest(spec, tmp_path / "dist.zarr", scheduler=cluster.scheduler_address)
    _assert_same_store(report.store, reference)


def test_process_cluster_equals_threads(spec, tmp_path, reference):
    """Two worker *processes* decode and write: the same bytes as the threaded ingest, and
    a refused batch (a bad file) leaves the store as it was."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = _ingest(spec, tmp_path / "procs.zarr", scheduler=client)
        assert report.scheduler == "distributed (2 threads)" and report.batches == 8
        workers = client.run(os.getpid)
        assert os.getpid() not in workers.values()
        _assert_same_store(report.store, reference)
        before = store_digest(report.store)
        bad = tmp_path / "files" / TIMES[29].strftime("syn_%Y%m%d%H%M.npy")
        bad.write_bytes(bad.read_bytes()[:50])  # a truncated file, in the last batch
        with pytest.raises(IngestError, match=f"{bad.name}: cannot read"):
            _ingest(spec, report.store, scheduler=cluster.scheduler_address)
        assert store_digest(report.store) == before
