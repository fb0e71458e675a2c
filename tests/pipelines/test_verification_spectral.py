"""RAPSD: equal to pySTEPS per field, ratio 1 for the observation itself, < 1 for a blurred one."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.utils.spectral import rapsd as pysteps_rapsd
from scipy.ndimage import gaussian_filter

from pipelines.verification import get_score
from pipelines.verification.spectral import WAVELENGTH, mean_spectra, rapsd, wavelengths

pytestmark = pytest.mark.timeout(60)

DIMS = ("init_time", "lead_time", "y", "x")


def _fields(shape=(3, 2, 32, 40), seed=0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    return xr.DataArray(rng.gamma(0.7, 2.0, shape), dims=DIMS)


def test_rapsd_is_pysteps_rapsd_with_wavelengths_in_pixels() -> None:
    field = _fields()
    spectra = rapsd(field)
    assert spectra.dims == ("init_time", "lead_time", WAVELENGTH)
    expected = pysteps_rapsd(field.values[1, 0], fft_method=np.fft)[1:]
    np.testing.assert_allclose(spectra.values[1, 0], expected)
    np.testing.assert_allclose(spectra[WAVELENGTH].values, 40 / np.arange(1, 20))
    assert len(wavelengths(33, 33)) == 16  # odd side: pySTEPS keeps rings 0..16
    lazy = rapsd(field.chunk({"init_time": 1}))
    xr.testing.assert_allclose(lazy.compute(), spectra)


def test_ratio_is_one_for_the_observation_and_below_one_when_blurred() -> None:
    obs = _fields()
    ratio = get_score("rapsd_ratio")
    same = ratio(obs, obs, ("init_time", "y", "x"))
    assert same.dims == ("lead_time", WAVELENGTH)
    np.testing.assert_allclose(same.values, 1.0)
    blurred = obs.copy(data=gaussian_filter(obs.values, sigma=(0, 0, 2, 2)))
    r = ratio(blurred, obs, ("init_time", "y", "x")).mean("lead_time")
    small = r.sel({WAVELENGTH: slice(4, 0)})  # wavelengths <= 4 px
    assert float(small.max()) < 0.2  # 2-px blur removes most power below 4 px
    assert float(r.isel({WAVELENGTH: 0})) > 0.5  # the domain-scale power stays


def test_nan_pixels_are_masked_in_both_fields() -> None:
    obs = _fields()
    obs[:, :, :4, :4] = np.nan
    fc = _fields(seed=1)
    psd_f, psd_o = mean_spectra(fc, obs, ("init_time", "lead_time", "y", "x"))
    masked_fc = fc.where(obs.notnull(), 0.0)
    expected = rapsd(masked_fc).mean(("init_time", "lead_time"))
    xr.testing.assert_allclose(psd_f, expected)
    assert np.isfinite(psd_o.values).all()
    with pytest.raises(ValueError, match="spatial dims"):
        mean_spectra(fc, obs, ("init_time",))


def test_spectral_rows_give_a_ratio_per_wavelength_and_the_spectra_to_plot() -> None:
    from pipelines.verification.spectral import spectral_rows

    obs = _fields((3, 2, 16, 16)).expand_dims(channel=["rain"], axis=2)
    obs = obs.assign_coords(lead_time=np.array([5, 10], dtype="timedelta64[m]").astype("m8[ns]"))
    rows, spectra = spectral_rows(obs, {"same": obs, "half": obs * 0.5})
    assert set(rows["score"]) == {"rapsd_ratio"} and len(rows) == 2 * 2 * 7  # 7 rings
    same = rows[rows["method"] == "same"]["value"]
    np.testing.assert_allclose(same, 1.0)
    np.testing.assert_allclose(rows[rows["method"] == "half"]["value"], 0.25)  # power scales as a²
    assert sorted(rows["scale"].unique()) == sorted(16 / np.arange(1, 8))
    assert list(spectra) == ["observed", "same", "half"]
    assert spectra["half"].dims == ("lead_time", WAVELENGTH)
