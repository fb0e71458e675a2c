"""Coastlines and land borders from the Natural Earth 110m files shipped with the package.

:func:`configure_offline` sets cartopy's ``pre_existing_data_dir`` to
``pipelines/render/natural_earth`` (cartopy looks there before its download directory), so the
two features used by the maps never trigger a download. Only the 110m scale is shipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cartopy
import cartopy.feature as cfeature

logger = logging.getLogger(__name__)

NATURAL_EARTH_DIR = Path(__file__).resolve().parent / "natural_earth"
"""Root in cartopy's layout: ``shapefiles/natural_earth/{physical,cultural}/ne_110m_*.shp``."""
SCALE = "110m"
COASTLINE_COLOUR = "#000000"
BORDER_COLOUR = "#4d4d4d"


def configure_offline() -> Path:
    """Point cartopy at the shipped shapefiles; return that directory."""
    current = cartopy.config.get("pre_existing_data_dir")
    if str(current) != str(NATURAL_EARTH_DIR):
        logger.debug("cartopy pre_existing_data_dir: %s -> %s", current, NATURAL_EARTH_DIR)
        cartopy.config["pre_existing_data_dir"] = str(NATURAL_EARTH_DIR)
    return NATURAL_EARTH_DIR


def coastline() -> cfeature.NaturalEarthFeature:
    """110m coastline feature (black lines, no fill)."""
    configure_offline()
    return cfeature.NaturalEarthFeature(
        "physical", "coastline", SCALE, edgecolor=COASTLINE_COLOUR, facecolor="none"
    )


def borders() -> cfeature.NaturalEarthFeature:
    """110m land borders between countries (grey dashed lines)."""
    configure_offline()
    return cfeature.NaturalEarthFeature(
        "cultural", "admin_0_boundary_lines_land", SCALE, edgecolor=BORDER_COLOUR, facecolor="none"
    )


def add_basemap(ax: Any, linewidth: float = 0.8) -> None:
    """Draw coastlines and borders on a cartopy ``GeoAxes``."""
    ax.add_feature(coastline(), linewidth=linewidth, zorder=3)
    ax.add_feature(borders(), linewidth=linewidth * 0.8, linestyle="--", zorder=3)
