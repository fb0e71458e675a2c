"""Probabilistic scores: exceedance probabilities, CRPS, Brier, reliability, ROC, rank histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog.vocabulary import REALIZATION, THRESHOLD
from pipelines.verification import get_score
from pipelines.verification.bootstrap import (
    POOLED,
    BootstrapConfig,
    score_interval,
    window_components,
)
from pipelines.verification.probabilistic import (
    exceedance_probability,
    rank_histogram_table,
    reliability_table,
)

pytestmark = pytest.mark.timeout(60)


def _members(values: list[list[float]], units: str = "mm/h") -> xr.DataArray:
    """Ensemble ``(realization, x)`` from rows of members."""
    return xr.DataArray(
        np.asarray(values, dtype="float64"), dims=(REALIZATION, "x"), attrs={"units": units}
    )


def test_exceedance_probability_hand_case() -> None:
    ens = _members([[0.0, 1.0, np.nan], [2.0, 3.0, 1.0], [0.5, 5.0, 1.0]])
    prob = exceedance_probability(ens, [0.5, 1.0, 3.0])
    assert prob.dims == (THRESHOLD, "x")
    assert prob.dtype == np.float32
    expected = [[2 / 3, 1.0, np.nan], [1 / 3, 1.0, np.nan], [0.0, 2 / 3, np.nan]]
    np.testing.assert_allclose(prob.values, expected, rtol=1e-6)
    assert prob[THRESHOLD].attrs["units"] == "mm/h"
    assert prob.attrs["units"] == "1"


def test_exceedance_probability_bounded_and_monotone() -> None:
    rng = np.random.default_rng(0)
    ens = xr.DataArray(
        rng.gamma(0.5, 2.0, size=(7, 3, 8, 9)), dims=(REALIZATION, "lead_time", "y", "x")
    )
    prob = exceedance_probability(ens, [0.1, 0.5, 1.0, 5.0, 50.0])
    assert prob.dims == (THRESHOLD, "lead_time", "y", "x")
    assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0
    assert (prob.diff(THRESHOLD) <= 0).all()


@pytest.mark.parametrize("bad", [[], [1.0, 1.0], [2.0, 1.0], [float("nan")], ["1"]])
def test_exceedance_probability_rejects_bad_thresholds(bad: list) -> None:
    with pytest.raises(ValueError, match="threshold"):
        exceedance_probability(_members([[1.0]]), bad)


def test_exceedance_probability_needs_realization() -> None:
    with pytest.raises(ValueError, match="realization"):
        exceedance_probability(xr.DataArray(np.zeros(3), dims="x"), [1.0])


# ----------------------------------------------------------------------------- scores
DIMS = ("init_time", "lead_time", "y", "x")


def _ensemble(values: np.ndarray) -> xr.DataArray:
    """``(realization, init_time, lead_time, y, x)`` with times."""
    m, n, lead = values.shape[:3]
    return xr.DataArray(
        values.astype("float64"),
        dims=(REALIZATION, *DIMS),
        coords={
            "init_time": pd.date_range("2024-07-01", periods=n, freq="5min"),
            "lead_time": pd.to_timedelta(np.arange(1, lead + 1) * 5, "min"),
        },
    )


def _point(members: list[float], observed: float) -> tuple[xr.DataArray, xr.DataArray]:
    """One pixel of one window: members and the observation."""
    ens = _ensemble(np.asarray(members, dtype="float64").reshape(-1, 1, 1, 1, 1))
    return ens, ens.isel({REALIZATION: 0}, drop=True).copy(data=np.full((1, 1, 1, 1), observed))


def _value(name: str, ens: xr.DataArray, obs: xr.DataArray, **params: float) -> float:
    return float(get_score(name)(ens, obs, **params))


def test_crps_hand_cases() -> None:
    # Members {0, 2}, observed 1: ∫ (F - H)² = 0.25 · 1 + 0.25 · 1 = 0.5; fair: 1 - 4/4 = 0.
    ens, obs = _point([0.0, 2.0], 1.0)
    assert _value("crps", ens, obs) == pytest.approx(0.5)
    assert _value("crps", ens, obs, fair=True) == pytest.approx(0.0)
    ens, obs = _point([3.0], 1.0)  # one member: the absolute error
    assert _value("crps", ens, obs) == pytest.approx(2.0)


def test_crps_matches_pysteps() -> None:
    from pysteps.verification.probscores import CRPS

    rng = np.random.default_rng(1)
    members = rng.gamma(0.6, 2.0, size=(6, 2, 1, 5, 7))
    members[members < 0.3] = 0.0  # ties at zero, as in rain
    observed = rng.gamma(0.6, 2.0, size=(2, 1, 5, 7))
    observed[0, 0, 0, 0] = np.nan
    ens = _ensemble(members)
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(data=observed)
    expected = CRPS(members.reshape(6, -1), observed.reshape(-1))  # skips the NaN pixel
    assert _value("crps", ens, obs) == pytest.approx(expected, rel=1e-10)


def test_brier_bss_reliability_hand_case() -> None:
    # 4 members; pixels with 3, 1, 0, 4 members >= 1 mm/h: p = .75, .25, 0, 1; observed 1, 0, 0, 0.
    members = np.array([[2, 0, 0, 5], [2, 0, 0, 5], [2, 1, 0, 5], [0, 0, 0, 5]], dtype=float)
    ens = _ensemble(members.reshape(4, 1, 1, 1, 4))
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(
        data=np.array([3.0, 0, 0, 0]).reshape(1, 1, 1, 4)
    )
    brier_score = (0.25**2 + 0.25**2 + 0 + 1) / 4
    assert _value("brier", ens, obs, threshold=1.0) == pytest.approx(brier_score)
    # Climatology: ō = 1/4, BS_clim = 3/16.
    assert _value("bss", ens, obs, threshold=1.0) == pytest.approx(1 - brier_score / (3 / 16))
    # Bins (10): p = 0 → bin 0 (o 0), .25 → bin 2 (o 0), .75 → bin 7 (o 1), 1 → bin 9 (o 0).
    rel = (0.25**2 + 0.25**2 + 1.0) / 4
    assert _value("reliability", ens, obs, threshold=1.0) == pytest.approx(rel)
    table = reliability_table(ens, obs, 1.0)
    assert table["count"].values.tolist() == [1, 0, 1, 0, 0, 0, 0, 1, 0, 1]
    np.testing.assert_allclose(
        table["forecast_probability"].values[[0, 2, 7, 9]], [0, 0.25, 0.75, 1]
    )
    np.testing.assert_allclose(table["observed_frequency"].values[[0, 2, 7, 9]], [0, 0, 1, 0])


def test_roc_auc_hand_cases() -> None:
    # Probabilities for the observed event .75 and .5; for non-events .5 and 0 (4 members).
    members = np.zeros((4, 1, 1, 1, 4))
    members[:3, ..., 0] = 2.0  # 3 of 4 members in the event
    members[:2, ..., 1] = 2.0
    members[:2, ..., 2] = 2.0
    ens = _ensemble(members)
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(
        data=np.array([2.0, 2, 0, 0]).reshape(1, 1, 1, 4)
    )
    # Ranking: the pair (.75 vs .5, .75 vs 0, .5 vs 0) wins, (.5 vs .5) ties: AUC = 3.5 / 4.
    assert _value("roc_auc", ens, obs, threshold=1.0) == pytest.approx(3.5 / 4)
    perfect = obs.copy(data=np.array([2.0, 2, 2, 0]).reshape(1, 1, 1, 4))
    assert _value("roc_auc", ens, perfect, threshold=1.0) == pytest.approx(1.0)
    none = obs.copy(data=np.zeros((1, 1, 1, 4)))
    assert np.isnan(_value("roc_auc", ens, none, threshold=1.0))


def test_rank_histogram_hand_case() -> None:
    # 3 members: obs below all (rank 0), above all (rank 3), tied with two zeros (ranks 0..2).
    members = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [3.0, 3.0, 5.0]]).reshape(3, 1, 1, 1, 3)
    ens = _ensemble(members)
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(
        data=np.array([0.5, 4.0, 0.0]).reshape(1, 1, 1, 3)
    )
    table = rank_histogram_table(ens, obs)
    np.testing.assert_allclose(table["count"].values, [1 + 1 / 3, 1 / 3, 1 / 3, 1])
    flat = np.abs(np.array([4 / 9, 1 / 9, 1 / 9, 1 / 3]) - 0.25).sum()
    assert _value("rank_histogram", ens, obs) == pytest.approx(flat)
    # threshold 0.6: values below tie; the last pixel (all below but one member) still counts.
    table = rank_histogram_table(ens, obs, threshold=0.6)
    np.testing.assert_allclose(table["count"].values, [1 + 1 / 3, 1 / 3, 1 / 3, 1])
    dry = obs.copy(data=np.array([0.5, 4.0, 0.0]).reshape(1, 1, 1, 3))
    # threshold 4.5: only the pixel with a 5 counts; its two zeros tie with the observed 0.
    table = rank_histogram_table(ens, dry, threshold=4.5)
    np.testing.assert_allclose(table["count"].values, [1 / 3, 1 / 3, 1 / 3, 0])


def test_spread_skill_hand_case() -> None:
    # Members {-1, 1}, observed 1: s² = 2, (M+1)/M s² = 3; ensemble-mean error 1 → sqrt(3).
    ens, obs = _point([-1.0, 1.0], 1.0)
    assert _value("spread_skill", ens, obs) == pytest.approx(np.sqrt(3.0))
    with pytest.raises(ValueError, match="at least 2"):
        _value("spread_skill", *_point([1.0], 1.0))


def test_scores_refuse_a_deterministic_forecast() -> None:
    field = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"))
    with pytest.raises(ValueError, match="realization"):
        get_score("crps")(field, field)


# ----------------------------------------------------------------------------- bootstrap
CASES = [
    ("crps", {}),
    ("brier", {"threshold": 1.0}),
    ("bss", {"threshold": 1.0}),
    ("reliability", {"threshold": 1.0}),
    ("roc_auc", {"threshold": 1.0}),
    ("rank_histogram", {"threshold": 0.1}),
    ("spread_skill", {}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_pooled_components_give_the_registered_score(name: str, params: dict) -> None:
    rng = np.random.default_rng(7)
    members = rng.gamma(0.5, 3.0, size=(5, 6, 2, 6, 6))
    members[members < 0.2] = 0.0
    ens = _ensemble(members)
    observed = np.where(rng.random((6, 2, 6, 6)) < 0.5, rng.gamma(0.5, 3.0, (6, 2, 6, 6)), 0.0)
    observed[0, 0, :2, :2] = np.nan
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(data=observed)
    assert name in POOLED.names()
    expected = get_score(name)(ens, obs, ("init_time", "y", "x"), **params)
    comps = window_components(name, ens, obs, **params)
    assert comps.dims[:2] == ("init_time", "lead_time")
    pooled = POOLED.get(name).combine(np.nan_to_num(comps.values).sum(0))
    np.testing.assert_allclose(pooled, expected.transpose("lead_time").values, rtol=1e-12)
    one = score_interval(name, ens, obs, np.zeros(6, dtype=int), BootstrapConfig(50), **params)
    np.testing.assert_allclose(one["value"].values, expected.values, rtol=1e-12)
    np.testing.assert_allclose(one["lower"].values, one["value"].values)  # one group: a point


def test_crps_interval_of_two_events() -> None:
    # Windows with CRPS 1 (event 0) and 3 (event 1): resampled CRPS is 1, 2 or 3 (as MSE).
    members = np.zeros((2, 4, 1, 2, 2))  # observed 0 and members {x, x}: CRPS = |x|
    members[:, :2] = 1.0
    members[:, 2:] = 3.0
    ens = _ensemble(members)
    obs = ens.isel({REALIZATION: 0}, drop=True).copy(data=np.zeros((4, 1, 2, 2)))
    out = score_interval("crps", ens, obs, np.array([0, 0, 1, 1]), BootstrapConfig(2000, 0.9))
    np.testing.assert_allclose(out["value"].values, 2.0)
    np.testing.assert_allclose(out["lower"].values, 1.0)
    np.testing.assert_allclose(out["upper"].values, 3.0)
