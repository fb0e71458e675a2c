"""The base nowcast is rebuilt identically at train, evaluate and forecast time.

An untrained base-correcting SimVP (extrapolation, anomaly persistence) returns its base
exactly (zero correction), so its evaluation and forecast outputs *are* the base those code
paths build; they must equal the base the training windows carry for the same window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from data_catalog.catalog import parse_catalog
from pipelines.evaluation.evaluate import run_methods
from pipelines.forecast.run import run_forecast
from pipelines.method.simvp import SimVPMethod
from pipelines.prepare import prepare_frames
from pipelines.windows import SplitConfig, source_windows
from simvp_model.checkpoint import load_checkpoint, save_checkpoint
from simvp_model.corrected import build_model
from simvp_model.presets import get_preset
from tests.pipelines.forecast_helpers import obs_store

T_IN, T_OUT = 4, 3


def _catalog():
    entry = {
        "kind": "radar",
        "reader": "none",
        "path": "/nowhere/%Y%m%d%H%M.h5",
        "time_step": "5min",
        "variables": [
            {
                "name": "precipitation_rate",
                "units": "mm/h",
                "source": "RATE",
                "normalisation": {"transform": "dbr", "threshold": 0.1},
            }
        ],
        "grid": {"crs": "EPSG:4326", "shape": [32, 32], "extent": [0.0, 32.0, 0.0, 32.0]},
    }
    return parse_catalog({"version": 1, "sources": {"synthetic": entry}})


def _moving_store(path, n_times: int = 40):
    """obs_store's layout with a cell moving 0.5 px per step to +x, back every 48 steps (and a
    NaN corner)."""
    obs_store(path, n_times=n_times)
    ds = xr.open_zarr(path).load()
    yy, xx = np.mgrid[0:32, 0:32]
    frames = np.stack(
        [
            8.0 * np.exp(-((yy - 16) ** 2 + (xx - 4 - 0.5 * (t % 48)) ** 2) / 10.0)
            for t in range(n_times)
        ]
    ).astype(np.float32)
    frames[:, :3, :3] = np.nan
    ds["precipitation_rate"].values[:] = frames
    ds.to_zarr(path, mode="w")


# anomaly persistence needs a day of archive (288 five-minute frames) before its windows
@pytest.mark.parametrize(
    ("base_name", "n_times"), [("extrapolation", 40), ("anomaly_persistence", 400)]
)
def test_base_is_identical_in_training_evaluation_and_forecast(
    tmp_path, base_name, n_times
) -> None:
    torch.manual_seed(0)
    store = tmp_path / "stores" / "synthetic.zarr"
    _moving_store(store, n_times)
    windows = source_windows(
        "synthetic", tmp_path, T_IN, T_OUT, _catalog(), crop="full", coarsen=1,
        split=SplitConfig((0.6, 0.2, 0.2)), base=base_name,
    )  # fmt: skip
    test = windows.test
    x, base, y = test[0]
    assert base.shape == (T_OUT, 1, 32, 32)
    config = get_preset("tiny").replace(
        in_frames=T_IN, out_frames=T_OUT, height=32, width=32, base=base_name
    )
    ckpt = save_checkpoint(
        tmp_path / "models" / "synthetic" / "best.pt",
        build_model(config),  # untrained: the output is the base
        config,
        windows.normalisation,
        {},
        windows.metadata,
    )
    norm = windows.normalisation
    trained_on = norm.decode(base[None].numpy())[0]  # the training sample's base, physical

    method = SimVPMethod.from_checkpoint(ckpt)
    ref = test.windows[0]
    frames = prepare_frames(xr.open_zarr(store), method.preparation())
    evaluated = run_methods(
        frames,
        np.array([ref.start]),
        T_IN,
        T_OUT,
        {"simvp": method.as_baseline()},
        archive=frames.load() if method.needs_archive else None,  # as evaluate_source does
    ).forecasts["simvp"]
    np.testing.assert_allclose(np.asarray(evaluated)[0], trained_on, rtol=1e-6, atol=1e-6)

    init = pd.Timestamp(frames["time"].values[ref.start + T_IN - 1])
    forecast = run_forecast("synthetic", init, ckpt, tmp_path).forecast
    values = np.stack([forecast["precipitation_rate"].values[0, k] for k in range(T_OUT)])
    expected = trained_on[:, 0].copy()
    expected[:, :3, :3] = np.nan  # the forecast masks pixels with no last observation
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)
    # and the base moved the cell: it is not persistence
    assert not np.allclose(trained_on[-1], np.nan_to_num(frames.values[ref.start + T_IN - 1]))
    assert load_checkpoint(ckpt).config.base == base_name
