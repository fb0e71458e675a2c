"""Animated GIF of one forecast over its lead times (observed inputs first, for context).

One map panel (same projection, basemap and colour scale as :mod:`pipelines.render.maps`); each
frame swaps the image data and the title. Frames are blitted on the Agg canvas (static parts
drawn once) and written with Pillow, which is what matplotlib's ``PillowWriter`` does too, minus
its full-figure redraw per frame.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr
from PIL import Image

from data_catalog.vocabulary import CHANNEL, LEAD_TIME, TIME
from pipelines.render.colours import scale_for
from pipelines.render.maps import (
    _lead_label,
    _utc,
    draw_field,
    forecast_variable,
    map_grid,
    new_figure,
    new_map_axes,
)

logger = logging.getLogger(__name__)

FPS = 2
DPI = 80


def animate_forecast(
    forecast: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    variable: str | None = None,
    observed: xr.DataArray | None = None,
    n_observed: int = 2,
    fps: int = FPS,
) -> Path:
    """Write a GIF: the last ``n_observed`` observed frames, then every lead time.

    Parameters
    ----------
    forecast : xarray.Dataset
        One init time (see :func:`pipelines.render.maps.render_forecast_map`).
    path : path
        GIF to write.
    variable : str, optional
        Variable to animate; default the first forecast variable.
    observed : xarray.DataArray, optional
        Observed inputs ``(time, channel, y, x)``.
    n_observed : int
        Number of observed frames shown before the forecast.
    fps : int
        Frames per second.

    Returns
    -------
    pathlib.Path
    """
    name = variable or forecast_variable(forecast)
    field = forecast[name]  # (lead_time, y, x)
    grid = map_grid(forecast)
    init = forecast["init_time"].values
    frames: list[tuple[np.ndarray, str]] = []
    if observed is not None and n_observed > 0:
        obs = observed.sel({CHANNEL: name}) if CHANNEL in observed.dims else observed
        obs = obs.isel({TIME: slice(-n_observed, None)})
        frames += [
            (obs.values[i], f"observed {_utc(obs[TIME].values[i])}") for i in range(obs.sizes[TIME])
        ]
    values = field.values  # (L, H, W)
    leads = field[LEAD_TIME].values
    frames += [
        (values[i], f"forecast {_lead_label(leads[i])}: valid {_utc(init + leads[i])}")
        for i in range(len(leads))
    ]
    scale = scale_for(field.attrs, np.stack([f for f, _ in frames]))
    aspect = (grid.extent[3] - grid.extent[2]) / (grid.extent[1] - grid.extent[0])
    fig = new_figure(4.6, 4.0 * aspect + 0.7, DPI)
    specs = fig.add_gridspec(1, 1, left=0.02, right=0.8, bottom=0.03, top=0.88)
    ax = new_map_axes(fig, specs[0, 0], grid)
    image = draw_field(ax, frames[0][0], grid, scale)
    title = ax.set_title(frames[0][1], fontsize=8)
    fig.suptitle(f"{forecast.attrs.get('source_name', '')} {name}, init {_utc(init)}", fontsize=9)
    bar = fig.colorbar(image, cax=fig.add_axes((0.83, 0.1, 0.03, 0.7)), extend=scale.extend)
    bar.set_label(scale.label, fontsize=7)
    bar.ax.tick_params(labelsize=6)

    # Blitting: draw the static parts once, then per frame only the image, the basemap lines
    # above it and the title (a full redraw per frame costs ~10x more, mostly tick labels).
    overlays = [a for a in ax.collections if a is not image]  # coastlines, borders
    for artist in (image, title, *overlays):
        artist.set_animated(True)
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    images: list[Image.Image] = []
    for data, text in frames:
        canvas.restore_region(background)
        image.set_data(np.ma.masked_invalid(scale.convert(np.asarray(data, dtype="float64"))))
        title.set_text(text)
        ax.draw_artist(image)
        for artist in overlays:
            ax.draw_artist(artist)
        fig.draw_artist(title)
        rgba = Image.fromarray(np.array(canvas.buffer_rgba()))  # (height, width, 4) uint8
        images.append(
            rgba.quantize(colors=255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    logger.info("wrote animation %s (%d frames)", path, len(frames))
    return path
