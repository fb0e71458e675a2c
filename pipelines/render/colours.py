"""Colour scales per kind of variable, chosen from a variable's ``standard_name``/``units``.

Contract: every scale factory registered in :data:`COLOUR_SCALES` takes ``(units, values)`` (the
variable's ``units`` attr and a sample of its finite values in those units, used only for
data-dependent ranges) and returns a :class:`ColourScale` whose ``convert`` maps values in
``units`` to the display units ``label`` states. Kinds: ``precipitation`` (mm/h, discrete),
``accumulation`` (mm, discrete), ``reflectivity`` (dBZ, discrete), ``temperature`` (°C, discrete
0.5/1/2/5-degree steps over the data range), ``counts`` (discrete, log-like steps), ``generic``
(continuous, 2nd-98th percentile). Values below the lowest level of the precipitation,
reflectivity and count scales are transparent, so the map shows through where nothing falls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.colorizer import Colorizer
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, Normalize

from simvp_model.registry import Registry


@dataclass(frozen=True)
class ColourScale:
    """How to colour one variable.

    Parameters
    ----------
    kind : str
        Registered scale name.
    label : str
        Colour-bar label with display units, e.g. ``"precipitation rate [mm/h]"``.
    cmap : matplotlib.colors.Colormap
        Colour map (``under`` colour transparent for thresholded scales).
    norm : matplotlib.colors.Normalize
        Value → colour normalisation (``BoundaryNorm`` for discrete scales).
    convert : callable
        Maps values in the variable's units to display units (same shape).
    extend : str
        Colour-bar ``extend`` (``"max"``, ``"both"``, ``"neither"``).
    """

    kind: str
    label: str
    cmap: Colormap
    norm: Normalize
    convert: Callable[[np.ndarray], np.ndarray]
    extend: str = "max"

    @functools.cached_property
    def colorizer(self) -> Colorizer:
        """A matplotlib ``Colorizer`` of ``cmap``/``norm`` to share between images."""
        return Colorizer(self.cmap, self.norm)

    def colours(self, values: np.ndarray) -> np.ndarray:
        """RGBA ``(..., 4)`` floats of ``values`` given in the variable's units."""
        return np.asarray(self.cmap(self.norm(self.convert(np.asarray(values)))))


ScaleFactory = Callable[[str, np.ndarray], ColourScale]
COLOUR_SCALES: Registry[ScaleFactory] = Registry("colour scale")

KIND_BY_STANDARD_NAME: dict[str, str] = {
    "rainfall_rate": "precipitation",
    "lwe_precipitation_rate": "precipitation",
    "precipitation_flux": "precipitation",
    "precipitation_amount": "accumulation",
    "lwe_thickness_of_precipitation_amount": "accumulation",
    "equivalent_reflectivity_factor": "reflectivity",
    "air_temperature": "temperature",
}
KIND_BY_UNITS: dict[str, str] = {
    "mm/h": "precipitation",
    "mm h-1": "precipitation",
    "kg m-2 s-1": "precipitation",
    "mm": "accumulation",
    "dBZ": "reflectivity",
    "K": "temperature",
    "degC": "temperature",
    "count": "counts",
}
_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)
_IDENTITY: Callable[[np.ndarray], np.ndarray] = lambda v: v  # noqa: E731


def kind_for(attrs: Mapping[str, Any]) -> str:
    """Scale kind for a variable's attrs: by ``standard_name``, else ``units``, else generic."""
    standard = str(attrs.get("standard_name", ""))
    if standard in KIND_BY_STANDARD_NAME:
        return KIND_BY_STANDARD_NAME[standard]
    return KIND_BY_UNITS.get(str(attrs.get("units", "")), "generic")


def scale_for(attrs: Mapping[str, Any], values: np.ndarray | None = None) -> ColourScale:
    """The :class:`ColourScale` for a variable (``attrs``) and a sample of its values."""
    sample = np.asarray(values if values is not None else [], dtype="float64").ravel()
    sample = sample[np.isfinite(sample)]
    scale = COLOUR_SCALES.get(kind_for(attrs))(str(attrs.get("units", "")), sample)
    name = attrs.get("long_name") or attrs.get("standard_name")
    if name:
        unit = scale.label[scale.label.rfind("[") :] if "[" in scale.label else ""
        scale = ColourScale(
            scale.kind,
            f"{name} {unit}".strip(),
            scale.cmap,
            scale.norm,
            scale.convert,
            scale.extend,
        )
    return scale


def _discrete(levels: list[float], colours: list[str], under_transparent: bool) -> tuple:
    if len(colours) != len(levels) - 1:
        raise ValueError(f"need {len(levels) - 1} colours for {len(levels)} levels")
    cmap = ListedColormap(colours[:-1])
    cmap = cmap.with_extremes(over=colours[-1], under=_TRANSPARENT if under_transparent else None)
    # levels[:-1] as bounds, values >= levels[-2] drawn with the "over" colour
    return cmap, BoundaryNorm(levels[:-1], cmap.N)


# mm/h levels as on operational radar products (MeteoSwiss/pysteps style), colours light→dark
_PRECIP_LEVELS = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1e9]
_PRECIP_COLOURS = [
    "#9ecae1", "#4292c6", "#08519c", "#41ab5d", "#006d2c", "#fed976",
    "#fd8d3c", "#e31a1c", "#800026", "#cc4c02",
]  # fmt: skip
_PRECIP_FROM = {
    "mm/h": 1.0,
    "mm h-1": 1.0,
    "kg m-2 s-1": 3600.0,  # 1 kg m-2 of water = 1 mm; per second -> per hour
}


@COLOUR_SCALES.register("precipitation")
def precipitation_scale(units: str, values: np.ndarray) -> ColourScale:
    """Discrete mm/h scale 0.1-100 mm/h; below 0.1 mm/h transparent."""
    if units not in _PRECIP_FROM:
        raise ValueError(
            f"precipitation units must be one of {sorted(_PRECIP_FROM)}, got {units!r}"
        )
    factor = _PRECIP_FROM[units]
    cmap, norm = _discrete(_PRECIP_LEVELS, _PRECIP_COLOURS, under_transparent=True)
    return ColourScale(
        "precipitation", "precipitation rate [mm/h]", cmap, norm, lambda v: v * factor, "max"
    )


@COLOUR_SCALES.register("accumulation")
def accumulation_scale(units: str, values: np.ndarray) -> ColourScale:
    """Discrete mm scale (same levels as rates); below 0.1 mm transparent."""
    if units != "mm":
        raise ValueError(f"accumulation units must be 'mm', got {units!r}")
    cmap, norm = _discrete(_PRECIP_LEVELS, _PRECIP_COLOURS, under_transparent=True)
    return ColourScale("accumulation", "precipitation [mm]", cmap, norm, _IDENTITY, "max")


@COLOUR_SCALES.register("reflectivity")
def reflectivity_scale(units: str, values: np.ndarray) -> ColourScale:
    """Discrete dBZ scale 5-65 dBZ in 5 dBZ steps; below 5 dBZ transparent."""
    if units != "dBZ":
        raise ValueError(f"reflectivity units must be 'dBZ', got {units!r}")
    levels = [float(v) for v in range(5, 70, 5)] + [1e9]
    colours = [mpl.colormaps["turbo"](i / (len(levels) - 2)) for i in range(len(levels) - 1)]
    cmap, norm = _discrete(levels, [mpl.colors.to_hex(c) for c in colours], True)
    return ColourScale("reflectivity", "reflectivity [dBZ]", cmap, norm, _IDENTITY, "max")


_TO_CELSIUS = {"K": -273.15, "degC": 0.0}


_TEMPERATURE_STEPS = (0.5, 1.0, 2.0, 5.0)  # °C; the finest giving at most 24 colours is used


@COLOUR_SCALES.register("temperature")
def temperature_scale(units: str, values: np.ndarray) -> ColourScale:
    """Diverging discrete °C scale over the data's 1st-99th percentile (at least 10 °C wide)."""
    if units not in _TO_CELSIUS:
        raise ValueError(f"temperature units must be one of {sorted(_TO_CELSIUS)}, got {units!r}")
    shift = _TO_CELSIUS[units]
    celsius = values + shift if values.size else np.array([0.0, 20.0])
    lo, hi = np.percentile(celsius, [1, 99])
    hi = max(hi, lo + 10.0)
    step = next((s for s in _TEMPERATURE_STEPS if (hi - lo) / s <= 24), 10.0)
    lo, hi = step * np.floor(lo / step), step * np.ceil(hi / step)
    levels = np.arange(lo, hi + step / 2, step)
    cmap = mpl.colormaps["RdYlBu_r"].resampled(len(levels) - 1)
    norm = BoundaryNorm(levels, cmap.N)
    return ColourScale("temperature", "temperature [°C]", cmap, norm, lambda v: v + shift, "both")


_COUNT_STEPS = [1, 2, 5]


@COLOUR_SCALES.register("counts")
def counts_scale(units: str, values: np.ndarray) -> ColourScale:
    """Discrete 1-2-5 steps from 1 up to the data maximum; zero counts transparent."""
    top = float(values.max()) if values.size else 10.0
    levels: list[float] = []
    decade = 1.0
    while not levels or levels[-1] <= top:
        levels += [decade * s for s in _COUNT_STEPS]
        decade *= 10.0
    levels = levels[: max(3, next(i for i, v in enumerate(levels) if v > top) + 1)]
    cmap = mpl.colormaps["YlOrRd"].resampled(len(levels) - 1)
    cmap = cmap.with_extremes(under=_TRANSPARENT, over=cmap(cmap.N - 1))
    norm = BoundaryNorm(levels, cmap.N)
    return ColourScale("counts", f"counts [{units or 'count'}]", cmap, norm, _IDENTITY, "max")


@COLOUR_SCALES.register("generic")
def generic_scale(units: str, values: np.ndarray) -> ColourScale:
    """Continuous viridis over the 2nd-98th percentile of the data."""
    lo, hi = np.percentile(values, [2, 98]) if values.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    label = f"value [{units}]" if units else "value"
    cmap = mpl.colormaps["viridis"]
    return ColourScale("generic", label, cmap, Normalize(lo, hi), _IDENTITY, "both")
