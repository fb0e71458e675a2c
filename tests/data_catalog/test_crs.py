"""CF grid-mapping attributes without pyproj's expected warning; short CRS names for messages."""

from __future__ import annotations

import warnings

import pyproj

from data_catalog.crs import cf_grid_mapping, crs_label
from pipelines.forecast.store import crs_attrs

SWISS = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs"
)


def test_oblique_projection_to_cf_is_quiet_and_lossless():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pyproj's "angle from rectified to skew grid" warning
        attrs = cf_grid_mapping(SWISS)
        forecast_attrs = crs_attrs(pyproj.CRS(SWISS))  # the forecast store's crs variable
    assert pyproj.CRS.from_cf(attrs).equals(pyproj.CRS(SWISS))
    assert forecast_attrs["spatial_ref"] == forecast_attrs["crs_wkt"]


def test_crs_label_is_short():
    wkt = pyproj.CRS.from_cf(cf_grid_mapping(SWISS))  # no authority: to_string() is a WKT
    assert len(wkt.to_string()) > 1000
    assert crs_label(wkt).startswith("+proj=somerc") and len(crs_label(wkt)) <= 200
    assert crs_label(pyproj.CRS(4326).to_wkt()) == "EPSG:4326"
    assert crs_label("EPSG:3035") == "EPSG:3035"
