"""Training objectives of the SimVP family.

``simvp_loss(config, pred, target)`` is the published objective for ``config.translator``: plain MSE
(mean over all elements, ``nn.MSELoss``) plus, for translators whose class sets
``uses_ddr_loss`` (TAU), ``tau_alpha`` × the differential divergence regulariser (spec §1.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from simvp_model.config import SimVPConfig
from simvp_model.normalisation import Normalisation
from simvp_model.registry import Registry
from simvp_model.translators import TRANSLATORS

DDR_EPS = 1e-12  # OpenSTL methods/tau.py: inside the log ratio and the log itself


def differential_divergence(
    pred: torch.Tensor, target: torch.Tensor, temperature: float = 0.1, eps: float = DDR_EPS
) -> torch.Tensor:
    """TAU differential divergence regulariser (OpenSTL ``diff_div_reg``).

    With ``Δ`` the T−1 frame differences flattened per sample over C·H·W,
    ``p = softmax(Δ_pred / τ)``, ``q = softmax(Δ_target / τ)`` (over the C·H·W axis):
    ``DDR = mean(p · log(p / (q + eps) + eps))`` over all ``B·(T−1)·C·H·W`` elements.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(B, T, C, H, W)``, same shape.
    temperature : float
        Softmax temperature τ.
    eps : float
        Numerical guard.

    Returns
    -------
    torch.Tensor
        Scalar; exactly 0 when ``T <= 2`` (as the reference).
    """
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(
            f"pred and target must be equal (B, T, C, H, W): {pred.shape=} {target.shape=}"
        )
    B, T = pred.shape[:2]
    if T <= 2:
        return pred.new_zeros(())
    d_pred = (pred[:, 1:] - pred[:, :-1]).reshape(B, T - 1, -1)  # (B, T-1, C*H*W)
    d_true = (target[:, 1:] - target[:, :-1]).reshape(B, T - 1, -1)
    p = F.softmax(d_pred / temperature, dim=-1)
    q = F.softmax(d_true / temperature, dim=-1)
    return (p * torch.log(p / (q + eps) + eps)).mean()


def simvp_loss(
    config: SimVPConfig, pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Published training loss of ``config``'s translator.

    Parameters
    ----------
    config : SimVPConfig
        Supplies the translator and ``tau_alpha`` / ``tau_temperature``.
    pred, target : torch.Tensor
        ``(B, T_out, C, H, W)`` normalised frames.

    Returns
    -------
    loss : torch.Tensor
        Scalar ``mse + alpha * ddr`` (alpha = 0 for translators without the regulariser).
    parts : dict
        ``{"mse": tensor, "ddr": tensor}`` (detached scalars, ``ddr`` is 0 when unused).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape=} {target.shape=}")
    mse = F.mse_loss(pred, target)
    if TRANSLATORS.get(config.translator).uses_ddr_loss and config.tau_alpha > 0:
        ddr = differential_divergence(pred, target, config.tau_temperature)
        loss = mse + config.tau_alpha * ddr
    else:
        ddr = mse.new_zeros(())
        loss = mse
    return loss, {"mse": mse.detach(), "ddr": ddr.detach()}


# ---------------------------------------------------------------------------------------------
# Losses for skewed physical fields (rain rate, counts): one registry, one signature.
#
# Contract of every entry of LOSSES: ``loss(pred, target, normalisation, spec) -> scalar tensor``
# with ``pred``/``target`` ``(B, T, C, H, W)`` in normalised units (what the network outputs) and
# ``spec`` the :class:`LossSpec`; the mean is over all elements, so values of different batch
# sizes average like ``nn.MSELoss``. Pixels with no observation are already filled in the target
# (the data path's NaN fill), so no NaN reaches a loss.
# ---------------------------------------------------------------------------------------------

# Shi et al. 2017 (TrajGRU, HKO-7), B-MSE/B-MAE: a pixel whose observed rain rate R [mm/h] is in
# [0, 2) weighs 1, [2, 5) 2, [5, 10) 5, [10, 30) 10 and >= 30 weighs 30.
BMSE_THRESHOLDS = (2.0, 5.0, 10.0, 30.0)
BMSE_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Largest transformed value the smooth physical decoding exponentiates (dBR 40 = 10,000 mm/h,
# log1p 20 = 5e8 counts): keeps float32 finite for a wild early prediction.
_EXP_CLAMP = {"dbr": 40.0, "log1p": 20.0}


@dataclass(frozen=True)
class LossSpec:
    """Which training loss, with its intensity weights.

    Parameters
    ----------
    name : str
        Name in :data:`LOSSES`: ``mse`` (the paper: MSE of the normalised, i.e. transformed
        dBR/log field), ``mse_physical`` (MSE of the field in physical units, mm/h or counts),
        ``bmse`` / ``bmae`` (intensity-weighted MSE / MAE of the normalised field, weights from the
        *observed* physical value), ``bmse_physical`` (weighted MSE in physical units).
    thresholds : tuple of float
        Increasing physical thresholds of the weight classes (default: Shi et al. 2017's mm/h).
    weights : tuple of float
        One weight per class, ``len(thresholds) + 1`` of them, all > 0.
    """

    name: str = "mse"
    thresholds: tuple[float, ...] = BMSE_THRESHOLDS
    weights: tuple[float, ...] = BMSE_WEIGHTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(v) for v in self.thresholds))
        object.__setattr__(self, "weights", tuple(float(v) for v in self.weights))
        if self.name not in LOSSES:
            raise ValueError(f"loss={self.name!r} is unknown; valid: {LOSSES.names()}")
        if len(self.weights) != len(self.thresholds) + 1:
            raise ValueError(
                f"need len(thresholds) + 1 weights, got {self.thresholds=} {self.weights=}"
            )
        if any(b <= a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError(f"thresholds must increase, got {self.thresholds=}")
        if not all(math.isfinite(w) and w > 0 for w in self.weights):
            raise ValueError(f"weights must be finite and > 0, got {self.weights=}")


LossFn = Callable[[torch.Tensor, torch.Tensor, Normalisation, LossSpec], torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")


def smooth_physical(z: torch.Tensor, normalisation: Normalisation) -> torch.Tensor:
    """Normalised ``(..., C, H, W)`` → physical units, differentiable everywhere.

    As :meth:`Normalisation.decode` but without the dBR floor's cut to 0 mm/h (which has zero
    gradient below the floor): ``10**(dBR/10)`` is at most the floor rate (0.1 mm/h) there.
    """
    offset, scale = normalisation._affine(z)
    y = z * scale + offset
    if normalisation.transform == "identity":
        return y
    y = torch.clamp(y, max=_EXP_CLAMP[normalisation.transform])
    return torch.pow(10.0, y / 10.0) if normalisation.transform == "dbr" else torch.expm1(y)


def intensity_weights(
    target: torch.Tensor, normalisation: Normalisation, spec: LossSpec
) -> torch.Tensor:
    """Per-pixel weight of the observed physical value's class (no gradient)."""
    with torch.no_grad():
        physical = normalisation.decode(target.float())  # (B, T, C, H, W)
        bounds = torch.tensor(spec.thresholds, dtype=physical.dtype, device=physical.device)
        classes = torch.bucketize(physical.contiguous(), bounds, right=True)
        weights = torch.tensor(spec.weights, dtype=target.dtype, device=target.device)
        return weights[classes]


@LOSSES.register("mse")
def _mse(pred: torch.Tensor, target: torch.Tensor, norm: Normalisation, spec: Any) -> torch.Tensor:
    return F.mse_loss(pred, target)


@LOSSES.register("mse_physical")
def _mse_physical(
    pred: torch.Tensor, target: torch.Tensor, norm: Normalisation, spec: Any
) -> torch.Tensor:
    return F.mse_loss(smooth_physical(pred, norm), smooth_physical(target, norm))


@LOSSES.register("bmse")
def _bmse(pred: torch.Tensor, target: torch.Tensor, norm: Normalisation, spec: Any) -> torch.Tensor:
    return (intensity_weights(target, norm, spec) * (pred - target) ** 2).mean()


@LOSSES.register("bmae")
def _bmae(pred: torch.Tensor, target: torch.Tensor, norm: Normalisation, spec: Any) -> torch.Tensor:
    return (intensity_weights(target, norm, spec) * (pred - target).abs()).mean()


@LOSSES.register("bmse_physical")
def _bmse_physical(
    pred: torch.Tensor, target: torch.Tensor, norm: Normalisation, spec: Any
) -> torch.Tensor:
    error = smooth_physical(pred, norm) - smooth_physical(target, norm)
    return (intensity_weights(target, norm, spec) * error**2).mean()


def training_loss(
    config: SimVPConfig,
    spec: LossSpec,
    pred: torch.Tensor,
    target: torch.Tensor,
    normalisation: Normalisation,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The chosen loss plus, for TAU, ``tau_alpha`` × DDR (as :func:`simvp_loss`).

    ``spec.name == "mse"`` gives exactly :func:`simvp_loss` (the paper's objective).

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    parts : dict
        ``{"mse": normalised MSE, "ddr": ..., spec.name: the chosen term}`` (detached).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape=} {target.shape=}")
    if spec.name == "mse":
        return simvp_loss(config, pred, target)
    term = LOSSES.get(spec.name)(pred, target, normalisation, spec)
    ddr = pred.new_zeros(())
    if TRANSLATORS.get(config.translator).uses_ddr_loss and config.tau_alpha > 0:
        ddr = differential_divergence(pred, target, config.tau_temperature)
    parts = {"mse": F.mse_loss(pred, target).detach(), "ddr": ddr.detach()}
    return term + config.tau_alpha * ddr, {**parts, spec.name: term.detach()}
