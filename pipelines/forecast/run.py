"""One forecast: inputs at or before the init time → SimVP → forecast store (no rendering).

Maps and animations are drawn by the caller (:func:`pipelines.render.run.render_forecast`)
from the returned :class:`ForecastResult`.

Inputs
------
Chosen and checked by :mod:`pipelines.forecast.inputs` (``T_in`` frames ending at the init time,
:class:`StaleInputError` when they are missing or stale, ``fallback="latest-complete"`` as the
only, explicit, alternative).

Model
-----
The method is a :class:`pipelines.method.simvp.SimVPMethod`: its default checkpoint, NaN-fill
policy and provenance hash are defined there, once for forecasting and verification. Lead times
default to the model's native ``out_frames`` steps; more (``lead_times=N``) are rolled out by
``simvp_model.predict``. Forecast pixels are NaN where the last input frame was NaN.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, CRS, X, Y
from pipelines.forecast.inputs import (
    FALLBACKS,
    Fallback,
    InputSelection,
    StaleInputError,
    TimeLike,
    read_inputs,
    select_inputs,
)
from pipelines.forecast.store import ForecastGrid, Provenance, build_forecast, write_forecast
from pipelines.forecast.time_step import TimeStepPolicy, match_time_step
from pipelines.method.simvp import SimVPMethod
from pipelines.prepare import Preparation, prepare_frames, store_time_step
from simvp_model.checkpoint import LoadedModel

logger = logging.getLogger(__name__)

__all__ = [
    "FALLBACKS",
    "Fallback",
    "ForecastResult",
    "InputSelection",
    "StageTimer",
    "StaleInputError",
    "forecast_grid",
    "read_inputs",
    "run_forecast",
    "select_inputs",
]


@dataclass
class StageTimer:
    """Wall and CPU seconds per stage: :meth:`lap` charges the time since the previous lap."""

    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    _clock: float = field(default_factory=time.perf_counter, repr=False)
    _cpu_clock: float = field(default_factory=time.process_time, repr=False)

    def lap(self, stage: str) -> None:
        """Charge the wall and CPU seconds since the previous lap (or creation) to ``stage``."""
        now, cpu_now = time.perf_counter(), time.process_time()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._clock
        self.cpu_timings[stage] = self.cpu_timings.get(stage, 0.0) + cpu_now - self._cpu_clock
        self._clock, self._cpu_clock = now, cpu_now


@dataclass(frozen=True)
class ForecastResult:
    """Outcome of :func:`run_forecast`.

    Parameters
    ----------
    source : str
        Source name.
    init_time : pandas.Timestamp
        Forecast reference time, tz-aware UTC (as every init time the pipelines return).
    lead_times : pandas.TimedeltaIndex
        ``(L,)`` lead times written.
    store : str
        Path of the forecast store.
    index : int
        Position of this forecast on the store's ``init_time`` axis.
    checkpoint : str
        Checkpoint used.
    figures : tuple of str
        Paths of the maps and animation written (empty until
        :func:`pipelines.render.run.render_forecast` draws them).
    timings : dict of str to float
        Wall seconds per stage (``load_model``, ``read_inputs``, ``predict``, ``write``,
        ``render_png``, ``render_gif``).
    cpu_timings : dict of str to float
        CPU seconds of the process (all threads) per stage.
    forecast : xarray.Dataset
        The written forecast (``init_time`` of length 1), in memory.
    inputs : xarray.DataArray
        The prepared input frames ``(time=T_in, channel=C, y=H, x=W)``, physical units, with
        ``latitude``/``longitude`` coordinates (for the maps).
    """

    source: str
    init_time: pd.Timestamp
    lead_times: pd.TimedeltaIndex
    store: str
    index: int
    checkpoint: str
    figures: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    forecast: xr.Dataset | None = field(default=None, repr=False)
    inputs: xr.DataArray | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------- grid
def forecast_grid(frames: xr.DataArray, store_ds: xr.Dataset) -> ForecastGrid:
    """The grid of prepared frames: their ``y``/``x`` and ``latitude``/``longitude`` coords."""
    if CRS not in store_ds.variables:
        raise ValueError("the observation store has no 'crs' grid-mapping variable")
    crs = pyproj.CRS.from_cf(dict(store_ds[CRS].attrs))
    y, x = frames[Y].values, frames[X].values
    if crs.is_geographic or "latitude" not in frames.coords:
        return ForecastGrid.from_coords(y, x, crs)
    return ForecastGrid(
        y=np.asarray(y, dtype="float64"),
        x=np.asarray(x, dtype="float64"),
        latitude=np.asarray(frames["latitude"].transpose(Y, X).values, dtype="float64"),
        longitude=np.asarray(frames["longitude"].transpose(Y, X).values, dtype="float64"),
        crs=crs,
    )


def check_finite_forecast(predicted: np.ndarray, observed: np.ndarray, checkpoint: str) -> None:
    """Raise ``ValueError`` naming ``checkpoint`` if the forecast is not finite where inputs were.

    Parameters
    ----------
    predicted : np.ndarray
        ``(L, C, H, W)`` forecast in physical units (NaN outside the observed domain).
    observed : np.ndarray of bool
        ``(C, H, W)`` True where the last input frame is finite.
    checkpoint : str
        The checkpoint that made the forecast (named in the error).
    """
    bad = observed[None] & ~np.isfinite(predicted)  # (L, C, H, W)
    if bad.any():
        total = int(np.count_nonzero(observed)) * predicted.shape[0]
        raise ValueError(
            f"checkpoint {checkpoint} forecast {int(bad.sum())} of {total} values non-finite "
            "(NaN or inf) where the inputs were finite; its weights may be broken. Nothing was "
            "written: pick another checkpoint with --checkpoint, or retrain"
        )


# ----------------------------------------------------------------------------- run
def run_forecast(
    source: str,
    init_time: TimeLike | None = None,
    checkpoint: str | os.PathLike[str] | LoadedModel | SimVPMethod | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    lead_times: int | None = None,
    fallback: Fallback = "none",
    max_age: str | pd.Timedelta | None = None,
    as_of: TimeLike | None = None,
    time_step_policy: TimeStepPolicy = "error",
) -> ForecastResult:
    """Make one forecast of ``source`` and write it to its forecast store.

    The store is ``DIR/forecasts/<source>.zarr`` at the checkpoint's own horizon and
    ``DIR/forecasts/<source>-<N>leads.zarr`` for another lead count ``N`` (one store per lead
    configuration). A forecast that is not finite where its inputs were is refused.

    Parameters
    ----------
    source : str
        Catalog source name (its store is ``DIR/stores/<source>.zarr``).
    init_time : datetime-like or None
        Forecast reference time (UTC); None = the store's newest present frame at or before
        ``as_of``.
    checkpoint : path, LoadedModel, SimVPMethod or None
        The method (:class:`pipelines.method.simvp.SimVPMethod`), a checkpoint file or an already
        loaded ``LoadedModel`` to wrap as one, or None for the default checkpoint
        (:func:`pipelines.method.simvp.default_checkpoint`: the newest
        ``DIR/models/<source>/**/best.pt``).
    data_dir : path or None
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    lead_times : int or None
        Number of lead times ``L`` (steps of the source's time step); None = the model's
        ``out_frames``. More than ``out_frames`` are rolled out.
    fallback : {"none", "latest-complete"}
        Missing-input policy (see :func:`select_inputs`).
    max_age : str or pandas.Timedelta, optional
        Refuse inputs older than this relative to ``as_of`` (see :func:`select_inputs`).
    as_of : datetime-like, optional
        When the forecast is wanted (default now); see :mod:`pipelines.forecast.inputs`.
    time_step_policy : {"error", "nearest"}
        What to do when the store's time step differs from the model's
        (:func:`pipelines.forecast.time_step.match_time_step`): a clear error, or the explicit,
        logged ``nearest`` (recorded in the provenance's ``fallback``).

    Returns
    -------
    ForecastResult
    """
    timer = StageTimer()
    lap = timer.lap
    paths = DataDir.resolve(data_dir)
    method = SimVPMethod.resolve(source, checkpoint, data_dir)
    in_frames, out_frames = method.frames()
    preparation = method.preparation()
    trained_on = list(preparation.sources)
    if trained_on and source not in trained_on:
        logger.warning("checkpoint was trained on %s, forecasting %r", trained_on, source)
    n_leads = out_frames if lead_times is None else int(lead_times)
    if n_leads < 1:
        raise ValueError(f"lead_times must be >= 1, got {lead_times}")
    lap("load_model")

    store_path = paths.store(source)
    if not Path(store_path).exists():
        raise FileNotFoundError(f"no observation store {store_path}: run nowcast ingest first")
    store_ds, step_note = match_time_step(
        xr.open_zarr(store_path, chunks=None),
        preparation.time_step,
        time_step_policy,
        init_time,
        as_of,
        source,
    )
    step = store_time_step(store_ds)
    selection, frames = read_inputs(store_ds, preparation, init_time, fallback, max_age, as_of)
    values = np.asarray(frames.values, dtype=np.float32)  # (T_in, C, H, W)
    lap("read_inputs")

    nan = np.isnan(values)  # (T_in, C, H, W)
    # the climatology base averages past frames: all the store's frames up to the init time
    archive = prepare_frames(store_ds, preparation).load() if method.needs_archive else None
    predicted = method.predict(values, n_leads, times=selection.times.values, archive=archive)
    predicted = predicted[None]  # (1, L, C, H, W), NaN inputs filled
    predicted = np.where(nan[-1][None, None], np.nan, predicted)[0]  # (L, C, H, W)
    check_finite_forecast(predicted, ~nan[-1], method.name)
    lap("predict")

    grid = forecast_grid(frames, store_ds)
    variables = [str(v) for v in frames[CHANNEL].values]
    leads = pd.TimedeltaIndex([step * (i + 1) for i in range(n_leads)])
    provenance = Provenance(
        checkpoint=method.name,
        checkpoint_sha256=method.sha256,
        model_version=method.version(),
        source_store=str(store_path),
        input_times=selection.times.values,
        fallback="; ".join(n for n in (selection.fallback, step_note) if n),
    )
    forecast = build_forecast(
        {v: predicted[:, c] for c, v in enumerate(variables)},  # (L, H, W) each
        selection.init_time,
        leads,
        grid,
        time_step=step,
        source_name=source,
        provenance=provenance,
        variable_attrs={v: _var_attrs(store_ds[v].attrs) for v in variables},
        attrs={"input_preparation": json.dumps(_input_preparation(preparation, variables))},
    )
    # One store per lead configuration: the checkpoint's own horizon, or <source>-<N>leads.
    forecast_path = paths.forecast_store(source, None if n_leads == out_frames else n_leads)
    index = write_forecast(forecast_path, forecast)
    lap("write")

    observed = frames.assign_coords(
        latitude=((Y, X), grid.latitude), longitude=((Y, X), grid.longitude)
    )
    logger.info(
        "forecast %s init %s: %d leads to %s (%s)",
        source,
        selection.init_time.strftime("%Y-%m-%dT%H:%MZ"),
        n_leads,
        forecast_path,
        ", ".join(f"{k} {v:.2f}s" for k, v in timer.timings.items()),
    )
    return ForecastResult(
        source=source,
        init_time=selection.init_time,
        lead_times=leads,
        store=str(forecast_path),
        index=index,
        checkpoint=method.name,
        figures=(),
        timings=timer.timings,
        cpu_timings=timer.cpu_timings,
        forecast=forecast,
        inputs=observed,
    )


def _input_preparation(preparation: Preparation, variables: list[str]) -> dict[str, Any]:
    """The forecast store's ``input_preparation``: what :func:`prepare_frames` needs again."""
    return dataclasses.replace(preparation.inputs(), variables=tuple(variables)).to_dict()


def _var_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("units", "standard_name", "long_name")
    return {k: attrs[k] for k in keep if k in attrs}
