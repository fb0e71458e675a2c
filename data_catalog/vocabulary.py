"""The one dimension and naming vocabulary of simvp-nowcast (defined here, used everywhere).

Observation stores and reader outputs use dims ``(time, y, x)``; forecasts add ``init_time``
and ``lead_time``; tensors handed to the model are ``(B, T, C, H, W)`` with ``H`` ↔ ``y`` and
``W`` ↔ ``x`` and ``C`` ↔ the ``channel`` dim (one channel per catalog variable, in catalog
order). Variable names are lower ``snake_case`` (``precipitation_rate``, ``air_temperature``).
"""

from __future__ import annotations

import re

import pandas as pd

TIME = "time"
Y = "y"
X = "x"
LATITUDE = "latitude"
LONGITUDE = "longitude"
INIT_TIME = "init_time"
LEAD_TIME = "lead_time"
CHANNEL = "channel"
REALIZATION = "realization"
THRESHOLD = "threshold"
CRS = "crs"
"""Name of the scalar grid-mapping variable (``grid_mapping = "crs"`` on data variables)."""

OBSERVATION_DIMS: tuple[str, str, str] = (TIME, Y, X)
"""Dims of every observation data variable, in this order."""
FORECAST_DIMS: tuple[str, str, str, str] = (INIT_TIME, LEAD_TIME, Y, X)
"""Dims of every forecast data variable, in this order."""
TENSOR_DIMS: tuple[str, str, str, str, str] = ("B", "T", "C", "H", "W")
"""Model tensor layout: batch, time, channel, height (y), width (x)."""

SOURCE_KINDS: tuple[str, ...] = ("radar", "climate", "crowd-flow")
"""Allowed ``kind`` of a catalog source."""

PHYSICAL_UNITS: tuple[str, ...] = ("mm/h", "mm", "dBZ", "K", "degC", "count", "1")
"""Units a catalog variable may declare (what readers return; see ``pipelines.readers``)."""

#: CF standard names of the 1-D ``y``/``x`` coords for projected and geographic grids.
PROJECTED_STANDARD_NAMES = {Y: "projection_y_coordinate", X: "projection_x_coordinate"}
GEOGRAPHIC_STANDARD_NAMES = {Y: "latitude", X: "longitude"}

_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def check_variable_name(name: str) -> str:
    """Return ``name`` if it is lower snake_case, else raise ``ValueError``."""
    if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
        raise ValueError(f"variable name must be lower snake_case like 'rain_rate', got {name!r}")
    if name in (TIME, Y, X, LATITUDE, LONGITUDE, INIT_TIME, LEAD_TIME, CHANNEL, CRS):
        raise ValueError(f"variable name {name!r} is reserved for a dimension or coordinate")
    return name


def check_source_name(name: str) -> str:
    """Return ``name`` if it is a lower-case kebab name like ``mch-radar``, else raise."""
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise ValueError(
            f"source name must be lower-case kebab-case like 'mch-radar', got {name!r}"
        )
    return name


def duration_text(delta: object) -> str:
    """A duration as users write it (like a catalog ``time_step``): ``5min``, ``1h``, ``1h30min``,
    ``2D``, ``1D6h``; sub-minute parts as seconds (``90s``).

    Parameters
    ----------
    delta : timedelta-like
        Anything ``pandas.Timedelta`` accepts (``numpy.timedelta64``, ``datetime.timedelta``).

    Returns
    -------
    str
        Text that ``pandas.Timedelta`` parses back to the same value.
    """
    total = pd.Timedelta(delta)
    sign, total = ("-", -total) if total < pd.Timedelta(0) else ("", total)
    seconds = int(total.total_seconds())
    if seconds % 60:
        return f"{sign}{seconds}s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}D" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}min" if minutes else "",
    ]
    return sign + ("".join(parts) or "0min")
