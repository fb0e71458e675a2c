"""Bootstrap intervals: hand-checkable cases, groups kept whole, pooled value = registered score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.verification import get_score
from pipelines.verification.bootstrap import (
    POOLED,
    BootstrapConfig,
    contiguous_blocks,
    excludes_zero,
    group_weights,
    paired_difference,
    score_interval,
    window_components,
)

pytestmark = pytest.mark.timeout(60)

DIMS = ("init_time", "lead_time", "channel", "y", "x")


def _fields(values: np.ndarray) -> xr.DataArray:
    n, lead = values.shape[:2]
    return xr.DataArray(
        values.astype("float64"),
        dims=DIMS,
        coords={
            "init_time": pd.date_range("2024-07-01", periods=n, freq="5min"),
            "lead_time": pd.to_timedelta(np.arange(1, lead + 1) * 5, "min"),
        },
    )


def _constant_error(errors: list[float], lead: int = 2) -> tuple[xr.DataArray, xr.DataArray]:
    """Windows whose squared error is ``errors[i]`` at every pixel (4 x 4 px, 1 channel)."""
    obs = np.zeros((len(errors), lead, 1, 4, 4))
    fc = obs + np.sqrt(np.asarray(errors))[:, None, None, None, None]
    return _fields(fc), _fields(obs)


def test_two_events_give_the_hand_computed_interval() -> None:
    # Events with MSE 1 and 3 (equal pixel counts): a resample of 2 events has MSE 1, 2 or 3
    # with probability 1/4, 1/2, 1/4, so the 5 % and 95 % quantiles are 1 and 3.
    fc, obs = _constant_error([1.0, 1.0, 3.0, 3.0])
    out = score_interval("mse", fc, obs, np.array([0, 0, 1, 1]), BootstrapConfig(2000, 0.9))
    np.testing.assert_allclose(out["value"].values, 2.0)
    np.testing.assert_allclose(out["lower"].values, 1.0)
    np.testing.assert_allclose(out["upper"].values, 3.0)
    assert out.attrs["n_groups"] == 2 and out.attrs["level"] == 0.9
    # Events stay whole: resampled MSEs are only 1, 2, 3; per-window resampling mixes more.
    comps = window_components("mse", fc, obs)
    for groups, support in (([0, 0, 1, 1], {1.0, 2.0, 3.0}), ([0, 1, 2, 3], None)):
        w = group_weights(np.array(groups), BootstrapConfig(500, seed=3))
        sums = np.tensordot(w, comps.isel(lead_time=0, channel=0).values, axes=(1, 0))
        seen = set(np.round(sums[:, 0] / sums[:, 1], 6))
        if support is not None:
            assert seen == support
        else:
            assert {1.5, 2.5} <= seen


def test_single_group_and_same_seed() -> None:
    fc, obs = _constant_error([1.0, 2.0, 4.0])
    one = score_interval("mse", fc, obs, np.zeros(3, dtype=int))
    np.testing.assert_allclose(one["lower"].values, one["value"].values)  # a point: one event
    a = score_interval("mae", fc, obs, np.arange(3), BootstrapConfig(300, seed=5))
    b = score_interval("mae", fc, obs, np.arange(3), BootstrapConfig(300, seed=5))
    xr.testing.assert_identical(a, b)
    with pytest.raises(ValueError, match="one per window"):
        score_interval("mse", fc, obs, np.arange(4))
    with pytest.raises(ValueError, match="level"):
        BootstrapConfig(level=1.5)


def test_paired_difference_of_a_uniformly_better_method() -> None:
    # A's squared error is B's minus 1 in every window: A - B = -1 in every resample.
    fc_b, obs = _constant_error([2.0, 3.0, 5.0, 9.0])
    fc_a, _ = _constant_error([1.0, 2.0, 4.0, 8.0])
    out = paired_difference("mse", fc_a, fc_b, obs, np.arange(4), BootstrapConfig(400))
    np.testing.assert_allclose(out["value"].values, -1.0)
    np.testing.assert_allclose(out["lower"].values, -1.0)
    np.testing.assert_allclose(out["upper"].values, -1.0)
    assert bool(excludes_zero(out).all()) and float(out["share_below_zero"].min()) == 1.0
    # Unpaired intervals of A and B overlap, the paired one does not: pairing matters.
    ia = score_interval("mse", fc_a, obs, np.arange(4))
    ib = score_interval("mse", fc_b, obs, np.arange(4))
    assert float(ia["upper"].max()) > float(ib["lower"].min())


@pytest.mark.parametrize(
    "score, params",
    [
        ("mse", {}),
        ("mae", {}),
        ("rmse", {}),
        ("bias", {}),
        ("csi", {"threshold": 1.0}),
        ("pod", {"threshold": 1.0}),
        ("far", {"threshold": 1.0}),
        ("fss", {"threshold": 1.0, "scale": 3}),
    ],
)
def test_pooled_value_equals_the_registered_score(score: str, params: dict) -> None:
    rng = np.random.default_rng(0)
    obs = rng.gamma(0.6, 2.0, (5, 3, 1, 12, 10))
    fc = obs * rng.uniform(0.5, 1.5, obs.shape) + rng.normal(0, 0.3, obs.shape)
    obs[:, :, :, :2, :3] = np.nan  # outside radar range
    fc_x, obs_x = _fields(fc), _fields(obs)
    out = score_interval(score, fc_x, obs_x, np.arange(5), BootstrapConfig(200), **params)
    expected = get_score(score)(fc_x, obs_x, ("init_time", "y", "x"), **params)
    np.testing.assert_allclose(
        out["value"].transpose(*expected.dims).values, expected.values, rtol=1e-10
    )
    assert bool((out["lower"] <= out["value"] + 1e-12).all())
    assert bool((out["upper"] >= out["value"] - 1e-12).all())
    assert score in POOLED.names()


def test_contiguous_blocks_cut_runs_into_blocks() -> None:
    t = pd.date_range("2024-07-01", periods=7, freq="5min").values
    later = pd.date_range("2024-07-02", periods=3, freq="5min").values
    labels = contiguous_blocks(np.concatenate([t, later]), pd.Timedelta("5min"), 3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 2, 3, 3, 3])
    with pytest.raises(ValueError, match="block"):
        contiguous_blocks(t, pd.Timedelta("5min"), 0)


def test_interval_rows_and_comparison_table() -> None:
    from pipelines.verification.intervals import Comparison, comparison_table, interval_rows

    fc_b, obs = _constant_error([2.0, 3.0, 5.0, 9.0])
    fc_a, _ = _constant_error([1.0, 2.0, 4.0, 8.0])
    obs = obs.assign_coords(channel=["rain"])
    forecasts = {
        "a": fc_a.assign_coords(channel=["rain"]),
        "b": fc_b.assign_coords(channel=["rain"]),
    }
    rows = []
    for method, fc in forecasts.items():
        for score in ("mse", "ssim"):
            for k, lead in enumerate((5.0, 10.0)):
                value = float(get_score("mse")(fc, obs, ("init_time", "y", "x")).values[k, 0])
                rows.append((method, score, "rain", np.nan, np.nan, lead, value))
    scores = pd.DataFrame(
        rows,
        columns=["method", "score", "variable", "threshold", "scale", "lead_time_minutes", "value"],
    )
    out = interval_rows(scores, obs, forecasts, np.arange(4), BootstrapConfig(300))
    assert list(out.columns[-2:]) == ["lower", "upper"] and len(out) == len(scores)
    mse = out[out["score"] == "mse"]
    assert mse["lower"].notna().all() and (mse["lower"] <= mse["value"]).all()
    assert out[out["score"] == "ssim"]["lower"].isna().all()  # no decomposition: no bounds
    table = comparison_table(
        obs,
        forecasts,
        [Comparison("a", "b"), Comparison("x", "b")],
        np.arange(4),
        BootstrapConfig(300),
    )
    assert len(table) == 2 and table["excludes_zero"].all()
    np.testing.assert_allclose(table["difference"], -1.0)
    assert (table["n_windows"] == 4).all() and (table["n_groups"] == 4).all()
    with pytest.raises(ValueError, match="valid names"):
        Comparison("a", "b", score="ssim")
