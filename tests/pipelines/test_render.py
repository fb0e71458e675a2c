"""Offline cartopy maps: pixels of the PNG, colour scales, GIF, ``nowcast render``."""

from __future__ import annotations

import warnings

import cartopy
import cartopy.io
import matplotlib.colors as mcolors
import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.forecast.run import run_forecast
from pipelines.method.simvp import SimVPMethod
from pipelines.render import basemap, maps
from pipelines.render.colours import COLOUR_SCALES, kind_for, scale_for
from pipelines.render.run import render_forecast
from pipelines.render.stored import load_stored_forecast, stored_inputs
from tests.pipelines.forecast_helpers import FakeLoaded, fake_predict, obs_store

pytestmark = pytest.mark.timeout(60)
SOURCE = "synthetic"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Any cartopy download is an error; cartopy's own data dir is empty."""
    monkeypatch.setitem(cartopy.config, "data_dir", str(tmp_path / "empty-cartopy-data"))
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", "")
    with warnings.catch_warnings():
        warnings.simplefilter("error", cartopy.io.DownloadWarning)
        yield


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A forecast of the synthetic store (lead k = last frame + k), rendered offline once."""
    data_dir = tmp_path_factory.mktemp("render")
    obs_store(data_dir / "stores" / f"{SOURCE}.zarr")
    figures = []

    def recording_figure(*args, **kwargs):  # keep the PNG's figure to locate its map panels
        fig = real_new_figure(*args, **kwargs)
        figures.append(fig)
        return fig

    real_new_figure = maps.new_figure
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("error", cartopy.io.DownloadWarning)
        patch.setitem(cartopy.config, "data_dir", str(data_dir / "empty-cartopy-data"))
        patch.setitem(cartopy.config, "pre_existing_data_dir", "")
        patch.setattr(maps, "new_figure", recording_figure)
        method = SimVPMethod.from_loaded(FakeLoaded(), fake_predict)
        result = render_forecast(
            run_forecast(SOURCE, data_dir=data_dir, checkpoint=method), data_dir
        )
        yield data_dir, result, figures[0]


def _panel_pixels(image: np.ndarray, fig, ax, inset: int = 4) -> np.ndarray:
    """RGB pixels inside a map panel (minus its frame)."""
    box = ax.get_window_extent()
    height = image.shape[0]
    x0, x1 = int(box.x0) + inset, int(box.x1) - inset
    y0, y1 = height - int(box.y1) + inset, height - int(box.y0) - inset
    return image[y0:y1, x0:x1, :3]


def _count_colour(pixels: np.ndarray, colour: str, tol: int = 6) -> int:
    rgb = np.array(mcolors.to_rgb(colour)) * 255
    return int((np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tol).sum())


def test_png_shows_coastlines_and_data_colours(forecast_run):
    _, result, fig = forecast_run
    png, gif = result.figures
    assert png.endswith("synthetic_precipitation_rate_20210601T1255Z.png")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 600
    map_axes = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(map_axes) == 6  # 3 leads (out_frames) + as many latest observed frames
    scale = scale_for({"units": "mm/h", "standard_name": "rainfall_rate"})
    for ax in map_axes:
        pixels = _panel_pixels(image, fig, ax)
        # coastlines/borders: dark line pixels inside the map (no text is drawn there)
        dark = (pixels.max(axis=-1) < 90).sum()
        assert dark > 100, f"no coastline pixels in panel {ax.get_title()!r}"
        # the blob's colour: observed 9..12 mm/h and forecast 13..15 mm/h fall in 10-20 mm/h
        blob = mcolors.to_hex(scale.colours(np.array(12.0)))
        assert _count_colour(pixels, blob) > 100, ax.get_title()
    # background (0 mm/h observed) is transparent → white; forecast 1..3 mm/h is coloured
    observed = _panel_pixels(image, fig, map_axes[0])
    assert _count_colour(observed, "#ffffff") > 0.3 * observed.shape[0] * observed.shape[1]
    lead1 = [ax for ax in map_axes if ax.get_title().startswith("+5 min")][0]
    ring = mcolors.to_hex(scale.colours(np.array(1.0)))  # lead 1 outside the blob: 0 + 1
    assert _count_colour(_panel_pixels(image, fig, lead1), ring) > 200
    assert "valid 2021-06-01 13:00 UTC" in lead1.get_title()
    assert "init 2021-06-01 12:55 UTC" in fig.texts[0].get_text()
    # the GIF: the last 2 observed frames, then one frame per lead
    with Image.open(gif) as animation:
        assert animation.n_frames == 2 + 3


def test_basemap_points_cartopy_at_shipped_files(offline):
    root = basemap.configure_offline()
    assert cartopy.config["pre_existing_data_dir"] == str(root)
    for part in (
        "physical/ne_110m_coastline",
        "cultural/ne_110m_admin_0_boundary_lines_land",
    ):
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            assert (root / "shapefiles" / "natural_earth" / f"{part}{ext}").is_file()
    geometries = list(basemap.coastline().geometries())
    assert len(geometries) > 100  # read from the shipped file, no download (would raise)


def test_colour_scales_pinned():
    assert kind_for({"standard_name": "air_temperature", "units": "mm/h"}) == "temperature"
    assert kind_for({"units": "mm/h"}) == "precipitation"
    assert kind_for({"units": "count"}) == "counts"
    assert kind_for({"units": "furlong"}) == "generic"
    rate = scale_for({"units": "mm/h"})
    assert rate.colours(np.array(0.05))[3] == 0.0  # below 0.1 mm/h: transparent
    assert mcolors.to_hex(rate.colours(np.array(0.3))) == "#4292c6"  # 0.2-0.5 bin
    assert mcolors.to_hex(rate.colours(np.array(150.0))) == "#cc4c02"  # above 100: "over"
    flux = scale_for({"units": "kg m-2 s-1"})  # 1/3600 kg m-2 s-1 = 1 mm/h
    assert mcolors.to_hex(flux.colours(np.array(1.5 / 3600))) == "#41ab5d"  # 1-2 mm/h
    kelvin = scale_for({"units": "K"}, np.array([263.15, 293.15]))
    assert kelvin.convert(np.array(273.15)) == pytest.approx(0.0)
    assert kelvin.norm.boundaries[0] == -10.0 and kelvin.norm.boundaries[-1] == 20.0
    counts = scale_for({"units": "count"}, np.array([0.0, 37.0]))
    assert list(counts.norm.boundaries) == [1, 2, 5, 10, 20, 50]
    assert counts.colours(np.array(0.0))[3] == 0.0  # zero counts transparent
    with pytest.raises(ValueError, match="precipitation units"):
        COLOUR_SCALES.get("precipitation")("in/h", np.array([]))
    with pytest.raises(ValueError, match="valid names"):
        COLOUR_SCALES.get("rainbow")


def test_render_cli_rerenders_from_store(forecast_run, offline, tmp_path, capsys):
    data_dir, _, _ = forecast_run
    out = tmp_path / "rerendered"
    rc = main(
        ["render", "--source", SOURCE, "--init-time", "2021-06-01T12:55", "--data-dir",
         str(data_dir), "--out-dir", str(out), "--no-animation", "--panels", "2"]
    )  # fmt: skip
    assert rc == 0
    (png,) = out.glob("*.png")
    assert f"figure: {png}" in capsys.readouterr().out
    image = np.asarray(Image.open(png).convert("RGB"))
    blob = mcolors.to_hex(scale_for({"units": "mm/h"}).colours(np.array(12.0)))
    assert _count_colour(image, blob) > 400  # observed inputs re-read + 2 lead panels
    # the observed context frames are re-read from the observation store
    stored = load_stored_forecast(SOURCE, "2021-06-01T12:55", data_dir)
    observed = stored_inputs(stored, data_dir)
    assert observed.sizes["time"] == 4
    assert observed.sel(channel="precipitation_rate").values[:, 16, 16].tolist() == [9, 10, 11, 12]
    rc = main(["render", "--source", SOURCE, "--init-time", "2021-06-01T11:00", "--data-dir",
               str(data_dir)])  # fmt: skip
    assert rc == 2
    assert "no complete forecast for init time" in capsys.readouterr().err
