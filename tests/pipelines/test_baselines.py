"""Baselines: persistence exactness, optical flow on a moving blob, climatology on a daily cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.baselines import BASELINES, get_baseline
from pipelines.baselines.climatology import climatology, last_day
from pipelines.baselines.optical_flow import optical_flow
from pipelines.baselines.persistence import persistence
from pipelines.verification import get_score

pytestmark = pytest.mark.timeout(60)

STEP = pd.Timedelta("5min")


def _frames(values: np.ndarray, start: str = "2024-07-01T12:00", step: pd.Timedelta = STEP):
    dims = ("time", "y", "x") if values.ndim == 3 else ("time", "channel", "y", "x")
    times = pd.date_range(start, periods=values.shape[0], freq=step)
    ny, nx = values.shape[-2:]
    return xr.DataArray(
        values.astype("float32"),
        dims=dims,
        coords={"time": times, "y": np.arange(ny) * 1000.0, "x": np.arange(nx) * 1000.0},
        attrs={"units": "mm/h"},
    )


def _blob(t: int, shape: tuple[int, int] = (64, 64), nan_corner: bool = False) -> np.ndarray:
    # Gaussian rain cell (peak 10 mm/h, sigma 5 px) moving 2 px down and 3 px right per step.
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    cy, cx = 18 + 2 * t, 14 + 3 * t
    field = 10.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2))
    if nan_corner:
        field[:6, -6:] = np.nan  # outside radar range
    return field


def test_registry_and_contract_errors() -> None:
    assert {"persistence", "optical_flow", "climatology", "last_day"} <= set(BASELINES.names())
    with pytest.raises(ValueError, match="valid names"):
        get_baseline("nowcast-oracle")
    history = _frames(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="steps"):
        persistence(history, 0)
    with pytest.raises(ValueError, match="dims"):
        persistence(history.rename(time="t"), 2)
    with pytest.raises(ValueError, match="archive"):
        climatology(history, 2)


def test_persistence_repeats_the_last_frame_exactly() -> None:
    rng = np.random.default_rng(0)
    history = _frames(rng.random((4, 2, 5, 6)))  # (time, channel, y, x)
    fc = persistence(history, 3)
    assert fc.dims == ("lead_time", "channel", "y", "x")
    assert fc.dtype == np.float32
    np.testing.assert_array_equal(fc.lead_time.values, pd.to_timedelta([5, 10, 15], "min").values)
    assert fc.init_time.values == history.time.values[-1]
    for k in range(3):
        np.testing.assert_array_equal(fc[k].values, history[-1].values)
    np.testing.assert_array_equal(fc.x.values, history.x.values)
    single = persistence(history.isel(time=[-1]), 2, time_step="1h")
    assert single.lead_time.values[-1] == np.timedelta64(2, "h")


@pytest.mark.parametrize("nan_corner", [False, True])
def test_optical_flow_extrapolates_a_moving_blob_near_perfectly(nan_corner: bool) -> None:
    history = _frames(np.stack([_blob(t, nan_corner=nan_corner) for t in range(4)]))
    truth = xr.DataArray(np.stack([_blob(t) for t in range(4, 10)]), dims=("lead_time", "y", "x"))
    fc = optical_flow(history, 6)
    assert fc.dims == ("lead_time", "y", "x") and np.isfinite(fc.values).all()
    pers = persistence(history, 6)
    truth = truth.assign_coords(lead_time=fc.lead_time)
    mse_of = get_score("mse")
    mse_flow = mse_of(fc, truth, ("y", "x"))
    mse_pers = mse_of(pers, truth, ("y", "x"))
    assert (mse_flow < 0.01 * mse_pers).all(), (mse_flow.values, mse_pers.values)
    csi_flow = get_score("csi")(fc, truth, ("y", "x"), threshold=1.0)
    csi_pers = get_score("csi")(pers, truth, ("y", "x"), threshold=1.0)
    assert (csi_flow > 0.9).all(), csi_flow.values
    assert float(csi_pers[-1]) < 0.3  # the cell has moved 18 px right, 12 px down


def test_optical_flow_needs_two_frames() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        optical_flow(_frames(_blob(0)[None]), 2, time_step="5min")


def _daily_cycle(days: int, step: str = "1h") -> xr.DataArray:
    # Temperature-like field: 280 K + 5 K sin(time of day) + 0.1 K x (day index) trend.
    times = pd.date_range("2024-01-01", periods=days * 24, freq=step)
    hours = times.hour.values + times.minute.values / 60
    cycle = 280.0 + 5.0 * np.sin(2 * np.pi * hours / 24) + 0.1 * (times.day_of_year.values - 1)
    values = np.broadcast_to(cycle[:, None, None], (len(times), 3, 4)).copy()
    return _frames(values, start="2024-01-01", step=pd.Timedelta(step))


def test_climatology_averages_past_days_at_the_same_time_of_day() -> None:
    archive = _daily_cycle(days=6)
    init = 4 * 24 + 5  # day 4, 05:00: history ends there; days 0-4 are in the past
    history = archive.isel(time=slice(init - 3, init + 1))
    fc = climatology(history, 3, archive=archive)
    for k in range(1, 4):
        hour = 5 + k
        # days 0..3 have this hour in the past (day 4 at 06:00+ is after init): mean trend 1.5
        expected = 280.0 + 5.0 * np.sin(2 * np.pi * hour / 24) + 0.1 * 1.5
        np.testing.assert_allclose(fc[k - 1].values, expected, rtol=1e-6)
    # the daily cycle beats persistence at long leads
    truth = archive.isel(time=slice(init + 1, init + 4)).rename(time="lead_time")
    truth = truth.assign_coords(lead_time=fc.lead_time)
    mse_of = get_score("mse")
    assert float(mse_of(fc, truth)) < float(mse_of(persistence(history, 3), truth))
    plain = climatology(history, 1, period=None, archive=archive)
    np.testing.assert_allclose(plain[0].values, archive.values[: init + 1].mean(0), rtol=1e-5)


def test_climatology_skips_missing_frames_and_refuses_an_empty_phase() -> None:
    archive = _daily_cycle(days=3)
    archive[24 + 7] = np.nan  # day 1, 07:00 missing
    history = archive.isel(time=slice(2 * 24, 2 * 24 + 2))  # ends day 2, 01:00
    fc = climatology(history, 6, archive=archive)
    expected = 280.0 + 5.0 * np.sin(2 * np.pi * 7 / 24) + 0.0  # only day 0 at 07:00
    np.testing.assert_allclose(fc[5].values, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="no frame"):
        climatology(archive.isel(time=slice(0, 2)), 3, archive=archive)


def test_last_day_is_the_frame_one_day_before_the_valid_time() -> None:
    archive = _daily_cycle(days=3)
    archive[24 + 3] = np.nan
    history = archive.isel(time=slice(2 * 24, 2 * 24 + 2))  # init: day 2, 01:00
    fc = last_day(history, 3, archive=archive)
    np.testing.assert_array_equal(fc[0].values, archive[24 + 2].values)  # 02:00 day 1
    assert np.isnan(fc[1].values).all()  # 03:00 day 1 was missing
    np.testing.assert_array_equal(fc[2].values, archive[24 + 4].values)
    with pytest.raises(ValueError, match="covers leads"):
        last_day(history, 25, archive=archive)
