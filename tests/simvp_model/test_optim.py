"""LR / momentum schedules pinned to hand-computed OpenSTL (OneCycleLR, timm cosine) values."""

from __future__ import annotations

import math

import pytest
import torch

from simvp_model.optim import ScheduleSpec, build_optimizer, build_scheduler, cosine_lr


def _trace(name: str, spec: ScheduleSpec, steps: int) -> tuple[list[float], list[float], str]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer("adam", [param], spec.lr)
    config = build_scheduler(name, optimizer, spec)
    lrs, betas = [], []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        betas.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        config["scheduler"].step()
    return lrs, betas, config["interval"]


def test_onecycle_lr_and_beta1() -> None:
    lrs, betas, interval = _trace("onecycle", ScheduleSpec(1e-3, epochs=10, total_steps=100), 100)
    assert interval == "step"
    # start lr/25, peak lr at step 0.3·100 - 1 = 29, end lr/25/1e4 at step 99
    assert lrs[0] == pytest.approx(4e-5, rel=1e-9)
    assert lrs[29] == pytest.approx(1e-3, rel=1e-9)
    assert lrs[99] == pytest.approx(4e-9, rel=1e-6)
    # halfway through the annealing phase ((64 - 29) / (99 - 29) = 0.5): cosine midpoint
    assert lrs[64] == pytest.approx((1e-3 + 4e-9) / 2, rel=1e-9)
    # Adam β1 cycles inversely: 0.95 → 0.85 (at the LR peak) → 0.95, midpoint 0.9
    assert betas[0] == pytest.approx(0.95)
    assert betas[29] == pytest.approx(0.85)
    assert betas[64] == pytest.approx(0.90)
    assert betas[99] == pytest.approx(0.95)
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 29


def test_cosine_with_warmup_timm_values() -> None:
    lrs, betas, interval = _trace(
        "cosine", ScheduleSpec(1e-3, epochs=10, total_steps=1000, warmup_epochs=2), 12
    )
    assert interval == "epoch"
    expected = [
        1e-5,  # warmup_lr_init
        1e-5 + (1e-3 - 1e-5) / 2,  # linear warm-up, epoch 1 of 2
        1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + math.cos(math.pi * 2 / 10)),  # cosine not shifted
        None,
        None,
        1e-6 + 0.5 * (1e-3 - 1e-6),  # t = t_initial / 2
    ]
    for epoch, value in enumerate(expected):
        if value is not None:
            assert lrs[epoch] == pytest.approx(value, rel=1e-9), epoch
    assert lrs[10] == pytest.approx(1e-6) and lrs[11] == pytest.approx(1e-6)  # lr_min after
    assert set(betas) == {0.9}  # Adam default, untouched


def test_cosine_no_warmup_and_constant() -> None:
    assert cosine_lr(0, 5e-3, 50, 0) == pytest.approx(5e-3)
    assert cosine_lr(25, 5e-3, 50, 0) == pytest.approx(1e-6 + 0.5 * (5e-3 - 1e-6))
    lrs, _, _ = _trace("constant", ScheduleSpec(2e-4, epochs=3, total_steps=3), 3)
    assert lrs == [2e-4] * 3


def test_unknown_names_and_bad_spec() -> None:
    param = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="valid names"):
        build_optimizer("sgd", param, 1e-3)
    with pytest.raises(ValueError, match="valid names"):
        build_scheduler("step", build_optimizer("adam", param, 1e-3), ScheduleSpec(1e-3, 1, 1))
    with pytest.raises(ValueError, match="warmup_epochs"):
        ScheduleSpec(1e-3, epochs=2, total_steps=10, warmup_epochs=3)
