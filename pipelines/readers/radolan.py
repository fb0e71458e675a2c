"""DWD RADOLAN composites: binary products (``RW``, ``RY``, ``YW``, ``RV``, ``RX``...) and the
ESRI ASCII-grid exports, on the RADOLAN polar-stereographic grid.

Decoded after the DWD format description "RADOLAN/RADVOR: Beschreibung des Kompositformats"
(v2.4/2.5), with wradlib's ``read_radolan_composite`` as a cross-check (not a dependency).

Binary products
---------------
An ASCII header ending with ETX (``0x03``), then ``rows x cols`` pixels, row 0 the SOUTHERN row,
each row west to east. Header: product id (2 chars), ``ddhhmm`` (UTC, the end of the interval),
WMO number (5), ``MMYY``, then tokens ``BY`` (product length in bytes, header and ETX
included), ``VS`` (format version), ``SW`` (software), ``PR`` (precision, ``E-01`` = 0.1,
``E-02`` = 0.01...), ``INT`` (interval in minutes; days when ``U`` is 1), ``GP`` (``rows x
cols``, e.g. ``900x 900``, ``1100x 900``, ``1200x1100``), optional ``VV`` (forecast lead,
minutes: the frame is valid at time + VV), ``MF``, ``QN``, ``VR``, ``MS`` (radar sites).

- Precipitation products (:data:`ACCUMULATIONS`: ``RW`` hourly, ``RY``/``YW``/``RV`` 5-min,
  ``SF`` 24-h...): 2-byte little-endian words; bits 0-11 the value in units of ``PR`` (mm per
  ``INT`` minutes), bit 12 interpolated (value kept), bit 13 no data (→ NaN), bit 14 negative
  sign, bit 15 clutter (→ NaN: a precipitation value flagged as clutter is not a measurement).
  ``mm/h`` divides by the interval: ``60 / INT``.
- Reflectivity products (:data:`REFLECTIVITIES`: ``RX``, ``WX``, ``EX``): 1 byte per pixel in
  RVP6 units, ``dBZ = value / 2 - 32.5``; 250 no data and 249 clutter (→ NaN).

The header time (+ ``VV``) is checked against the file name; gzip/bzip2-compressed files are
read as they are delivered by DWD Open Data.

ASCII grids
-----------
``ncols``, ``nrows``, ``xllcorner``/``xllcenter``, ``yllcorner``/``yllcenter``, ``cellsize``,
optional ``NODATA_value`` (→ NaN; ESRI default -9999), then ``nrows`` rows, the first the
NORTHERN one. The lower-left corner and cell size (in the catalog CRS units, metres) must match
the catalog grid. The file carries no time and no units: the time comes from the file name,
``reader_options.units`` is required (e.g. ``mm``, with ``scale: 0.1`` for DWD's exports in
1/10 mm) and ``accumulation_minutes`` gives the period for ``mm/h``.

Grid
----
Polar stereographic on a sphere of radius 6370.04 km, true at 60°N, central meridian 10°E
(:data:`RADOLAN_CRS`, false origin 0). :data:`GRIDS` gives the lower-left corner of each grid
size (the 900x900 national grid starts at 3.5889°E 46.9526°N, x = -523.4622 km,
y = -4658.645 km). A binary file's ``GP`` size must be the catalog grid's shape, and the
catalog grid must put its pixels where the RADOLAN grid of that size has them (within 1/10
pixel, whatever CRS string the catalog uses). Rows are returned in the catalog's ``y_origin``.

Variable ``source``: the product id (``RW``...) for binary files, ``ASC`` for ASCII grids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyproj

from data_catalog.catalog import parse_time
from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import (
    Frames,
    check_extent,
    check_name_time,
    check_shape,
    decode_values,
    read_bytes,
)
from pipelines.readers.cf_netcdf import physical_units
from pipelines.readers.limits import inflate, payload_cap

RADOLAN_CRS = (
    "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=10 +R=6370040 +x_0=0 +y_0=0 +units=m +no_defs"
)
"""The RADOLAN polar-stereographic projection (sphere R = 6370.04 km, true at 60°N, 10°E)."""

GRIDS: dict[tuple[int, int], tuple[float, float]] = {
    (900, 900): (-523_462.2, -4_658_645.0),  # national composite (RW, RY, SF, RX...)
    (1100, 900): (-443_462.2, -4_758_645.0),  # extended national (e.g. YW until the DE1200)
    (1200, 1100): (-543_462.2, -4_808_645.0),  # DE1200 (RV, YW since 2020...)
    (1500, 1400): (-673_462.2, -5_008_645.0),  # central-European composite
}
"""``(rows, cols)`` -> lower-left corner ``(x, y)`` in metres of :data:`RADOLAN_CRS`; 1 km pixels.
From the format description's corner tables (the same offsets as wradlib's
``get_radolan_grid``)."""
PIXEL_M = 1000.0

ACCUMULATIONS = ("RW", "RY", "YW", "RV", "SF", "RH", "RB", "RL", "RU", "RS", "RQ", "SH", "SQ")
"""Binary products holding precipitation heights (mm per ``INT``) as 2-byte words."""
REFLECTIVITIES = ("RX", "WX", "EX")
"""Binary products holding 1-byte RVP6 reflectivity."""

# 2-byte words: value bits and flags (format description, "Datenformat").
VALUE_BITS = 0x0FFF
INTERPOLATED_BIT = 0x1000  # bit 12
NODATA_BIT = 0x2000  # bit 13
NEGATIVE_BIT = 0x4000  # bit 14
CLUTTER_BIT = 0x8000  # bit 15
# 1-byte RVP6 reflectivity: dBZ = value / 2 - 32.5; 249 clutter, 250 no data.
RVP6_CLUTTER, RVP6_NODATA = 249, 250

MAX_INTERVAL_MINUTES = 366 * 1440
"""Longest accumulation interval a header may state (a year; ``SF`` is 24 h, ``RU``... a month)."""

_TOKENS = ("BY", "VS", "SW", "PR", "INT", "U", "GP", "VV", "MF", "QN", "VR", "MS", "ST")


@dataclass(frozen=True)
class Header:
    """The fields of a RADOLAN binary header the reader uses."""

    product: str
    time: pd.Timestamp  # end of the interval, UTC
    length: int | None  # BY: whole product in bytes
    precision: float  # PR
    interval_minutes: float  # INT (x 1440 when U = 1)
    shape: tuple[int, int]  # GP: (rows, cols)
    lead_minutes: int  # VV (0 when absent)
    size: int  # header bytes, ETX included


TEXT_BYTES_PER_PIXEL = 8
"""Longest value an ASCII grid is expected to spend per pixel (``-9999.0`` and a space); with
:func:`~pipelines.readers.limits.payload_cap`'s factor 2 the inflate cap is 16 bytes per pixel
of the catalog grid, far above the 2 of a binary product."""


def _token_fields(text: str) -> dict[str, str]:
    """Token -> its text up to the next token (header after the fixed 17 characters)."""
    found = sorted(
        (m.start(), token)
        for token in _TOKENS
        for m in [re.search(rf"{token}(?=[\s\d<+-]|E)", text)]
        if m is not None
    )
    out = {}
    for i, (start, token) in enumerate(found):
        stop = found[i + 1][0] if i + 1 < len(found) else len(text)
        out[token] = text[start + len(token) : stop].strip()
    return out


def parse_header(raw: bytes, path: str) -> Header:
    """Parse the ASCII header of a binary RADOLAN product; ``ValueError`` naming ``path``."""
    end = raw.find(b"\x03")
    if end < 17:
        raise ValueError(f"{path}: not a RADOLAN binary product (no header ending with ETX)")
    text = raw[:end].decode("latin-1")
    product = text[:2]
    try:
        time = pd.to_datetime(text[2:8] + text[13:17], format="%d%H%M%m%y")
    except ValueError:
        raise ValueError(f"{path}: bad RADOLAN header time {text[2:8]!r} {text[13:17]!r}") from None
    fields = _token_fields(text[17:])
    try:
        precision = float("1" + fields["PR"].replace(" ", ""))  # "E-01" -> 1E-01
        interval = float(fields["INT"])
        if fields.get("U", "0").strip() == "1":
            interval *= 1440  # U = 1: INT is in days
        rows, cols = (int(n) for n in fields["GP"].split("x"))
        length = int(fields["BY"]) if "BY" in fields else None
        lead = int(fields["VV"]) if fields.get("VV") else 0
    except KeyError as missing:
        raise ValueError(f"{path}: RADOLAN header lacks {missing}: {text!r}") from None
    except ValueError as error:
        raise ValueError(f"{path}: unreadable RADOLAN header {text!r}: {error}") from None
    if rows < 1 or cols < 1:
        raise ValueError(
            f"{path}: RADOLAN header GP {fields['GP']!r} gives {rows} x {cols} pixels; a "
            "grid needs positive rows and columns (corrupt header?)"
        )
    if not 0 < interval <= MAX_INTERVAL_MINUTES:
        raise ValueError(
            f"{path}: RADOLAN header INT {fields['INT']!r} gives an interval of {interval:g} "
            f"min; expected 1 to {MAX_INTERVAL_MINUTES} (corrupt header?)"
        )
    return Header(product, time, length, precision, interval, (rows, cols), lead, end + 1)


def decode_binary(raw: bytes, header: Header, path: str) -> tuple[np.ndarray, str, str]:
    """Pixels of a binary product as ``(values (rows, cols) float64, units, note)``, row 0 south.

    Precipitation: mm per interval (NaN for no data and clutter); reflectivity: dBZ.
    """
    rows, cols = header.shape
    if header.product in REFLECTIVITIES:
        nbytes, dtype = 1, np.dtype("u1")
    elif header.product in ACCUMULATIONS:
        nbytes, dtype = 2, np.dtype("<u2")
    else:
        raise ValueError(
            f"{path}: RADOLAN product {header.product!r} is not supported; known: "
            f"{list(ACCUMULATIONS + REFLECTIVITIES)}"
        )
    payload = raw[header.size :]
    need = rows * cols * nbytes
    if len(payload) < need:
        raise ValueError(
            f"{path}: truncated RADOLAN payload: {len(payload)} bytes, {header.product} "
            f"{rows}x{cols} needs {need}"
        )
    if header.length is not None and header.length != len(raw):
        raise ValueError(
            f"{path}: the header says BY {header.length} bytes but the product has {len(raw)}"
        )
    words = np.frombuffer(payload, dtype=dtype, count=rows * cols).reshape(rows, cols)
    if header.product in REFLECTIVITIES:
        values = words.astype(np.float64) / 2.0 - 32.5
        values[(words == RVP6_NODATA) | (words == RVP6_CLUTTER)] = np.nan
        return values, "dBZ", f"RADOLAN {header.product}: dBZ = byte / 2 - 32.5; 249/250 -> NaN"
    values = (words & VALUE_BITS).astype(np.float64) * header.precision
    values[(words & NEGATIVE_BIT) != 0] *= -1.0
    values[(words & (NODATA_BIT | CLUTTER_BIT)) != 0] = np.nan
    note = (
        f"RADOLAN {header.product}: (word & 0xFFF) x {header.precision:g} mm per "
        f"{header.interval_minutes:g} min; no-data and clutter flags -> NaN"
    )
    return values, "mm", note


def parse_ascii_grid(raw: bytes, path: str) -> tuple[dict[str, float], np.ndarray]:
    """``(header, values (nrows, ncols) float64)`` of an ESRI ASCII grid, row 0 north."""
    text = raw.decode("latin-1")
    lines = text.splitlines()
    header: dict[str, float] = {}
    i = 0
    while i < len(lines) and lines[i].strip() and lines[i].split()[0][0].isalpha():
        words = lines[i].split()
        try:
            header[words[0].lower()] = float(words[1])
        except (IndexError, ValueError):
            raise ValueError(f"{path}: bad ASCII-grid header line {lines[i]!r}") from None
        i += 1
    missing = [k for k in ("ncols", "nrows", "cellsize") if k not in header]
    if missing or not ({"xllcorner", "xllcenter"} & set(header)):
        raise ValueError(f"{path}: not an ESRI ASCII grid (header {sorted(header)})")
    rows, cols = int(header["nrows"]), int(header["ncols"])
    try:
        values = np.array(" ".join(lines[i:]).split(), dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: non-numeric ASCII-grid values: {error}") from None
    if values.size != rows * cols:
        raise ValueError(
            f"{path}: ASCII grid has {values.size} values, header says {rows} x {cols}"
        )
    return header, values.reshape(rows, cols)


def check_radolan_grid(shape: tuple[int, int], spec: SourceSpec, path: str) -> None:
    """``ValueError`` unless the catalog grid is the RADOLAN grid of ``shape`` (rows, cols)."""
    check_shape(shape, spec, path)
    if shape not in GRIDS:
        raise ValueError(
            f"{path}: no RADOLAN grid of {shape[0]}x{shape[1]}; known: {sorted(GRIDS)}"
        )
    grid = spec.grid
    if grid.is_geographic:
        raise ValueError(f"{path}: RADOLAN is projected; source {spec.name!r} is geographic")
    x0, y0 = GRIDS[shape]
    # Pixel centres of the RADOLAN grid (corners and centre) -> lon/lat -> catalog CRS.
    xs = x0 + (np.array([0, shape[1] - 1, 0, shape[1] - 1, shape[1] // 2]) + 0.5) * PIXEL_M
    ys = y0 + (np.array([0, 0, shape[0] - 1, shape[0] - 1, shape[0] // 2]) + 0.5) * PIXEL_M
    to_ll = pyproj.Transformer.from_crs(RADOLAN_CRS, "EPSG:4326", always_xy=True)
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    gx, gy = to_grid.transform(*to_ll.transform(xs, ys))
    dy, dx = grid.pixel_size
    cols = (np.asarray(gx) - grid.extent[0]) / dx - 0.5  # catalog column of each probe
    rows_from_south = (np.asarray(gy) - grid.extent[2]) / dy - 0.5
    want_cols = np.array([0, shape[1] - 1, 0, shape[1] - 1, shape[1] // 2])
    want_rows = np.array([0, 0, shape[0] - 1, shape[0] - 1, shape[0] // 2])
    off = max(np.abs(cols - want_cols).max(), np.abs(rows_from_south - want_rows).max())
    if not np.isfinite(off) or off > 0.1:
        raise ValueError(
            f"{path}: the grid of source {spec.name!r} ({grid.crs!r}, extent {grid.extent}) is "
            f"not the RADOLAN {shape[0]}x{shape[1]} grid (pixels off by {off:.3g}); use "
            f"{RADOLAN_CRS!r} with extent "
            f"{[x0, x0 + shape[1] * PIXEL_M, y0, y0 + shape[0] * PIXEL_M]}"
        )


def _to_catalog_rows(values: np.ndarray, south_first: bool, spec: SourceSpec) -> np.ndarray:
    """``(H, W)`` rows in the catalog's ``y_origin`` order."""
    want_south_first = spec.grid.y_origin == "lower"
    return values if south_first == want_south_first else values[::-1]


def _read_binary(raw: bytes, path: str, spec: SourceSpec) -> Frames:
    header = parse_header(raw, path)
    if spec.reader_options.units is not None:
        raise ValueError(
            f"{path}: a RADOLAN binary product states its units; reader_options.units "
            f"({spec.reader_options.units!r}) is for ASCII grids"
        )
    for var in spec.variables:
        if var.source != header.product:
            raise ValueError(
                f"{path}: holds RADOLAN product {header.product!r}, not {var.source!r} of "
                f"variable {var.name!r}"
            )
    check_radolan_grid(header.shape, spec, path)  # before decoding: memory set by the catalog
    values, units, note = decode_binary(raw, header, path)
    values = _to_catalog_rows(values, south_first=True, spec=spec)
    time = header.time + pd.Timedelta(minutes=header.lead_minutes)
    check_name_time(time, spec, path)
    options = spec.reader_options
    if units == "mm":
        given = options.accumulation_minutes
        if given is not None and float(given) != header.interval_minutes:
            raise ValueError(
                f"{path}: the header's interval INT is {header.interval_minutes:g} min but "
                f"reader_options.accumulation_minutes is {given}"
            )
        options = replace(options, accumulation_minutes=header.interval_minutes)
    data, notes = {}, {}
    for var in spec.variables:
        converted, conv = decode_values(values, units, var, path, options)
        data[var.name] = converted[np.newaxis]  # (1, H, W)
        lead = f"; valid at time + VV {header.lead_minutes} min" if header.lead_minutes else ""
        notes[var.name] = f"{note}{lead}; {conv}"
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), data, notes)


def _read_ascii(raw: bytes, path: str, spec: SourceSpec) -> Frames:
    header, values = parse_ascii_grid(raw, path)
    shape = (int(header["nrows"]), int(header["ncols"]))
    check_shape(shape, spec, path)
    cell = header["cellsize"]
    half = 0.5 * cell if "xllcenter" in header else 0.0
    x0 = header.get("xllcorner", header.get("xllcenter", 0.0) - half)
    y0 = header.get("yllcorner", header.get("yllcenter", 0.0) - half)
    check_extent((x0, x0 + shape[1] * cell, y0, y0 + shape[0] * cell), spec, path)
    if spec.grid.shape in GRIDS:
        check_radolan_grid(shape, spec, path)
    time = parse_time(spec.path, path)
    if time is None:
        raise ValueError(
            f"{path}: an ASCII grid carries no time and the path pattern {spec.path!r} has no "
            "time codes"
        )
    options = spec.reader_options
    if options.units is None:
        raise ValueError(
            f"{path}: an ASCII grid carries no units; set reader_options.units (e.g. 'mm', "
            "with scale 0.1 for DWD's RADOLAN exports in 1/10 mm)"
        )
    nodata = header.get("nodata_value", -9999.0)  # the ESRI default
    values = np.where(values == nodata, np.nan, values)
    values = _to_catalog_rows(values, south_first=False, spec=spec)
    units, factor = physical_units(options.units, path, "reader_options.units")
    data, notes = {}, {}
    for var in spec.variables:
        if var.source != "ASC":
            raise ValueError(
                f"{path}: an ASCII grid holds one field, source 'ASC'; got {var.source!r} "
                f"for {var.name!r}"
            )
        converted, conv = decode_values(values, units, var, path, options, factor=factor)
        data[var.name] = converted[np.newaxis]  # (1, H, W)
        notes[var.name] = f"ESRI ASCII grid, NODATA {nodata:g} -> NaN; {conv}"
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), data, notes)


@register_reader(
    "radolan",
    options=("units", "scale", "offset", "nodata", "undetect", "accumulation_minutes",
             "zr_a", "zr_b"),
)  # fmt: skip
def read_radolan(path: str, spec: SourceSpec) -> Frames:
    """Read one RADOLAN binary product or ASCII grid into one frame (see the module docstring)."""
    cap = payload_cap(spec, TEXT_BYTES_PER_PIXEL)
    raw = inflate(read_bytes(path), cap, path, "RADOLAN file")
    if raw[:5].lower() == b"ncols" or raw[:5].lower() == b"nrows":
        return _read_ascii(raw, path, spec)
    return _read_binary(raw, path, spec)
