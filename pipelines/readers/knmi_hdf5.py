"""KNMI radar composites in the KNMI HDF5 layout (e.g. ``RAD_NL25_RAP_5min``).

Layout (KNMI Data Centre; pysteps' ``import_knmi_hdf5``): ``image1/image_data`` (uint16 pixel
values ``PV``), ``image1/calibration`` with ``calibration_formulas = "GEO=<gain>*PV+<offset>"``
and the no-data values ``calibration_missing_data``/``calibration_out_of_image`` (NaN),
``image1.attrs['image_geo_parameter']`` naming the quantity and its units
(``ACCUMULATED_PRECIPITATION_[MM]`` → mm, ``REFLECTIVITY_[DBZ]`` → dBZ),
``overview.attrs['product_datetime_start'/'product_datetime_end']`` (the frame time is the end,
checked against the file name; the accumulation period is end - start), and
``geographic`` (pixel size, row/column offsets, ``map_projection.projection_proj4_params``).

KNMI writes the projection with the ellipsoid in km (``+a=6378.137``) and offsets in km
(``geo_dim_pixel = KM,KM``); both are taken to metres before comparing with the catalog grid.

Variable ``source``: ``ACRR`` (accumulation; ``mm/h`` multiplies by 60 / period minutes) or
``DBZH`` (reflectivity).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import (
    Frames,
    check_crs,
    check_extent,
    check_name_time,
    check_shape,
    convert_units,
    open_hdf5,
)
from pipelines.readers.limits import read_dataset

#: ``image_geo_parameter`` -> (quantity name in the catalog ``source``, file units).
GEO_PARAMETERS = {
    "ACCUMULATED_PRECIPITATION_[MM]": ("ACRR", "mm"),
    "REFLECTIVITY_[DBZ]": ("DBZH", "dBZ"),
}
_FORMULA = re.compile(r"^GEO\s*=\s*([-+\d.eE]+)\s*\*\s*PV\s*([-+]\s*[\d.eE]+)?\s*$")
_KNMI_TIME = "%d-%b-%Y;%H:%M:%S.%f"


def _text(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _scalar(value: object) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def metres_proj4(proj4: str, km: bool) -> str:
    """KNMI's PROJ string with the ellipsoid axes in metres (KNMI gives them in km)."""
    if not km:
        return proj4

    def scale(match: re.Match[str]) -> str:
        value = float(match.group(2))
        # An ellipsoid axis under 100 (km) cannot be metres: it is the Earth in km.
        return f"+{match.group(1)}={value * 1000 if value < 100_000 else value:g}"

    return re.sub(r"\+(a|b)=([\d.]+)", scale, proj4).replace(" y_0=", " +y_0=")


@register_reader("knmi-hdf5", options=("accumulation_minutes", "zr_a", "zr_b"))
def read_knmi_hdf5(path: str, spec: SourceSpec) -> Frames:
    """Read one KNMI HDF5 composite into one frame (see the module docstring)."""
    with open_hdf5(path) as h5:
        try:
            image = h5["image1"]
            pv = read_dataset(h5, "image1/image_data", spec, path, max_frames=0)
            calib = image["calibration"].attrs
            formula = _text(calib["calibration_formulas"])
            nodata = [
                _scalar(calib[k])
                for k in ("calibration_missing_data", "calibration_out_of_image")
                if k in calib
            ]
            parameter = _text(image.attrs["image_geo_parameter"])
            overview = h5["overview"].attrs
            start = pd.to_datetime(_text(overview["product_datetime_start"]), format=_KNMI_TIME)
            end = pd.to_datetime(_text(overview["product_datetime_end"]), format=_KNMI_TIME)
            geo = h5["geographic"].attrs
            proj4 = _text(h5["geographic/map_projection"].attrs["projection_proj4_params"])
            dim_pixel = _text(geo["geo_dim_pixel"]).split(",")[0].upper()
            size_x, size_y = _scalar(geo["geo_pixel_size_x"]), _scalar(geo["geo_pixel_size_y"])
            col0, row0 = _scalar(geo["geo_column_offset"]), _scalar(geo["geo_row_offset"])
        except (KeyError, OSError) as error:
            raise ValueError(f"{path}: not a KNMI HDF5 composite (missing {error})") from None
        except ValueError as error:
            # the first sentence only: pandas appends format/dayfirst suggestions to bad times
            reason = str(error).split(". You might")[0].split("\n")[0]
            raise ValueError(
                f"{path}: unreadable KNMI metadata: {reason} (times are like "
                "26-AUG-2010;01:00:00.000, UTC)"
            ) from None
    check_shape(pv.shape, spec, path)
    check_name_time(end, spec, path)
    match = _FORMULA.match(formula)
    if match is None:
        raise ValueError(f"{path}: unsupported calibration formula {formula!r} (want GEO=a*PV+b)")
    gain = float(match.group(1))
    offset = float(match.group(2).replace(" ", "")) if match.group(2) else 0.0
    if parameter not in GEO_PARAMETERS:
        raise ValueError(
            f"{path}: unknown units for image_geo_parameter {parameter!r}; known: "
            f"{sorted(GEO_PARAMETERS)}"
        )
    quantity, units = GEO_PARAMETERS[parameter]
    if dim_pixel not in ("KM", "M"):
        raise ValueError(f"{path}: unknown pixel units {dim_pixel!r}; allowed: KM, M")
    to_m = 1000.0 if dim_pixel == "KM" else 1.0
    check_crs(metres_proj4(proj4, dim_pixel == "KM"), spec, path)
    ny, nx = pv.shape
    ys = sorted([row0 * size_y * to_m, (row0 + ny) * size_y * to_m])
    check_extent((col0 * size_x * to_m, (col0 + nx) * size_x * to_m, *ys), spec, path)
    decoded = np.where(np.isin(pv, nodata), np.nan, gain * pv.astype(np.float64) + offset)
    minutes = (end - start) / pd.Timedelta(minutes=1)
    given = spec.reader_options.accumulation_minutes
    if given is not None and float(given) != minutes:
        raise ValueError(
            f"{path}: accumulation period {minutes:g} min (from {start} to {end}) != "
            f"reader_options.accumulation_minutes {given}"
        )
    options = replace(spec.reader_options, accumulation_minutes=minutes)
    data, notes = {}, {}
    for var in spec.variables:
        if var.source != quantity:
            raise ValueError(
                f"{path}: holds {quantity} ({parameter}), not the quantity {var.source!r} of "
                f"variable {var.name!r}; allowed: {[q for q, _ in GEO_PARAMETERS.values()]}"
            )
        values, note = convert_units(decoded, units, var, path, options)
        data[var.name] = values[np.newaxis]  # (1, H, W)
        notes[var.name] = f"KNMI {formula}; {note}"
    return Frames(path, np.array([end.to_datetime64()], dtype="datetime64[ns]"), data, notes)
