"""simvp_loss and the TAU differential divergence regulariser."""

from __future__ import annotations

import math

import pytest
import torch

from simvp_model import get_preset
from simvp_model.losses import differential_divergence, simvp_loss


def test_ddr_zero_for_two_frames_or_fewer():
    for t in (1, 2):
        p, q = torch.randn(2, t, 1, 4, 4), torch.randn(2, t, 1, 4, 4)
        assert differential_divergence(p, q).item() == 0.0


def test_ddr_hand_computed():
    # B=1, T=3, C=1, H=1, W=2: pred differences [1, 0], [0, 0]; target differences all 0.
    pred = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).reshape(1, 3, 1, 1, 2)
    target = torch.zeros(1, 3, 1, 1, 2)
    tau, eps = 0.1, 1e-12
    a = 1 / (1 + math.exp(-1 / tau))  # softmax([10, 0])[0]
    # q = [0.5, 0.5] everywhere; second difference gives p = q -> p log(1 + eps) ~ 0
    terms = [
        a * math.log(a / (0.5 + eps) + eps),
        (1 - a) * math.log((1 - a) / (0.5 + eps) + eps),
        0.5 * math.log(0.5 / (0.5 + eps) + eps),
        0.5 * math.log(0.5 / (0.5 + eps) + eps),
    ]
    expected = sum(terms) / 4  # mean over B * (T-1) * C*H*W = 4 elements
    got = differential_divergence(pred.double(), target.double(), temperature=tau)
    assert got.item() == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.1732, abs=1e-4)
    # temperature matters
    assert differential_divergence(pred, target, temperature=1.0).item() < got.item()


def test_ddr_zero_when_differences_match():
    x = torch.randn(2, 5, 1, 4, 4)
    assert differential_divergence(x + 3.0, x).abs().item() < 1e-6


def test_simvp_loss_tau_and_others():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 4, 1, 8, 8), torch.randn(2, 4, 1, 8, 8)
    mse = torch.nn.functional.mse_loss(pred, target)
    ddr = differential_divergence(pred, target, 0.1)
    cfg = get_preset("tiny").replace(translator="tau")
    loss, parts = simvp_loss(cfg, pred, target)
    torch.testing.assert_close(loss, mse + 0.1 * ddr)
    torch.testing.assert_close(parts["mse"], mse)
    torch.testing.assert_close(parts["ddr"], ddr)
    loss2, _ = simvp_loss(cfg.replace(tau_alpha=0.5, tau_temperature=1.0), pred, target)
    torch.testing.assert_close(loss2, mse + 0.5 * differential_divergence(pred, target, 1.0))
    for name in ("gsta", "incepu"):
        loss, parts = simvp_loss(cfg.replace(translator=name), pred, target)
        torch.testing.assert_close(loss, mse)
        assert parts["ddr"].item() == 0.0


def test_simvp_loss_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        simvp_loss(get_preset("tiny"), torch.zeros(1, 4, 1, 8, 8), torch.zeros(1, 3, 1, 8, 8))


def test_simvp_loss_backward():
    pred = torch.randn(1, 4, 1, 4, 4, requires_grad=True)
    loss, _ = simvp_loss(get_preset("tiny").replace(translator="tau"), pred, torch.zeros_like(pred))
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
