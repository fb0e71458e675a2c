"""Normalisation: transforms, per-channel affine, round trips, threshold behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simvp_model.normalisation import TRANSFORMS, Normalisation, fit_from, stack_channels


def test_registered_transforms() -> None:
    assert TRANSFORMS.names() == ["dbr", "identity", "log1p"]
    with pytest.raises(ValueError, match="valid names"):
        Normalisation("sqrt")


def test_affine_per_channel_hand_values() -> None:
    norm = Normalisation("identity", offset=(1.0, 10.0), scale=(2.0, 5.0))
    x = np.zeros((3, 2, 2, 2), dtype=np.float32)  # (T, C, H, W)
    x[:, 0] = 5.0
    x[:, 1] = 20.0
    z = norm.encode(x)
    np.testing.assert_allclose(z[:, 0], 2.0)  # (5 - 1) / 2
    np.testing.assert_allclose(z[:, 1], 2.0)  # (20 - 10) / 5
    assert z.dtype == np.float32
    np.testing.assert_allclose(norm.decode(z), x)


@pytest.mark.parametrize("transform,threshold", [("identity", None), ("log1p", None)])
def test_round_trip_numpy_and_torch(transform: str, threshold: float | None) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 50, size=(2, 4, 3, 8, 8)).astype(np.float32)  # (B, T, C, H, W)
    norm = Normalisation(transform, (0.5, 1.0, -2.0), (2.0, 0.5, 3.0), threshold)
    np.testing.assert_allclose(norm.decode(norm.encode(x)), x, rtol=1e-5, atol=1e-4)
    xt = torch.from_numpy(x)
    zt = norm.encode(xt)
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), norm.encode(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(norm.decode(zt).numpy(), x, rtol=1e-5, atol=1e-4)


def test_log1p_hand_value() -> None:
    norm = Normalisation("log1p")
    np.testing.assert_allclose(norm.encode(np.full((1, 1, 1), math.e - 1)), 1.0, rtol=1e-12)


def test_dbr_threshold_behaviour() -> None:
    norm = Normalisation("dbr", threshold=0.1)
    rain = np.array([0.0, 0.05, 0.1, 1.0, 10.0, np.nan], dtype=np.float32).reshape(1, 1, 6)
    dbr = norm.encode(rain)
    # 10·log10(max(R, 0.1)): 0 and 0.05 clamp to the -10 dBR floor, 1 mm/h = 0 dBR, 10 = 10.
    np.testing.assert_allclose(dbr[0, 0, :5], [-10, -10, -10, 0, 10], atol=1e-5)
    assert np.isnan(dbr[0, 0, 5])
    back = norm.decode(dbr)
    # At/below the threshold maps back to "no rain"; above it round-trips; NaN stays NaN.
    np.testing.assert_allclose(back[0, 0, :5], [0, 0, 0, 1, 10], rtol=1e-5)
    assert np.isnan(back[0, 0, 5])
    back_t = norm.decode(norm.encode(torch.from_numpy(rain)))
    np.testing.assert_allclose(back_t.numpy()[0, 0, :5], [0, 0, 0, 1, 10], rtol=1e-5)
    assert torch.isnan(back_t[0, 0, 5])


@pytest.mark.parametrize("offset,scale,threshold", [(5.3, 7.3, 0.1), (-3.1, 13.7, 0.01)])
def test_dbr_threshold_survives_affine_round_off(
    offset: float, scale: float, threshold: float
) -> None:
    norm = Normalisation("dbr", (offset,), (scale,), threshold)
    rain = np.array([0.0, threshold / 2, threshold, 0.2, 30.0], dtype=np.float32).reshape(1, 1, 5)
    expected = [0.0, 0.0, 0.0, 0.2, 30.0]
    np.testing.assert_allclose(norm.decode(norm.encode(rain))[0, 0], expected, rtol=1e-5)
    back = norm.decode(norm.encode(torch.from_numpy(rain)))
    np.testing.assert_allclose(back.numpy()[0, 0], expected, rtol=1e-5)


def test_dbr_needs_positive_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Normalisation("dbr")
    with pytest.raises(ValueError, match="threshold"):
        Normalisation("dbr", threshold=0.0)
    with pytest.raises(ValueError, match="takes no threshold"):
        Normalisation("identity", threshold=0.1)


def test_validation_and_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="scale"):
        Normalisation("identity", (0.0,), (0.0,))
    with pytest.raises(ValueError, match="one value per channel"):
        Normalisation("identity", (0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match="C=2"):
        Normalisation.identity(2).encode(np.zeros((4, 3, 8, 8)))


def test_dict_round_trip() -> None:
    norm = Normalisation("dbr", (1.5,), (4.0,), 0.1)
    data = norm.to_dict()
    assert data == {"transform": "dbr", "offset": [1.5], "scale": [4.0], "threshold": 0.1}
    assert Normalisation.from_dict(data) == norm
    with pytest.raises(ValueError, match="unknown"):
        Normalisation.from_dict({**data, "mean": 1})


def test_fit_from_nan_aware() -> None:
    data = np.array([[[[1.0, 3.0]], [[10.0, np.nan]]], [[[5.0, 7.0]], [[30.0, 20.0]]]])
    # (N=2, C=2, H=1, W=2): channel 0 = 1,3,5,7; channel 1 = 10,30,20 (NaN ignored)
    norm = fit_from(data)
    np.testing.assert_allclose(norm.offset, [4.0, 20.0])
    np.testing.assert_allclose(norm.scale, [math.sqrt(5.0), math.sqrt(200 / 3)])
    z = norm.encode(data)
    assert abs(np.nanmean(z[:, 0])) < 1e-12 and abs(np.nanstd(z[:, 1]) - 1) < 1e-12


def test_fit_from_transform_and_errors() -> None:
    rain = np.array([0.0, 1.0, 10.0, 100.0]).reshape(1, 1, 2, 2)
    norm = fit_from(rain, "dbr", threshold=0.1)
    # dBR values -10, 0, 10, 20: mean 5, std sqrt(125)
    np.testing.assert_allclose(norm.offset, [5.0])
    np.testing.assert_allclose(norm.scale, [math.sqrt(125.0)])
    with pytest.raises(ValueError, match="constant"):
        fit_from(np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="no finite"):
        fit_from(np.full((2, 1, 3, 3), np.nan))


def test_stack_channels() -> None:
    a, b = Normalisation("log1p", (1.0,), (2.0,)), Normalisation("log1p", (3.0,), (4.0,))
    assert stack_channels([a, b]) == Normalisation("log1p", (1.0, 3.0), (2.0, 4.0))
    with pytest.raises(ValueError, match="cannot stack"):
        stack_channels([a, Normalisation("identity")])
