"""Draw the maps of a forecast: the PNG per variable and its GIF over lead times.

Forecasting does not draw (:mod:`pipelines.forecast.run`); the caller does, with
:func:`render_forecast` on a fresh :class:`~pipelines.forecast.run.ForecastResult` (the CLI's
``nowcast forecast`` and the forecast flow) or :func:`render_run` on a stored forecast
(``nowcast render``, :mod:`pipelines.render.stored`). This module sits above
:mod:`pipelines.render.maps` and :mod:`pipelines.render.animation`, which no longer import each
other.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import xarray as xr

from data_catalog.paths import DataDir
from pipelines.forecast.run import ForecastResult, StageTimer
from pipelines.render.animation import animate_forecast
from pipelines.render.maps import figure_stem, forecast_variables, render_forecast_map

__all__ = ["render_forecast", "render_run"]


def render_run(
    forecast: xr.Dataset,
    observed: xr.DataArray | None,
    out_dir: str | os.PathLike[str],
    *,
    n_panels: int = 4,
    variables: Sequence[str] | None = None,
    animate: bool = True,
    lap: Callable[[str], None] | None = None,
) -> tuple[str, ...]:
    """PNG map (and GIF over lead times) per variable (default: all) of one forecast.

    ``lap``, if given, is called with ``"render_png"`` after each map and ``"render_gif"`` after
    each animation (the caller's stage timer).

    Returns
    -------
    tuple of str
        Written paths: ``<stem>.png`` and ``<stem>.gif`` per variable (see :func:`figure_stem`).
    """
    out = Path(out_dir)
    written: list[str] = []
    names = list(variables) if variables is not None else forecast_variables(forecast)
    for name in names:
        stem = figure_stem(forecast, name)
        written.append(
            str(
                render_forecast_map(
                    forecast,
                    out / f"{stem}.png",
                    variable=name,
                    observed=observed,
                    n_panels=n_panels,
                )
            )
        )
        if lap is not None:
            lap("render_png")
        if animate:
            gif = animate_forecast(forecast, out / f"{stem}.gif", variable=name, observed=observed)
            written.append(str(gif))
            if lap is not None:
                lap("render_gif")
    return tuple(written)


def render_forecast(
    result: ForecastResult,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    n_panels: int = 4,
) -> ForecastResult:
    """Draw the maps of a fresh forecast under ``DIR/figures/<source>/``.

    Parameters
    ----------
    result : ForecastResult
        From :func:`pipelines.forecast.run.run_forecast` (with its ``forecast`` and ``inputs``).
    data_dir : path or None
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    n_panels : int
        Number of lead-time panels in the PNG.

    Returns
    -------
    ForecastResult
        ``result`` with ``figures`` set and ``render_png``/``render_gif`` added to its timings.
    """
    if result.forecast is None:
        raise ValueError(f"the forecast of {result.source} at {result.init_time} is not in memory")
    timer = StageTimer(dict(result.timings), dict(result.cpu_timings))
    figures = render_run(
        result.forecast.isel(init_time=0),
        result.inputs,
        Path(DataDir.resolve(data_dir).figures(result.source)),
        n_panels=n_panels,
        lap=timer.lap,
    )
    return dataclasses.replace(
        result, figures=figures, timings=timer.timings, cpu_timings=timer.cpu_timings
    )
