"""Live verification: scores from the one scoring code, idempotent reruns, late observations,
re-run forecasts, alerts in the CLI, and the probabilistic rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.live import AlertConfig, VerificationStore, probabilistic_rows, verify_source
from pipelines.verification import get_score
from tests.pipelines import live_helpers as lh

pytestmark = pytest.mark.timeout(180)
QUIET = AlertConfig(max_input_age=None, min_skill=-1e9)  # no alert: these tests look at scores


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return lh.build(tmp_path_factory.mktemp("live"), absent=(lh.LATE,))


@pytest.fixture(scope="module")
def verified(template, tmp_path_factory):
    """A copy of the template verified once at 15:00 (all four entries observable)."""
    data = lh.copy(template, tmp_path_factory.mktemp("v") / "data")
    report = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    return data, report


def test_every_observed_entry_is_scored_with_the_registered_scores(verified) -> None:
    data, report = verified
    assert report.scored == tuple(lh.INITS) and report.pending == 0
    rows = VerificationStore(report.store).read()
    assert set(rows["method"]) == {"simvp", "persistence", "optical_flow"}
    # same init times for every method (like for like)
    per_method = rows.groupby("method")["init_time"].apply(lambda s: tuple(sorted(set(s))))
    assert per_method.nunique() == 1
    # SimVP MSE of the 12:30 entry at +5 min, recomputed by hand from the stores
    obs = xr.open_zarr(data / "stores" / f"{lh.SOURCE}.zarr")
    fc = xr.open_zarr(data / "forecasts" / f"{lh.SOURCE}.zarr")
    init = lh.INITS[0]
    forecast = fc["precipitation_rate"].sel(init_time=init).isel(lead_time=0)
    observed = obs["precipitation_rate"].sel(time=init + pd.Timedelta("5min"))
    expected = float(
        get_score("mse")(
            forecast.drop_vars(["init_time", "lead_time", "valid_time"], errors="ignore"),
            observed.drop_vars("time"),
            dims=("y", "x"),
        )
    )
    got = rows.query("method == 'simvp' and score == 'mse' and lead_time_minutes == 5")
    assert got[got["init_time"] == init]["value"].item() == pytest.approx(expected)
    # persistence at +5 min: last frame (t + 1) against t + 2 in the disc
    pers = rows.query("method == 'persistence' and score == 'mae' and lead_time_minutes == 5")
    assert (pers["value"] > 0).all()
    csi = rows.query("score == 'csi'")
    assert set(csi["threshold"]) == {0.1, 1.0, 5.0}


def test_rerun_adds_nothing(verified) -> None:
    data, first = verified
    store = VerificationStore(first.store)
    before = {f.name: f.read_bytes() for f in store.day_files()}
    again = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    assert again.scored == () and again.unchanged == len(lh.INITS)
    assert {f.name: f.read_bytes() for f in store.day_files()} == before


def test_entries_wait_for_their_observations(template, tmp_path) -> None:
    data = lh.copy(template, tmp_path / "data")
    # at 13:20 the 12:30..13:00 entries (last valid 13:15 at the latest) are observed
    early = verify_source(lh.SOURCE, data, as_of="2021-06-01T13:20", alerts=QUIET, render=False)
    assert early.scored == tuple(lh.INITS[:3]) and early.pending == 1


def test_late_observation_rescores_only_the_entry_it_affects(verified, tmp_path) -> None:
    data = lh.copy(verified[0], tmp_path / "data")
    store = VerificationStore(data / "verification" / lh.SOURCE)
    late_init = lh.INITS[-1]  # 13:15: 13:25 is its +10 min
    lead10 = store.read().query("method == 'simvp' and score == 'mse' and lead_time_minutes == 10")
    assert np.isnan(lead10[lead10["init_time"] == late_init]["value"].item())
    lh.arrive(data, lh.LATE)
    report = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    assert report.scored == (late_init,) and report.unchanged == 3
    lead10 = store.read().query("method == 'simvp' and score == 'mse' and lead_time_minutes == 10")
    assert np.isfinite(lead10[lead10["init_time"] == late_init]["value"].item())


def test_rerun_forecast_is_rescored(verified, tmp_path) -> None:
    data = lh.copy(verified[0], tmp_path / "data")
    lh.issue(data, lh.INITS[1:2], checkpoint_name="retrained.pt")
    report = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    assert report.scored == (lh.INITS[1],)


def test_alerts_in_the_cli(verified, tmp_path, capsys) -> None:
    from pipelines.cli import main

    data = lh.copy(verified[0], tmp_path / "data")
    base = ["verify", "--source", lh.SOURCE, "--data-dir", str(data), "--no-page"]
    # the fake model (last frame + k) is worse than persistence on this field
    code = main([*base, "--as-of", "2021-06-01T15:00", "--max-input-age", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1
    assert err[0].startswith("nowcast verify: ALERT: skill against persistence over the last 24h")
    # the floor is configurable
    ok = ["--as-of", "2021-06-01T15:00", "--max-input-age", "none", "--min-skill", "-100"]
    assert main([*base, *ok]) == 0
    # stale inputs: newest observation 14:55, run at 18:00 with a 30 min limit
    stale = ["--as-of", "2021-06-01T18:00", "--max-input-age", "30min", "--min-skill", "-100"]
    assert main([*base, *stale]) == 3
    assert "ALERT: stale inputs: newest observation 2021-06-01T14:55Z" in capsys.readouterr().err


def _probability_entry() -> tuple[xr.Dataset, xr.Dataset]:
    rng = np.random.default_rng(0)
    leads = pd.to_timedelta([5, 10], "min")
    p = rng.uniform(size=(2, 2, 4, 5))  # (threshold, lead_time, y, x)
    p[1] = np.minimum(p[1], p[0])  # non-increasing along threshold
    obs = rng.gamma(1.0, 1.0, size=(2, 4, 5))
    obs[0, 0, 0] = np.nan
    name = "probability_of_precipitation_rate_above_threshold"
    entry = xr.Dataset(
        {name: (("threshold", "lead_time", "y", "x"), p)},
        coords={"threshold": [0.5, 2.0], "lead_time": leads},
    )
    observed = xr.Dataset(
        {"precipitation_rate": (("lead_time", "y", "x"), obs)}, coords={"lead_time": leads}
    )
    return entry, observed


def test_probabilistic_rows_of_a_synthetic_entry() -> None:
    entry, observed = _probability_entry()
    rows = pd.DataFrame(probabilistic_rows(entry, observed))
    assert set(rows["score"]) == {"brier", "reliability"} and set(rows["method"]) == {"simvp"}
    name = "probability_of_precipitation_rate_above_threshold"
    p = entry[name].sel(threshold=2.0).isel(lead_time=0).values
    o = observed["precipitation_rate"].isel(lead_time=0).values
    ok = np.isfinite(o)
    expected = np.mean((p[ok] - (o[ok] > 2.0)) ** 2)
    brier = rows.query("score == 'brier' and threshold == 2.0 and lead_time_minutes == 5")
    assert brier["value"].item() == pytest.approx(expected)
    rel = rows.query("score == 'reliability' and threshold == 2.0 and lead_time_minutes == 5")
    assert rel["count"].sum() == ok.sum() == 19
    events = (rel["value"] * rel["count"]).sum()
    assert events == pytest.approx((o[ok] > 2.0).sum())
    # deterministic-only entries have no probabilistic rows
    assert probabilistic_rows(xr.Dataset(), observed) == []


def test_configs_refuse_bad_values() -> None:
    from pipelines.live import ScoreConfig

    with pytest.raises(ValueError, match="unknown score 'nope'"):
        ScoreConfig(scores=("nope",))
    with pytest.raises(ValueError, match="window must be a positive duration"):
        AlertConfig(window="-1h")
    with pytest.raises(ValueError, match="max_input_age"):
        AlertConfig(max_input_age="0min")
