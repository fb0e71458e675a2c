"""Probabilistic scores: exceedance probabilities, CRPS, Brier, reliability, ROC, rank histogram."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog.vocabulary import REALIZATION, THRESHOLD
from pipelines.verification.probabilistic import exceedance_probability


def _members(values: list[list[float]], units: str = "mm/h") -> xr.DataArray:
    """Ensemble ``(realization, x)`` from rows of members."""
    return xr.DataArray(
        np.asarray(values, dtype="float64"), dims=(REALIZATION, "x"), attrs={"units": units}
    )


def test_exceedance_probability_hand_case() -> None:
    ens = _members([[0.0, 1.0, np.nan], [2.0, 3.0, 1.0], [0.5, 5.0, 1.0]])
    prob = exceedance_probability(ens, [0.5, 1.0, 3.0])
    assert prob.dims == (THRESHOLD, "x")
    assert prob.dtype == np.float32
    expected = [[2 / 3, 1.0, np.nan], [1 / 3, 1.0, np.nan], [0.0, 2 / 3, np.nan]]
    np.testing.assert_allclose(prob.values, expected, rtol=1e-6)
    assert prob[THRESHOLD].attrs["units"] == "mm/h"
    assert prob.attrs["units"] == "1"


def test_exceedance_probability_bounded_and_monotone() -> None:
    rng = np.random.default_rng(0)
    ens = xr.DataArray(
        rng.gamma(0.5, 2.0, size=(7, 3, 8, 9)), dims=(REALIZATION, "lead_time", "y", "x")
    )
    prob = exceedance_probability(ens, [0.1, 0.5, 1.0, 5.0, 50.0])
    assert prob.dims == (THRESHOLD, "lead_time", "y", "x")
    assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0
    assert (prob.diff(THRESHOLD) <= 0).all()


@pytest.mark.parametrize("bad", [[], [1.0, 1.0], [2.0, 1.0], [float("nan")], ["1"]])
def test_exceedance_probability_rejects_bad_thresholds(bad: list) -> None:
    with pytest.raises(ValueError, match="threshold"):
        exceedance_probability(_members([[1.0]]), bad)


def test_exceedance_probability_needs_realization() -> None:
    with pytest.raises(ValueError, match="realization"):
        exceedance_probability(xr.DataArray(np.zeros(3), dims="x"), [1.0])
