"""Re-render a forecast from the forecast store (``nowcast render``).

The observed context frames are re-read from the observation store at the forecast's recorded
``input_time`` values and prepared with the store's ``input_preparation`` (the checkpoint's
variable selection, crop and coarsening). Without an observation store the maps show the
forecast only (logged).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import INIT_TIME, TIME
from pipelines.forecast.store import COMPLETE, INPUT_TIME, open_forecast_store
from pipelines.prepare import Preparation, prepare_frames
from pipelines.render.run import render_run

logger = logging.getLogger(__name__)


def load_stored_forecast(
    source: str,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    n_leads: int | None = None,
) -> xr.Dataset:
    """One complete init time from ``DIR/forecasts/<source>.zarr`` (None = the newest).

    ``n_leads`` picks the store of another lead configuration (``<source>-<N>leads.zarr``,
    see :meth:`data_catalog.paths.DataDir.forecast_store`).

    Raises
    ------
    FileNotFoundError
        No forecast store.
    ValueError
        The init time is not in the store or its write did not complete.
    """
    path = DataDir.resolve(data_dir).forecast_store(source, n_leads)
    if not Path(path).exists():
        raise FileNotFoundError(f"no forecast store {path}: run nowcast forecast first")
    store = open_forecast_store(path)
    complete = np.asarray(store[COMPLETE].values, dtype=bool)
    if init_time is None:
        if not complete.any():
            raise ValueError(f"{path} holds no complete forecast")
        index = int(np.flatnonzero(complete)[-1])
    else:
        wanted = pd.Timestamp(init_time)
        if wanted.tzinfo is not None:
            wanted = wanted.tz_convert("UTC").tz_localize(None)
        matches = np.flatnonzero(store[INIT_TIME].values == wanted.to_datetime64())
        if len(matches) == 0 or not complete[matches[0]]:
            done = store[INIT_TIME].values[complete]
            listed = ", ".join(pd.Timestamp(t).strftime("%Y-%m-%dT%H:%MZ") for t in done[-5:])
            raise ValueError(
                f"no complete forecast for init time {wanted} in {path}; latest: {listed or '-'}"
            )
        index = int(matches[0])
    return store.isel({INIT_TIME: index}).load()


def stored_inputs(
    forecast: xr.Dataset, data_dir: str | os.PathLike[str] | None
) -> xr.DataArray | None:
    """Observed input frames ``(time, channel, y, x)`` of a stored forecast, or None."""
    source = forecast.attrs.get("source_name", "")
    store_path = DataDir.resolve(data_dir).store(source)
    preparation = forecast.attrs.get("input_preparation")
    if not Path(store_path).exists() or not preparation:
        logger.warning("no observation store %s: rendering the forecast only", store_path)
        return None
    obs = xr.open_zarr(store_path, chunks=None)
    times = pd.DatetimeIndex(forecast[INPUT_TIME].values)
    missing = times.difference(pd.DatetimeIndex(obs[TIME].values))
    if len(missing):
        logger.warning("input times %s no longer in %s: forecast only", list(missing), store_path)
        return None
    # dims stay (time, channel, y, x) as in the observation store; the maps use the pixel grid
    return prepare_frames(
        obs.sel({TIME: times}), Preparation.from_dict(json.loads(preparation))
    ).load()


def render_stored(
    source: str,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    n_panels: int = 4,
    variables: Sequence[str] | None = None,
    animate: bool = True,
    n_leads: int | None = None,
) -> tuple[str, ...]:
    """Render a stored forecast (PNG + GIF) to ``out_dir`` (default ``DIR/figures/<source>/``)."""
    forecast = load_stored_forecast(source, init_time, data_dir, n_leads)
    observed = stored_inputs(forecast, data_dir)
    target = out_dir if out_dir is not None else DataDir.resolve(data_dir).figures(source)
    return render_run(
        forecast, observed, target, n_panels=n_panels, variables=variables, animate=animate
    )
