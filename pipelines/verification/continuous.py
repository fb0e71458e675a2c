"""Continuous scores: MSE, MAE, RMSE, bias, and WeatherBench latitude-weighted RMSE and ACC.

All take ``(forecast, observation, dims=None)`` as stated in :mod:`pipelines.verification`; pixels
where either field is NaN are left out. Units: ``mse`` in units², the others in the fields' units,
``acc`` dimensionless in [-1, 1].

These are per-pixel means (the WeatherBench / "spatial_norm" convention). The literature's
"per-frame sum" MSE of OpenSTL is ``mse × C·H·W`` (see ``simvp_model.metrics``).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from data_catalog.vocabulary import LATITUDE, X, Y
from pipelines.verification._common import Dims, as_dims, masked_pair
from pipelines.verification._registry import SCORES


def _error(forecast: xr.DataArray, observation: xr.DataArray) -> xr.DataArray:
    forecast, observation, _ = masked_pair(forecast, observation)
    return forecast - observation


@SCORES.register("mse")
def mse(forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None) -> xr.DataArray:
    """Mean squared error ``mean((f - o)²)`` over ``dims``, units².

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same physical units, broadcast-compatible named dims.
    dims : str, sequence of str or None
        Dims averaged over; ``None`` = all.

    Returns
    -------
    xr.DataArray
        Over the remaining dims; NaN where no pixel is valid.
    """
    reduce = as_dims(dims, forecast, observation)
    return (_error(forecast, observation) ** 2).mean(reduce, skipna=True)


@SCORES.register("mae")
def mae(forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None) -> xr.DataArray:
    """Mean absolute error ``mean(|f - o|)`` over ``dims``, in the fields' units."""
    reduce = as_dims(dims, forecast, observation)
    return abs(_error(forecast, observation)).mean(reduce, skipna=True)


@SCORES.register("rmse")
def rmse(forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None) -> xr.DataArray:
    """Root mean squared error ``sqrt(mean((f - o)²))`` over ``dims`` (root of the pooled MSE)."""
    return np.sqrt(mse(forecast, observation, dims))


@SCORES.register("bias")
def bias(forecast: xr.DataArray, observation: xr.DataArray, dims: Dims = None) -> xr.DataArray:
    """Mean error ``mean(f - o)`` over ``dims`` (positive = forecast too high)."""
    reduce = as_dims(dims, forecast, observation)
    return _error(forecast, observation).mean(reduce, skipna=True)


def latitude_weights(latitude: xr.DataArray) -> xr.DataArray:
    """WeatherBench weights ``w = cos(lat) / mean(cos(lat))``.

    Parameters
    ----------
    latitude : xr.DataArray
        Latitude in degrees north, 1-D ``(y,)``/``(latitude,)`` or 2-D ``(y, x)`` on a regular
        latitude-longitude grid (where the 2-D mean equals the 1-D one).

    Returns
    -------
    xr.DataArray
        Same dims as ``latitude``, mean 1.
    """
    values = np.asarray(latitude)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.abs(values).max() > 90:
        raise ValueError(f"latitude must be finite degrees in [-90, 90], got {latitude!r}")
    weights = np.cos(np.deg2rad(latitude))
    return weights / weights.mean()


def _latitude_of(array: xr.DataArray, latitude: Hashable) -> xr.DataArray:
    if latitude not in array.coords:
        raise ValueError(
            f"latitude-weighted scores need a {latitude!r} coordinate (degrees); "
            f"the observation has coords {list(array.coords)}"
        )
    return array.coords[latitude].reset_coords(drop=True)


@SCORES.register("weighted_rmse")
def weighted_rmse(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    latitude: Hashable = LATITUDE,
) -> xr.DataArray:
    """Latitude-weighted RMSE as in WeatherBench: ``sqrt(mean(w · (f - o)²))`` over ``dims``.

    ``w`` = :func:`latitude_weights` of ``observation[latitude]``; pixels where either field is
    NaN are left out of the mean (WeatherBench ``compute_weighted_rmse``).

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same units; ``observation`` carries the latitude coordinate (degrees).
    dims : str, sequence of str or None
        Dims averaged over (should include the spatial dims).
    latitude : str
        Name of the latitude coordinate.
    """
    reduce = as_dims(dims, forecast, observation)
    weights = latitude_weights(_latitude_of(observation, latitude))
    return np.sqrt((weights * _error(forecast, observation) ** 2).mean(reduce, skipna=True))


@SCORES.register("acc")
def acc(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    climatology: xr.DataArray | None = None,
    latitude: Hashable = LATITUDE,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> xr.DataArray:
    """Latitude-weighted anomaly correlation coefficient (WeatherBench ``compute_weighted_acc``).

    With anomalies ``f_a = f - c`` and ``o_a = o - c`` against the climatology ``c``, centred by
    their unweighted means over ``dims`` (``f' = f_a - mean(f_a)``, ``o' = o_a - mean(o_a)``)::

        ACC = Σ w f' o' / sqrt(Σ w f'² · Σ w o'²)

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same units; ``observation`` carries the latitude coordinate.
    dims : str, sequence of str or None
        Dims summed over.
    climatology : xr.DataArray, optional
        Broadcastable to the fields, same units. WeatherBench uses the time mean of the verifying
        observations; ``None`` takes that: the mean of ``observation`` over the dims of ``dims``
        that are not spatial (``init_time`` ...), which is what
        :mod:`pipelines.evaluation.evaluate` uses.
    latitude : str
        Name of the latitude coordinate.
    spatial_dims : tuple of str
        The ``(y, x)`` dims (kept when taking the default climatology).

    Returns
    -------
    xr.DataArray
        Dimensionless over the remaining dims; NaN when an anomaly field is constant.
    """
    reduce = as_dims(dims, forecast, observation)
    weights = latitude_weights(_latitude_of(observation, latitude))
    forecast, observation, _ = masked_pair(forecast, observation)
    if climatology is None:
        spatial = set(weights.dims) | set(spatial_dims)
        time_like = [d for d in reduce if d not in spatial]
        if not time_like:
            raise ValueError(
                f"acc needs a climatology, or a non-spatial dim in {reduce=} to take the "
                "observation mean over"
            )
        climatology = observation.mean(time_like, skipna=True)
    f_anom = forecast - climatology
    o_anom = observation - climatology
    f_prime = f_anom - f_anom.mean(reduce, skipna=True)
    o_prime = o_anom - o_anom.mean(reduce, skipna=True)
    numerator = (weights * f_prime * o_prime).sum(reduce, skipna=True)
    denominator = np.sqrt(
        (weights * f_prime**2).sum(reduce, skipna=True)
        * (weights * o_prime**2).sum(reduce, skipna=True)
    )
    return numerator / denominator.where(denominator > 0)
