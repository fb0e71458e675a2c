"""Generic ODIM_H5 Cartesian products (``IMAGE``/``COMP``), the European radar standard.

Follows the OPERA Data Information Model for HDF5 (ODIM_H5 v2.x):

- root attr ``Conventions`` starts with ``ODIM_H5``; ``/what`` holds ``object``, nominal
  ``date``/``time`` (the frame time, UTC, checked against the file name);
- ``/where`` (or ``/dataset{n}/where``, which overrides it) holds ``projdef`` (PROJ string),
  ``xsize``, ``ysize``, ``xscale``, ``yscale`` (m) and the outer corner lon/lat
  ``LL_/UL_/UR_/LR_lon|lat``; row 0 is the upper (northern) row;
- ``/dataset{n}/data{m}/data`` holds raw values; ``quantity``, ``gain``, ``offset``, ``nodata``,
  ``undetect`` come from ``/dataset{n}/data{m}/what``, inheriting from ``/dataset{n}/what`` and
  ``/what`` (lower levels override higher ones). Absent ``gain``/``offset`` mean 1 and 0.
- physical value = ``raw * gain + offset``; ``nodata`` → NaN; ``undetect`` (measured, no echo)
  → 0 for rain quantities and ``reader_options.undetect_dbz`` (default -30 dBZ, as pysteps) for
  reflectivity. ``ACRR`` accumulates over ``startdate/starttime`` → ``enddate/endtime`` of the
  dataset (or ``reader_options.accumulation_minutes``).

Variable ``source``: an ODIM quantity, ``RATE`` (mm/h), ``ACRR`` (mm), ``DBZH``/``DBZV``/``TH``/
``TV`` (dBZ). ``reader_options.dataset`` (e.g. ``dataset2``) picks one dataset when several
hold the quantity. pysteps' ``import_odim_hdf5`` served as a reference (same
gain/offset/nodata/undetect rule); it is not called because it returns no time, ignores ``/what``
inheritance above the dataset and does not check the grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import h5py
import numpy as np
import pandas as pd
import pyproj

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import (
    DEFAULT_UNDETECT_DBZ,
    Frames,
    check_crs,
    check_extent,
    check_name_time,
    check_shape,
    convert_units,
    open_hdf5,
)
from pipelines.readers.limits import read_dataset

#: ODIM quantity -> units of its physical values.
QUANTITY_UNITS = {
    "RATE": "mm/h",
    "ACRR": "mm",
    "DBZH": "dBZ",
    "DBZV": "dBZ",
    "TH": "dBZ",
    "TV": "dBZ",
}


def _text(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode().strip() if isinstance(value, bytes) else str(value).strip()


def _lookup(groups: list[h5py.AttributeManager], key: str) -> object | None:
    """The first of ``groups`` (lowest level first) holding attr ``key``."""
    for attrs in groups:
        if key in attrs:
            return attrs[key]
    return None


def _attrs(h5: h5py.File, name: str) -> h5py.AttributeManager | Mapping[str, object]:
    return h5[name].attrs if name in h5 else {}


def _time(date: object, time: object, path: str, what: str) -> pd.Timestamp:
    try:
        return pd.to_datetime(_text(date) + _text(time), format="%Y%m%d%H%M%S")
    except (ValueError, OverflowError):  # pandas' own text suggests format/dayfirst options
        raise ValueError(
            f"{path}: bad ODIM {what} date/time {_text(date)!r} {_text(time)!r}; expected "
            "date YYYYMMDD and time HHMMSS (UTC)"
        ) from None


def _find_quantity(h5: h5py.File, quantity: str, path: str, dataset: str | None) -> str:
    """Path of the ``data{m}`` group holding ``quantity``; ``ValueError`` if none or ambiguous."""
    found, seen = [], set()
    for ds_name in sorted(k for k in h5 if k.startswith("dataset")):
        if dataset is not None and ds_name != dataset:
            continue
        for d_name in sorted(k for k in h5[ds_name] if k.startswith("data")):
            group = f"{ds_name}/{d_name}"
            q = _lookup([_attrs(h5, f"{group}/what"), _attrs(h5, f"{ds_name}/what"),
                         _attrs(h5, "what")], "quantity")  # fmt: skip
            if q is not None:
                seen.add(_text(q))
                if _text(q) == quantity:
                    found.append(group)
    if not found:
        raise ValueError(
            f"{path}: no dataset holds quantity {quantity!r}; the file has {sorted(seen)}"
        )
    if len(found) > 1:
        raise ValueError(
            f"{path}: quantity {quantity!r} is in {found}; set reader_options.dataset to one"
        )
    return found[0]


def _decode(
    h5: h5py.File, group: str, quantity: str, spec: SourceSpec, path: str
) -> tuple[np.ndarray, np.ndarray]:
    """Physical values ``(H, W)`` float64 of ``group`` (gain/offset/nodata/undetect applied)
    and the raw values they come from (the dataset's shape and dtype checked before reading)."""
    options = spec.reader_options
    ds_name = group.split("/")[0]
    levels = [_attrs(h5, f"{group}/what"), _attrs(h5, f"{ds_name}/what"), _attrs(h5, "what")]
    gain = float(
        np.asarray(_lookup(levels, "gain") if _lookup(levels, "gain") is not None else 1.0)
    )
    offset = _lookup(levels, "offset")
    offset = float(np.asarray(offset)) if offset is not None else 0.0
    if not (np.isfinite(gain) and np.isfinite(offset)) or gain == 0:
        raise ValueError(
            f"{path}: ODIM {group} has gain {gain} and offset {offset}; calibration needs a "
            "finite non-zero gain and a finite offset (a bad calibration would give a frame "
            "without any value)"
        )
    nodata, undetect = _lookup(levels, "nodata"), _lookup(levels, "undetect")
    raw = read_dataset(h5, f"{group}/data", spec, path, max_frames=0)
    values = raw.astype(np.float64) * gain + offset
    if undetect is not None:
        undetect_mask = raw == np.asarray(undetect).astype(raw.dtype)
        fill = (
            (DEFAULT_UNDETECT_DBZ if options.undetect_dbz is None else float(options.undetect_dbz))
            if QUANTITY_UNITS[quantity] == "dBZ"
            else 0.0
        )
        values[undetect_mask] = fill
    if nodata is not None:
        values[raw == np.asarray(nodata).astype(raw.dtype)] = np.nan
    values[~np.isfinite(raw)] = np.nan  # float data may carry NaN for no data itself
    return values, raw


@register_reader(
    "odim-h5", options=("accumulation_minutes", "zr_a", "zr_b", "undetect_dbz", "dataset")
)
def read_odim_h5(path: str, spec: SourceSpec) -> Frames:
    """Read one ODIM_H5 Cartesian file into one frame (see the module docstring)."""
    options = spec.reader_options
    with open_hdf5(path) as h5:
        conventions = _text(h5.attrs.get("Conventions", b""))
        if not conventions.startswith("ODIM_H5"):
            raise ValueError(f"{path}: not ODIM_H5 (Conventions = {conventions!r})")
        root_what = _attrs(h5, "what")
        if "date" not in root_what or "time" not in root_what:
            raise ValueError(f"{path}: ODIM /what lacks the nominal date/time")
        time = _time(root_what["date"], root_what["time"], path, "nominal")
        data, notes = {}, {}
        for var in spec.variables:
            quantity = var.source
            if quantity not in QUANTITY_UNITS:
                raise ValueError(
                    f"{path}: unknown units for ODIM quantity {quantity!r}; known: "
                    f"{sorted(QUANTITY_UNITS)}"
                )
            group = _find_quantity(h5, quantity, path, options.dataset)
            ds_name = group.split("/")[0]
            where = [_attrs(h5, f"{ds_name}/where"), _attrs(h5, "where")]
            projdef = _lookup(where, "projdef")
            if projdef is None:
                raise ValueError(f"{path}: ODIM where has no projdef")
            values, raw_data = _decode(h5, group, quantity, spec, path)
            check_shape(values.shape, spec, path)
            _check_geometry(where, _text(projdef), values.shape, spec, path)
            opts = options
            if quantity == "ACRR" and opts.accumulation_minutes is None:
                ds_what = _attrs(h5, f"{ds_name}/what")
                keys = ("startdate", "starttime", "enddate", "endtime")
                if not all(k in ds_what for k in keys):
                    raise ValueError(f"{path}: ACRR without start/end times in {ds_name}/what")
                start = _time(ds_what["startdate"], ds_what["starttime"], path, "start")
                end = _time(ds_what["enddate"], ds_what["endtime"], path, "end")
                opts = replace(opts, accumulation_minutes=(end - start) / pd.Timedelta(minutes=1))
            converted, note = convert_units(values, QUANTITY_UNITS[quantity], var, path, opts)
            if QUANTITY_UNITS[quantity] == "dBZ" and var.units != "dBZ":
                undetect = _lookup([_attrs(h5, f"{group}/what"), _attrs(h5, f"{ds_name}/what"),
                                    _attrs(h5, "what")], "undetect")  # fmt: skip
                if undetect is not None:  # no echo is no rain, whatever the Z-R relation says
                    converted[raw_data == np.asarray(undetect).astype(raw_data.dtype)] = 0.0
            data[var.name] = converted[np.newaxis]  # (1, H, W)
            notes[var.name] = f"ODIM {group} {quantity}: raw * gain + offset; {note}"
    check_name_time(time, spec, path)
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), data, notes)


def _check_geometry(
    where: list, projdef: str, shape: tuple[int, ...], spec: SourceSpec, path: str
) -> None:
    """Compare the ODIM projection, sizes, scales and corners with the catalog grid."""
    check_crs(projdef, spec, path)
    for key, n in (("xsize", shape[1]), ("ysize", shape[0])):
        size = _lookup(where, key)
        if size is not None and int(np.asarray(size)) != n:
            raise ValueError(f"{path}: ODIM {key} = {int(np.asarray(size))} but data has {n}")
    dy, dx = spec.grid.pixel_size
    for key, expected in (("xscale", dx), ("yscale", dy)):
        scale = _lookup(where, key)
        if scale is not None and abs(float(np.asarray(scale)) - expected) > 1e-3 * expected:
            raise ValueError(
                f"{path}: ODIM {key} = {float(np.asarray(scale))} != {expected} of source "
                f"{spec.name!r}"
            )
    corners = {}
    for corner in ("LL", "UL", "UR", "LR"):
        lon, lat = _lookup(where, f"{corner}_lon"), _lookup(where, f"{corner}_lat")
        if lon is not None and lat is not None:
            corners[corner] = (float(np.asarray(lon)), float(np.asarray(lat)))
    if {"LL", "UR"} <= set(corners):
        proj = pyproj.Proj(projdef)
        xy = {k: proj(*v) for k, v in corners.items()}
        xs = [xy[k][0] for k in xy]
        ys = [xy[k][1] for k in xy]
        check_extent((min(xs), max(xs), min(ys), max(ys)), spec, path)
