"""Contingency-table scores pinned against a hand-counted table, NaN exclusion, pySTEPS, Dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.verification.detcatscores import det_cat_fct

from pipelines.verification.categorical import contingency_table, csi, far, pod

pytestmark = pytest.mark.timeout(60)

# Eight pixels at threshold 1 mm/h (event = value >= 1):
#   (0, 0) N | (0.5, 1.5) M | (1.0, 0.9) F | (2, 2.5) H | (5, 0) F
#   (NaN, 4) excluded | (3, NaN) excluded | (0.2, 1) M      -> H=1, M=2, F=2, N=1
FC = [0.0, 0.5, 1.0, 2.0, 5.0, np.nan, 3.0, 0.2]
OB = [0.0, 1.5, 0.9, 2.5, 0.0, 4.0, np.nan, 1.0]


def _fields() -> tuple[xr.DataArray, xr.DataArray]:
    return xr.DataArray(FC, dims="x"), xr.DataArray(OB, dims="x")


def test_contingency_table_by_hand_with_nan_pixels_excluded() -> None:
    fc, ob = _fields()
    table = contingency_table(fc, ob, threshold=1.0)
    counts = {name: int(table[name]) for name in table.data_vars}
    assert counts == {"hits": 1, "misses": 2, "false_alarms": 2, "correct_negatives": 1}
    assert float(csi(fc, ob, threshold=1.0)) == pytest.approx(1 / 5)
    assert float(pod(fc, ob, threshold=1.0)) == pytest.approx(1 / 3)
    assert float(far(fc, ob, threshold=1.0)) == pytest.approx(2 / 3)


def test_other_thresholds_and_zero_denominators() -> None:
    fc, ob = _fields()
    # threshold 5: only (5, 0) is a forecast event -> H=0, M=0, F=1
    assert float(csi(fc, ob, threshold=5.0)) == 0.0
    assert np.isnan(float(pod(fc, ob, threshold=5.0)))  # no observed event
    assert float(far(fc, ob, threshold=5.0)) == 1.0
    assert np.isnan(float(csi(fc, ob, threshold=100.0)))
    with pytest.raises(ValueError, match="threshold"):
        csi(fc, ob, threshold=float("nan"))


def test_per_lead_time_and_matches_pysteps_without_ties_or_nans() -> None:
    rng = np.random.default_rng(1)
    fc = xr.DataArray(rng.gamma(0.6, 2.0, size=(3, 10, 12)), dims=("lead_time", "y", "x"))
    ob = xr.DataArray(rng.gamma(0.6, 2.0, size=(3, 10, 12)), dims=("lead_time", "y", "x"))
    for thr in (0.1, 1.0, 5.0):
        ours = csi(fc, ob, ("y", "x"), threshold=thr)
        assert ours.dims == ("lead_time",)
        for lead in range(3):
            ref = det_cat_fct(fc.values[lead], ob.values[lead], thr, ["CSI", "POD", "FAR"])
            assert float(ours[lead]) == pytest.approx(ref["CSI"])
            assert float(pod(fc[lead], ob[lead], threshold=thr)) == pytest.approx(ref["POD"])
            assert float(far(fc[lead], ob[lead], threshold=thr)) == pytest.approx(ref["FAR"])


def test_eager_equals_dask() -> None:
    rng = np.random.default_rng(2)
    dims = ("init_time", "lead_time", "y", "x")
    fc = xr.DataArray(rng.gamma(0.6, 2.0, size=(4, 2, 8, 8)), dims=dims)
    ob = xr.DataArray(rng.gamma(0.6, 2.0, size=(4, 2, 8, 8)), dims=dims).where(lambda a: a < 6)
    for score in (csi, pod, far):
        eager = score(fc, ob, ("init_time", "y", "x"), threshold=1.0)
        lazy = score(fc.chunk({"init_time": 1}), ob.chunk({"y": 4}), ("init_time", "y", "x"), 1.0)
        xr.testing.assert_allclose(eager, lazy.compute())
