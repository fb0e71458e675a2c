"""S-PROG and ANVIL baselines: identical to pySTEPS called directly, contract, NaN policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pysteps import motion
from pysteps.nowcasts import anvil as pysteps_anvil
from pysteps.nowcasts import sprog as pysteps_sprog
from pysteps.utils import transformation

from pipelines.baselines import BASELINES, get_baseline
from pipelines.baselines.anvil import AnvilConfig, anvil
from pipelines.baselines.sprog import SprogConfig, sprog

pytestmark = pytest.mark.timeout(60)


def _history(n: int = 6, shape: tuple[int, int] = (64, 64), nan_corner: bool = False):
    # Two Gaussian rain cells (peaks 12 and 4 mm/h) moving 2 px down, 3 px right per 5 min,
    # on light noise so the cascade has energy at every scale; seeded.
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    frames = []
    for t in range(n):
        cell = 12.0 * np.exp(-((yy - 18 - 2 * t) ** 2 + (xx - 14 - 3 * t) ** 2) / 50.0)
        cell += 4.0 * np.exp(-((yy - 40 - 2 * t) ** 2 + (xx - 30 - 3 * t) ** 2) / 120.0)
        frames.append(np.where(cell > 0.05, cell * rng.uniform(0.8, 1.2, shape), 0.0))
    values = np.stack(frames)
    if nan_corner:
        values[:, :6, -6:] = np.nan  # outside radar range
    return xr.DataArray(
        values.astype("float32"),
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2024-07-01T12:00", periods=n, freq="5min"),
            "y": np.arange(shape[0]) * 8000.0,
            "x": np.arange(shape[1]) * 8000.0,
        },
        attrs={"units": "mm/h"},
    )


def test_registered_with_validated_configs() -> None:
    assert {"sprog", "anvil"} <= set(BASELINES.names())
    assert get_baseline("sprog") is sprog and get_baseline("anvil") is anvil
    with pytest.raises(ValueError, match="threshold"):
        SprogConfig(threshold=0.0)
    with pytest.raises(ValueError, match="n_cascade_levels"):
        SprogConfig(n_cascade_levels=0)
    with pytest.raises(ValueError, match="probmatching_method"):
        SprogConfig(probmatching_method="quantile")
    with pytest.raises(ValueError, match="ar_window_radius"):
        AnvilConfig(ar_window_radius=0)
    with pytest.raises(ValueError, match="at least 3 history"):
        sprog(_history(2), 3)
    with pytest.raises(ValueError, match="at least 4 history"):
        anvil(_history(3), 3)


def test_sprog_is_pysteps_sprog_on_the_same_input() -> None:
    history = _history()
    fc = sprog(history, 6)
    assert fc.dims == ("lead_time", "y", "x") and fc.shape == (6, 64, 64)
    assert fc.lead_time.values[-1] == np.timedelta64(30, "m")
    # pySTEPS directly, as its S-PROG example: dBR, LK motion on the last 3, S-PROG, inverse.
    rain = history.values.astype("float64")
    db, meta = transformation.dB_transform(rain, threshold=0.1, zerovalue=-15.0)
    velocity = motion.get_method("LK")(db[-3:], verbose=False)
    expected_db = pysteps_sprog.forecast(
        db[-3:], velocity, 6, precip_thr=-10.0, n_cascade_levels=6, probmatching_method="mean"
    )
    expected, _ = transformation.dB_transform(expected_db, threshold=-10.0, inverse=True)
    np.testing.assert_allclose(fc.values, np.nan_to_num(expected), rtol=1e-6, atol=1e-6)
    # S-PROG smooths: its last lead has less small-scale variance than the last observation.
    assert float(np.abs(np.diff(fc.values[-1], axis=1)).mean()) < float(
        np.abs(np.diff(rain[-1], axis=1)).mean()
    )


def test_anvil_is_pysteps_anvil_on_the_same_input() -> None:
    history = _history()
    fc = anvil(history, 4, AnvilConfig(ar_window_radius=10))
    rain = history.values.astype("float64")
    velocity = motion.get_method("LK")(rain[-3:], verbose=False)
    expected = pysteps_anvil.forecast(
        rain[-4:], velocity, 4, n_cascade_levels=6, ar_order=2, ar_window_radius=10
    )
    np.testing.assert_allclose(
        fc.values, np.clip(np.nan_to_num(expected), 0, None), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("method", [sprog, anvil])
def test_nan_history_gives_a_finite_non_negative_forecast(method) -> None:
    fc = method(_history(nan_corner=True), 3)
    assert np.isfinite(fc.values).all() and float(fc.min()) >= 0.0
    dry = _history() * 0.0
    np.testing.assert_array_equal(method(dry, 2).values, 0.0)
    two_channels = xr.concat([_history(), _history() * 0.5], "channel").transpose("time", ...)
    fc2 = method(two_channels, 2)
    assert fc2.dims == ("lead_time", "channel", "y", "x")
    np.testing.assert_allclose(fc2.isel(channel=0).values, method(_history(), 2).values)


def test_sprog_falls_back_to_extrapolation_when_the_ar_model_cannot_be_fitted(caplog) -> None:
    # A cell that jumps back across the domain: the estimated motion advects whole input frames
    # out of the grid, a cascade level becomes constant and pySTEPS refuses to fit the AR model.
    yy, xx = np.mgrid[0:16, 0:16]
    ts = [13, 14, 0, 1]
    values = np.stack(
        [8 * np.exp(-((yy - 4 - 0.6 * t) ** 2 + (xx - 3 - 0.8 * t) ** 2) / 18.0) for t in ts]
    )
    history = xr.DataArray(
        values.astype("float32"),
        dims=("time", "y", "x"),
        coords={"time": pd.date_range("2024-06-01", periods=4, freq="5min")},
    )
    with caplog.at_level("WARNING", logger="pipelines.baselines.sprog"):
        fc = sprog(history, 3)
    assert "Lagrangian extrapolation used" in caplog.text
    assert np.isfinite(fc.values).all() and float(fc.min()) >= 0.0
