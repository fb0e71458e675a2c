"""STEPS ensemble baseline: identical to pySTEPS called directly, seeded, contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pysteps import motion
from pysteps.nowcasts import steps as pysteps_steps
from pysteps.utils import transformation

from data_catalog.vocabulary import REALIZATION
from pipelines.baselines import ENSEMBLE_BASELINES, get_ensemble_baseline
from pipelines.baselines.steps import StepsConfig, pixel_km, steps

pytestmark = pytest.mark.timeout(60)


def _history(n: int = 4, shape: tuple[int, int] = (48, 48), channels: int = 0) -> xr.DataArray:
    # Two Gaussian rain cells moving 2 px down and 3 px right per 5 min on 2-km pixels; seeded.
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    frames = []
    for t in range(n):
        cell = 12.0 * np.exp(-((yy - 14 - 2 * t) ** 2 + (xx - 10 - 3 * t) ** 2) / 40.0)
        cell += 4.0 * np.exp(-((yy - 30 - 2 * t) ** 2 + (xx - 24 - 3 * t) ** 2) / 90.0)
        frames.append(np.where(cell > 0.05, cell * rng.uniform(0.8, 1.2, shape), 0.0))
    values = np.stack(frames).astype("float32")  # (time, y, x)
    dims: tuple[str, ...] = ("time", "y", "x")
    if channels:
        values = np.stack([values * (c + 1) for c in range(channels)], axis=1)
        dims = ("time", "channel", "y", "x")
    return xr.DataArray(
        values,
        dims=dims,
        coords={
            "time": pd.date_range("2024-07-01T12:00", periods=n, freq="5min"),
            "y": ("y", np.arange(shape[0]) * -2000.0, {"units": "m"}),
            "x": ("x", np.arange(shape[1]) * 2000.0, {"units": "m"}),
        },
        attrs={"units": "mm/h"},
    )


def test_registered_and_contract() -> None:
    assert "steps" in ENSEMBLE_BASELINES.names()
    assert get_ensemble_baseline("steps") is steps
    history = _history()
    out = steps(history, 3, members=3, seed=1)
    assert out.dims == (REALIZATION, "lead_time", "y", "x")
    assert out.shape == (3, 3, 48, 48)
    assert out[REALIZATION].values.tolist() == [0, 1, 2]
    assert out[REALIZATION].attrs["standard_name"] == "realization"
    assert out["init_time"].values == history["time"].values[-1]
    assert (out["lead_time"].values == pd.to_timedelta([5, 10, 15], "min").values).all()
    assert np.isfinite(out.values).all() and (out.values >= 0).all()
    assert out.attrs["units"] == "mm/h"
    assert pixel_km(history) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="members"):
        steps(history, 3, members=0)
    with pytest.raises(ValueError, match="units"):
        steps(history.assign_coords(x=np.arange(48.0)), 3, members=2)
    with pytest.raises(ValueError, match="kmperpixel"):
        StepsConfig(kmperpixel=-1.0)


def test_identical_to_pysteps_called_directly_and_seeded() -> None:
    history = _history()
    out = steps(history, 3, members=4, seed=42)
    # The same inputs, by hand: dBR, Lucas-Kanade on the last 3 frames, STEPS on the last 3.
    rain = history.values.astype("float64")
    db, _ = transformation.dB_transform(rain, threshold=0.1, zerovalue=-15.0)
    velocity = motion.get_method("LK")(db[-3:], verbose=False)
    direct = pysteps_steps.forecast(
        db[-3:],
        velocity,
        3,
        n_ens_members=4,
        n_cascade_levels=6,
        precip_thr=-10.0,
        kmperpixel=2.0,
        timestep=5.0,
        seed=42,
    )
    expected, _ = transformation.dB_transform(direct, threshold=-10.0, inverse=True)
    np.testing.assert_allclose(out.values, np.nan_to_num(expected).astype("float32"), rtol=1e-6)
    again = steps(history, 3, members=4, seed=42)
    xr.testing.assert_identical(out, again)  # same seed, same ensemble
    other = steps(history, 3, members=4, seed=43)
    assert not np.array_equal(other.values, out.values)
    assert float(out.std(REALIZATION).mean()) > 0  # members differ


def test_channels_are_forecast_each() -> None:
    out = steps(_history(channels=2), 2, members=2, seed=0)
    assert out.dims == (REALIZATION, "lead_time", "channel", "y", "x")
    assert out.shape == (2, 2, 2, 48, 48)
