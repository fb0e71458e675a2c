"""CRS helpers every layer shares: CF grid-mapping attributes and a short name for messages.

pyproj warns ("angle from rectified to skew grid parameter lost in conversion to CF") when an
oblique projection such as the Swiss ``somerc`` is written as CF grid-mapping terms. The full
definition stays in the ``crs_wkt`` attribute, which CF readers (pyproj, cartopy, GDAL) use, so
the warning is expected; :func:`cf_grid_mapping` is the one place that handles it.
"""

from __future__ import annotations

import warnings

import pyproj

_SKEW_WARNING = "angle from rectified to skew grid parameter lost in conversion to CF"
_LABEL_MAX = 200
"""Longest CRS text shown as is in a message; a WKT (thousands of characters) is named instead."""


def cf_grid_mapping(crs: pyproj.CRS | str) -> dict[str, object]:
    """CF grid-mapping attributes of ``crs`` (``pyproj.CRS.to_cf()``, including ``crs_wkt``).

    Parameters
    ----------
    crs : pyproj.CRS or str
        Anything ``pyproj.CRS.from_user_input`` accepts.

    Returns
    -------
    dict
        Attributes for the scalar ``crs`` variable of a dataset.
    """
    crs = pyproj.CRS.from_user_input(crs)
    with warnings.catch_warnings():
        # Expected for oblique projections; the crs_wkt attribute keeps the full definition.
        warnings.filterwarnings("ignore", _SKEW_WARNING, UserWarning)
        return dict(crs.to_cf())


def crs_label(crs: pyproj.CRS | str) -> str:
    """A short name of ``crs`` for messages: its text if short, else ``EPSG:n``, PROJ or name.

    Parameters
    ----------
    crs : pyproj.CRS or str
        The CRS, or the text it was given as.

    Returns
    -------
    str
        At most about 200 characters.
    """
    text = crs if isinstance(crs, str) else crs.to_string()
    if len(text) <= _LABEL_MAX:
        return text
    parsed = pyproj.CRS.from_user_input(crs)
    authority = parsed.to_authority()
    if authority:
        return ":".join(authority)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You will likely lose important projection", UserWarning)
        proj = parsed.to_proj4()
    return proj if proj and len(proj) <= _LABEL_MAX else parsed.name
