"""Frozen, validated specs of catalog sources (the YAML catalog is only their serialisation).

A :class:`SourceSpec` says where a source's files are (a path pattern or fsspec URL with
strftime-like time codes), which reader decodes them, the time step, the variables with
their physical units, valid ranges and normalisation hints, the grid and CRS, and the
target Zarr chunks. Every field is checked in ``__post_init__``; a bad value raises
``ValueError`` naming the field, the offending value and the allowed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from data_catalog import vocabulary as voc

TRANSFORMS: tuple[str, ...] = ("identity", "log1p", "dbr")
"""Normalisation transforms (the names of ``simvp_model.normalisation``)."""
Y_ORIGINS: tuple[str, ...] = ("upper", "lower")
"""``upper``: row 0 is the northern (largest ``y``) row; ``lower``: row 0 is the smallest ``y``."""


def _fail(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"field {name!r}: got {value!r}; allowed: {allowed}")


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed fields: {allowed}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, value, "a finite number")
    return float(value)


@dataclass(frozen=True)
class NormalisationHint:
    """How a variable should be normalised before training.

    Parameters
    ----------
    transform : str
        One of :data:`TRANSFORMS`: ``identity``, ``log1p`` (counts, rain rate) or ``dbr``
        (rain rate → ``10 log10(R)`` dB with values below ``threshold`` set to the floor).
    threshold : float, optional
        Physical value below which the field counts as zero (e.g. 0.1 mm/h for rain).
    offset, scale : float, optional
        Fixed affine constants after the transform; ``None`` = fitted on the training split.
    """

    transform: str = "identity"
    threshold: float | None = None
    offset: float | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise _fail("normalisation.transform", self.transform, ", ".join(TRANSFORMS))
        for name in ("threshold", "offset", "scale"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _number(f"normalisation.{name}", value))
        if self.scale is not None and self.scale <= 0:
            raise _fail("normalisation.scale", self.scale, "a number > 0")
        if self.transform == "dbr" and self.threshold is None:
            raise _fail("normalisation.threshold", None, "a number > 0 (required by 'dbr')")
        if self.threshold is not None and self.transform == "dbr" and self.threshold <= 0:
            raise _fail("normalisation.threshold", self.threshold, "a number > 0 for 'dbr'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormalisationHint:
        """Build from a mapping, refusing unknown keys."""
        _check_keys(cls, data, "normalisation")
        return cls(**data)


@dataclass(frozen=True)
class VariableSpec:
    """One data variable of a source.

    Parameters
    ----------
    name : str
        Name in the store (lower snake_case, e.g. ``precipitation_rate``).
    units : str
        Physical units returned by the reader, one of
        :data:`data_catalog.vocabulary.PHYSICAL_UNITS`.
    source : str
        What the reader decodes from the file: a quantity or variable name (``RATE``,
        ``ACRR``, ``DBZH``, ``t2m``, ``inflow``...); readers document the names they accept.
    standard_name, long_name : str
        CF attributes written on the variable.
    valid_range : tuple of float
        ``(min, max)`` in ``units``; decoded values outside it are an error.
    normalisation : NormalisationHint
        How to normalise this variable for training.
    """

    name: str
    units: str
    source: str
    standard_name: str = ""
    long_name: str = ""
    valid_range: tuple[float, float] = (-math.inf, math.inf)
    normalisation: NormalisationHint = field(default_factory=NormalisationHint)

    def __post_init__(self) -> None:
        try:
            voc.check_variable_name(self.name)
        except ValueError as error:
            raise ValueError(f"field 'name': {error}") from None
        if self.units not in voc.PHYSICAL_UNITS:
            raise _fail("units", self.units, ", ".join(voc.PHYSICAL_UNITS))
        if not isinstance(self.source, str) or not self.source:
            raise _fail("source", self.source, "a non-empty string naming the in-file quantity")
        vr = tuple(self.valid_range)
        if len(vr) != 2 or any(isinstance(v, bool) or not isinstance(v, int | float) for v in vr):
            raise _fail("valid_range", self.valid_range, "[min, max] numbers")
        if not vr[0] < vr[1]:
            raise _fail("valid_range", self.valid_range, "[min, max] with min < max")
        object.__setattr__(self, "valid_range", (float(vr[0]), float(vr[1])))
        if isinstance(self.normalisation, Mapping):
            object.__setattr__(
                self, "normalisation", NormalisationHint.from_dict(self.normalisation)
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariableSpec:
        """Build from a mapping, refusing unknown keys."""
        _check_keys(cls, data, "variable")
        return cls(**data)


@dataclass(frozen=True)
class GridSpec:
    """A regular grid: CRS, shape and outer extent.

    Parameters
    ----------
    crs : str
        Anything ``pyproj.CRS.from_user_input`` accepts (PROJ string, ``EPSG:4326``, WKT).
    shape : tuple of int
        ``(ny, nx)`` = ``(H, W)`` pixels.
    extent : tuple of float
        ``(x_min, x_max, y_min, y_max)`` of the outer pixel edges, in CRS units (metres for
        projected grids, degrees for geographic ones).
    y_origin : str
        ``upper`` (row 0 is the northern row, ``y`` decreasing) or ``lower``.
    """

    crs: str
    shape: tuple[int, int]
    extent: tuple[float, float, float, float]
    y_origin: str = "upper"

    def __post_init__(self) -> None:
        try:
            crs = pyproj.CRS.from_user_input(self.crs)
        except (pyproj.exceptions.CRSError, TypeError) as error:
            raise _fail("grid.crs", self.crs, f"a CRS pyproj understands ({error})") from None
        if not (crs.is_projected or crs.is_geographic):
            raise _fail("grid.crs", self.crs, "a projected or geographic 2-D CRS")
        shape = tuple(self.shape)
        if len(shape) != 2 or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape
        ):
            raise _fail("grid.shape", self.shape, "[ny, nx] positive integers")
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        ext = tuple(self.extent)
        if len(ext) != 4:
            raise _fail("grid.extent", self.extent, "[x_min, x_max, y_min, y_max]")
        ext = tuple(_number("grid.extent", v) for v in ext)
        if not (ext[0] < ext[1] and ext[2] < ext[3]):
            raise _fail("grid.extent", self.extent, "x_min < x_max and y_min < y_max")
        object.__setattr__(self, "extent", ext)
        if self.y_origin not in Y_ORIGINS:
            raise _fail("grid.y_origin", self.y_origin, ", ".join(Y_ORIGINS))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridSpec:
        """Build from a mapping, refusing unknown keys."""
        _check_keys(cls, data, "grid")
        return cls(**data)

    @property
    def pyproj_crs(self) -> pyproj.CRS:
        """The grid's CRS as a ``pyproj.CRS``."""
        return pyproj.CRS.from_user_input(self.crs)

    @property
    def is_geographic(self) -> bool:
        """True for longitude/latitude grids (``x``/``y`` in degrees)."""
        return bool(self.pyproj_crs.is_geographic)

    @property
    def pixel_size(self) -> tuple[float, float]:
        """``(dy, dx)`` pixel size in CRS units (both positive)."""
        (ny, nx), (x0, x1, y0, y1) = self.shape, self.extent
        return ((y1 - y0) / ny, (x1 - x0) / nx)

    def crs_displacement(self, other: str | pyproj.CRS) -> float:
        """How far ``other`` moves this grid: the largest distance, in CRS units, between a
        probe pixel centre (4 corners and the centre) and where it lands when taken to lon/lat
        with this grid's CRS and back with ``other``. ``inf`` when ``other`` is geographic and
        this one projected (or the reverse). Equivalent CRSs written differently give ~0.
        """
        crs = pyproj.CRS.from_user_input(other)
        if crs.is_geographic != self.is_geographic:
            return math.inf
        x, y = self.x_coords(), self.y_coords()
        px = np.array([x[0], x[-1], x[0], x[-1], x[len(x) // 2]])
        py = np.array([y[0], y[0], y[-1], y[-1], y[len(y) // 2]])
        to_ll = pyproj.Transformer.from_crs(self.pyproj_crs, "EPSG:4326", always_xy=True)
        from_ll = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        qx, qy = from_ll.transform(*to_ll.transform(px, py))
        err = float(np.nanmax(np.hypot(np.asarray(qx) - px, np.asarray(qy) - py)))
        return err if math.isfinite(err) else math.inf

    def same_crs(self, other: str | pyproj.CRS) -> bool:
        """True when ``other`` puts every probe pixel within 1/10 pixel of this grid's CRS."""
        return self.crs_displacement(other) <= 0.1 * min(self.pixel_size)

    def x_coords(self) -> np.ndarray:
        """Pixel-centre ``x`` values, shape ``(W,)``, increasing."""
        dx = self.pixel_size[1]
        return self.extent[0] + (np.arange(self.shape[1]) + 0.5) * dx

    def y_coords(self) -> np.ndarray:
        """Pixel-centre ``y`` values, shape ``(H,)``; decreasing when ``y_origin='upper'``."""
        dy = self.pixel_size[0]
        if self.y_origin == "upper":
            return self.extent[3] - (np.arange(self.shape[0]) + 0.5) * dy
        return self.extent[2] + (np.arange(self.shape[0]) + 0.5) * dy


# --- reader options -------------------------------------------------------------------------

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


@dataclass(frozen=True)
class SourceSpec:
    """One catalog source.

    Parameters
    ----------
    name : str
        Catalog key, lower kebab-case (``mch-radar``).
    kind : str
        One of :data:`data_catalog.vocabulary.SOURCE_KINDS`.
    reader : str
        Name in ``pipelines.readers.READERS`` (checked by ``nowcast catalog validate``).
    path : str
        File pattern: local path, ``${samples}/...`` or fsspec URL (``s3://``, ``gs://``,
        ``https://``). strftime codes ``%Y %y %m %d %j %H %M %S`` give each file's time;
        ``?`` and ``*`` are glob wildcards. See :mod:`data_catalog.catalog`.
    time_step : str
        Fixed pandas offset (``5min``, ``30min``, ``1h``).
    variables : tuple of VariableSpec
        Data variables in channel order.
    grid : GridSpec
        Grid, CRS and extent every frame must match.
    chunks : dict
        Target Zarr chunks ``{"time": n, "y": n, "x": n}``.
    reader_options : ReaderOptions
        Reader options (:class:`ReaderOptions`; a mapping in the catalog).
    description, attribution : str
        Free text; attribution names the provider and licence.
    """

    name: str
    kind: str
    reader: str
    path: str
    time_step: str
    variables: tuple[VariableSpec, ...]
    grid: GridSpec
    chunks: Mapping[str, int] = field(default_factory=dict)
    reader_options: ReaderOptions = field(default_factory=ReaderOptions)
    description: str = ""
    attribution: str = ""

    def __post_init__(self) -> None:
        try:
            voc.check_source_name(self.name)
        except ValueError as error:
            raise ValueError(f"field 'name': {error}") from None
        if self.kind not in voc.SOURCE_KINDS:
            raise _fail("kind", self.kind, ", ".join(voc.SOURCE_KINDS))
        if not isinstance(self.reader, str) or not self.reader:
            raise _fail("reader", self.reader, "a registered reader name")
        if not isinstance(self.path, str) or not self.path.strip():
            raise _fail("path", self.path, "a path pattern or fsspec URL")
        try:
            step = pd.tseries.frequencies.to_offset(self.time_step)
            td = pd.Timedelta(step)
        except (ValueError, TypeError):
            raise _fail(
                "time_step", self.time_step, "a fixed pandas offset like 5min, 1h"
            ) from None
        if td <= pd.Timedelta(0):
            raise _fail("time_step", self.time_step, "a positive duration")
        variables = tuple(
            VariableSpec.from_dict(v) if isinstance(v, Mapping) else v for v in self.variables
        )
        if not variables or not all(isinstance(v, VariableSpec) for v in variables):
            raise _fail("variables", self.variables, "a non-empty list of variable specs")
        names = [v.name for v in variables]
        if len(set(names)) != len(names):
            raise _fail("variables", names, "unique variable names")
        object.__setattr__(self, "variables", variables)
        if isinstance(self.grid, Mapping):
            object.__setattr__(self, "grid", GridSpec.from_dict(self.grid))
        if not isinstance(self.grid, GridSpec):
            raise _fail("grid", self.grid, "a grid spec")
        chunks = dict(self.chunks)
        bad = sorted(set(chunks) - set(voc.OBSERVATION_DIMS))
        if bad:
            raise _fail("chunks", bad, f"keys among {list(voc.OBSERVATION_DIMS)}")
        for dim, n in chunks.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise _fail(f"chunks.{dim}", n, "a positive integer")
        object.__setattr__(self, "chunks", chunks)
        if not isinstance(self.reader_options, ReaderOptions):
            object.__setattr__(
                self, "reader_options", ReaderOptions.from_dict(self.reader_options, self.reader)
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> SourceSpec:
        """Build from a catalog entry; ``name`` (the YAML key) overrides ``data['name']``."""
        where = f"source {name!r}" if name else "source"
        _check_keys(cls, {k: v for k, v in data.items() if k != "name"}, where)
        entry = dict(data)
        if name is not None:
            entry["name"] = name
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in entry and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ValueError(f"{where}: missing required field(s) {missing}")
        try:
            return cls(**entry)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def __hash__(self) -> int:
        # The mapping fields are not hashable; the rest identifies a spec well enough.
        return hash((self.name, self.kind, self.reader, self.path, self.time_step,
                     self.variables, self.grid))  # fmt: skip

    @property
    def time_delta(self) -> pd.Timedelta:
        """The time step as a ``pandas.Timedelta``."""
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.time_step))

    @property
    def variable_names(self) -> list[str]:
        """Variable names in channel order."""
        return [v.name for v in self.variables]

    def variable(self, name: str) -> VariableSpec:
        """The variable called ``name``; ``ValueError`` listing the valid names otherwise."""
        for var in self.variables:
            if var.name == name:
                return var
        raise ValueError(
            f"source {self.name!r} has no variable {name!r}; has {self.variable_names}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (YAML-serialisable) that :meth:`from_dict` turns back into ``self``."""
        out = asdict(self)
        out["variables"] = [asdict(v) for v in self.variables]
        for var in out["variables"]:
            var["valid_range"] = list(var["valid_range"])
        out["reader_options"] = self.reader_options.to_dict()
        out["grid"]["shape"] = list(self.grid.shape)
        out["grid"]["extent"] = list(self.grid.extent)
        return out
