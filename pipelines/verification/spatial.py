"""Neighbourhood verification: the fractions skill score (FSS, Roberts & Lean 2008).

Events are values ``>= threshold``; pixels where either field is NaN are "no event" in both
(as in pySTEPS ``spatialscores.fss``). Each 2-D ``(y, x)`` binary field is turned into event
fractions over a ``scale × scale`` pixel window (``scipy.ndimage.uniform_filter``, zeros outside
the domain, as in pySTEPS), and the sums are pooled over ``dims``::

    FSS = 1 - Σ (P_f - P_o)² / (Σ P_f² + Σ P_o²)

FSS = 1 for identical event fields, 0 when the fractions never overlap (e.g. disjoint events at
scale 1); at scale 1 it equals ``2H / (2H + M + F)``. NaN when neither field has an event.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter

from data_catalog.vocabulary import X, Y
from pipelines.verification._common import Dims, as_dims, masked_pair
from pipelines.verification._registry import SCORES
from pipelines.verification.categorical import _check_threshold


def _fractions_2d(binary: np.ndarray, scale: int) -> np.ndarray:
    """Window means over the last two axes of ``binary`` (..., y, x), zeros outside."""
    size = (1,) * (binary.ndim - 2) + (scale, scale)
    return uniform_filter(binary.astype("float64"), size=size, mode="constant", cval=0.0)


def event_fractions(
    field: xr.DataArray, scale: int, spatial_dims: tuple[Hashable, Hashable] = (Y, X)
) -> xr.DataArray:
    """Fraction of event pixels in the ``scale × scale`` window around each pixel.

    Parameters
    ----------
    field : xr.DataArray
        0/1 (or bool) event field with the two ``spatial_dims``.
    scale : int
        Window side in pixels (1 = the field itself).
    spatial_dims : tuple of str
        The ``(y, x)`` dims; they are made single-chunk under Dask.

    Returns
    -------
    xr.DataArray
        float64, same dims as ``field``, values in [0, 1].
    """
    return xr.apply_ufunc(
        _fractions_2d,
        field,
        kwargs={"scale": scale},
        input_core_dims=[list(spatial_dims)],
        output_core_dims=[list(spatial_dims)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*field.dims)


@SCORES.register("fss")
def fss(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    threshold: float = 1.0,
    scale: int = 1,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> xr.DataArray:
    """Fractions skill score at ``threshold`` (fields' units) and window ``scale`` (pixels).

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same units with the ``spatial_dims``.
    dims : str, sequence of str or None
        Dims the sums are pooled over; must include both ``spatial_dims``.
    threshold : float
        Event threshold (``value >= threshold``).
    scale : int
        Neighbourhood side length in pixels, >= 1.
    spatial_dims : tuple of str
        Names of the ``(y, x)`` dims.

    Returns
    -------
    xr.DataArray
        FSS in [0, 1] over the remaining dims; NaN where neither field has an event.
    """
    threshold = _check_threshold(threshold)
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"FSS scale must be a positive integer number of pixels, got {scale!r}")
    reduce = as_dims(dims, forecast, observation)
    if not set(spatial_dims) <= set(reduce):
        raise ValueError(f"FSS pools over the spatial dims {spatial_dims}; got dims={reduce}")
    forecast, observation, valid = masked_pair(forecast, observation)
    p_f = event_fractions((forecast >= threshold) & valid, int(scale), spatial_dims)
    p_o = event_fractions((observation >= threshold) & valid, int(scale), spatial_dims)
    numerator = ((p_f - p_o) ** 2).sum(reduce)
    denominator = (p_f**2).sum(reduce) + (p_o**2).sum(reduce)
    return 1.0 - numerator / denominator.where(denominator > 0)
