"""Training objectives of the SimVP family.

``simvp_loss(config, pred, target)`` is the published objective for ``config.translator``: plain MSE
(mean over all elements, ``nn.MSELoss``) plus, for translators whose class sets
``uses_ddr_loss`` (TAU), ``tau_alpha`` × the differential divergence regulariser (spec §1.6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simvp_model.config import SimVPConfig
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
