"""One forecast end to end: inputs at or before the init time → SimVP → forecast store → maps.

Input selection
---------------
The inputs are the ``T_in`` frames (the checkpoint's ``in_frames``) ending **at** the init time,
on the observation store's regular time grid. ``init_time=None`` means the store's newest present
frame (the store's axis is padded with absent slots to whole chunks, so its last time step is not
the newest observation). Nothing is silently substituted: :class:`StaleInputError` (a
``ValueError``) is raised when

- the store's newest present frame is before the init time (stale store, or the last frames
  absent), or older than ``max_age`` before now when that limit is given,
- the init time is off the store's time grid or the store starts too late for ``T_in`` frames,
- any input frame is absent (``frame_present`` False, or a variable all-NaN on the model grid),
  including the last frames and gaps inside the window.

The only alternative is the explicit ``fallback="latest-complete"``: the newest init time at or
before the requested one whose ``T_in`` frames are all present is used instead; this is logged
as a warning and recorded in the forecast's ``fallback`` provenance variable.

Model
-----
The method is a :class:`pipelines.simvp_method.SimVPMethod`: its default checkpoint, NaN-fill
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
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, CRS, TIME, X, Y
from pipelines.forecast.store import ForecastGrid, Provenance, build_forecast, write_forecast
from pipelines.prepare import Preparation, prepare_frames, store_time_step
from pipelines.simvp_method import SimVPMethod
from simvp_model.checkpoint import LoadedModel

logger = logging.getLogger(__name__)

Fallback = Literal["none", "latest-complete"]
FALLBACKS: tuple[str, ...] = ("none", "latest-complete")


class StaleInputError(ValueError):
    """The input frames for the requested init time are missing, stale or off-grid."""


@dataclass(frozen=True)
class InputSelection:
    """The input frames chosen for one forecast.

    Parameters
    ----------
    init_time : pandas.Timestamp
        Forecast reference time (time of the last input frame, UTC, naive).
    times : pandas.DatetimeIndex
        ``(T_in,)`` input times, oldest first.
    start : int
        Index of the first input frame on the store's ``time`` axis.
    fallback : str
        ``""`` or a description of the fallback used.
    """

    init_time: pd.Timestamp
    times: pd.DatetimeIndex
    start: int
    fallback: str = ""


@dataclass(frozen=True)
class ForecastResult:
    """Outcome of :func:`run_forecast`.

    Parameters
    ----------
    source : str
        Source name.
    init_time : pandas.Timestamp
        Forecast reference time (UTC, naive).
    lead_times : pandas.TimedeltaIndex
        ``(L,)`` lead times written.
    store : str
        Path of the forecast store.
    index : int
        Position of this forecast on the store's ``init_time`` axis.
    checkpoint : str
        Checkpoint used.
    figures : tuple of str
        Paths of the maps and animation written (empty when ``render=False``).
    timings : dict of str to float
        Wall seconds per stage (``load_model``, ``read_inputs``, ``predict``, ``write``,
        ``render_png``, ``render_gif``).
    cpu_timings : dict of str to float
        CPU seconds of the process (all threads) per stage.
    forecast : xarray.Dataset
        The written forecast (``init_time`` of length 1), in memory.
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


# ----------------------------------------------------------------------------- inputs
def store_step(store_ds: xr.Dataset) -> pd.Timedelta:
    """Regular time step of an observation store (:func:`pipelines.prepare.store_time_step`)."""
    return store_time_step(store_ds)


def _naive_utc(t: str | np.datetime64 | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if pd.isna(ts):
        raise ValueError(f"init time must be a valid time, got {t!r}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _span(delta: pd.Timedelta) -> str:
    """``"45 min"``, ``"1 h 05 min"``, ``"3 d 02 h 00 min"`` (whole minutes)."""
    minutes = int(pd.Timedelta(delta) / pd.Timedelta("1min"))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _freq(step: pd.Timedelta) -> str:
    return str(pd.tseries.frequencies.to_offset(step).freqstr)


def _iso(t: pd.Timestamp | np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%MZ")


def select_inputs(
    store_ds: xr.Dataset,
    in_frames: int,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    present: np.ndarray | None = None,
    fallback: Fallback = "none",
    max_age: str | pd.Timedelta | None = None,
    now: str | pd.Timestamp | None = None,
) -> InputSelection:
    """Choose the ``in_frames`` frames ending at ``init_time`` and check they are all there.

    Parameters
    ----------
    store_ds : xarray.Dataset
        Observation store (``time`` axis regular at its ``time_step``).
    in_frames : int
        ``T_in``.
    init_time : datetime-like or None
        Requested init time (UTC); None = the store's newest present frame.
    present : np.ndarray of bool, optional
        ``(time,)`` frame availability; default the store's ``frame_present`` (all True if absent).
        The caller may AND it with "not all-NaN on the model grid".
    fallback : {"none", "latest-complete"}
        What to do when a frame of the window is absent (see the module docstring).
    max_age : str or pandas.Timedelta, optional
        Refuse inputs whose init time is more than this older than ``now`` (wall-clock
        staleness for operational runs); None = no limit (archives).
    now : datetime-like, optional
        Reference time for ``max_age`` (UTC); default the current time.

    Returns
    -------
    InputSelection

    Raises
    ------
    StaleInputError
        Store ending before the init time, init time off-grid or too early, missing frames.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if in_frames < 1:
        raise ValueError(f"in_frames must be >= 1, got {in_frames}")
    times = pd.DatetimeIndex(store_ds[TIME].values)
    if len(times) == 0:
        raise StaleInputError("the observation store holds no time steps")
    step = store_step(store_ds)
    if present is None:
        present = (
            np.asarray(store_ds["frame_present"].values, dtype=bool)
            if "frame_present" in store_ds
            else np.ones(len(times), dtype=bool)
        )
    if not present.any():
        raise StaleInputError("the observation store holds no present frame")
    newest = times[present][-1]  # the axis may be padded with absent slots beyond it
    requested = newest if init_time is None else _naive_utc(init_time)
    if requested < times[0]:
        raise StaleInputError(
            f"init time {_iso(requested)} precedes the observation store's start {_iso(times[0])}"
        )
    if (requested - times[0]) % step != pd.Timedelta(0):
        earlier = times[0] + ((requested - times[0]) // step) * step
        raise StaleInputError(
            f"init time {_iso(requested)} is not on the store's {_freq(step)} time grid; nearest "
            f"earlier time step {_iso(earlier)}"
        )
    stale = ""
    if requested > newest:
        stale = (
            f"the observation store's newest frame is at {_iso(newest)}, before the init time "
            f"{_iso(requested)} (stale by {_span(requested - newest)}); ingest newer data first"
        )
        if fallback == "none":
            raise StaleInputError(f"{stale}, or pass fallback='latest-complete'")
    end = int(times.get_indexer([requested])[0]) if requested <= times[-1] else len(times) - 1
    if end < 0:
        raise StaleInputError(f"init time {_iso(requested)} is missing from the store's time axis")
    candidates = [end] if fallback == "none" else range(end, in_frames - 2, -1)
    first_problem = stale
    for stop in candidates:
        start = stop - in_frames + 1
        if start < 0:
            problem = (
                f"{in_frames} input frames ending at {_iso(times[stop])} need data from "
                f"{_iso(times[stop] - (in_frames - 1) * step)}, but the store starts at "
                f"{_iso(times[0])}"
            )
        else:
            window = times[start : stop + 1]
            expected = pd.date_range(end=times[stop], periods=in_frames, freq=step)
            if not window.equals(expected):
                absent = expected.difference(window)
                problem = f"the store's time axis has gaps in the input window: {_list(absent)}"
            else:
                missing = window[~present[start : stop + 1]]
                if len(missing) == 0:
                    chosen = times[stop]
                    note = ""
                    if chosen != requested:
                        note = (
                            f"latest-complete: requested {_iso(requested)} ({first_problem}); "
                            f"used {_iso(chosen)}"
                        )
                        logger.warning("input fallback: %s", note)
                    _check_age(chosen, max_age, now)
                    return InputSelection(chosen, window, start, note)
                problem = (
                    f"input frames absent at {_list(missing)} (window {_iso(window[0])} to "
                    f"{_iso(window[-1])})"
                )
        first_problem = first_problem or problem
        if fallback == "none":
            break
    hint = "" if fallback != "none" else "; pass fallback='latest-complete' to use older inputs"
    raise StaleInputError(f"cannot forecast from {_iso(requested)}: {first_problem}{hint}")


def _check_age(
    init: pd.Timestamp, max_age: str | pd.Timedelta | None, now: str | pd.Timestamp | None
) -> None:
    if max_age is None:
        return
    reference = _naive_utc(now) if now is not None else _naive_utc(pd.Timestamp.now(tz="UTC"))
    age = reference - init
    if age > pd.Timedelta(max_age):
        raise StaleInputError(
            f"the newest usable inputs end at {_iso(init)}, {_span(age)} before "
            f"{_iso(reference)}: older than max_age {_span(pd.Timedelta(max_age))}; ingest newer "
            "data first"
        )


def _list(times: pd.DatetimeIndex, limit: int = 6) -> str:
    shown = ", ".join(_iso(t) for t in times[:limit])
    return shown + (f" … ({len(times)} in all)" if len(times) > limit else "")


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


def _prepare(store_ds: xr.Dataset, preparation: Preparation) -> xr.DataArray:
    return prepare_frames(store_ds, preparation)


def read_inputs(
    store_ds: xr.Dataset,
    metadata: Mapping[str, Any] | Preparation,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    fallback: Fallback = "none",
    max_age: str | pd.Timedelta | None = None,
    now: str | pd.Timestamp | None = None,
) -> tuple[InputSelection, xr.DataArray]:
    """Select and read the model inputs for ``init_time``.

    Parameters
    ----------
    store_ds : xarray.Dataset
        Observation store.
    metadata : mapping or Preparation
        Checkpoint metadata (``in_frames``, ``variables``, ``crop``, ``coarsen``), typed by
        :meth:`pipelines.prepare.Preparation.from_dict`.
    init_time, fallback, max_age, now
        See :func:`select_inputs`.

    Returns
    -------
    InputSelection, xarray.DataArray
        The selection and the prepared frames ``(time=T_in, channel=C, y=H, x=W)`` in physical
        units (NaN kept), loaded in memory.
    """
    preparation = metadata if isinstance(metadata, Preparation) else Preparation.from_dict(metadata)
    if preparation.in_frames is None:
        raise ValueError(f"the checkpoint metadata lacks in_frames: {preparation}")
    in_frames = preparation.in_frames
    present = (
        np.asarray(store_ds["frame_present"].values, dtype=bool)
        if "frame_present" in store_ds
        else np.ones(store_ds.sizes[TIME], dtype=bool)
    )
    while True:
        selection = select_inputs(store_ds, in_frames, init_time, present, fallback, max_age, now)
        window = slice(selection.start, selection.start + in_frames)
        # Prepare only the T_in frames of the window: the store may hold years of time steps.
        frames = _prepare(store_ds.isel({TIME: window}), preparation).load()  # (T_in, C, H, W)
        empty = frames.isnull().all([Y, X]).any(CHANNEL).values  # (T_in,) a variable all-NaN
        if not empty.any():
            return selection, frames
        if fallback == "none":
            raise StaleInputError(
                f"cannot forecast from {_iso(selection.init_time)}: input frames all-NaN at "
                f"{_list(selection.times[empty])}; pass fallback='latest-complete' to use older "
                "inputs"
            )
        # Mark the empty frames absent and look further back: reads T_in frames per attempt.
        present = present.copy()
        present[np.arange(window.start, window.stop)[empty]] = False


# ----------------------------------------------------------------------------- run
def run_forecast(
    source: str,
    init_time: str | np.datetime64 | pd.Timestamp | None = None,
    checkpoint: str | os.PathLike[str] | LoadedModel | SimVPMethod | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    lead_times: int | None = None,
    render: bool = True,
    fallback: Fallback = "none",
    render_leads: int = 4,
    max_age: str | pd.Timedelta | None = None,
) -> ForecastResult:
    """Make one forecast of ``source`` and write it to ``DIR/forecasts/<source>.zarr``.

    Parameters
    ----------
    source : str
        Catalog source name (its store is ``DIR/stores/<source>.zarr``).
    init_time : datetime-like or None
        Forecast reference time (UTC); None = the store's newest present frame.
    checkpoint : path, LoadedModel, SimVPMethod or None
        The method (:class:`pipelines.simvp_method.SimVPMethod`), a checkpoint file or an already
        loaded ``LoadedModel`` to wrap as one, or None for the default checkpoint
        (:func:`pipelines.simvp_method.default_checkpoint`: the newest
        ``DIR/models/<source>/**/best.pt``).
    data_dir : path or None
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    lead_times : int or None
        Number of lead times ``L`` (steps of the source's time step); None = the model's
        ``out_frames``. More than ``out_frames`` are rolled out.
    render : bool
        Also write a PNG map and a GIF animation under ``DIR/figures/<source>/``.
    fallback : {"none", "latest-complete"}
        Missing-input policy (see :func:`select_inputs`).
    render_leads : int
        Number of lead-time panels in the PNG.
    max_age : str or pandas.Timedelta, optional
        Refuse inputs older than this relative to the current time (see :func:`select_inputs`).

    Returns
    -------
    ForecastResult
    """
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(stage: str) -> None:
        """Charge the wall and CPU seconds since the previous lap to ``stage``."""
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        cpu_timings[stage] = cpu_timings.get(stage, 0.0) + cpu_now - cpu_clock
        clock, cpu_clock = now, cpu_now

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
    store_ds = xr.open_zarr(store_path, chunks=None)
    step = store_step(store_ds)
    ckpt_step = preparation.time_step
    if ckpt_step and pd.Timedelta(pd.tseries.frequencies.to_offset(ckpt_step)) != step:
        raise ValueError(f"checkpoint time step {ckpt_step!r} differs from the store's {step}")
    selection, frames = read_inputs(store_ds, preparation, init_time, fallback, max_age)
    values = np.asarray(frames.values, dtype=np.float32)  # (T_in, C, H, W)
    lap("read_inputs")

    nan = np.isnan(values)  # (T_in, C, H, W)
    predicted = method.predict(values, n_leads)[None]  # (1, L, C, H, W), NaN inputs filled
    predicted = np.where(nan[-1][None, None], np.nan, predicted)[0]  # (L, C, H, W)
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
        fallback=selection.fallback,
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
    forecast_path = paths.forecast_store(source)
    index = write_forecast(forecast_path, forecast)
    lap("write")

    figures: tuple[str, ...] = ()
    if render:
        from pipelines.render.maps import render_run

        observed = frames.assign_coords(
            latitude=((Y, X), grid.latitude), longitude=((Y, X), grid.longitude)
        )
        figures = render_run(
            forecast.isel(init_time=0),
            observed,
            Path(paths.figures(source)),
            n_panels=render_leads,
            lap=lap,
        )
    logger.info(
        "forecast %s init %s: %d leads to %s (%s)",
        source,
        _iso(selection.init_time),
        n_leads,
        forecast_path,
        ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    )
    return ForecastResult(
        source=source,
        init_time=selection.init_time,
        lead_times=leads,
        store=str(forecast_path),
        index=index,
        checkpoint=method.name,
        figures=figures,
        timings=timings,
        cpu_timings=cpu_timings,
        forecast=forecast,
    )


def _input_preparation(preparation: Preparation, variables: list[str]) -> dict[str, Any]:
    """The forecast store's ``input_preparation``: what :func:`prepare_frames` needs again."""
    return dataclasses.replace(preparation.inputs(), variables=tuple(variables)).to_dict()


def _var_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("units", "standard_name", "long_name")
    return {k: attrs[k] for k in keep if k in attrs}
