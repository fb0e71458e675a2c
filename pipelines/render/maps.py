"""Cartopy maps of one forecast: observed input frames for context, then chosen lead times.

Inputs are one init time of the forecast store (:func:`pipelines.forecast.store.build_forecast`
layout, ``init_time`` selected away: variables ``(lead_time, y, x)`` or
``(lead_time, latitude, longitude)``, a ``crs`` variable or coordinate) and, optionally, the
observed input frames ``(time, channel, y, x)`` on the same grid. Maps are drawn in the data's
own projection (no resampling: ``imshow`` of the pixel grid), with coastlines and borders from
the shipped Natural Earth files (:mod:`pipelines.render.basemap`), the colour scale of the
variable (:mod:`pipelines.render.colours`) and UTC init/valid times in the titles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cartopy.crs as ccrs
import numpy as np
import pandas as pd
import pyproj
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_catalog.vocabulary import CHANNEL, CRS, LATITUDE, LEAD_TIME, LONGITUDE, TIME, X, Y
from pipelines.render.basemap import add_basemap
from pipelines.render.colours import ColourScale, scale_for

logger = logging.getLogger(__name__)

_PAD = 0.25  # projection bounds: data extent padded by this fraction on each side
DPI = 100


@dataclass(frozen=True)
class MapGrid:
    """Geometry of a field for plotting.

    Parameters
    ----------
    projection : cartopy.crs.CRS
        Projection of the pixel grid (also used as the map projection).
    extent : tuple of 4 float
        ``(x0, x1, y0, y1)`` outer pixel edges in ``projection`` units.
    origin : str
        ``"upper"`` when row 0 is the largest ``y`` (north-up), else ``"lower"``.
    """

    projection: ccrs.CRS
    extent: tuple[float, float, float, float]
    origin: str


class _GridProjection(ccrs.Projection):
    """A projected CRS whose map bounds are the data extent (padded), for any pyproj CRS."""

    def __init__(self, crs: pyproj.CRS, bounds: tuple[float, float, float, float]) -> None:
        super().__init__(crs)
        self.bounds = bounds
        self.threshold = min(bounds[1] - bounds[0], bounds[3] - bounds[2]) / 100.0


def map_grid(ds: xr.Dataset | xr.DataArray) -> MapGrid:
    """:class:`MapGrid` of a forecast or observation with a ``crs`` variable/coordinate."""
    if CRS not in ds.coords and CRS not in getattr(ds, "data_vars", {}):
        raise ValueError("cannot draw a map without a 'crs' grid-mapping variable")
    crs = pyproj.CRS.from_cf(dict(ds[CRS].attrs))
    ydim, xdim = (LATITUDE, LONGITUDE) if LATITUDE in ds.dims else (Y, X)
    y = np.asarray(ds[ydim].values, dtype="float64")
    x = np.asarray(ds[xdim].values, dtype="float64")
    if y.size < 2 or x.size < 2:
        raise ValueError(f"need at least 2x2 pixels to draw a map, got {y.size}x{x.size}")
    dy, dx = abs(y[1] - y[0]), abs(x[1] - x[0])
    x0, x1 = x.min() - dx / 2, x.max() + dx / 2
    y0, y1 = y.min() - dy / 2, y.max() + dy / 2
    if crs.is_geographic:
        projection: ccrs.CRS = ccrs.PlateCarree()
    else:
        px, py = (x1 - x0) * _PAD, (y1 - y0) * _PAD
        projection = _GridProjection(crs, (x0 - px, x1 + px, y0 - py, y1 + py))
    return MapGrid(projection, (x0, x1, y0, y1), "upper" if y[0] > y[-1] else "lower")


def _utc(t: np.datetime64 | pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M UTC")


def _lead_label(lead: np.timedelta64) -> str:
    minutes = int(pd.Timedelta(lead) / pd.Timedelta("1min"))
    return f"+{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"+{minutes} min"


def choose_leads(n_leads: int, n_panels: int) -> list[int]:
    """Indices of ``n_panels`` lead times spread evenly, always including the last one."""
    if n_panels >= n_leads:
        return list(range(n_leads))
    picks = np.linspace(n_leads / n_panels - 1, n_leads - 1, n_panels)
    return sorted({int(round(p)) for p in picks})


def draw_field(ax: object, values: np.ndarray, grid: MapGrid, scale: ColourScale) -> object:
    """``imshow`` a ``(H, W)`` field in the variable's units on a map axes; returns the image."""
    display = scale.convert(np.asarray(values, dtype="float64"))
    masked = np.ma.masked_invalid(display)
    image = ax.imshow(  # type: ignore[attr-defined]
        masked,
        extent=grid.extent,
        origin=grid.origin,
        transform=grid.projection,
        colorizer=scale.colorizer,  # one shared cmap/norm for all panels (cheap to attach)
        interpolation="nearest",
        zorder=2,
    )
    return image


def new_figure(width: float, height: float, dpi: int) -> Figure:
    """An Agg-backed figure independent of pyplot (no global state, no window, thread-safe)."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def new_map_axes(fig: Figure, spec: object, grid: MapGrid) -> object:
    """A ``GeoAxes`` in the grid's projection with the data extent, coastlines and borders."""
    ax = fig.add_subplot(spec, projection=grid.projection)
    ax.set_extent(grid.extent, crs=grid.projection)
    add_basemap(ax)
    return ax


def render_forecast_map(
    forecast: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    variable: str | None = None,
    observed: xr.DataArray | None = None,
    lead_indices: Sequence[int] | None = None,
    n_panels: int = 4,
    n_observed: int | None = None,
) -> Path:
    """Write a PNG: observed inputs (top row) and forecast lead times (bottom row).

    Parameters
    ----------
    forecast : xarray.Dataset
        One init time: ``variable(lead_time, y, x)``, coords ``init_time`` (scalar),
        ``lead_time``, ``valid_time`` and ``crs``.
    path : path
        PNG to write (parents created).
    variable : str, optional
        Variable to draw; default the first float variable with a ``lead_time`` dim.
    observed : xarray.DataArray, optional
        Observed inputs ``(time, channel, y, x)`` on the same grid (physical units).
    lead_indices : sequence of int, optional
        Lead-time indices to draw; default :func:`choose_leads` with ``n_panels``.
    n_panels : int
        Number of lead panels when ``lead_indices`` is None.
    n_observed : int, optional
        Number of most recent observed frames shown (default: as many as lead panels).

    Returns
    -------
    pathlib.Path
    """
    name = variable or forecast_variable(forecast)
    field = forecast[name]  # (lead_time, y, x)
    grid = map_grid(forecast)
    leads = (
        list(lead_indices)
        if lead_indices is not None
        else choose_leads(field.sizes[LEAD_TIME], n_panels)
    )
    obs = None
    n_observed = len(leads) if n_observed is None else n_observed
    if observed is not None and n_observed > 0:
        obs = observed.sel({CHANNEL: name}) if CHANNEL in observed.dims else observed
        obs = obs.isel({TIME: slice(-n_observed, None)})  # (n_obs, y, x)
    field_values = field.isel({LEAD_TIME: leads}).values  # (n_leads, H, W)
    sample = field_values if obs is None else np.concatenate([obs.values, field_values])
    scale = scale_for(field.attrs, sample)
    init = forecast["init_time"].values

    n_rows = 1 if obs is None else 2
    n_cols = max(len(leads), 0 if obs is None else obs.sizes[TIME])
    H, W = field.shape[-2:]
    aspect = (grid.extent[3] - grid.extent[2]) / (grid.extent[1] - grid.extent[0])
    panel = 3.0
    fig = new_figure(panel * n_cols + 1.0, panel * aspect * n_rows + 0.9, DPI)
    specs = fig.add_gridspec(n_rows, n_cols, left=0.02, right=0.88, bottom=0.03, top=0.86)
    image = None
    if obs is not None:
        for col in range(obs.sizes[TIME]):
            ax = new_map_axes(fig, specs[0, col], grid)
            image = draw_field(ax, obs.values[col], grid, scale)
            ax.set_title(f"observed {_utc(obs[TIME].values[col])}", fontsize=8)
    for col, lead in enumerate(leads):
        ax = new_map_axes(fig, specs[n_rows - 1, col], grid)
        image = draw_field(ax, field_values[col], grid, scale)
        valid = init + field[LEAD_TIME].values[lead]
        ax.set_title(
            f"{_lead_label(field[LEAD_TIME].values[lead])}: valid {_utc(valid)}", fontsize=8
        )
    source = forecast.attrs.get("source_name", "")
    fig.suptitle(f"{source} {name} — SimVP forecast, init {_utc(init)}", fontsize=10)
    cax = fig.add_axes((0.9, 0.1, 0.02, 0.7))
    bar = fig.colorbar(image, cax=cax, extend=scale.extend)
    bar.set_label(scale.label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    logger.info("wrote map %s (%dx%d grid, %d leads)", path, H, W, len(leads))
    return path


def forecast_variables(forecast: xr.Dataset) -> list[str]:
    """The floating-point data variables with a ``lead_time`` dim, in order."""
    names = [
        str(name)
        for name, var in forecast.data_vars.items()
        if LEAD_TIME in var.dims and np.issubdtype(var.dtype, np.floating)
    ]
    if not names:
        raise ValueError(f"no forecast variable with a lead_time dim in {list(forecast.data_vars)}")
    return names


def forecast_variable(forecast: xr.Dataset) -> str:
    """First floating-point data variable with a ``lead_time`` dim."""
    return forecast_variables(forecast)[0]


def figure_stem(forecast: xr.Dataset, variable: str) -> str:
    """``<source>_<variable>_<init %Y%m%dT%H%MZ>``."""
    init = pd.Timestamp(forecast["init_time"].values).strftime("%Y%m%dT%H%MZ")
    return f"{forecast.attrs.get('source_name', 'forecast')}_{variable}_{init}"
