"""Image-quality scores per 2-D frame: SSIM and PSNR (meaningful for bounded fields).

Both are computed per ``(y, x)`` frame and then averaged over the other dims in ``dims`` (as in
the video-prediction literature, OpenSTL ``metrics.py``). ``data_range`` is the physical range
of the field (max - min possible value, e.g. 10 mm/h for a capped radar scale); it must be given,
never guessed from dtype (the OpenSTL/skimage-0.16 default of 2 for floats is a known pitfall).

NaN policy: SSIM needs complete frames, so pixels where either field is NaN are set to 0 in
*both* fields before SSIM (identical pixels, a documented slight inflation); PSNR leaves them
out of the per-frame MSE.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr
from skimage.metrics import structural_similarity

from data_catalog.vocabulary import X, Y
from pipelines.verification._common import Dims, as_dims, masked_pair
from pipelines.verification._registry import SCORES


def _check_data_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, int | float):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return float(data_range)


def _frame_dims(
    reduce: tuple[Hashable, ...], spatial_dims: tuple[Hashable, Hashable]
) -> list[Hashable]:
    if not set(spatial_dims) <= set(reduce):
        raise ValueError(f"frame scores need the spatial dims {spatial_dims} in dims={reduce}")
    return [d for d in reduce if d not in spatial_dims]


def _ssim_2d(forecast: np.ndarray, observation: np.ndarray, data_range: float) -> np.float64:
    return np.float64(structural_similarity(forecast, observation, data_range=data_range))


@SCORES.register("ssim")
def ssim(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    data_range: float = 1.0,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> xr.DataArray:
    """Mean structural similarity of the frames (skimage defaults: 7×7 uniform window).

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields with the ``spatial_dims`` (each at least 7 × 7 pixels).
    dims : str, sequence of str or None
        Must include ``spatial_dims``; SSIM is averaged over the others.
    data_range : float
        Physical range of the field (units of the fields).
    spatial_dims : tuple of str
        Names of the ``(y, x)`` dims.

    Returns
    -------
    xr.DataArray
        Dimensionless, at most 1, over the remaining dims.
    """
    data_range = _check_data_range(data_range)
    reduce = as_dims(dims, forecast, observation)
    others = _frame_dims(reduce, spatial_dims)
    forecast, observation, valid = masked_pair(forecast, observation)
    per_frame = xr.apply_ufunc(
        _ssim_2d,
        forecast.where(valid, 0.0).astype("float64"),
        observation.where(valid, 0.0).astype("float64"),
        kwargs={"data_range": data_range},
        input_core_dims=[list(spatial_dims), list(spatial_dims)],
        vectorize=True,
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"allow_rechunk": True},
    )
    return per_frame.mean(others) if others else per_frame


@SCORES.register("psnr")
def psnr(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    data_range: float = 1.0,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> xr.DataArray:
    """Mean per-frame peak signal-to-noise ratio ``10 log10(data_range² / MSE_frame)`` in dB.

    Frames with zero error give ``inf`` (and so does their mean), as the formula says.

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields with the ``spatial_dims``.
    dims : str, sequence of str or None
        Must include ``spatial_dims``; PSNR is averaged over the others.
    data_range : float
        Physical range of the field (units of the fields).
    spatial_dims : tuple of str
        Names of the ``(y, x)`` dims.
    """
    data_range = _check_data_range(data_range)
    reduce = as_dims(dims, forecast, observation)
    others = _frame_dims(reduce, spatial_dims)
    forecast, observation, _ = masked_pair(forecast, observation)
    frame_mse = ((forecast - observation) ** 2).mean(list(spatial_dims), skipna=True)
    with np.errstate(divide="ignore"):
        per_frame = 10.0 * np.log10(data_range**2 / frame_mse)
    return per_frame.mean(others) if others else per_frame
