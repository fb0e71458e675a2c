"""run_forecast: input selection, staleness errors, values, grid, provenance, CLI."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from pipelines.cli import main
from pipelines.forecast import inputs as forecast_inputs
from pipelines.forecast import run as frun
from pipelines.forecast.run import StaleInputError, run_forecast
from pipelines.forecast.store import open_forecast_store
from pipelines.method.simvp import SimVPMethod, default_checkpoint
from tests.pipelines.forecast_helpers import (
    FakeLoaded,
    RecordingPredictor,
    obs_store,
    tiny_checkpoint,
)

pytestmark = pytest.mark.timeout(60)
SOURCE = "synthetic"
LAST = np.datetime64("2021-06-01T12:55")  # 12 frames from 12:00 every 5 min


@pytest.fixture
def fake():
    """Hand-computable predictor (lead k = last input frame + k) recording its calls."""
    return RecordingPredictor()


def _run(data_dir, predictor, **kwargs):
    kwargs.setdefault("checkpoint", SimVPMethod.from_loaded(FakeLoaded(), predictor))
    return run_forecast(SOURCE, data_dir=data_dir, **kwargs)


def test_forecast_values_provenance_and_grid(tmp_path, fake):
    store = obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    result = _run(tmp_path, fake)
    assert result.init_time == pd.Timestamp(LAST, tz="UTC")  # default: the store's last time step
    assert list(result.lead_times) == [pd.Timedelta(minutes=m) for m in (5, 10, 15)]
    ((frames, horizon),) = fake
    assert horizon == 3 and frames.shape == (1, 4, 1, 32, 32)
    # inputs: the last 4 frames (values 9..12 in the blob), NaN corner filled with physical 0
    assert frames[0, :, 0, 16, 16].tolist() == [9.0, 10.0, 11.0, 12.0]
    assert frames[0, -1, 0, 0, 0] == 0.0

    ds = open_forecast_store(result.store)
    field = ds["precipitation_rate"].sel(init_time=LAST)  # (lead_time, y, x)
    assert field.sel(lead_time=pd.Timedelta("15min")).values[16, 16] == 15.0  # 12 + 3
    assert field.isel(lead_time=0).values[20, 30] == 1.0  # outside the blob: 0 + 1
    assert np.isnan(field.values[:, :3, :3]).all()  # no data where the last input had none
    assert ds["precipitation_rate"].attrs["units"] == "mm/h"
    assert ds["precipitation_rate"].attrs["standard_name"] == "rainfall_rate"
    inputs = pd.DatetimeIndex(ds["input_time"].sel(init_time=LAST).values)
    assert list(inputs) == list(pd.date_range("2021-06-01T12:40", LAST, freq="5min"))
    assert ds["fallback"].values[0] == "" and "T_in" in ds["model_version"].values[0]
    assert ds.attrs["source_store"] == str(store)
    assert json.loads(ds.attrs["input_preparation"]) == {
        "variables": ["precipitation_rate"],
        "crop": None,
        "coarsen": 1,
        "in_frames": 4,
    }
    assert "units" not in ds.attrs  # variable attrs stay on the variable
    # lat/lon of a few pixels equal the observation store's
    obs = xr.open_zarr(store)
    for j, i in [(0, 0), (5, 17), (31, 31)]:
        assert float(ds.latitude[j, i]) == pytest.approx(float(obs.latitude[j, i]), abs=1e-6)
        assert float(ds.longitude[j, i]) == pytest.approx(float(obs.longitude[j, i]), abs=1e-6)
    np.testing.assert_array_equal(ds.x.values, obs.x.values)
    assert ds["crs"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"


def test_rollout_lead_count_and_rerun_replaces(tmp_path, fake):
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    first = _run(tmp_path, fake, init_time="2021-06-01T12:30", lead_times=7)
    assert fake[-1][1] == 7 and len(first.lead_times) == 7
    assert first.lead_times[-1] == pd.Timedelta("35min")
    again = _run(tmp_path, fake, init_time="2021-06-01T12:30+00:00", lead_times=7)  # tz-aware = UTC
    assert again.index == first.index == 0
    assert open_forecast_store(first.store).sizes["init_time"] == 1


@pytest.mark.parametrize(
    ("absent", "init_time", "message"),
    [
        ((), "2021-06-01T13:00", "newest frame is at 2021-06-01T12:55Z, before the init time"),
        ((11,), "2021-06-01T12:55", "newest frame is at 2021-06-01T12:50Z"),  # last frame absent
        ((9,), None, "absent at 2021-06-01T12:45Z"),  # a gap inside the window
        ((), "2021-06-01T12:52", "not on the store's 5min time grid"),
        ((), "2021-06-01T12:10", "the store starts at 2021-06-01T12:00Z"),
        ((), "2021-06-01T11:00", "precedes the observation store's start"),
    ],
)
def test_stale_or_missing_inputs_are_errors(tmp_path, fake, absent, init_time, message):
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr", absent=absent)
    with pytest.raises(StaleInputError, match=message):
        _run(tmp_path, fake, init_time=init_time)
    assert not fake  # nothing predicted
    assert not (tmp_path / "forecasts").exists()


def test_all_nan_frame_marked_present_is_an_error(tmp_path, fake):
    path = obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    ds = xr.open_zarr(path).load()
    ds["precipitation_rate"][10] = np.nan  # present but empty: not a usable input
    ds.to_zarr(path, mode="w")
    with pytest.raises(StaleInputError, match="all-NaN at 2021-06-01T12:50Z"):
        _run(tmp_path, fake)
    result = _run(tmp_path, fake, fallback="latest-complete")
    assert result.init_time == pd.Timestamp("2021-06-01T12:45", tz="UTC")  # window 12:30..12:45


def test_explicit_fallback_uses_latest_complete_window(tmp_path, fake, caplog):
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr", absent=(9,))
    with caplog.at_level(logging.WARNING, logger="pipelines.forecast.run"):
        result = _run(tmp_path, fake, fallback="latest-complete")
    # windows ending 12:55 and 12:50 hold the absent 12:45 → 12:25..12:40
    assert result.init_time == pd.Timestamp("2021-06-01T12:40", tz="UTC")
    assert "input fallback" in caplog.text
    note = open_forecast_store(result.store)["fallback"].values[0]
    assert note.startswith("latest-complete: requested 2021-06-01T12:55Z (input frames absent")
    assert note.endswith("used 2021-06-01T12:40Z")
    # a stale init time falls back too, when asked
    later = _run(tmp_path, fake, init_time="2021-06-01T13:30", fallback="latest-complete")
    assert later.init_time == pd.Timestamp("2021-06-01T12:40", tz="UTC")


def test_default_init_is_newest_present_frame_and_max_age(tmp_path, fake):
    # the store axis is padded beyond the newest frame (as ingest pads to whole chunks)
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr", absent=(10, 11))
    assert _run(tmp_path, fake).init_time == pd.Timestamp("2021-06-01T12:45", tz="UTC")
    with pytest.raises(
        StaleInputError, match="1 h 01 min before 2021-06-01T13:46Z: older than max_age 1 h 00 min"
    ):
        frun.select_inputs(
            xr.open_zarr(tmp_path / "stores" / f"{SOURCE}.zarr"), 4, max_age="1h",
            as_of="2021-06-01T13:46",
        )  # fmt: skip
    selection = frun.select_inputs(
        xr.open_zarr(tmp_path / "stores" / f"{SOURCE}.zarr"),
        4,
        max_age="1h",
        as_of="2021-06-01T13:45",
    )
    assert list(selection.times) == list(
        pd.date_range("2021-06-01T12:30", periods=4, freq="5min", tz="UTC")
    )


def test_default_checkpoint_is_newest_best(tmp_path):
    with pytest.raises(FileNotFoundError, match="no best.pt under"):
        default_checkpoint(SOURCE, tmp_path)
    old = tmp_path / "models" / SOURCE / "a" / "best.pt"
    new = tmp_path / "models" / SOURCE / "b" / "c" / "best.pt"
    for path, age in ((old, 100), (new, 10)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age, time.time() - age))
    assert default_checkpoint(SOURCE, tmp_path) == new


def test_geographic_source_uses_latitude_longitude(tmp_path, fake):
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr", crs=pyproj.CRS.from_epsg(4326), pixel=0.25)
    ds = open_forecast_store(_run(tmp_path, fake).store)
    assert ds["precipitation_rate"].dims == ("init_time", "lead_time", "latitude", "longitude")
    assert float(ds.latitude[1]) == 57.75 and float(ds.longitude[2]) == 6.5


def test_cli_with_real_checkpoint_rolls_out(tmp_path, capsys):
    import torch

    from simvp_model.checkpoint import load_checkpoint
    from simvp_model.predict import predict

    torch.set_num_threads(1)
    store = obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    ckpt = tiny_checkpoint(tmp_path / "models" / SOURCE / "run" / "best.pt")
    wb2 = tmp_path / "wb2.zarr"
    rc = main(
        ["forecast", "--source", SOURCE, "--data-dir", str(tmp_path), "--leads", "5"]
        + ["--no-render", "--export-wb2", str(wb2)]
    )
    assert rc == 0
    assert "lead times: 5 (5min .. 25min)" in capsys.readouterr().out
    assert xr.open_zarr(wb2)["precipitation_rate"].dims == (
        "time",
        "prediction_timedelta",
        "y",
        "x",
    )
    # 5 leads differ from the model's 3: their own store
    ds = open_forecast_store(tmp_path / "forecasts" / f"{SOURCE}-5leads.zarr")
    assert ds.sizes["lead_time"] == 5  # model out_frames=3, rolled out
    assert ds["checkpoint"].values[0] == str(ckpt)
    assert len(ds["checkpoint_sha256"].values[0]) == 64
    # values equal a direct predict() on the same (NaN-filled) inputs
    frames = xr.open_zarr(store)["precipitation_rate"].values[-4:, None]  # (4, 1, H, W)
    expected = predict(load_checkpoint(ckpt), np.nan_to_num(frames, nan=0.0), horizon=5)
    got = ds["precipitation_rate"].isel(init_time=0).values  # (5, H, W)
    np.testing.assert_allclose(got[:, 3:, 3:], expected[:, 0, 3:, 3:], rtol=1e-5, atol=1e-6)
    # a stale init time is a one-line CLI error (exit 2)
    rc = main(["forecast", "--source", SOURCE, "--data-dir", str(tmp_path), "--init-time",
               "2021-06-01T14:00", "--no-render"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "newest frame is at 2021-06-01T12:55Z" in err and "stale by 1 h 05 min" in err


def test_real_era5_sample_through_ingest(tmp_path, fake):
    """Shipped ERA5 sample → ingest (H4's store) → forecast: grid, CRS and values line up."""
    pytest.importorskip("rioxarray")
    from pipelines.ingest import ingest_source
    from simvp_model.normalisation import Normalisation

    source = "era5-t2m-uk"
    ingest_source(source, str(tmp_path), "2019-03-10T00:00", "2019-03-10T05:00", progress=False)
    loaded = FakeLoaded(variables=("air_temperature",))
    loaded.normalisation = Normalisation.identity(1)
    loaded.metadata.update(source=source, time_step="1h", crop=[0, 32, 0, 48])
    result = run_forecast(
        source, data_dir=tmp_path, checkpoint=SimVPMethod.from_loaded(loaded, fake)
    )
    assert result.init_time == pd.Timestamp("2019-03-10T05:00", tz="UTC")
    ds = open_forecast_store(result.store)
    obs = xr.open_zarr(tmp_path / "stores" / f"{source}.zarr")
    field = ds["air_temperature"].isel(init_time=0)
    assert field.dims == ("lead_time", "latitude", "longitude") and field.attrs["units"] == "K"
    assert ds.rio.crs.to_epsg() == 4326
    np.testing.assert_allclose(ds["latitude"].values, obs["latitude"].values[:32, 0])
    np.testing.assert_allclose(ds["longitude"].values, obs["longitude"].values[0, :48])
    assert ds["latitude"].values[0] == 58.0 and ds["longitude"].values[0] == -10.0  # ERA5 corner
    last = obs["air_temperature"].sel(time="2019-03-10T05:00").values[:32, :48]
    np.testing.assert_allclose(field.isel(lead_time=2).values, last + 3.0, rtol=1e-6)
    assert field["lead_time"].values[-1] == np.timedelta64(3, "h")
    # re-rendering reads the same inputs back (geographic grid, cropped like the checkpoint)
    from pipelines.render.stored import load_stored_forecast, stored_inputs

    observed = stored_inputs(load_stored_forecast(source, None, tmp_path), tmp_path)
    np.testing.assert_array_equal(observed.isel(time=-1, channel=0).values, last)


def test_only_the_input_window_is_prepared(tmp_path, fake, monkeypatch):
    # A store may span years of time steps (the MeteoSwiss events are 2015-2017): preparing the
    # whole store to pick T_in frames once tried to allocate 306 GiB.
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    prepared_sizes = []
    prepare = forecast_inputs.prepare_frames

    def recording_prepare(store_ds, preparation):
        prepared_sizes.append(store_ds.sizes["time"])
        return prepare(store_ds, preparation)

    monkeypatch.setattr(forecast_inputs, "prepare_frames", recording_prepare)
    _run(tmp_path, fake)
    assert prepared_sizes == [4]  # T_in of the checkpoint, not the 12 stored steps


def test_each_lead_configuration_has_its_own_store(tmp_path, fake):
    # Regression: --leads N failed once the store held another lead count.
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    default = _run(tmp_path, fake, init_time="2021-06-01T12:30")  # the model's own 3 leads
    longer = _run(tmp_path, fake, init_time="2021-06-01T12:30", lead_times=24)
    again = _run(tmp_path, fake, init_time="2021-06-01T12:35", lead_times=24)
    assert default.store == str(tmp_path / "forecasts" / f"{SOURCE}.zarr")
    assert longer.store == again.store == str(tmp_path / "forecasts" / f"{SOURCE}-24leads.zarr")
    assert open_forecast_store(default.store).sizes["lead_time"] == 3
    assert open_forecast_store(longer.store).sizes["lead_time"] == 24
    assert open_forecast_store(longer.store).sizes["init_time"] == 2
    assert _run(tmp_path, fake, init_time="2021-06-01T12:30", lead_times=3).store == default.store


def _nan_predictor(loaded, frames, horizon):
    return np.full((1, horizon, *frames.shape[2:]), np.nan, dtype=np.float32)


def test_a_non_finite_forecast_is_refused_naming_the_checkpoint(tmp_path, fake):
    # Regression: NaN weights wrote an all-NaN forecast marked complete over the good one.
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    good = _run(tmp_path, fake)
    broken = SimVPMethod.from_loaded(FakeLoaded(), _nan_predictor)
    with pytest.raises(ValueError, match=r"checkpoint fake.pt forecast \d+ of \d+ values non-fin"):
        _run(tmp_path, fake, checkpoint=broken)
    ds = open_forecast_store(good.store)
    assert ds.sizes["init_time"] == 1 and ds["forecast_complete"].values.all()
    assert np.isfinite(ds["precipitation_rate"].values[0][:, 16, 16]).all()


def test_cli_refuses_a_checkpoint_with_nan_weights(tmp_path, capsys):
    import torch

    from simvp_model.checkpoint import load_checkpoint, save_checkpoint

    torch.set_num_threads(1)
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    ckpt = tiny_checkpoint(tmp_path / "nan.pt")
    loaded = load_checkpoint(ckpt)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.fill_(float("nan"))
    save_checkpoint(
        ckpt, loaded.model, loaded.config, loaded.normalisation, {}, dict(loaded.metadata)
    )
    args = ["forecast", "--source", SOURCE, "--data-dir", str(tmp_path), "--checkpoint", str(ckpt)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"checkpoint {ckpt} forecast" in err[0], err
    assert not (tmp_path / "forecasts" / f"{SOURCE}.zarr").exists()


@pytest.mark.timeout(20)  # scanning one window per time step took minutes here
def test_fallback_across_a_five_year_gap_searches_in_chunks():
    times = pd.date_range("2015-01-01", periods=5 * 365 * 288 + 12, freq="5min")
    present = np.zeros(len(times), dtype=bool)
    present[:12] = True  # the only observations: the first hour; five years absent since
    store = xr.Dataset(coords={"time": times}, attrs={"time_step": "5min"})
    selection = forecast_inputs.select_inputs(
        store, 4, times[-1], present, fallback="latest-complete"
    )
    assert selection.init_time == pd.Timestamp(times[11], tz="UTC")
    with pytest.raises(StaleInputError, match="or pass --fallback latest-complete$"):
        forecast_inputs.select_inputs(store, 4, times[-1], present)


def test_backward_search_matches_a_brute_force_scan():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, t_in = int(rng.integers(1, 60)), int(rng.integers(1, 6))
        present = rng.random(n) < rng.uniform(0.3, 1.0)
        stop = int(rng.integers(0, n))
        ends = [s for s in range(stop, t_in - 2, -1) if s >= t_in - 1]
        brute = next((s for s in ends if present[s - t_in + 1 : s + 1].all()), None)
        assert forecast_inputs.newest_complete_stop(present, stop, t_in, chunk=7) == brute


def test_time_step_mismatch_spells_steps_as_the_catalog_does(tmp_path, fake):
    obs_store(tmp_path / "stores" / f"{SOURCE}.zarr")
    loaded = FakeLoaded()
    loaded.metadata = {**loaded.metadata, "time_step": "10min"}
    method = SimVPMethod.from_loaded(loaded, fake)
    with pytest.raises(ValueError, match=r"model works on 10min steps but .* store is at 5min:"):
        _run(tmp_path, fake, checkpoint=method)
