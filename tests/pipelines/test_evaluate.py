"""Evaluation: test windows, one code path for every method, the report files, end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pipelines.baselines import BASELINES
from pipelines.cli import main
from pipelines.evaluation.evaluate import (
    PLANS,
    SCORE_COLUMNS,
    SCORE_DIMS,
    EvaluationPlan,
    ScoreRequest,
    evaluate_methods,
    evaluate_source,
    subsample,
)
from pipelines.verification import get_score
from pipelines.verification.intervals import interval_rows
from pipelines.verification.probabilistic import PROBABILISTIC_SCORES
from pipelines.verification.report import write_report

pytestmark = pytest.mark.timeout(120)

STEP = pd.Timedelta("5min")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The tiny SimVP runs faster on one thread than contending for the shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blob_frames(n: int, size: int = 16, nan_frame: int | None = None) -> xr.DataArray:
    # A rain cell (peak 8 mm/h) moving 0.6 px down and 0.8 px right per 5 min, a new cell
    # entering every 15 frames.
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.stack(
        [
            8 * np.exp(-((yy - 4 - 0.6 * (t % 15)) ** 2 + (xx - 3 - 0.8 * (t % 15)) ** 2) / 18.0)
            for t in range(n)
        ]
    )[:, None]  # (time, channel=1, y, x)
    if nan_frame is not None:
        frames[nan_frame] = np.nan
    lat = np.repeat(np.linspace(52.0, 51.0, size)[:, None], size, axis=1)
    return xr.DataArray(
        frames.astype("float32"),
        dims=("time", "channel", "y", "x"),
        coords={
            "time": pd.date_range("2024-06-01T10:00", periods=n, freq=STEP),
            "channel": ["precipitation_rate"],
            "y": ("y", np.arange(size) * -1000.0, {"units": "m"}),
            "x": ("x", np.arange(size) * 1000.0, {"units": "m"}),
            "latitude": (("y", "x"), lat),
        },
    )


def test_subsample_spreads_windows_evenly() -> None:
    assert subsample(np.arange(10), 3).tolist() == [0, 4, 9]
    assert subsample(np.arange(4), None).tolist() == [0, 1, 2, 3]


def test_every_method_goes_through_one_code_path_and_the_report_is_written(tmp_path) -> None:
    frames = _blob_frames(16)
    starts = np.arange(9)  # windows of 4 + 3 frames within the first cell's life (frames 0..14)
    methods = {name: BASELINES.get(name) for name in ("persistence", "optical_flow")}
    plan = EvaluationPlan(
        baselines=tuple(methods),
        scores=(ScoreRequest("mse"), ScoreRequest("csi", threshold=1.0)),
        image_scores=True,
    )
    scores, result = evaluate_methods(frames, starts, 4, 3, methods, plan)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    # 2 methods x (mse, csi, ssim, psnr) x 3 leads
    assert len(scores) == 2 * 4 * 3
    assert sorted(scores["lead_time_minutes"].unique()) == [5.0, 10.0, 15.0]
    assert result.observation.sizes["init_time"] == len(starts) == 9

    def pick(method: str, score: str) -> np.ndarray:
        rows = scores[(scores.method == method) & (scores.score == score)]
        return rows.sort_values("lead_time_minutes")["value"].to_numpy()

    assert (pick("optical_flow", "mse") < 0.2 * pick("persistence", "mse")).all()
    assert (pick("optical_flow", "csi") > 0.9).all()
    # persistence at lead 1 scored by hand on the same windows
    obs = result.observation.isel(lead_time=0).values
    last = result.history.isel(history_frame=-1).values
    assert pick("persistence", "mse")[0] == pytest.approx(np.mean((last - obs) ** 2), rel=1e-5)

    files = write_report(
        tmp_path,
        scores,
        "synthetic",
        ["a note"],
        (result.observation, result.forecasts, result.history),
    )
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names == [
        "examples.png",
        "index.html",
        "score_csi.png",
        "score_mse.png",
        "score_psnr.png",
        "score_ssim.png",
        "scores.csv",
        "scores.md",
    ]
    back = pd.read_csv(tmp_path / "scores.csv")
    assert list(back.columns) == list(SCORE_COLUMNS)
    assert back["threshold"].isna().sum() == 2 * 3 * 3  # every score but csi
    np.testing.assert_allclose(back["value"], scores["value"], rtol=1e-5)
    assert "| optical_flow | 1 |  |" in (tmp_path / "scores.md").read_text()


def _noisy_ensemble(history, steps, *, members, seed, **context):
    """Persistence plus seeded Gaussian noise (sd 0.5 mm/h, clipped at 0): a test ensemble."""
    base = BASELINES.get("persistence")(history, steps, **context)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.5, size=(members, *base.shape))
    values = np.clip(base.values[None] + noise, 0.0, None).astype(base.dtype)
    return xr.concat([base.copy(data=v) for v in values], "realization")


def test_ensembles_are_scored_by_the_same_code_with_contract_names(tmp_path) -> None:
    frames = _blob_frames(16)
    starts = np.arange(0, 9, 2)
    methods = {"persistence": BASELINES.get("persistence")}
    ensemble_scores = (
        ScoreRequest("crps"),
        ScoreRequest("brier", threshold=1.0),
        ScoreRequest("reliability", threshold=1.0),
        ScoreRequest("spread_skill"),
    )
    plan = EvaluationPlan(
        baselines=tuple(methods),
        scores=(ScoreRequest("mse"),),
        ensemble_scores=ensemble_scores,
    )
    ensembles = {"noisy": _noisy_ensemble}
    scores, result = evaluate_methods(frames, starts, 4, 3, methods, plan, None, ensembles, 5, 3)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert result.ensembles["noisy"].dims == (
        "init_time",
        "realization",
        "lead_time",
        "channel",
        "y",
        "x",
    )
    assert result.ensembles["noisy"].sizes["realization"] == 5
    noisy = scores[scores.method == "noisy"]
    assert set(noisy["score"]) == {"crps", "brier", "reliability", "spread_skill"}
    assert noisy[noisy.score == "brier"]["threshold"].eq(1.0).all()
    assert noisy[noisy.score == "crps"]["threshold"].isna().all()
    assert set(scores[scores.method == "persistence"]["score"]) == {"mse"}
    # Same numbers as the score called directly on the stacked ensemble.
    crps = get_score("crps")(result.ensembles["noisy"], result.observation, SCORE_DIMS)
    rows = noisy[noisy.score == "crps"].sort_values("lead_time_minutes")["value"].to_numpy()
    np.testing.assert_allclose(rows, crps.isel(channel=0).values, rtol=1e-6)
    # Noise around persistence: CRPS is below persistence's MAE at the first lead.
    mae = get_score("mae")(result.forecasts["persistence"], result.observation, SCORE_DIMS)
    assert rows[0] < float(mae.isel(channel=0, lead_time=0))
    # Same seed, same members: window seeds derive from the run's seed and the init time.
    again = evaluate_methods(frames, starts[1:], 4, 3, methods, plan, None, ensembles, 5, 3)[1]
    xr.testing.assert_equal(
        again.ensembles["noisy"], result.ensembles["noisy"].isel(init_time=slice(1, None))
    )
    with pytest.raises(ValueError, match="expected"):
        evaluate_methods(
            frames, starts, 4, 3, {}, plan, None, {"bad": BASELINES.get("persistence")}
        )
    interval = interval_rows(
        scores,
        result.observation,
        result.forecasts,
        np.arange(len(starts)),
        None,
        result.ensembles,
    )
    assert interval[interval.method == "noisy"]["lower"].notna().all()


def test_climate_plan_scores_weighted_rmse_and_acc_and_climatology_wins_late() -> None:
    times = pd.date_range("2019-03-01", periods=24 * 6, freq="1h")
    hours = times.hour.values
    rng = np.random.default_rng(0)
    lat = np.linspace(58.0, 50.0, 8)
    cycle = 278 + 4 * np.sin(2 * np.pi * hours / 24)[:, None, None]
    field = cycle + 0.3 * rng.normal(size=(len(times), 8, 6)) + 0.1 * lat[None, :, None]
    frames = xr.DataArray(
        field[:, None].astype("float32"),
        dims=("time", "channel", "y", "x"),
        coords={
            "time": times,
            "channel": ["air_temperature"],
            "latitude": (("y", "x"), np.repeat(lat[:, None], 6, axis=1)),
        },
    )
    starts = np.arange(len(times) - 12 - 5, len(times) - 12 + 1)  # the last 6 windows of 12
    methods = {name: BASELINES.get(name) for name in PLANS.get("climate").baselines}
    scores, _ = evaluate_methods(frames, starts, 6, 6, methods, PLANS.get("climate"), frames)
    assert set(scores["score"]) == {"mse", "mae", "rmse", "bias", "weighted_rmse", "acc"}
    late = scores[(scores.score == "mse") & (scores.lead_time_minutes == 360.0)]
    by_method = dict(zip(late["method"], late["value"], strict=True))
    assert by_method["climatology"] < by_method["persistence"]
    # white-noise anomalies: the fitted damping is near 0, anomaly persistence ~ climatology
    assert by_method["anomaly_persistence"] < by_method["persistence"]
    assert by_method["anomaly_persistence"] < 1.1 * by_method["climatology"]


def _tiny_setup(tmp_path, units: str = "mm/h") -> tuple[str, str]:
    """A radar-like store for the catalog's knmi-radar and an untrained tiny checkpoint."""
    from simvp_model.checkpoint import save_checkpoint
    from simvp_model.config import SimVPConfig
    from simvp_model.model import SimVP
    from simvp_model.normalisation import Normalisation

    frames = _blob_frames(80)
    present = np.ones(80, bool)
    present[20] = False
    data = frames.isel(channel=0, drop=True).values.copy()
    data[20] = np.nan
    store = xr.Dataset(
        {
            "precipitation_rate": (("time", "y", "x"), data, {"units": units}),
            "frame_present": (("time",), present),
        },
        coords={k: v for k, v in frames.coords.items() if k != "channel"},
        attrs={"time_step": "5min", "source_name": "knmi-radar"},
    )
    data_dir = tmp_path / "data"
    store.to_zarr(data_dir / "stores" / "knmi-radar.zarr", mode="w")
    torch.manual_seed(0)
    config = SimVPConfig(
        in_frames=4,
        out_frames=3,
        channels=1,
        height=16,
        width=16,
        spatial_hidden=4,
        temporal_hidden=8,
        spatial_layers=2,
        temporal_layers=2,
    )
    metadata = {
        "source": "knmi-radar",
        "variables": ["precipitation_rate"],
        "time_step": "5min",
        "coarsen": 1,
        "crop": None,
        "in_frames": 4,
        "out_frames": 3,
        "store": str(data_dir / "stores" / "knmi-radar.zarr"),
        "split": {"fractions": [0.7, 0.15, 0.15], "gap": 7, "by": "time"},
        "test_period": ["2024-06-01T15:55:00Z", "2024-06-01T16:35:00Z"],
    }
    norm = Normalisation("log1p", (0.5,), (1.0,))
    path = save_checkpoint(
        data_dir / "models" / "knmi-radar" / "best.pt", SimVP(config), config, norm, {}, metadata
    )
    return str(data_dir), path


@pytest.mark.timeout(300)  # two evaluations of 4 methods with intervals and spectra
def test_evaluate_source_end_to_end_writes_the_expected_rows(tmp_path, capsys) -> None:
    data_dir, checkpoint = _tiny_setup(tmp_path)
    # newest checkpoint by default; the radar plan adds the STEPS ensemble (4 members here)
    report = evaluate_source("knmi-radar", data_dir=data_dir, members=4)
    assert report.checkpoint == checkpoint
    # 79 valid frames (frame 20 missing), gaps of 7: train = 47 valid frames (0..47), val 55..63,
    # test = the valid frames after 63 + 7 = 71..79 -> windows of 7 starting at 71, 72, 73.
    assert report.n_windows == 3
    assert (
        "3 windows (of 3), test split"
        in (tmp_path / "data/reports/knmi-radar/scores.md").read_text()
    )
    scores = pd.read_csv(tmp_path / "data" / "reports" / "knmi-radar" / "scores.csv")
    assert set(scores["method"]) == {"simvp", "persistence", "optical_flow", "sprog", "steps"}
    steps = scores[scores.method == "steps"]
    assert set(steps["score"]) == set(PROBABILISTIC_SCORES)  # only probabilistic rows
    assert len(steps[steps.score == "crps"]) == 3 and steps["lower"].notna().all()
    brier = steps[steps.score == "brier"]
    assert sorted(brier["threshold"].unique()) == [0.1, 1.0, 5.0] and len(brier) == 3 * 3
    report_dir = tmp_path / "data" / "reports" / "knmi-radar"
    reliability = pd.read_csv(report_dir / "reliability.csv")
    assert set(reliability["method"]) == {"steps"} and reliability["count"].sum() > 0
    assert (pd.read_csv(report_dir / "rank_histogram.csv")["rank"].max()) == 4
    assert {"reliability.png", "rank_histogram.png", "score_crps.png"} <= {
        p.name for p in report_dir.iterdir()
    }
    html = (report_dir / "index.html").read_text()
    assert html.index("<h2>Figures</h2>") < html.index("<h2>Scores</h2>")  # plots first
    assert scores[scores.score == "mse"]["lower"].notna().all()  # bootstrap over window blocks
    wavelengths = np.sort(scores[scores.score == "rapsd_ratio"]["scale"].unique())
    np.testing.assert_allclose(wavelengths, np.sort(16 / np.arange(1, 8)), rtol=1e-5)
    assert sorted(scores["lead_time_minutes"].unique()) == [5.0, 10.0, 15.0]
    csi = scores[(scores.score == "csi") & (scores.threshold == 1.0)]
    assert len(csi) == 4 * 3
    fss = scores[scores.score == "fss"]
    assert set(fss["scale"]) == {1.0, 5.0, 11.0, 21.0} and len(fss) == 4 * 2 * 4 * 3
    assert np.isfinite(scores[scores.score == "mse"]["value"]).all()
    assert report.value("persistence", "csi", 5.0, threshold=1.0) == pytest.approx(
        csi[(csi.method == "persistence") & (csi.lead_time_minutes == 5.0)]["value"].item()
    )
    assert (tmp_path / "data" / "reports" / "knmi-radar" / "examples.png").stat().st_size > 0

    args = ["evaluate", "--source", "knmi-radar", "--data-dir", data_dir, "--max-samples", "2"]
    code = main([*args, "--members", "3"])
    out = capsys.readouterr().out
    assert code == 0 and "2 windows" in out and "persistence" in out
    assert "CRPS of the ensembles (3 members)" in out


def test_evaluate_source_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no best.pt under"):
        evaluate_source("knmi-radar", data_dir=tmp_path)
    data_dir, checkpoint = _tiny_setup(tmp_path)
    # Another source is scored zero-shot: on its own store, which must exist.
    with pytest.raises(FileNotFoundError, match="ingest it first: nowcast ingest mch-radar"):
        evaluate_source("mch-radar", data_dir=data_dir, checkpoint=checkpoint)
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate_source("knmi-radar", data_dir=data_dir, baselines=["oracle"])
    data_dir, _ = _tiny_setup(tmp_path / "dbz", units="dBZ")
    with pytest.raises(ValueError, match="thresholds are in 'mm/h'"):
        evaluate_source("knmi-radar", data_dir=data_dir)


def _store_like(path, frames: xr.DataArray, source: str, pad: int = 0) -> None:
    """An observation store of ``frames`` (time, y, x) for ``source``, padded by ``pad`` px."""
    data = np.pad(frames.values, ((0, 0), (pad, pad), (pad, pad)))
    ny, nx = data.shape[1:]
    xr.Dataset(
        {
            "precipitation_rate": (("time", "y", "x"), data, {"units": "mm/h"}),
            "frame_present": (("time",), np.ones(len(data), bool)),
        },
        coords={
            "time": frames["time"].values,
            "y": np.arange(ny) * -1000.0,
            "x": ("x", np.arange(nx) * 1000.0, {"units": "m"}),
        },
        attrs={"time_step": "5min", "source_name": source},
    ).to_zarr(path, mode="w")


@pytest.mark.timeout(300)  # five evaluations
def test_zero_shot_period_and_multi_source_members(tmp_path, capsys) -> None:
    from simvp_model.checkpoint import load_checkpoint, save_checkpoint

    data_dir, checkpoint = _tiny_setup(tmp_path)
    frames = _blob_frames(30).isel(channel=0, drop=True)
    # Zero-shot: a 20 x 24 px rmi-radar store scored with the knmi-radar checkpoint (16 x 16):
    # every window of 7 frames of the 30 (24), on the centred 16 x 16 crop.
    _store_like(tmp_path / "data/stores/rmi-radar.zarr", frames.isel(x=slice(0, 12)), "rmi-radar")
    with pytest.raises(ValueError, match="store grid is 16 x 12"):
        evaluate_source("rmi-radar", data_dir=data_dir, checkpoint=checkpoint, members=2)
    _store_like(tmp_path / "data/stores/rmi-radar.zarr", frames, "rmi-radar", pad=2)
    report = evaluate_source("rmi-radar", data_dir=data_dir, checkpoint=checkpoint, members=2)
    assert report.n_windows == 24 and report.directory.endswith("zero-shot-knmi-radar")
    md = (tmp_path / "data/reports/rmi-radar/zero-shot-knmi-radar/scores.md").read_text()
    assert "zero-shot: the checkpoint was trained on knmi-radar, not on rmi-radar" in md
    assert "crop [2, 18, 2, 18]" in md
    # A period of the checkpoint's own source: scored; unknown training periods are said so.
    report = evaluate_source(
        "knmi-radar",
        data_dir=data_dir,
        checkpoint=checkpoint,
        start="2024-06-01T10:00",
        end="2024-06-01T10:50",
        members=2,
    )
    assert report.n_windows == 5  # frames 0..10, windows of 7
    md = (tmp_path / "data/reports/knmi-radar/scores.md").read_text()
    assert "records no train/val period: these windows may include frames" in md
    # A multi-source checkpoint evaluates on each member's own test windows.
    loaded = load_checkpoint(checkpoint)
    _store_like(
        tmp_path / "data/stores/rmi-radar.zarr",
        _blob_frames(80).isel(channel=0, drop=True),
        "rmi-radar",
        pad=2,
    )
    meta = {
        **loaded.metadata,
        "source": "knmi-radar+rmi-radar",
        "sources": ["knmi-radar", "rmi-radar"],
        "crops": {"knmi-radar": None, "rmi-radar": [2, 18, 2, 18]},
        "stores": [
            str(tmp_path / "data/stores/knmi-radar.zarr"),
            str(tmp_path / "data/stores/rmi-radar.zarr"),
        ],
    }
    multi = save_checkpoint(
        tmp_path / "data/models/knmi-radar+rmi-radar/best.pt",
        loaded.model,
        loaded.config,
        loaded.normalisation,
        {},
        meta,
    )
    code = main(
        ["evaluate", "--source", "knmi-radar+rmi-radar", "--data-dir", data_dir, "--members", "2"]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.count("report:") == 2
    assert "knmi-radar: 3 windows" in out and "rmi-radar: 3 windows" in out
    assert str(multi).endswith("best.pt")
