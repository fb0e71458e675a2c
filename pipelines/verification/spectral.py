"""Sharpness: radially averaged power spectral density (RAPSD) of forecasts and observations.

A forecast that blurs loses power at small scales. :func:`rapsd` computes pySTEPS'
``pysteps.utils.spectral.rapsd`` (``|FFT|² / size`` averaged over rings of equal wavenumber)
of every 2-D ``(y, x)`` field, with a ``wavelength`` coordinate in pixels of the evaluated grid
(``l / k`` for ring ``k = 1 .. l/2``, ``l = max(ny, nx)``; ring 0, the field mean, is dropped).
The registered score ``rapsd_ratio`` is the forecast's mean spectrum over the observed one per
wavelength::

    ratio(λ) = mean_dims P_f(λ) / mean_dims P_o(λ)

1 = as much variance at that scale as observed, < 1 = smoothed (blurred), > 1 = noisier.
Unlike the other scores the result gains a ``wavelength`` dim (in pixels; multiply by the grid
spacing for km).

NaN policy: pixels where either field is NaN are set to 0 in *both* fields before the FFT (the
same pixels for forecast and observation, so the mask affects both spectra alike); a ring with
no observed power gives NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from pysteps.utils.spectral import rapsd as pysteps_rapsd

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, X, Y
from pipelines.verification._common import Dims, as_dims, masked_pair
from pipelines.verification._registry import SCORES

WAVELENGTH = "wavelength"
"""Dim of the spectra: wavelength in pixels of the evaluated grid."""


def _rapsd_2d(field: np.ndarray) -> np.ndarray:
    """RAPSD of the last two axes of ``field`` (..., y, x) without ring 0: (..., l // 2 ...)."""
    flat = field.reshape(-1, *field.shape[-2:])  # (N, y, x)
    spectra = [pysteps_rapsd(f, fft_method=np.fft)[1:] for f in flat]
    return np.stack(spectra).reshape(*field.shape[:-2], -1)  # (..., wavenumber)


def wavelengths(ny: int, nx: int) -> np.ndarray:
    """Wavelength in pixels of each ring of :func:`rapsd` (``l / k``, k = 1, 2, ...)."""
    size = max(ny, nx)
    rings = size // 2 + 1 if size % 2 else size // 2  # pySTEPS' ring count
    return size / np.arange(1, rings)


def rapsd(field: xr.DataArray, spatial_dims: tuple[Hashable, Hashable] = (Y, X)) -> xr.DataArray:
    """Radially averaged power spectral density of each 2-D field.

    Parameters
    ----------
    field : xr.DataArray
        Finite values with the two ``spatial_dims`` (fill NaN first).
    spatial_dims : tuple of str
        The ``(y, x)`` dims; made single-chunk under Dask.

    Returns
    -------
    xr.DataArray
        float64, the other dims of ``field`` then :data:`WAVELENGTH` (pixels, decreasing),
        in the field's units².
    """
    ny, nx = (field.sizes[d] for d in spatial_dims)
    lam = wavelengths(ny, nx)
    out = xr.apply_ufunc(
        _rapsd_2d,
        field.astype("float64"),
        input_core_dims=[list(spatial_dims)],
        output_core_dims=[[WAVELENGTH]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": {WAVELENGTH: len(lam)}},
    )
    return out.assign_coords({WAVELENGTH: lam})


def mean_spectra(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean RAPSD of the forecast and of the observation over ``dims`` (joint NaN mask → 0).

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same units with the ``spatial_dims``.
    dims : str, sequence of str or None
        Dims averaged over; must include both ``spatial_dims`` (the spectrum replaces them).

    Returns
    -------
    (forecast_psd, observation_psd) : tuple of xr.DataArray
        Over the remaining dims and :data:`WAVELENGTH`, units².
    """
    reduce = as_dims(dims, forecast, observation)
    if not set(spatial_dims) <= set(reduce):
        raise ValueError(f"RAPSD replaces the spatial dims {spatial_dims}; got dims={reduce}")
    forecast, observation, _ = masked_pair(forecast, observation)
    others = [d for d in reduce if d not in spatial_dims]
    psd_f = rapsd(forecast.fillna(0.0), spatial_dims).mean(others)
    psd_o = rapsd(observation.fillna(0.0), spatial_dims).mean(others)
    return psd_f, psd_o


@SCORES.register("rapsd_ratio")
def rapsd_ratio(
    forecast: xr.DataArray,
    observation: xr.DataArray,
    dims: Dims = None,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> xr.DataArray:
    """Forecast over observed mean power per wavelength (1 = as sharp as observed).

    Parameters
    ----------
    forecast, observation : xr.DataArray
        Fields in the same units with the ``spatial_dims``.
    dims : str, sequence of str or None
        Dims pooled over; must include both ``spatial_dims``.
    spatial_dims : tuple of str
        The ``(y, x)`` dims.

    Returns
    -------
    xr.DataArray
        Dimensionless, over the remaining dims and :data:`WAVELENGTH` (pixels); NaN where
        the observation has no power at that wavelength.
    """
    psd_f, psd_o = mean_spectra(forecast, observation, dims, spatial_dims)
    return psd_f / psd_o.where(psd_o > 0)


def spectra_by_method(
    observation: xr.DataArray,
    forecasts: dict[str, xr.DataArray],
    dims: Dims,
    spatial_dims: tuple[Hashable, Hashable] = (Y, X),
) -> dict[str, xr.DataArray]:
    """Mean RAPSD of each method's forecasts and of the observations (key ``"observed"``).

    Parameters
    ----------
    observation : xr.DataArray
        Verifying fields, e.g. ``(init_time, lead_time, channel, y, x)``.
    forecasts : dict of str to xr.DataArray
        Method name → forecasts on the same windows.
    dims : sequence of str
        Dims averaged over (the spatial dims and e.g. ``init_time``).

    Returns
    -------
    dict of str to xr.DataArray
        ``"observed"`` first, then each method; remaining dims and :data:`WAVELENGTH`. Each
        method's spectrum uses the joint NaN mask of its pair; the observed one the mask of the
        first method (the masks are the observation's NaN for finite forecasts).
    """
    out: dict[str, xr.DataArray] = {}
    for name, fc in forecasts.items():
        psd_f, psd_o = mean_spectra(fc, observation, dims, spatial_dims)
        out.setdefault("observed", psd_o)
        out[name] = psd_f
    return out


def spectral_rows(
    observation: xr.DataArray,
    forecasts: dict[str, xr.DataArray],
    dims: Sequence[Hashable] = (INIT_TIME, Y, X),
) -> tuple[pd.DataFrame, dict[str, xr.DataArray]]:
    """``rapsd_ratio`` rows for ``scores.csv`` and the spectra of the first channel to plot.

    Parameters
    ----------
    observation : xr.DataArray
        ``(init_time, lead_time, channel, y, x)`` verifying frames.
    forecasts : dict of str to xr.DataArray
        Method name → forecasts on the same windows.
    dims : sequence of str
        Dims pooled over (windows and space).

    Returns
    -------
    rows : pandas.DataFrame
        ``method, score="rapsd_ratio", variable, threshold (NaN), scale`` (the wavelength in
        pixels), ``lead_time_minutes, value``.
    spectra : dict of str to xr.DataArray
        ``"observed"`` and each method: ``(lead_time, wavelength)`` mean power of channel 0.
    """
    spectra = spectra_by_method(observation, forecasts, tuple(dims))
    observed = spectra["observed"]
    minutes = observation[LEAD_TIME].values / np.timedelta64(1, "m")
    rows = []
    for name, psd in spectra.items():
        if name == "observed":
            continue
        ratio = (psd / observed.where(observed > 0)).transpose(LEAD_TIME, CHANNEL, WAVELENGTH)
        for c, variable in enumerate(observation[CHANNEL].values):
            for k, m in enumerate(minutes):
                for w, lam in enumerate(ratio[WAVELENGTH].values):
                    rows.append(
                        {
                            "method": name,
                            "score": "rapsd_ratio",
                            "variable": str(variable),
                            "threshold": np.nan,
                            "scale": float(lam),
                            "lead_time_minutes": float(m),
                            "value": float(ratio.values[k, c, w]),
                        }
                    )
    first = {k: v.isel({CHANNEL: 0}).transpose(LEAD_TIME, WAVELENGTH) for k, v in spectra.items()}
    return pd.DataFrame(rows), first
