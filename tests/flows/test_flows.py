"""The flows under ``prefect_test_harness`` on the shipped MeteoSwiss radar sample.

One tiny pipeline run (ingest → train one small epoch → forecast → evaluate) is shared by the
module; the other tests re-run single flows on its outputs: idempotent re-runs, a failed
ingest followed by stale-input reports and recovery, and parameter validation.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows import tasks
from flows.forecast import forecast
from flows.ingest import ingest
from flows.pipeline import PipelineResult, nowcast_pipeline
from flows.train import train_simvp
from tests.flows.sample import FIRST, LAST, SOURCE, TINY_OVERRIDES
from tests.flows.sample import TINY_TRAINING as SAMPLE_TRAINING

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("prefect_harness")]

#: Parameters of the train-simvp flow (``train_overrides`` are its train_source options).
TINY_TRAINING: dict[str, Any] = {**SAMPLE_TRAINING, "train_overrides": TINY_OVERRIDES}


def latest_artifact(key: str) -> Any:
    """The newest artifact with ``key`` from the harness API (None if there is none)."""
    from prefect.artifacts import Artifact

    return Artifact.get(key)


def table(key: str) -> list[dict[str, Any]]:
    artifact = latest_artifact(key)
    assert artifact is not None, f"no artifact {key!r}"
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PipelineResult]:
    root = tmp_path_factory.mktemp("pipeline")
    result = nowcast_pipeline(
        source=SOURCE,
        data_dir=str(root),
        start=FIRST.to_pydatetime(),
        end=LAST.to_pydatetime(),
        max_samples=2,
        render=True,
        **TINY_TRAINING,
    )
    return root, result


def test_pipeline_writes_every_output_and_publishes_artifacts(
    pipeline_run: tuple[Path, PipelineResult],
) -> None:
    root, result = pipeline_run
    # ingest: the 40-frame 2016-07-11 event of the sample
    assert result.ingest.frames_written == 40
    assert (result.ingest.first, result.ingest.last) == (FIRST, LAST)
    assert Path(result.ingest.store) == root / "stores" / f"{SOURCE}.zarr"
    assert table(f"ingest-{SOURCE}")[0]["frames_written"] == 40
    # train: one checkpoint in its own run folder under models/<source>/
    checkpoint = Path(result.fit.checkpoint_path)
    assert checkpoint.is_file() and checkpoint.name == "best.pt"
    assert checkpoint.parent.parent == root / "models" / SOURCE
    metrics = {row["metric"] for row in table(f"train-metrics-{SOURCE}")}
    assert "mse" in metrics
    # forecast: the last init time, 4 leads, in the forecast store, with a map
    fc = result.forecast
    assert fc.init_time == LAST.tz_localize("UTC") and len(fc.lead_times) == 4 and fc.index == 0
    with xr.open_zarr(root / "forecasts" / f"{SOURCE}.zarr") as store:
        assert store.sizes["init_time"] == 1 and bool(store["forecast_complete"][0])
    [summary] = table(f"forecast-{SOURCE}")
    assert summary["stale"] is False and summary["init_time"] == str(LAST.tz_localize("UTC"))
    assert any(Path(p).suffix == ".png" and Path(p).is_file() for p in fc.figures)
    link = latest_artifact(f"forecast-map-{SOURCE}").data  # "[name.png](file:///...png)"
    png = next(Path(p) for p in fc.figures if str(p).endswith(".png"))  # the published map
    assert f"[{png.name}]({png.resolve().as_uri()})" in link
    # evaluate: SimVP and persistence on the same windows; persistence has skill 0 by definition
    skill = {row["method"]: row for row in result.skill}
    assert list(skill)[:2] == ["simvp", "persistence"]
    assert skill["persistence"]["mse_skill_vs_persistence"] == 0.0
    assert np.isfinite(skill["simvp"]["mse"]) and skill["simvp"]["mse"] > 0
    assert {row["method"] for row in table(f"skill-{SOURCE}")} == set(skill)
    assert set(result.seconds) == {"ingest", "train", "forecast", "evaluate"}


def test_forecast_rerun_for_the_same_time_is_idempotent(
    pipeline_run: tuple[Path, PipelineResult],
) -> None:
    root, result = pipeline_run
    path = root / "forecasts" / f"{SOURCE}.zarr"
    with xr.open_zarr(path) as store:
        before = store.load()
    again = forecast(
        SOURCE, LAST.to_pydatetime(), result.fit.checkpoint_path, str(root), render=False
    )
    assert again.index == result.forecast.index == 0
    with xr.open_zarr(path) as store:
        after = store.load()
    assert after.sizes["init_time"] == 1
    xr.testing.assert_equal(before["precipitation_rate"], after["precipitation_rate"])


def test_failed_ingest_reports_stale_inputs_and_does_not_poison_later_forecasts(
    pipeline_run: tuple[Path, PipelineResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipelines.ingest

    _, result = pipeline_run
    checkpoint = str(result.fit.checkpoint_path)
    data = str(tmp_path)
    # Hourly ingests: the first hours arrive...
    ingest(SOURCE, data, start=FIRST.to_pydatetime(), end=datetime(2016, 7, 11, 23, 0))
    # ...the next hour's ingest fails with an I/O error, retried with backoff, then gives up.
    calls = []

    def unreachable(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs["start"])
        raise OSError("radar archive unreachable")

    monkeypatch.setattr(pipelines.ingest, "ingest_source", unreachable)
    monkeypatch.setattr(tasks, "ingest_task", tasks.ingest_task.with_options(retry_delay_seconds=0))
    state = ingest(SOURCE, data, start=datetime(2016, 7, 11, 23, 5), return_state=True)
    assert state.is_failed() and "radar archive unreachable" in state.message
    assert len(calls) == 1 + tasks.IO_RETRIES
    monkeypatch.undo()

    # The forecast wanted at 00:00 runs from the newest inputs and says they are stale.
    wanted = LAST.to_pydatetime()
    stale = forecast(SOURCE, None, checkpoint, data, render=False, as_of=wanted)
    assert stale.init_time == pd.Timestamp("2016-07-11 23:00", tz="UTC")
    [summary] = table(f"forecast-{SOURCE}")
    assert summary["stale"] is True and summary["input_age"] == "1:00:00"
    report = latest_artifact(f"forecast-inputs-{SOURCE}").data
    assert "Stale inputs" in report and "2016-07-11 23:00" in report

    # Asking for exactly 00:00 cannot be served: the run fails with the reason, nothing written.
    state = forecast(SOURCE, wanted, checkpoint, data, render=False, return_state=True)
    assert state.is_failed() and "stale" in state.message
    assert "No forecast was made" in latest_artifact(f"forecast-inputs-{SOURCE}").data

    # The next ingest succeeds: the next forecast is fresh again.
    ingest(SOURCE, data, start=datetime(2016, 7, 11, 23, 5), end=LAST.to_pydatetime())
    fresh = forecast(SOURCE, None, checkpoint, data, render=False, as_of=wanted)
    assert fresh.init_time == LAST.tz_localize("UTC")
    [summary] = table(f"forecast-{SOURCE}")
    assert summary["stale"] is False
    with xr.open_zarr(tmp_path / "forecasts" / f"{SOURCE}.zarr") as store:
        written = store["init_time"].values[store["forecast_complete"].values]
    assert list(pd.DatetimeIndex(written).tz_localize("UTC")) == [stale.init_time, fresh.init_time]


def test_ingest_rerun_is_idempotent(
    pipeline_run: tuple[Path, PipelineResult], tmp_path: Path
) -> None:
    from pipelines.ingest import store_digest

    root, _ = pipeline_run
    shutil.copytree(root / "stores", tmp_path / "stores")
    store = tmp_path / "stores" / f"{SOURCE}.zarr"
    before = store_digest(str(store))
    with xr.open_zarr(store) as ds:
        data_before = ds.load()
    report = ingest(
        SOURCE, str(tmp_path), start=datetime(2016, 7, 11, 23, 0), end=LAST.to_pydatetime()
    )
    assert (report.frames_written, report.frames_new) == (13, 0)
    after = store_digest(str(store))
    # Every chunk and array is byte-identical; only the root metadata's history grows a line.
    assert {k: v for k, v in after.items() if k != "zarr.json"} == {
        k: v for k, v in before.items() if k != "zarr.json"
    }
    with xr.open_zarr(store) as ds:
        xr.testing.assert_equal(ds.load(), data_before)


def test_flow_parameters_are_validated(tmp_path: Path) -> None:
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="epochs"):
        train_simvp(SOURCE, str(tmp_path), epochs=0)
    with pytest.raises(ParameterTypeError, match="fractions"):
        train_simvp(SOURCE, str(tmp_path), split={"fractions": [1.0]})
    state = train_simvp("no-such-source", str(tmp_path), return_state=True)
    assert state.is_failed() and "mch-radar" in state.message  # lists the valid sources
    state = ingest(
        SOURCE,
        str(tmp_path),
        start=datetime(2016, 7, 12),
        end=datetime(2016, 7, 11),
        return_state=True,
    )
    assert state.is_failed() and "start must not be after end" in state.message
