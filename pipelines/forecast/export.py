"""Exports of the forecast store under other naming conventions.

WeatherBench2 (``weatherbench2`` evaluation tools) expects forecasts with dims
``(time, prediction_timedelta, latitude, longitude)`` where ``time`` is the initialisation time
and ``prediction_timedelta`` the lead time; it derives valid times itself.
"""

from __future__ import annotations

import logging
import os
import warnings

import xarray as xr

from data_catalog.vocabulary import INIT_TIME, LEAD_TIME
from pipelines.forecast.store import COMPLETE, VALID_TIME, open_forecast_store

logger = logging.getLogger(__name__)

WB2_NAMES = {INIT_TIME: "time", LEAD_TIME: "prediction_timedelta"}


def to_weatherbench2(forecast: xr.Dataset) -> xr.Dataset:
    """Rename a forecast dataset to WeatherBench2 conventions.

    Parameters
    ----------
    forecast : xarray.Dataset
        Forecast-store layout (dims ``init_time``, ``lead_time``, spatial dims).

    Returns
    -------
    xarray.Dataset
        Same data with ``init_time`` → ``time`` and ``lead_time`` → ``prediction_timedelta``;
        ``valid_time`` is dropped (WeatherBench2 computes it), only complete entries are kept.
    """
    missing = [name for name in WB2_NAMES if name not in forecast.dims]
    if missing:
        raise ValueError(f"forecast lacks dims {missing}; has {dict(forecast.sizes)}")
    if COMPLETE in forecast:
        forecast = forecast.isel({INIT_TIME: forecast[COMPLETE].values.astype(bool)})
    out = forecast.drop_vars([VALID_TIME], errors="ignore").rename(WB2_NAMES)
    out["time"].attrs.update(standard_name="forecast_reference_time")
    out["prediction_timedelta"].attrs.update(standard_name="forecast_period")
    return out


def export_weatherbench2(
    store: str | os.PathLike[str], target: str | os.PathLike[str]
) -> xr.Dataset:
    """Write the complete forecasts of ``store`` with WeatherBench2 naming to ``target`` (Zarr).

    Returns
    -------
    xarray.Dataset
        The exported dataset (lazy, as written).
    """
    out = to_weatherbench2(open_forecast_store(store)).drop_encoding()
    out = out.chunk({"time": 1})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        out.to_zarr(os.fspath(target), mode="w")
    logger.info(
        "exported %d forecasts of %s to %s (WeatherBench2 naming)", out.sizes["time"], store, target
    )
    return out
