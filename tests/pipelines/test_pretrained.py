"""Pretrained model: card/hash check, zero-shot fallback with provenance, time-step policy."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr

import pipelines.method.pretrained.card as card_module
from pipelines.forecast.run import run_forecast
from pipelines.forecast.store import open_forecast_store
from pipelines.forecast.time_step import TimeStepMismatchError
from pipelines.method.pretrained import PretrainedIntegrityError, load_card, load_pretrained
from pipelines.method.resample import GridResampler, RegularGrid
from pipelines.method.simvp import SimVPMethod
from simvp_model.predict import predict
from tests.pipelines.forecast_helpers import obs_store
from tests.pipelines.pretrained_helpers import tiny_pretrained

SOURCE = "new-radar"


@pytest.fixture
def pretrained_root(tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    tiny_pretrained(root)
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    return root


def _store(tmp_path, **kwargs):
    # a 1 km radar: 64 x 60 px; the model works at 4 km (16 x 15 cells, padded to 16 x 16)
    return obs_store(
        tmp_path / "data" / "stores" / f"{SOURCE}.zarr", shape=(64, 60), pixel=1000.0, **kwargs
    )


def test_card_hash_is_checked(pretrained_root):
    card = load_card("radar")
    assert card.version == "v-test" and card.resolution_m == 4000.0 and card.units == "mm/h"
    model = load_pretrained("radar")
    assert model.card == card and model.loaded.config.in_frames == 4
    weights = pretrained_root / "radar" / card.file
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PretrainedIntegrityError, match="SHA-256"):
        load_pretrained("radar")
    with pytest.raises(FileNotFoundError, match="available"):
        load_pretrained("lidar")


def test_forecast_without_trained_model_falls_back_to_pretrained(tmp_path, pretrained_root, caplog):
    store = _store(tmp_path)
    with caplog.at_level("WARNING"):
        result = run_forecast(SOURCE, data_dir=tmp_path / "data")
    assert "no trained model for 'new-radar'" in caplog.text and "zero-shot" in caplog.text
    card = load_card("radar")
    ds = open_forecast_store(result.store)
    field = ds["precipitation_rate"].isel(init_time=0)  # (lead, y, x) on the source grid
    obs = xr.open_zarr(store)
    assert field.shape == (3, 64, 60)
    np.testing.assert_allclose(ds[field.dims[1]].values, obs["y"].values)  # the source grid
    np.testing.assert_allclose(ds[field.dims[2]].values, obs["x"].values)
    assert pyproj.CRS.from_cf(dict(ds["crs"].attrs)) == pyproj.CRS.from_cf(dict(obs["crs"].attrs))
    assert ds["checkpoint_sha256"].values[0] == card.sha256
    version = str(ds["model_version"].values[0])
    assert version.startswith("model: pretrained radar v-test (sha256 " + card.sha256[:12])
    assert "resampled 1 km -> 4 km" in version
    # values: the network run at 4 km on the conservatively resampled inputs, mapped back
    frames = obs["precipitation_rate"].values[-4:, None]  # (4, 1, 64, 60)
    grid = GridResampler.for_source(RegularGrid.from_store(obs), 4000.0, multiple=4)
    coarse = np.nan_to_num(grid.to_model(frames), nan=0.0)
    expected = grid.to_source(predict(load_pretrained("radar").loaded, coarse, horizon=3))
    got = field.values
    ok = np.isfinite(frames[-1, 0])  # NaN pixels of the last input stay NaN
    np.testing.assert_allclose(got[:, ok], expected[:, 0][:, ok], rtol=1e-4, atol=1e-5)
    assert np.isnan(got[:, ~ok]).all()


def test_time_step_mismatch_is_an_error_or_an_explicit_choice(tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    tiny_pretrained(root, time_step="10min")
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    _store(tmp_path, n_times=12)  # 5-min store
    with pytest.raises(TimeStepMismatchError, match="model works on 10min steps but"):
        run_forecast(SOURCE, data_dir=tmp_path / "data")
    result = run_forecast(SOURCE, data_dir=tmp_path / "data", time_step_policy="nearest")
    ds = open_forecast_store(result.store)
    assert "every 2th frame of the 5min store" in str(ds["fallback"].values[0])
    inputs = ds["input_time"].values[0].astype("datetime64[m]")  # (T_in,)
    assert (np.diff(inputs).astype(int) == 10).all()
    assert result.lead_times[0] == np.timedelta64(10, "m")


def test_coarser_store_is_refused_even_with_nearest(tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    tiny_pretrained(root, time_step="150s")
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    _store(tmp_path)
    with pytest.raises(TimeStepMismatchError, match="whole multiple"):
        run_forecast(SOURCE, data_dir=tmp_path / "data", time_step_policy="nearest")


def test_units_other_than_the_cards_are_refused(tmp_path, pretrained_root):
    _store(tmp_path, units="dBZ")
    with pytest.raises(FileNotFoundError, match="Z-R relation"):
        SimVPMethod.resolve(SOURCE, None, tmp_path / "data")


def test_evaluation_does_not_fall_back(tmp_path, pretrained_root):
    _store(tmp_path)
    with pytest.raises(FileNotFoundError, match="no best.pt"):
        SimVPMethod.resolve(SOURCE, None, tmp_path / "data", fallback=False)


def test_untrained_extrapolation_base_model_forecasts_the_resampled_extrapolation(
    tmp_path, monkeypatch
):
    """A zero-initialised correction of the LK base: the zero-shot forecast is the LK nowcast
    of the inputs resampled to 4 km, mapped back to the 1 km source grid (any domain size)."""
    from pipelines.method.base_nowcasts import base_nowcast

    root = tmp_path / "pretrained"
    tiny_pretrained(root, base="extrapolation")  # built for 16 x 16: run on 12 x 10 + padding
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    store = obs_store(tmp_path / "data" / "stores" / f"{SOURCE}.zarr", shape=(48, 40), pixel=1000.0)
    result = run_forecast(SOURCE, data_dir=tmp_path / "data", lead_times=5)
    assert "base=extrapolation" in str(result.forecast["model_version"].values[0])
    obs = xr.open_zarr(store)
    frames = obs["precipitation_rate"].values[-4:, None]  # (4, 1, 48, 40)
    grid = GridResampler.for_source(RegularGrid.from_store(obs), 4000.0, multiple=4)
    coarse = grid.to_model(frames)  # (4, 1, 12, 12): NaN outside the domain
    lk = base_nowcast("extrapolation", coarse, obs["time"].values[-4:], 5)
    lk = np.where(np.isfinite(lk) & (lk > 0.1), lk, 0.0)  # filled, under the dBR floor: no rain
    expected = grid.to_source(lk)[:, 0]  # (5, 48, 40)
    got = result.forecast["precipitation_rate"].isel(init_time=0).values
    ok = np.isfinite(frames[-1, 0])
    np.testing.assert_allclose(got[:, ok], expected[:, ok], rtol=1e-5, atol=1e-6)
    assert got.shape == (5, 48, 40) and np.nanmax(got) > 1.0


def test_shipped_card_matches_the_shipped_weights():
    """The weights in the package are the ones their card describes (SHA-256 checked)."""
    from pipelines.method.pretrained import PRETRAINED_ROOT, available

    assert "radar" in available()
    model = load_pretrained("radar")  # raises PretrainedIntegrityError on a hash mismatch
    card = model.card
    assert (card.resolution_m, card.time_step, card.units) == (4000.0, "5min", "mm/h")
    assert model.loaded.config.base == "extrapolation"
    assert model.loaded.metadata["pretrained"]["version"] == card.version
    assert (PRETRAINED_ROOT / "radar" / card.file).stat().st_size < 5_000_000  # a few MB at most
