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


# --- intensity-weighted and physical-space losses -------------------------------------------
from simvp_model.losses import (  # noqa: E402
    LOSSES,
    LossSpec,
    intensity_weights,
    smooth_physical,
    training_loss,
)
from simvp_model.normalisation import Normalisation  # noqa: E402

DBR = Normalisation("dbr", (0.0,), (10.0,), 0.1)  # normalised z = log10(R)


def _rates(values: list[float]) -> torch.Tensor:
    return DBR.encode(torch.tensor(values).reshape(1, len(values), 1, 1, 1))


def test_bmse_weights_are_shi_2017_classes():
    # 0, 1.9 -> 1; 2.01 -> 2; 7 -> 5; 10.01 -> 10; 29 -> 10; 31, 80 -> 30 (bounds 2/5/10/30 mm/h)
    w = intensity_weights(_rates([0.0, 1.9, 2.01, 7.0, 10.01, 29.0, 31.0, 80.0]), DBR, LossSpec())
    assert w.flatten().tolist() == [1, 1, 2, 5, 10, 10, 30, 30]


def test_bmse_hand_computed():
    target = _rates([1.0, 10.0])  # z = 0 and 1, weights 1 and 10
    pred = target + torch.tensor([0.5, -1.0]).reshape(1, 2, 1, 1, 1)
    loss, parts = training_loss(get_preset("tiny"), LossSpec("bmse"), pred, target, DBR)
    assert loss.item() == pytest.approx((1 * 0.25 + 10 * 1.0) / 2)
    assert parts["mse"].item() == pytest.approx((0.25 + 1.0) / 2)
    bmae = training_loss(get_preset("tiny"), LossSpec("bmae"), pred, target, DBR)[0]
    assert bmae.item() == pytest.approx((0.5 + 10 * 1.0) / 2)


def test_physical_loss_is_mse_in_mm_per_hour_with_gradient_below_the_floor():
    target = _rates([4.0, 0.0])
    pred = _rates([2.0, 0.0]).requires_grad_()
    loss, _ = training_loss(get_preset("tiny"), LossSpec("mse_physical"), pred, target, DBR)
    # R = 4 vs 2 -> 4; the floor pixel decodes smoothly to 0.1 mm/h on both sides -> 0
    assert loss.item() == pytest.approx(4.0 / 2, rel=1e-5)
    assert torch.allclose(smooth_physical(target, DBR)[0, 0], torch.tensor(4.0))
    loss.backward()
    assert pred.grad[0, 0].item() < 0  # pushes the 2 mm/h prediction up


def test_mse_spec_is_the_published_objective():
    cfg = get_preset("tiny").replace(translator="tau", tau_alpha=0.3)
    p, t = torch.randn(2, 4, 1, 8, 8), torch.randn(2, 4, 1, 8, 8)
    assert torch.equal(training_loss(cfg, LossSpec(), p, t, DBR)[0], simvp_loss(cfg, p, t)[0])
    # other losses keep TAU's regulariser
    ddr = differential_divergence(p, t, cfg.tau_temperature)
    bmse = training_loss(cfg, LossSpec("bmse"), p, t, DBR)[0]
    weighted = (intensity_weights(t, DBR, LossSpec()) * (p - t) ** 2).mean()
    assert bmse.item() == pytest.approx((weighted + 0.3 * ddr).item(), rel=1e-6)


def test_loss_spec_validation():
    assert set(LOSSES.names()) >= {"mse", "mse_physical", "bmse", "bmae", "bmse_physical"}
    with pytest.raises(ValueError, match="loss='huber' is unknown"):
        LossSpec("huber")
    with pytest.raises(ValueError, match="weights"):
        LossSpec("bmse", (1.0, 2.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="increase"):
        LossSpec("bmse", (2.0, 1.0), (1.0, 2.0, 3.0))
