"""Unit tests of flows/: settings, task bodies (called directly), helpers, deployment specs."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.states import Completed, Failed

from flows import settings, tasks
from flows._common import as_utc, check_period, check_source
from flows.deployments import (
    FLOWS,
    FORECAST_CRON,
    INGEST_CRON,
    PREFECT_YAML,
    SAMPLE_TRAINING,
    deployment_specs,
    prefect_yaml,
    render_prefect_yaml,
)

pytestmark = pytest.mark.timeout(60)


# --- settings -------------------------------------------------------------------------------


def test_apply_defaults_fills_only_missing_values(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "DO_NOT_TRACK": "0"}
    applied = settings.apply_defaults(env)
    assert env["DO_NOT_TRACK"] == "0"  # the user's value wins
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "90"
    assert "PREFECT_HOME" not in env  # HOME exists: Prefect's default ~/.prefect is fine
    assert set(applied) == {
        "DASK_LOGGING__DISTRIBUTED",
        "PREFECT_SERVER_ANALYTICS_ENABLED",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
    }


@pytest.mark.parametrize("home", [None, "/nonexistent/home/of/ci"])
def test_apply_defaults_moves_prefect_home_under_data_dir(tmp_path: Path, home: str | None) -> None:
    env = {"NOWCAST_DATA_DIR": str(tmp_path / "data")}
    if home is not None:
        env["HOME"] = home
    settings.apply_defaults(env)
    assert env["PREFECT_HOME"] == str(tmp_path / "data" / "prefect")
    assert Path(env["PREFECT_HOME"]).is_dir()


def test_apply_defaults_keeps_explicit_prefect_home(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": "/somewhere"}
    assert "PREFECT_HOME" not in settings.apply_defaults(env)
    assert env["PREFECT_HOME"] == "/somewhere"


def test_apply_defaults_refuses_url_data_dir_without_home() -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        settings.apply_defaults({"NOWCAST_DATA_DIR": "s3://bucket/nowcast"})


# --- helpers --------------------------------------------------------------------------------


def test_retry_condition_retries_io_errors_only() -> None:
    assert tasks.retry_on_io(None, None, Failed(data=OSError("disk")))  # type: ignore[arg-type]
    assert tasks.retry_on_io(None, None, Failed(data=TimeoutError()))  # type: ignore[arg-type]
    assert tasks.retry_on_io(None, None, Failed(data=FileNotFoundError("f")))  # type: ignore[arg-type]
    assert not tasks.retry_on_io(None, None, Failed(data=ValueError("bad")))  # type: ignore[arg-type]
    assert not tasks.retry_on_io(None, None, Completed(data=1))  # type: ignore[arg-type]


def test_transient_retry_condition_skips_missing_files() -> None:
    assert tasks.retry_on_transient_io(None, None, Failed(data=ConnectionError()))  # type: ignore[arg-type]
    assert not tasks.retry_on_transient_io(None, None, Failed(data=FileNotFoundError("ckpt")))  # type: ignore[arg-type]
    assert not tasks.retry_on_transient_io(None, None, Failed(data=ValueError("bad")))  # type: ignore[arg-type]


def test_io_tasks_declare_backoff_retries() -> None:
    for io_task in (tasks.ingest_task, tasks.forecast_task, tasks.evaluate_task):
        assert io_task.retries == tasks.IO_RETRIES
        assert list(io_task.retry_delay_seconds) == [10, 20, 40]  # 10 s · 2^k
    # Late source files are worth waiting for; a missing checkpoint or store is not.
    assert tasks.ingest_task.retry_condition_fn is tasks.retry_on_io
    assert tasks.forecast_task.retry_condition_fn is tasks.retry_on_transient_io
    assert tasks.evaluate_task.retry_condition_fn is tasks.retry_on_transient_io
    assert tasks.train_task.retries == 1
    assert tasks.train_task.retry_condition_fn is tasks.retry_on_transient_io


def test_artifact_key() -> None:
    assert tasks.artifact_key("forecast-map", "mch-radar") == "forecast-map-mch-radar"
    assert tasks.artifact_key("Train Metrics", "ERA5_t2m") == "train-metrics-era5-t2m"
    with pytest.raises(ValueError, match="empty"):
        tasks.artifact_key("--", "")


def test_format_table_aligns_columns() -> None:
    text = tasks.format_table([{"model": "simvp", "csi": 0.5}, {"model": "persistence", "csi": 1}])
    assert text.splitlines() == ["model        csi", "simvp        0.5", "persistence  1"]


def test_check_period_and_utc() -> None:
    check_period(datetime(2020, 1, 1), None)
    with pytest.raises(ValueError, match="start must not be after end"):
        check_period(datetime(2020, 1, 2), datetime(2020, 1, 1))
    assert as_utc(datetime(2020, 1, 1, 12)) == datetime(2020, 1, 1, 12, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    assert as_utc(datetime(2020, 1, 1, 13, tzinfo=cet)) == datetime(2020, 1, 1, 12, tzinfo=UTC)


def test_check_source_names_valid_sources() -> None:
    assert check_source("mch-radar") == "mch-radar"
    with pytest.raises(ValueError, match="mch-radar"):
        check_source("no-such-source")


# --- task bodies wrap exactly one pipelines function ----------------------------------------


def test_ingest_task_calls_ingest_source(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.ingest

    calls = []
    report = types.SimpleNamespace(summary=lambda: "40 frames written")
    monkeypatch.setattr(
        pipelines.ingest, "ingest_source", lambda *a, **k: calls.append((a, k)) or report
    )
    assert tasks.ingest_task.fn("mch-radar", "/d", None, None) is report
    assert calls == [
        (
            ("mch-radar",),
            {"data_dir": "/d", "start": None, "end": None, "scheduler": None, "progress": False},
        )
    ]


def test_train_task_passes_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.training.source
    from pipelines.windows import SplitConfig

    calls = []
    result = types.SimpleNamespace(checkpoint_path="/m/ckpt.pt", metrics={"val_mse": 1.0})

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return result

    monkeypatch.setattr(pipelines.training.source, "train_source", fake)
    split = {"fractions": (0.5, 0.25, 0.25), "gap": 0}
    assert (
        tasks.train_task.fn("mch-radar", "/d", "radar-small", 2, {"max_minutes": 1.5}, split)
        is result
    )
    assert calls == [
        (
            ("mch-radar",),
            {
                "data_dir": "/d",
                "preset": "radar-small",
                "epochs": 2,
                "split": SplitConfig(fractions=(0.5, 0.25, 0.25), gap=0),
                "out_dir": None,
                "max_minutes": 1.5,
            },
        )
    ]


def test_forecast_task_calls_run_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.forecast.run

    calls = []
    result = types.SimpleNamespace(init_time="t", lead_times=[1, 2], store="/f.zarr", index=0)
    monkeypatch.setattr(
        pipelines.forecast.run, "run_forecast", lambda *a, **k: calls.append((a, k)) or result
    )
    assert tasks.forecast_task.fn("mch-radar", None, "/c.pt", "/d", False) is result
    assert calls == [
        (
            ("mch-radar",),
            {
                "init_time": None,
                "checkpoint": "/c.pt",
                "data_dir": "/d",
                "lead_times": None,
                "fallback": "none",
                "as_of": None,
            },
        )
    ]


# --- deployments ----------------------------------------------------------------------------


def by_cron(specs, name: str) -> str | None:
    """The cron of deployment ``name`` among ``specs``."""
    return next(spec.cron for spec in specs if spec.full_name == name)


def test_every_source_gets_every_flow() -> None:
    from data_catalog.catalog import list_sources

    specs = deployment_specs()
    names = {spec.full_name for spec in specs}
    assert "train-simvp/mch-radar" in names
    assert "forecast/mch-radar" in names
    assert by_cron(specs, "verify/mch-radar") == "10 * * * *"  # next to forecast/mch-radar
    assert len(names) == len(specs) == len(FLOWS) * len(list_sources())
    by_name = {spec.full_name: spec for spec in specs}
    assert by_name["forecast/mch-radar"].cron == FORECAST_CRON == "5 * * * *"
    assert by_name["ingest/mch-radar"].cron == INGEST_CRON == "0 * * * *"  # 5 min ahead
    assert by_name["train-simvp/mch-radar"].cron is None
    assert by_name["train-simvp/mch-radar"].parameters == {"source": "mch-radar", **SAMPLE_TRAINING}
    assert by_name["forecast/mch-radar"].parameters == {"source": "mch-radar"}


def test_flow_entries_load_named_flows() -> None:
    for entry in FLOWS:
        flow = entry.load()
        assert flow.name == entry.flow_name
        assert (
            Path(entry.entrypoint.split(":")[0]).exists()
            or (PREFECT_YAML.parent / entry.entrypoint.split(":")[0]).exists()
        )


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="no-such-source"):
        deployment_specs(["no-such-source"])


def test_committed_prefect_yaml_is_up_to_date() -> None:
    assert PREFECT_YAML.read_text() == render_prefect_yaml(), (
        "prefect.yaml is stale: run `python -m flows.deployments --write-prefect-yaml prefect.yaml`"
    )
    document = yaml.safe_load(PREFECT_YAML.read_text())
    assert document == prefect_yaml()
    assert document["build"] is None and document["push"] is None
    pull = document["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull == {"directory": "{{ $PWD }}"}
    forecast = next(
        d
        for d in document["deployments"]
        if d["name"] == "mch-radar" and d["entrypoint"] == "flows/forecast.py:forecast"
    )
    assert forecast["work_pool"] == {"name": "local-process"}
    assert forecast["schedules"] == [{"cron": "5 * * * *", "timezone": "UTC", "active": True}]


def test_deployment_parameters_fit_their_flows() -> None:
    for spec in deployment_specs():
        spec.entry.load().validate_parameters(dict(spec.parameters))  # raises on a bad one
    flow = FLOWS[1].load()
    with pytest.raises(Exception, match="epochs"):
        flow.validate_parameters({"source": "mch-radar", "epochs": 0})


# --- demo entry points ------------------------------------------------------------------------


def test_pipelines_demo_launches_the_flows_demo_without_importing_prefect() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pipelines.demo; assert 'prefect' not in sys.modules; "
        "raise SystemExit(pipelines.demo.main(['--help']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "python -m flows.demo" in done.stdout and "--minutes" in done.stdout


def test_makefile_demo_runs_the_flows_demo() -> None:
    makefile = (PREFECT_YAML.parent / "Makefile").read_text()
    assert "\t$(BIN)/python -m flows.demo\n" in makefile.split("demo: ", 1)[1]


def test_demo_summary_prints_paths_and_skill() -> None:
    from flows.demo import summary
    from flows.pipeline import PipelineResult

    fit = types.SimpleNamespace(checkpoint_path="/d/models/mch-radar/run/best.pt")
    report = types.SimpleNamespace(
        store="/d/stores/mch-radar.zarr", frames_written=40, first="t0", last="t1"
    )
    forecast = types.SimpleNamespace(
        store="/d/forecasts/mch-radar.zarr",
        init_time="2016-07-12 00:00:00",
        lead_times=pd.to_timedelta([5, 10, 15, 20], unit="min"),
        index=0,
        figures=("/d/figures/mch-radar/map.png",),
    )
    evaluation = types.SimpleNamespace(directory="/d/reports/mch-radar", n_windows=3)
    skill = [
        {"method": "simvp", "mse": 3.0, "mae": 0.5, "mse_skill_vs_persistence": 0.25},
        {"method": "persistence", "mse": 4.0, "mae": 0.5, "mse_skill_vs_persistence": 0.0},
    ]
    result = PipelineResult("mch-radar", report, fit, forecast, evaluation, skill, {"train": 60})
    text = summary(result, 150.0)
    assert "done in 2.5 min (train 60 s)" in text
    assert "/d/models/mch-radar/run/best.pt" in text and "map.png" in text
    assert "4 leads to +20 min" in text
    assert "  simvp        3    0.5  0.25\n  persistence  4    0.5  0" in text


# --- flow helpers ---------------------------------------------------------------------------


def test_skill_rows_hand_computed() -> None:
    from flows.evaluate import skill_rows

    rows = [
        # method, score, lead, value: SimVP MSE 2 and 4 (mean 3), persistence 4 and 8 (mean 6)
        ("persistence", "mse", 5, 4.0),
        ("persistence", "mse", 10, 8.0),
        ("simvp", "mse", 5, 2.0),
        ("simvp", "mse", 10, 4.0),
        ("simvp", "mae", 5, 1.0),
        ("simvp", "mae", 10, 2.0),
        ("persistence", "mae", 5, 1.0),
        ("persistence", "mae", 10, 1.0),
        ("simvp", "csi", 5, 0.9),  # categorical scores are left out of the summary
    ]
    scores = pd.DataFrame(rows, columns=["method", "score", "lead_time_minutes", "value"])
    assert skill_rows(scores) == [
        {"method": "simvp", "mse": 3.0, "mae": 1.5, "mse_skill_vs_persistence": 0.5},
        {"method": "persistence", "mse": 6.0, "mae": 1.0, "mse_skill_vs_persistence": 0.0},
    ]
    with pytest.raises(ValueError, match="persistence"):
        skill_rows(scores[scores["method"] == "simvp"])


def test_newest_observation_skips_empty_slots(tmp_path: Path) -> None:
    import xarray as xr

    from pipelines.forecast.inputs import newest_observation

    times = pd.date_range("2016-07-11 23:00", periods=6, freq="5min")
    present = np.array([True, True, True, False, True, False])  # last slot: pre-allocated
    xr.Dataset({"frame_present": ("time", present)}, coords={"time": times}).to_zarr(
        tmp_path / "s.zarr", consolidated=True
    )
    store = xr.open_zarr(tmp_path / "s.zarr")
    assert newest_observation(store, datetime(2016, 7, 12)) == datetime(2016, 7, 11, 23, 20)
    assert newest_observation(store, datetime(2016, 7, 11, 23, 17)) == datetime(2016, 7, 11, 23, 10)
    cet = timezone(timedelta(hours=1))  # 00:12 CET is 23:12 UTC
    assert newest_observation(store, datetime(2016, 7, 12, 0, 12, tzinfo=cet)) == datetime(
        2016, 7, 11, 23, 10
    )
    assert newest_observation(store, datetime(2016, 7, 11, 22)) is None


def test_input_age_and_fallback_note() -> None:
    import xarray as xr

    from flows.forecast import input_age, used_fallback

    result = types.SimpleNamespace(
        init_time=pd.Timestamp("2016-07-11 23:00"),
        forecast=xr.Dataset({"fallback": ("init_time", np.array(["latest-complete: x"]))}),
    )
    assert input_age(result, datetime(2016, 7, 12, tzinfo=UTC)) == timedelta(hours=1)
    assert used_fallback(result) == "latest-complete: x"
    assert used_fallback(types.SimpleNamespace(forecast=None)) == ""


def test_deployments_cli_lists_and_writes_prefect_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.deployments import main

    assert main(["--list", "--sources", "mch-radar"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ingest/mch-radar\t0 * * * *",
        "train-simvp/mch-radar\ton demand",
        "forecast/mch-radar\t5 * * * *",
        "verify/mch-radar\t10 * * * *",
        "evaluate/mch-radar\ton demand",
    ]
    assert main(["--write-prefect-yaml", str(tmp_path / "p.yaml"), "--sources", "mch-radar"]) == 0
    document = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert [d["entrypoint"] for d in document["deployments"]] == [
        "flows/ingest.py:ingest",
        "flows/train.py:train_simvp",
        "flows/forecast.py:forecast",
        "flows/verify.py:verify",
        "flows/evaluate.py:evaluate",
    ]


def test_build_deployments_for_serve() -> None:
    from flows.deployments import build_deployments

    served = {d.flow_name + "/" + d.name: d for d in build_deployments(["mch-radar"])}
    assert list(served) == [spec.full_name for spec in deployment_specs(["mch-radar"])]
    forecast = served["forecast/mch-radar"]
    assert forecast.entrypoint == "flows.forecast.forecast"  # module path: any working dir
    assert [s.schedule.cron for s in forecast.schedules] == [FORECAST_CRON]
    assert [s.schedule.cron for s in served["ingest/mch-radar"].schedules] == [INGEST_CRON]
    assert not served["train-simvp/mch-radar"].schedules
    unscheduled = build_deployments(["mch-radar"], schedules=False)
    assert all(not d.schedules for d in unscheduled)
