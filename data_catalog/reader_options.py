"""The catalog's ``reader_options``: one typed, frozen, validated structure for every reader.

Which reader accepts which option is declared where the readers register
(``pipelines.readers.READER_OPTIONS``); the table of all options is ``docs/readers.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any


def _fail(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"field {name!r}: got {value!r}; allowed: {allowed}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, value, "a finite number")
    return float(value)


TIME_SOURCES: tuple[str, ...] = ("auto", "content", "file_name")
"""Where frame times come from: ``content`` (the file's own time: a coordinate, a data variable
or header), ``file_name`` (the path pattern's time codes), ``auto`` (content when the file carries
a time, else the file name)."""
LONGITUDE_CONVENTIONS: tuple[str, ...] = ("as_stored", "wrap_180")
"""``as_stored``: longitudes used as the file gives them; ``wrap_180``: 0..360 longitudes are taken
to -180..180 and the columns reordered so longitude increases (as the catalog grid's ``x``)."""
OUT_OF_RANGE_POLICIES: tuple[str, ...] = ("fail", "mask")
"""Quality control of decoded values outside ``valid_range``: ``fail`` (an error naming the file)
or ``mask`` (set to NaN and counted per frame, see ``pipelines.readers.base.Frames.qc_masked``)."""


def _pairs(name: str, value: Any) -> tuple[tuple[str, Any], ...] | None:
    """A mapping option as a tuple of ``(key, value)`` pairs (hashable, order kept)."""
    if value is None:
        return None
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return value
    if not isinstance(value, Mapping):
        raise _fail(f"reader_options.{name}", value, "a mapping")
    return tuple((str(k), v) for k, v in value.items())


def _numbers(name: str, value: Any) -> tuple[float, ...]:
    """A number or list of numbers as a tuple (values kept as given: int stays int)."""
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        _number(f"reader_options.{name}", v)
    return tuple(values)


MAX_ACCUMULATION_MINUTES = 366 * 24 * 60
"""Longest accumulation period accepted (a leap year): beyond it every rate rounds to 0."""


@dataclass(frozen=True)
class ReaderOptions:
    """Options of a source's reader (the catalog's ``reader_options``), typed and checked.

    Every reader accepts a subset (``pipelines.readers.READER_OPTIONS``; the table in
    ``docs/readers.md``); a reader given an option it does not accept is an error naming the
    reader and listing its options. Numbers are kept as written (``5`` stays an int) so that
    :meth:`to_dict` gives back the catalog entry unchanged.

    Parameters
    ----------
    time_source : str
        One of :data:`TIME_SOURCES` (default ``auto``).
    time_variable : str, optional
        The coordinate or data variable holding the frame time(s) (CF ``units`` such as
        ``seconds since 1970-01-01``), e.g. ``valid_time``.
    units : str, optional
        Units of the decoded values, overriding what the file says (a GRIB field of a local
        parameter table has ``unknown`` units), e.g. ``kg m-2``, ``mm/h``, ``dBZ``.
    scale, offset : float, optional
        ``value = decoded * scale + offset`` (defaults 1 and 0), after the file's own packing
        and before unit conversion; the sentinels below are compared with ``decoded``.
    nodata : list of float
        Decoded values meaning "no data / outside coverage" (→ NaN), e.g. ``[-3]``.
    undetect : list of float
        Decoded values meaning "measured, nothing detected" (→ 0 for rain, else the variable's
        ``valid_range`` minimum).
    accumulation_minutes : float, optional
        Period (minutes) of accumulated values; ``mm`` (or ``kg m-2``) → ``mm/h`` multiplies by
        ``60 / accumulation_minutes``.
    longitude : str
        One of :data:`LONGITUDE_CONVENTIONS` (default ``as_stored``).
    out_of_range : str
        One of :data:`OUT_OF_RANGE_POLICIES` (default ``fail``).
    coverage_variable : str, optional
        A variable of the file whose 0 / false / missing cells are outside the instrument's
        coverage (→ NaN), for files writing 0 rather than a fill value there.
    zr_a, zr_b : float, optional
        ``Z = zr_a R^zr_b`` (reflectivity → rain rate).
    undetect_dbz : float, optional
        Reflectivity given to ODIM ``undetect`` pixels (default -30 dBZ).
    dataset : str, optional
        ODIM dataset group (``dataset2``) when several hold the quantity.
    filter_by_keys : mapping, optional
        GRIB keys selecting one hypercube (cfgrib ``filter_by_keys``).
    slots_per_day : int, optional
        TaxiBJ time slots per day (default 48).
    key : str, optional
        Array name in an ``.npz`` file.
    start_times : mapping, optional
        File name → time of its first slot (files without times).
    """

    time_source: str = "auto"
    time_variable: str | None = None
    units: str | None = None
    scale: float | None = None
    offset: float | None = None
    nodata: tuple[float, ...] = ()
    undetect: tuple[float, ...] = ()
    accumulation_minutes: float | None = None
    longitude: str = "as_stored"
    out_of_range: str = "fail"
    coverage_variable: str | None = None
    zr_a: float | None = None
    zr_b: float | None = None
    undetect_dbz: float | None = None
    dataset: str | None = None
    filter_by_keys: tuple[tuple[str, Any], ...] | None = None
    slots_per_day: int | None = None
    key: str | None = None
    start_times: tuple[tuple[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        choices = {
            "time_source": TIME_SOURCES,
            "longitude": LONGITUDE_CONVENTIONS,
            "out_of_range": OUT_OF_RANGE_POLICIES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise _fail(f"reader_options.{name}", getattr(self, name), ", ".join(allowed))
        for name in ("time_variable", "units", "coverage_variable", "dataset", "key"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise _fail(f"reader_options.{name}", value, "a non-empty string")
        for name in ("scale", "offset", "accumulation_minutes", "zr_a", "zr_b", "undetect_dbz"):
            value = getattr(self, name)
            if value is not None:
                _number(f"reader_options.{name}", value)
        for name in ("scale", "accumulation_minutes", "zr_a", "zr_b"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise _fail(f"reader_options.{name}", value, "a number > 0")
        if self.accumulation_minutes is not None and (
            self.accumulation_minutes > MAX_ACCUMULATION_MINUTES
        ):
            raise _fail(
                "reader_options.accumulation_minutes",
                self.accumulation_minutes,
                f"at most {MAX_ACCUMULATION_MINUTES} (one year of minutes)",
            )
        if self.slots_per_day is not None and (
            isinstance(self.slots_per_day, bool)
            or not isinstance(self.slots_per_day, int)
            or self.slots_per_day < 1
        ):
            raise _fail("reader_options.slots_per_day", self.slots_per_day, "a positive integer")
        for name in ("nodata", "undetect"):
            object.__setattr__(self, name, _numbers(name, getattr(self, name)))
        overlap = set(self.nodata) & set(self.undetect)
        if overlap:
            raise _fail("reader_options.undetect", list(self.undetect),
                        f"values not also in nodata (both hold {sorted(overlap)})")  # fmt: skip
        for name in ("filter_by_keys", "start_times"):
            object.__setattr__(self, name, _pairs(name, getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], reader: str = "") -> ReaderOptions:
        """Build from the catalog's ``reader_options`` mapping, refusing unknown keys."""
        if not isinstance(data, Mapping):
            raise _fail("reader_options", data, "a mapping")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(
                f"reader {reader!r}: unknown reader_options {unknown}; options of any reader: "
                f"{allowed} (see docs/readers.md for the ones each reader accepts)"
            )
        return cls(**data)

    def given(self) -> list[str]:
        """Names of the options that differ from their defaults (i.e. set in the catalog)."""
        return [
            f.name
            for f in fields(self)
            if getattr(self, f.name)
            != (f.default if f.default_factory is MISSING else f.default_factory())
        ]

    def to_dict(self) -> dict[str, Any]:
        """The options set in the catalog, as a plain mapping (:meth:`from_dict` inverts it)."""
        out: dict[str, Any] = {}
        for name in self.given():
            value = getattr(self, name)
            if name in ("filter_by_keys", "start_times"):
                value = dict(value)
            elif name in ("nodata", "undetect"):
                value = list(value)
            out[name] = value
        return out
