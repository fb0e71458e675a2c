"""A small live setup for the verification tests: an observation store and issued forecasts.

The observation store is :func:`tests.pipelines.forecast_helpers.obs_store` (36 frames from
12:00 every 5 min, a disc of value ``t + 1`` mm/h at frame ``t``); the forecasts come from the
hand-computable fake model (lead ``k`` = last input + ``k``, 3 leads of 5 min) through the real
:func:`pipelines.forecast.run.run_forecast`, so the forecast store is the real one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from tests.pipelines.forecast_helpers import FakeLoaded, fake_predict, obs_store

SOURCE = "mch-radar"  # a catalog name (the flow checks it); the data are synthetic
INITS = pd.date_range("2021-06-01T12:30", periods=4, freq="15min")
AS_OF = pd.Timestamp("2021-06-01T15:00")
LATE = 17  # frame 13:25: a valid time of the 13:15 entry only (no forecast's input, no history)


def issue(data_dir: Path, inits=INITS, checkpoint_name: str = "fake.pt") -> None:
    """Issue the fake model's forecasts for ``inits`` into ``DIR/forecasts/<SOURCE>.zarr``."""
    from pipelines.forecast.run import run_forecast
    from pipelines.method.simvp import SimVPMethod

    loaded = FakeLoaded()
    loaded.path = checkpoint_name
    method = SimVPMethod.from_loaded(loaded, fake_predict)
    for init in inits:
        run_forecast(SOURCE, init_time=init, checkpoint=method, data_dir=data_dir)


def build(data_dir: Path, absent: tuple[int, ...] = (), inits=INITS) -> Path:
    """Observation store (frames ``absent`` missing) and the issued forecasts (``inits``)."""
    obs_store(data_dir / "stores" / f"{SOURCE}.zarr", n_times=36, absent=absent)
    issue(data_dir, inits)
    return data_dir


def arrive(data_dir: Path, index: int) -> None:
    """A late observation: frame ``index`` gets its data and ``frame_present`` True."""
    group = zarr.open_group(str(data_dir / "stores" / f"{SOURCE}.zarr"), mode="r+")
    previous = np.asarray(group["precipitation_rate"][index - 1])
    frame = np.where(previous > 0, index + 1.0, previous)  # the store's pattern: t + 1 in the disc
    group["precipitation_rate"][index] = frame.astype("float32")
    group["frame_present"][index] = True


def copy(template: Path, target: Path) -> Path:
    """A fresh copy of a prepared data directory."""
    shutil.copytree(template, target)
    return target
