"""FMI radar composites: 8-bit binary PGM (``P5``), optionally gzipped, with a ``#`` header.

Decoding (pysteps-data README and pysteps' ``import_fmi_pgm``): ``dBZ = (dn - 64) / 2``; the
maxval ``255`` marks missing data (NaN). The header gives ``obstime`` (UTC, checked against the
file name), ``param`` (``CorrectedReflectivity`` → dBZ), the stereographic projection
(``centrallongitude``, ``centrallatitude``, ``truelatitude``), the ``bottomleft``/``topright``
corner lon/lat and ``metersperpixel_x/y``. The header lacks the sphere radius and false origin;
like pysteps (``_import_fmi_pgm_geodata``) we use ``+a=6371288 +x_0=380886.310 +y_0=3395677.920``.
The projection and the corners are compared with the catalog grid.

Variable ``source``: ``DBZ``. ``units: dBZ`` keeps reflectivity; ``units: mm/h`` converts with
``Z = zr_a R^zr_b`` (``reader_options``; pysteps uses 223 and 1.53 for FMI).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj

from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import (
    Frames,
    check_crs,
    check_extent,
    check_name_time,
    check_shape,
    convert_units,
    read_bytes,
)
from pipelines.readers.limits import inflate, payload_cap

#: Header ``param`` -> (physical units, offset, scale): value = (dn - offset) / scale.
PARAMS = {"CorrectedReflectivity": ("dBZ", 64.0, 2.0), "Reflectivity": ("dBZ", 64.0, 2.0)}
# Not in the header; pysteps' hard-coded sphere radius and false origin for FMI composites.
_SPHERE_AND_ORIGIN = "+a=6371288 +x_0=380886.310 +y_0=3395677.920 +units=m +no_defs"


def parse_pgm(raw: bytes, path: str) -> tuple[dict[str, list[str]], np.ndarray, int]:
    """Split a binary PGM into ``(header, dn (H, W) uint8, maxval)``; ``ValueError`` if bad."""
    if not raw.startswith(b"P5"):
        raise ValueError(f"{path}: not a binary PGM (magic {raw[:2]!r}, expected b'P5')")
    header: dict[str, list[str]] = {}
    numbers: list[int] = []
    pos = 2
    while len(numbers) < 3:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: PGM header is truncated")
        line = raw[pos:end].decode("latin-1").strip()
        pos = end + 1
        if line.startswith("#"):
            words = line[1:].split()
            if len(words) >= 2:
                header[words[0]] = words[1:]
        elif line:
            try:
                numbers.extend(int(w) for w in line.split())
            except ValueError:
                raise ValueError(f"{path}: bad PGM size line {line!r}") from None
    width, height, maxval = numbers[:3]
    if maxval > 255:
        raise ValueError(f"{path}: 16-bit PGM (maxval {maxval}) is not supported")
    body = raw[pos:]
    if len(body) != width * height:
        raise ValueError(
            f"{path}: PGM body has {len(body)} bytes, expected {width} x {height} = "
            f"{width * height} (truncated or corrupt)"
        )
    return header, np.frombuffer(body, np.uint8).reshape(height, width), maxval  # (H, W) row-major


def _word(header: dict[str, list[str]], key: str, path: str) -> list[str]:
    if key not in header:
        raise ValueError(f"{path}: PGM header has no {key!r} entry")
    return header[key]


def header_crs(header: dict[str, list[str]], path: str) -> str:
    """PROJ string of the header's projection (stereographic only)."""
    kind = _word(header, "type", path)[0]
    if kind != "stereographic":
        raise ValueError(
            f"{path}: projection type {kind!r} is not supported; allowed: stereographic"
        )
    lon0 = float(_word(header, "centrallongitude", path)[0])
    lat0 = float(_word(header, "centrallatitude", path)[0])
    lat_ts = float(_word(header, "truelatitude", path)[0])
    return f"+proj=stere +lon_0={lon0:g} +lat_0={lat0:g} +lat_ts={lat_ts:g} {_SPHERE_AND_ORIGIN}"


@register_reader("fmi-pgm", options=("zr_a", "zr_b"))
def read_fmi_pgm(path: str, spec: SourceSpec) -> Frames:
    """Read one FMI PGM(.gz) composite into one frame (see the module docstring)."""
    # 8-bit pixels: at most twice the catalog frame is inflated (a bomb stops there)
    raw = inflate(read_bytes(path), payload_cap(spec, 1), path, "FMI PGM file")
    header, dn, maxval = parse_pgm(raw, path)
    check_shape(dn.shape, spec, path)
    try:
        time = pd.to_datetime(_word(header, "obstime", path)[0], format="%Y%m%d%H%M")
    except (ValueError, OverflowError):  # pandas' own text suggests format/dayfirst options
        raise ValueError(
            f"{path}: bad PGM obstime {' '.join(header.get('obstime', []))!r}; expected "
            "YYYYMMDDHHMM (UTC)"
        ) from None
    check_name_time(time, spec, path)
    crs = header_crs(header, path)
    check_crs(crs, spec, path)
    proj = pyproj.Proj(crs)
    x1, y1 = proj(*map(float, _word(header, "bottomleft", path)))
    x2, y2 = proj(*map(float, _word(header, "topright", path)))
    check_extent((x1, x2, y1, y2), spec, path)
    param = _word(header, "param", path)[0]
    if param not in PARAMS:
        raise ValueError(f"{path}: unknown units for param {param!r}; known: {sorted(PARAMS)}")
    units, offset, scale = PARAMS[param]
    decoded = np.where(dn == maxval, np.nan, (dn.astype(np.float64) - offset) / scale)
    data, notes = {}, {}
    for var in spec.variables:
        if var.source != "DBZ":
            raise ValueError(f"{path}: unknown quantity {var.source!r} for fmi-pgm; allowed: DBZ")
        values, note = convert_units(decoded, units, var, path, spec.reader_options)
        data[var.name] = values[np.newaxis]  # (1, H, W)
        notes[var.name] = f"FMI PGM dBZ = (dn - {offset:g}) / {scale:g}; {note}"
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), data, notes)
