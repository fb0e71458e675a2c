"""Forecast store: layout (xarray, cf_xarray, rioxarray), idempotency, concurrency, kills."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from pipelines.forecast import store as fstore
from pipelines.forecast.export import export_weatherbench2, to_weatherbench2
from pipelines.forecast.store import COMPLETE, open_forecast_store, write_forecast
from tests.pipelines.forecast_helpers import LAEA, make_forecast, small_grid

pytestmark = pytest.mark.timeout(60)
FORK = multiprocessing.get_context("fork")
T0 = "2021-06-01T12:00"


def _values(ds: xr.Dataset) -> np.ndarray:
    """Mean of each init's first lead (NaN for empty slots)."""
    return ds["precipitation_rate"].isel(lead_time=0).mean(["y", "x"]).values


def test_layout_plain_xarray_cf_and_rioxarray(tmp_path):
    cf_xarray = pytest.importorskip("cf_xarray")
    pytest.importorskip("rioxarray")
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    plain = xr.open_zarr(path)  # no special arguments
    assert plain["precipitation_rate"].dims == ("init_time", "lead_time", "y", "x")
    assert plain["precipitation_rate"].dtype == np.float32
    assert plain["lead_time"].dtype.kind == "m" and plain["init_time"].dtype.kind == "M"
    assert plain["init_time"].attrs["standard_name"] == "forecast_reference_time"
    assert plain["lead_time"].attrs["standard_name"] == "forecast_period"
    assert plain["valid_time"].dims == ("init_time", "lead_time")
    assert plain["valid_time"].values[0, -1] == np.datetime64("2021-06-01T12:15")
    assert plain["precipitation_rate"].attrs["grid_mapping"] == "crs"
    assert plain["precipitation_rate"].attrs["units"] == "mm/h"
    assert plain["precipitation_rate"].encoding["chunks"] == (1, 3, 4, 5)  # one chunk per init
    assert plain.attrs["Conventions"] == "CF-1.10"
    assert plain["checkpoint"].values[0] == "ck.pt"
    assert plain["input_time"].values[0, -1] == np.datetime64(T0)
    # lead time stored as int32 minutes
    assert plain["lead_time"].encoding["dtype"] == np.dtype("int32")

    ds = open_forecast_store(path)
    assert ds.cf.axes["X"] == ["x"] and ds.cf.axes["Y"] == ["y"]
    assert ds.cf["forecast_period"].name == "lead_time"
    assert ds.cf["forecast_reference_time"].name == "init_time"
    assert ds.cf.grid_mapping_names == {"lambert_azimuthal_equal_area": ["crs"]}
    assert cf_xarray is not None
    field = ds["precipitation_rate"]
    assert ds.rio.crs.to_epsg() == 3035
    assert field.rio.x_dim == "x" and field.rio.y_dim == "y"
    assert field.rio.resolution() == (16000.0, -16000.0)
    # pixel-edge bounds of the north-up grid: x0 - 8 km ... upper y + 8 km
    assert field.rio.bounds() == (4092000.0, 3794000.0, 4172000.0, 3858000.0)
    # 2-D lat/lon equal a direct pyproj transform of the pixel centre
    lon, lat = pyproj.Transformer.from_crs(LAEA, "EPSG:4326", always_xy=True).transform(
        float(ds.x[2]), float(ds.y[1])
    )
    assert float(ds.latitude[1, 2]) == pytest.approx(lat, abs=1e-9)
    assert float(ds.longitude[1, 2]) == pytest.approx(lon, abs=1e-9)
    selected = ds.sel(init_time=T0, lead_time=pd.Timedelta("10min"))["precipitation_rate"]
    assert float(selected.mean()) == 2.0  # value 1 + lead index 1


def test_geographic_layout_uses_latitude_longitude_dims(tmp_path):
    pytest.importorskip("rioxarray")
    path = tmp_path / "g.zarr"
    geo = small_grid(pyproj.CRS.from_epsg(4326))
    write_forecast(path, make_forecast(T0, 1.0, grid=geo))
    ds = open_forecast_store(path)
    assert ds["precipitation_rate"].dims == ("init_time", "lead_time", "latitude", "longitude")
    assert ds["latitude"].attrs["units"] == "degrees_north" and ds["latitude"].ndim == 1
    assert ds.rio.crs.to_epsg() == 4326
    assert ds["precipitation_rate"].rio.x_dim == "longitude"
    assert ds.cf.grid_mapping_names == {"latitude_longitude": ["crs"]}
    np.testing.assert_allclose(ds["latitude"].values, [56.0, 55.5, 55.0, 54.5])


def test_idempotent_rewrite_appends_and_sorted_backfills(tmp_path):
    path = tmp_path / "f.zarr"
    assert write_forecast(path, make_forecast(T0, 1.0)) == 0
    assert write_forecast(path, make_forecast("2021-06-01T13:00", 4.0)) == 1  # an hour later
    assert write_forecast(path, make_forecast("2021-06-01T12:05", 2.0)) == 1  # back-fill
    assert write_forecast(path, make_forecast(T0, 10.0, checkpoint="new.pt")) == 0  # replace
    assert write_forecast(path, make_forecast(T0, 10.0, checkpoint="new.pt")) == 0  # again
    ds = open_forecast_store(path)
    # only the issued init times, in order: no empty slots at the source step
    np.testing.assert_array_equal(
        ds["init_time"].values,
        pd.DatetimeIndex(["2021-06-01T12:00", "2021-06-01T12:05", "2021-06-01T13:00"]).values,
    )
    np.testing.assert_array_equal(_values(ds), [10.0, 2.0, 4.0])
    assert ds[COMPLETE].values.all()
    assert list(ds["checkpoint"].values) == ["new.pt", "ck.pt", "ck.pt"]
    assert ds["valid_time"].values[2, 0] == np.datetime64("2021-06-01T13:05")
    assert ds["input_time"].values[1, -1] == np.datetime64("2021-06-01T12:05")
    # a back-fill before the first entry
    assert write_forecast(path, make_forecast("2021-05-31T11:50", 7.0)) == 0
    ds = open_forecast_store(path)
    assert ds["init_time"].values[0] == np.datetime64("2021-05-31T11:50")
    np.testing.assert_array_equal(_values(ds), [7.0, 10.0, 2.0, 4.0])
    assert ds[COMPLETE].values.all()
    assert ds["valid_time"].values[1, 0] == np.datetime64("2021-06-01T12:05")
    assert list(ds["checkpoint"].values) == ["ck.pt", "new.pt", "ck.pt", "ck.pt"]
    assert ds["input_time"].values[2, -1] == np.datetime64("2021-06-01T12:05")
    np.testing.assert_array_equal(
        ds["precipitation_rate"].isel(init_time=3).mean(["y", "x"]).values, [4.0, 5.0, 6.0]
    )
    assert not list(tmp_path.glob(".f.zarr.*"))


def test_write_memory_does_not_grow_with_the_gap(tmp_path):
    # Regression: a reindex built every empty slot between init times as a NaN array in
    # memory (5.37 GiB for the README's example on the demo store).
    import tracemalloc

    grid = small_grid(shape=(64, 64))
    entry_bytes = 3 * 64 * 64 * 4  # (L, H, W) float32
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0, grid=grid))
    peaks = {}
    for label, init in [("5 min", "2021-06-01T12:05"), ("3 years", "2024-06-01T12:00"),
                        ("back-fill 3 years", "2018-06-01T12:00")]:  # fmt: skip
        forecast = make_forecast(init, 2.0, grid=grid)
        tracemalloc.start()
        write_forecast(path, forecast)
        peaks[label] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # one slot per 5 min over 3 years would be 315,000 entries (~15 GB here)
    assert max(peaks.values()) < 50 * entry_bytes + 20e6, peaks
    assert open_forecast_store(path).sizes["init_time"] == 4


def test_backfill_leaves_the_live_store_untouched_until_the_swap(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    for k, init in enumerate(["2021-06-01T12:00", "2021-06-01T13:00", "2021-06-01T14:00"]):
        write_forecast(path, make_forecast(init, float(k + 1)))
    seen = []

    def reader(stage):
        if stage == "insert_copied":
            ds = xr.open_zarr(path)
            seen.append((ds.sizes["init_time"], _values(ds).tolist()))

    monkeypatch.setattr(fstore, "_FAULT_HOOK", reader)
    assert write_forecast(path, make_forecast("2021-06-01T12:30", 9.0)) == 1
    assert seen == [(3, [1.0, 2.0, 3.0])]  # chunk files renamed in the copy only
    np.testing.assert_array_equal(_values(open_forecast_store(path)), [1.0, 9.0, 2.0, 3.0])


def test_a_complete_entry_is_not_replaced_by_a_worse_one(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    broken = make_forecast(T0, np.nan, checkpoint="nan-weights.pt")
    with pytest.raises(
        ValueError, match=r"refusing to replace the complete forecast.*'nan-weights.pt'"
    ):
        write_forecast(path, broken)
    ds = open_forecast_store(path)
    np.testing.assert_array_equal(_values(ds), [1.0])
    assert ds[COMPLETE].values.all() and list(ds["checkpoint"].values) == ["ck.pt"]


def test_incompatible_forecasts_are_refused(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast("2021-06-01T12:10", 1.0))
    with pytest.raises(
        ValueError, match=r"this forecast has 500 lead times \(5min..1D17h40min\)"
    ) as e:
        write_forecast(path, make_forecast("2021-06-01T12:15", 1.0, n_leads=500))
    assert len(str(e.value)) < 200  # not every lead as a Timedelta (15 KB for 500 leads)
    assert "the store 3 lead times (5min..15min)" in str(e.value)
    with pytest.raises(ValueError, match="size of 'x'"):
        write_forecast(path, make_forecast("2021-06-01T12:15", 1.0, grid=small_grid(shape=(4, 6))))
    assert open_forecast_store(path).sizes["init_time"] == 1


def _write_at(path, init, value, barrier):
    barrier.wait()
    write_forecast(path, make_forecast(init, value))


def test_concurrent_processes_both_land(tmp_path):
    path = tmp_path / "f.zarr"
    n = 4
    barrier = FORK.Barrier(n)
    inits = [pd.Timestamp(T0) + k * pd.Timedelta("5min") for k in (2, 0, 3, 1)]
    procs = [
        FORK.Process(target=_write_at, args=(path, str(t), float(i + 1), barrier))
        for i, t in enumerate(inits)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * n
    ds = open_forecast_store(path)
    assert ds.sizes["init_time"] == 4  # whoever created the store first, nothing duplicated
    by_time = dict(zip(pd.DatetimeIndex(ds["init_time"].values), _values(ds), strict=True))
    assert by_time == {t: float(i + 1) for i, t in enumerate(inits)}
    assert ds[COMPLETE].values.all()
    assert not list(tmp_path.glob(".f.zarr.*.tmp"))


def _die_at(path, init, value, stage):
    def hook(name):
        if name == stage:
            os._exit(17)  # like a kill: no cleanup, no finally blocks

    fstore._FAULT_HOOK = hook
    write_forecast(path, make_forecast(init, value))


@pytest.mark.parametrize(
    ("init", "stage"),
    [
        ("2021-06-01T12:10", "resized"),  # append killed after the resize
        ("2021-06-01T12:10", "data_written"),  # append killed before the commit
        (T0, "flagged_incomplete"),  # replace killed before any chunk
        (T0, "data_written"),  # replace killed before its completion flag
        ("2021-06-01T11:55", "insert_copied"),  # backfill killed while building the copy
        ("2021-06-01T11:55", "swapped"),  # backfill killed after the swap, before cleanup
    ],
)
def test_killed_write_leaves_store_readable(tmp_path, init, stage):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    write_forecast(path, make_forecast("2021-06-01T12:05", 2.0))
    proc = FORK.Process(target=_die_at, args=(path, init, 9.0, stage))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 17
    ds = open_forecast_store(path)
    if stage == "swapped":  # the rebuilt store is complete; the old copy is a leftover
        np.testing.assert_array_equal(_values(ds), [9.0, 1.0, 2.0])
        ds = ds.isel(init_time=slice(1, None))
    assert ds.sizes["init_time"] == 2  # an interrupted append or rebuild is invisible
    if init == T0:  # the interrupted entry is flagged, the other one intact
        np.testing.assert_array_equal(ds[COMPLETE].values, [False, True])
    else:
        np.testing.assert_array_equal(_values(ds), [1.0, 2.0])
        assert ds[COMPLETE].values.all()
    assert _values(ds)[1] == 2.0
    # the next writer recovers (lock released by the dead process) and lands
    write_forecast(path, make_forecast("2021-06-01T12:15", 4.0))
    ds = open_forecast_store(path).sel(init_time=slice(T0, None))
    np.testing.assert_array_equal(_values(ds)[1:], [2.0, 4.0])
    assert ds[COMPLETE].values[1:].all()
    assert not list(tmp_path.glob(".f.zarr.*"))  # leftovers removed


def test_killed_first_write_leaves_no_store(tmp_path):
    path = tmp_path / "f.zarr"
    proc = FORK.Process(target=_die_at, args=(path, T0, 1.0, "created_tmp"))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 17 and not path.exists()
    write_forecast(path, make_forecast(T0, 3.0))
    assert _values(open_forecast_store(path)).tolist() == [3.0]
    assert not list(tmp_path.glob(".f.zarr.*.tmp"))  # leftover removed


def _write_forever(path, ready):
    grid = small_grid(shape=(64, 64))
    start = pd.Timestamp(T0)
    for k in range(10_000):
        write_forecast(
            path, make_forecast(str(start + k * fstore.pd.Timedelta("5min")), k, grid=grid)
        )
        if k == 1:
            ready.set()


def test_sigkill_during_writes_keeps_committed_forecasts(tmp_path):
    path = tmp_path / "f.zarr"
    ready = FORK.Event()
    proc = FORK.Process(target=_write_forever, args=(path, ready))
    proc.start()
    assert ready.wait(30)
    time.sleep(0.37)  # somewhere inside a later write
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    ds = open_forecast_store(path)
    n = ds.sizes["init_time"]
    assert n >= 2
    complete = ds[COMPLETE].values
    assert complete.all()  # appends only: every visible entry committed
    np.testing.assert_array_equal(_values(ds), np.arange(n, dtype=float))
    write_forecast(
        path, make_forecast(str(ds["init_time"].values[-1]), -1.0, grid=small_grid(shape=(64, 64)))
    )
    assert _values(open_forecast_store(path))[-1] == -1.0


def test_weatherbench2_export(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    write_forecast(path, make_forecast("2021-06-01T12:10", 3.0))
    wb2 = to_weatherbench2(open_forecast_store(path))
    assert wb2["precipitation_rate"].dims == ("time", "prediction_timedelta", "y", "x")
    assert wb2.sizes["time"] == 2
    assert "valid_time" not in wb2.variables
    out = export_weatherbench2(path, tmp_path / "wb2.zarr")
    back = xr.open_zarr(tmp_path / "wb2.zarr")
    np.testing.assert_array_equal(back["time"].values, out["time"].values)
    assert back["prediction_timedelta"].values[0] == np.timedelta64(5, "m")
    np.testing.assert_array_equal(
        back["precipitation_rate"].isel(prediction_timedelta=0).mean(["y", "x"]).values, [1.0, 3.0]
    )


def test_build_forecast_refuses_bad_input():
    grid = small_grid()
    with pytest.raises(ValueError, match=r"must be \(L, H, W\) = \(3, 4, 5\), got \(3, 5, 4\)"):
        fstore.build_forecast(
            {"precipitation_rate": np.zeros((3, 5, 4))},
            T0,
            pd.to_timedelta([5, 10, 15], "min"),
            grid,
            time_step="5min",
            source_name="x",
            provenance=_provenance(),
        )
    with pytest.raises(ValueError, match="positive and increasing"):
        fstore.build_forecast(
            {"precipitation_rate": np.zeros((2, 4, 5))},
            T0,
            pd.to_timedelta([10, 5], "min"),
            grid,
            time_step="5min",
            source_name="x",
            provenance=_provenance(),
        )
    with pytest.raises(ValueError, match=r"latitude must have shape \(H, W\) = \(4, 5\)"):
        fstore.ForecastGrid(grid.y, grid.x, grid.latitude[:, :4], grid.longitude, grid.crs)
    with pytest.raises(ValueError, match="exactly one init_time"):
        write_forecast("/nonexistent/f.zarr", make_forecast(T0, 1.0).isel(init_time=[0, 0]))
    with pytest.raises(ValueError, match="need a local path"):
        write_forecast("s3://bucket/f.zarr", make_forecast(T0, 1.0))


def _provenance():
    return fstore.Provenance("c", "h", "v", "s", pd.date_range(end=T0, periods=2, freq="5min"))


def test_readers_see_a_committed_store_at_every_write_stage(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    seen = []

    def reader(stage):  # what a concurrent reader sees at each step of the writer
        root = json.loads((path / "zarr.json").read_text())
        assert root.get("consolidated_metadata"), f"no consolidated metadata at {stage}"
        ds = xr.open_zarr(path)  # plain reader: consolidated metadata
        seen.append((stage, ds.sizes["init_time"], _values(ds).tolist(), ds[COMPLETE].values.all()))

    monkeypatch.setattr(fstore, "_FAULT_HOOK", reader)
    write_forecast(path, make_forecast("2021-06-01T12:05", 2.0))  # append
    appended = {stage: rest for stage, *rest in seen}
    seen.clear()
    write_forecast(path, make_forecast(T0, 3.0))  # replace
    replaced = {stage: rest for stage, *rest in seen}
    assert appended["resized"] == [1, [1.0], True]  # the append stays invisible ...
    assert appended["data_written"] == [1, [1.0], True]
    assert appended["consolidated"] == [2, [1.0, 2.0], True]  # ... until the commit
    assert appended["committed"] == [2, [1.0, 2.0], True]
    assert replaced["flagged_incomplete"] == [2, [1.0, 2.0], False]  # flagged before any chunk
    assert replaced["data_written"] == [2, [3.0, 2.0], False]  # new data, not yet complete
    assert replaced["committed"] == [2, [3.0, 2.0], True]
    assert xr.open_zarr(path).attrs["history"].endswith("replaced init_time 2021-06-01T12:00:00Z")


@pytest.mark.parametrize("nested", [False, True])
def test_backfill_in_both_chunk_key_layouts(tmp_path, monkeypatch, nested):
    # Stores written before the flat "c.<i>.0.0.0" chunk files keep nested "c/<i>/0/0/0" dirs.
    path = tmp_path / "f.zarr"
    if nested:
        plain = fstore._encoding

        def nested_encoding(ds):
            enc = plain(ds)
            for spec in enc.values():
                spec.pop("chunk_key_encoding", None)
            return enc

        monkeypatch.setattr(fstore, "_encoding", nested_encoding)
    for k, init in enumerate(["2021-06-01T12:00", "2021-06-01T13:00", "2021-06-01T14:00"]):
        write_forecast(path, make_forecast(init, float(k + 1)))
    assert (path / "precipitation_rate" / "c").is_dir() == nested
    assert write_forecast(path, make_forecast("2021-06-01T11:00", 9.0)) == 0
    assert write_forecast(path, make_forecast("2021-06-01T13:30", 8.0)) == 3
    np.testing.assert_array_equal(_values(open_forecast_store(path)), [9.0, 1.0, 2.0, 8.0, 3.0])


def _die_between_renames(path):
    from pipelines.forecast import backfill

    backfill._exchange = lambda a, b: False  # a file system without renameat2's exchange
    _die_at(path, "2021-06-01T11:55", 9.0, "swapped_out")


def test_backfill_killed_between_the_two_renames_is_undone(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, make_forecast(T0, 1.0))
    write_forecast(path, make_forecast("2021-06-01T12:05", 2.0))
    proc = FORK.Process(target=_die_between_renames, args=(path,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 17 and not path.exists()  # the store was renamed away ...
    assert len(list(tmp_path.glob(".f.zarr.*.old"))) == 1  # ... and the new copy not yet in
    write_forecast(path, make_forecast("2021-06-01T12:15", 4.0))  # the next writer restores
    np.testing.assert_array_equal(_values(open_forecast_store(path)), [1.0, 2.0, 4.0])
    assert not list(tmp_path.glob(".f.zarr.*"))
