"""MeteoSwiss AQC precipitation-accumulation composites (8-bit palette GIF).

Decoding (pysteps-data README; the same rule as pysteps' ``import_mch_gif`` lookup table):
``dn = np.array(PIL.Image.open(f))``; for ``2 <= dn <= 250`` the accumulation is
``(10**((dn - 71.5) / 20) / 316) ** (1 / 1.5)`` mm per ``accumulation_minutes``; ``dn < 2`` and
``251..254`` are 0; ``255`` is no data (NaN). The GIF carries no georeferencing or time: the
grid is the catalog's (Swiss LV03) and the time comes from the file name.

Variable ``source``: ``AQC`` (accumulation, converted to the variable's units; ``mm/h`` needs
``reader_options.accumulation_minutes``).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from data_catalog.catalog import parse_time
from data_catalog.spec import SourceSpec
from pipelines.readers import register_reader
from pipelines.readers.base import Frames, check_shape, convert_units, read_bytes

NODATA_DN = 255
_DN = np.arange(256, dtype=np.float64)
# Lookup table dn -> mm per accumulation period (shape (256,)).
LUT = np.where(
    (_DN >= 2) & (_DN <= 250), (10.0 ** ((_DN - 71.5) / 20.0) / 316.0) ** (1.0 / 1.5), 0.0
)
LUT[NODATA_DN] = np.nan


def decode_dn(path: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Palette indices of the GIF at ``path``, uint8 ``(H, W)``; ``ValueError`` if unreadable
    or (``shape`` given) when its declared size is not ``shape``, checked before decoding."""
    raw = read_bytes(path)  # a missing file stays a FileNotFoundError
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.mode != "P":
                raise ValueError(f"{path}: GIF mode {image.mode!r}, expected a palette ('P')")
            declared = (image.height, image.width)  # from the header: nothing decoded yet
            if shape is not None and declared != tuple(shape):
                raise ValueError(
                    f"{path}: grid shape {declared} != {tuple(shape)} of the source (declared "
                    "by the GIF header; not decoded)"
                )
            return np.array(image)
    except UnidentifiedImageError:
        # PIL's own text names the in-memory buffer (<_io.BytesIO object at 0x...>), not the file.
        raise ValueError(f"{path}: not a GIF (no image format recognised)") from None
    except (OSError, SyntaxError, EOFError) as error:
        raise ValueError(f"{path}: not a readable GIF (corrupt or truncated?): {error}") from None


@register_reader("mch-gif", options=("accumulation_minutes",))
def read_mch_gif(path: str, spec: SourceSpec) -> Frames:
    """Read one AQC GIF into one frame (see the module docstring)."""
    time = parse_time(spec.path, path)
    if time is None:
        raise ValueError(f"{path}: the path pattern {spec.path!r} carries no time codes")
    dn = decode_dn(path, spec.grid.shape)
    check_shape(dn.shape, spec, path)
    accumulation = LUT[dn]  # (H, W) mm per period
    data, notes = {}, {}
    for var in spec.variables:
        if var.source != "AQC":
            raise ValueError(f"{path}: unknown quantity {var.source!r} for mch-gif; allowed: AQC")
        values, note = convert_units(accumulation, "mm", var, path, spec.reader_options)
        data[var.name] = values[np.newaxis]  # (1, H, W)
        notes[var.name] = f"MeteoSwiss AQC GIF dn -> mm; {note}"
    return Frames(path, np.array([time.to_datetime64()], dtype="datetime64[ns]"), data, notes)
