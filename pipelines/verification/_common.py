"""Helpers shared by the score modules: dims checks and the joint NaN mask."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import xarray as xr

Dims = str | Sequence[Hashable] | None


def as_dims(dims: Dims, *arrays: xr.DataArray) -> tuple[Hashable, ...]:
    """Normalise ``dims`` to a tuple and check every name exists in some input.

    Parameters
    ----------
    dims : str, sequence of str or None
        Dims to reduce over; ``None`` = the union of the inputs' dims.
    *arrays : xr.DataArray
        The inputs.
    """
    present: list[Hashable] = []
    for array in arrays:
        if not isinstance(array, xr.DataArray):
            raise TypeError(f"scores take xr.DataArray inputs, got {type(array).__name__}")
        present.extend(d for d in array.dims if d not in present)
    if dims is None:
        return tuple(present)
    out = (dims,) if isinstance(dims, str) else tuple(dims)
    missing = [d for d in out if d not in present]
    if missing:
        raise ValueError(f"cannot reduce over {missing}: inputs have dims {present}")
    return out


def masked_pair(
    forecast: xr.DataArray, observation: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Broadcast, align exactly and NaN both fields where either is NaN.

    Returns
    -------
    forecast, observation : xr.DataArray
        Broadcast against each other, NaN where either input is NaN.
    valid : xr.DataArray of bool
        True where both are finite numbers.
    """
    forecast, observation = xr.align(forecast, observation, join="exact")
    forecast, observation = xr.broadcast(forecast, observation)
    valid = forecast.notnull() & observation.notnull()
    return forecast.where(valid), observation.where(valid), valid
