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
from data_catalog.crs import crs_label
from data_catalog.reader_options import ReaderOptions

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


_LON_BOUND, _LAT_BOUND = 360.0, 90.0
"""Largest ``|longitude|`` (0..360 and -180..180 both occur) and ``|latitude|`` in degrees."""


def _check_extent_units(
    crs: pyproj.CRS, crs_text: str, extent: tuple[float, float, float, float]
) -> None:
    """Refuse an extent whose units contradict the CRS (degrees vs projected units).

    A geographic CRS needs ``|x| <= 360`` and ``|y| <= 90`` degrees; anything beyond is metres
    (or feet) given by mistake. A projected CRS whose whole extent lies inside those degree
    bounds (a grid under 720 x 180 m around the false origin) is taken as degrees given by
    mistake: no weather or traffic grid is that small.
    """
    x0, x1, y0, y1 = extent
    crs_text = crs_label(crs_text)  # a WKT runs to thousands of characters
    in_degrees = max(abs(x0), abs(x1)) <= _LON_BOUND and max(abs(y0), abs(y1)) <= _LAT_BOUND
    units = crs.axis_info[0].unit_name if crs.axis_info else "its units"
    if crs.is_geographic and not in_degrees:
        raise ValueError(
            f"field 'grid.extent': got {list(extent)}, which is not in degrees "
            f"(|x| <= {_LON_BOUND:g}, |y| <= {_LAT_BOUND:g}), but grid.crs {crs_text!r} is "
            f"geographic ({units}); give the extent in degrees or a projected CRS"
        )
    if crs.is_projected and in_degrees:
        raise ValueError(
            f"field 'grid.extent': got {list(extent)}, which looks like degrees, but "
            f"grid.crs {crs_text!r} is projected ({units}); give the extent in {units} units "
            f"or a geographic CRS such as EPSG:4326"
        )


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
        _check_extent_units(crs, self.crs, ext)
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
        self._check_accumulation()

    def _check_accumulation(self) -> None:
        """``reader_options.accumulation_minutes`` must be the source's ``time_step``: each
        frame is the sum over one step, and another period scales every rate by the ratio
        (10 on a 5-min product halves them) without any other sign."""
        minutes = self.reader_options.accumulation_minutes
        if minutes is None:
            return
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.time_step))
        step_minutes = step / pd.Timedelta(minutes=1)
        if float(minutes) != step_minutes:
            raise _fail(
                "reader_options.accumulation_minutes",
                minutes,
                f"{step_minutes:g}, the time_step {self.time_step} of source {self.name!r}: each "
                f"frame sums one step, and {float(minutes):g} would scale every rate by "
                f"{step_minutes / float(minutes):.3g}",
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
