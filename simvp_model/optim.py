"""Optimisers and learning-rate schedules of the SimVP recipes (OpenSTL semantics).

Schedule contract (registry :data:`SCHEDULERS`): a factory
``(optimizer, ScheduleSpec) -> dict`` returning Lightning's ``lr_scheduler`` config
``{"scheduler": torch LRScheduler, "interval": "step" | "epoch", "frequency": 1}``.

- ``onecycle``: ``torch.optim.lr_scheduler.OneCycleLR(max_lr=lr, total_steps=total_steps,
  final_div_factor=1e4)`` with torch defaults (pct_start 0.3, cosine annealing, div_factor 25)
  and ``cycle_momentum=True``, so Adam's β1 cycles 0.95 → 0.85 → 0.95; stepped every
  optimiser step. LR goes ``lr/25 → lr`` (at step ``0.3·total - 1``) ``→ lr/25/1e4``.
- ``cosine``: timm ``CosineLRScheduler(t_initial=epochs, lr_min=1e-6, warmup_lr_init=1e-5,
  warmup_t=warmup_epochs)`` (warmup_prefix False, one cycle), stepped per epoch; written as a
  ``LambdaLR`` (no timm dependency). Epoch ``e < w``: ``1e-5 + e·(lr - 1e-5)/w``; else
  ``1e-6 + ½(lr - 1e-6)(1 + cos(π·e/epochs))``.
- ``constant``: the base LR throughout (fine-tuning, tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

from simvp_model.registry import Registry

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float, float], Optimizer]
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")

# timm CosineLRScheduler values used by every OpenSTL cosine config.
COSINE_LR_MIN = 1e-6
COSINE_WARMUP_LR_INIT = 1e-5
# OneCycleLR: OpenSTL passes final_div_factor=1e4; the rest are torch defaults.
ONECYCLE_FINAL_DIV_FACTOR = 1e4


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def build_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> Optimizer:
    """Optimiser ``name`` (``adam`` | ``adamw``) over ``params``."""
    return OPTIMIZERS.get(name)(params, lr, weight_decay)


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule needs to know about the run.

    Parameters
    ----------
    lr : float
        Peak (base) learning rate.
    epochs : int
        Number of epochs of the run.
    total_steps : int
        Optimiser steps of the whole run (``epochs × steps per epoch``).
    warmup_epochs : int
        Linear warm-up epochs of ``cosine``.
    """

    lr: float
    epochs: int
    total_steps: int
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr=}")
        if self.epochs < 1 or self.total_steps < 1:
            raise ValueError(f"need epochs >= 1 and total_steps >= 1, got {self}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs=}")


SchedulerFactory = Callable[[Optimizer, ScheduleSpec], dict[str, Any]]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


@SCHEDULERS.register("onecycle")
def _onecycle(optimizer: Optimizer, spec: ScheduleSpec) -> dict[str, Any]:
    scheduler = OneCycleLR(
        optimizer,
        max_lr=spec.lr,
        total_steps=spec.total_steps,
        final_div_factor=ONECYCLE_FINAL_DIV_FACTOR,
        cycle_momentum=True,
    )
    return {"scheduler": scheduler, "interval": "step", "frequency": 1}


def cosine_lr(epoch: int, lr: float, epochs: int, warmup_epochs: int) -> float:
    """LR of timm's ``CosineLRScheduler`` at ``epoch`` (OpenSTL's cosine recipe).

    Parameters
    ----------
    epoch : int
        Zero-based epoch index.
    lr : float
        Base learning rate.
    epochs : int
        ``t_initial``: length of the single cosine cycle, in epochs.
    warmup_epochs : int
        ``warmup_t``; the cosine is not shifted by it (timm ``warmup_prefix=False``).
    """
    if epoch < warmup_epochs:
        return COSINE_WARMUP_LR_INIT + epoch * (lr - COSINE_WARMUP_LR_INIT) / warmup_epochs
    if epoch >= epochs:  # past the one cycle: timm holds lr_min
        return COSINE_LR_MIN
    return COSINE_LR_MIN + 0.5 * (lr - COSINE_LR_MIN) * (1 + math.cos(math.pi * epoch / epochs))


@SCHEDULERS.register("cosine")
def _cosine(optimizer: Optimizer, spec: ScheduleSpec) -> dict[str, Any]:
    def factor(epoch: int) -> float:
        return cosine_lr(epoch, spec.lr, spec.epochs, spec.warmup_epochs) / spec.lr

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "epoch", "frequency": 1}


@SCHEDULERS.register("constant")
def _constant(optimizer: Optimizer, spec: ScheduleSpec) -> dict[str, Any]:
    return {"scheduler": LambdaLR(optimizer, lambda _: 1.0), "interval": "epoch", "frequency": 1}


def build_scheduler(name: str, optimizer: Optimizer, spec: ScheduleSpec) -> dict[str, Any]:
    """Lightning ``lr_scheduler`` config of schedule ``name`` (see module docstring)."""
    return SCHEDULERS.get(name)(optimizer, spec)
