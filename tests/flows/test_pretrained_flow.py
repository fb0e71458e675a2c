"""The ``forecast`` flow on a freshly ingested source with no trained model: pretrained fallback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

import pipelines.method.pretrained.card as card_module
from flows.forecast import forecast
from flows.ingest import ingest
from tests.flows.sample import SOURCE
from tests.pipelines.pretrained_helpers import tiny_pretrained

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("prefect_harness")]


def test_forecast_flow_without_training_uses_the_pretrained_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MeteoSwiss at 1 km (640 x 710) -> a 4 km model grid of 160 x 178 cells
    root = tmp_path / "pretrained"
    card = tiny_pretrained(root, shape=(160, 178))
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    data = tmp_path / "data"
    first, last = pd.Timestamp("2016-07-11 20:45"), pd.Timestamp("2016-07-11 21:00")
    ingest(SOURCE, str(data), first.to_pydatetime(), last.to_pydatetime())
    assert not (data / "models").exists()  # nothing trained
    result = forecast(SOURCE, data_dir=str(data), render=False, as_of=last.to_pydatetime())
    assert result.init_time == last.tz_localize("UTC") and len(result.lead_times) == 3
    with xr.open_zarr(data / "forecasts" / f"{SOURCE}.zarr") as store:
        field = store["precipitation_rate"].isel(init_time=0)
        assert field.shape[-2:] == (640, 710)  # the source's grid, not the model's
        assert str(store["model_version"].values[0]).startswith(f"model: {card.label}")
        assert store["checkpoint_sha256"].values[0] == card.sha256
