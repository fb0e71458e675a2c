"""Base nowcasts equal the scored baselines; an untrained corrected SimVP returns its base."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.baselines import BASELINES
from pipelines.method.base_nowcasts import (
    BASES,
    BaseCache,
    base_available,
    base_nowcast,
    history_array,
)
from simvp_model.corrected import build_model
from simvp_model.normalisation import Normalisation
from simvp_model.predict import predict
from simvp_model.presets import get_preset

STEP = pd.Timedelta("5min")


def _moving_blob(frames: int = 4, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A 12 mm/h Gaussian cell moving 1 px per step to +x, on 1 mm/h drizzle; (T, 1, n, n)."""
    yy, xx = np.mgrid[0:n, 0:n]
    out = np.stack(
        [1.0 + 11.0 * np.exp(-((yy - 12) ** 2 + (xx - 8 - t) ** 2) / 8.0) for t in range(frames)]
    )
    times = pd.date_range("2020-01-01", periods=frames, freq=STEP).values
    return out[:, None].astype(np.float32), times


def test_bases_are_the_evaluated_baselines() -> None:
    frames, times = _moving_blob()
    history = history_array(frames, times)
    lk = base_nowcast("extrapolation", frames, times, 3)
    expected = BASELINES.get("optical_flow")(history, 3).values
    assert lk.shape == (3, 1, 32, 32) and lk.dtype == np.float32
    np.testing.assert_array_equal(lk, expected.astype(np.float32))
    # the cell keeps moving +x: its peak at x = 8 + 3 (last input) + lead
    assert [int(np.argmax(f[0].max(axis=0))) for f in lk] == [12, 13, 14]
    np.testing.assert_array_equal(
        base_nowcast("persistence", frames, times, 2), np.repeat(frames[-1:], 2, 0)
    )
    assert set(BASES.names()) == {
        "persistence",
        "extrapolation",
        "climatology",
        "anomaly_persistence",
    }


def _two_day_archive() -> xr.DataArray:
    """Hourly 2 x 3 px field: 280 K + hour of day, +1 K anomaly on day one and -1 K on day two."""
    times = pd.date_range("2020-01-01", periods=48, freq="1h")
    hours = np.arange(48)
    values = 280.0 + hours % 24 + np.where(hours < 24, 1.0, -1.0)
    return xr.DataArray(
        values[:, None, None, None] * np.ones((1, 1, 2, 3)),
        dims=("time", "channel", "y", "x"),
        coords={"time": times},
    )


def test_anomaly_persistence_by_hand() -> None:
    archive = _two_day_archive()
    history = archive.isel(time=slice(44, 48))  # init = hour 47 (23:00 of day two)
    fc = BASELINES.get("anomaly_persistence")(history, 2, archive=archive)
    # climatology = 280 + hour (days one and two average out); anomalies +1 then -1. Lag-1 pairs:
    # 46 within a day (product +1) and one across (-1): a_1 = 45/47; lag 2: a_2 = (44-2)/46.
    # Valid hours 0 and 1 of day three; the anomaly now is -1.
    expected = [280.0 + 0 - 45 / 47, 280.0 + 1 - 42 / 46]
    np.testing.assert_allclose(fc.values[:, 0], np.multiply.outer(expected, np.ones((2, 3))))
    assert fc.dims == ("lead_time", "channel", "y", "x")
    # one day of archive: no anomaly variance, the anomaly now is 0 -> the climatology itself
    day = archive.isel(time=slice(0, 24))
    one_day = BASELINES.get("anomaly_persistence")(day.isel(time=slice(20, 24)), 3, archive=day)
    clim = BASELINES.get("climatology")(day.isel(time=slice(20, 24)), 3, archive=day)
    np.testing.assert_array_equal(one_day.values, clim.values)
    # the base is the scored baseline, and it needs the archive's day
    base = base_nowcast(
        "anomaly_persistence", history.values, history["time"].values, 2, archive=archive
    )
    np.testing.assert_array_equal(base, fc.values.astype(np.float32))
    assert not base_available(
        "anomaly_persistence", archive["time"].values[22], archive["time"].values[0], STEP * 12
    )
    with pytest.raises(ValueError, match="needs archive"):
        BASELINES.get("anomaly_persistence")(history, 2)


def test_climatology_base_needs_a_day_of_archive() -> None:
    times = pd.date_range("2020-01-01", periods=60, freq="1h")
    archive = xr.DataArray(
        np.arange(60, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2)),
        dims=("time", "channel", "y", "x"),
        coords={"time": times},
    )
    start = times[0].to_datetime64()
    step = pd.Timedelta("1h")
    assert not base_available("climatology", times[22].to_datetime64(), start, step)
    assert base_available("climatology", times[23].to_datetime64(), start, step)
    assert base_available("extrapolation", times[0].to_datetime64(), start, step)
    inputs = archive.values[40:48]
    base = base_nowcast("climatology", inputs, times[40:48].values, 2, archive=archive)
    # init 47 h; valid times 48 h and 49 h: the same hours one and two days earlier (24, 0 and
    # 25, 1); hour 48 itself is after the init time and not used
    np.testing.assert_array_equal(base[:, 0, 0, 0], [(0 + 24) / 2, (1 + 25) / 2])
    with pytest.raises(ValueError, match="no frame at or before"):
        base_nowcast("climatology", archive.values[:4], times[:4].values, 2, archive=archive)


def test_untrained_extrapolation_model_reproduces_the_extrapolation_nowcast() -> None:
    frames, times = _moving_blob(frames=4)
    lk = base_nowcast("extrapolation", frames, times, 5)  # 5 leads: two roll-out blocks
    config = get_preset("tiny").replace(in_frames=4, out_frames=3, base="extrapolation")
    model = build_model(config)
    norm = Normalisation("dbr", (-5.0,), (8.0,), 0.1)
    out = predict(model, frames, horizon=5, normalisation=norm, base=lk)
    # exactly the base as the network sees it: rates under the 0.1 mm/h floor are "no rain"
    np.testing.assert_allclose(out, np.where(lk > 0.1, lk, 0.0), rtol=2e-6, atol=0)
    assert np.all(out[lk > 0.1] > 0)


def test_base_cache_computes_each_window_once() -> None:
    cache = BaseCache(max_bytes=10 * 8)
    calls = []

    def compute(value: float) -> np.ndarray:
        calls.append(value)
        return np.full(4, value)

    for key in (1, 2, 1, 2, 3, 1):
        got = cache.get(key, lambda k=key: compute(k))
        assert got[0] == key and not got.flags.writeable
    assert calls == [1, 2, 3, 1]  # two arrays of 32 bytes fit in 80: 1 was evicted by 3
