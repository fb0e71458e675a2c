"""TAU translator (spec §1.6): gSTA's stack with statical × dynamical temporal attention.

Trained with MSE + ``tau_alpha`` · DDR (see :func:`simvp_model.losses.differential_divergence`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from simvp_model.layers import fan_out_normal_init_
from simvp_model.translators import TRANSLATORS
from simvp_model.translators.gsta import LargeKernelConv, MetaFormerBlock, MetaStack

if TYPE_CHECKING:
    from simvp_model.config import SimVPConfig

SE_REDUCTION = 16  # TemporalAttentionModule reduction; r = max(D // 16, 4), hidden = D // r
SE_MIN_RATIO = 4


class TemporalAttention(nn.Module):
    """``proj_2(SA · DA · U) + y`` with ``U = GELU(proj_1(y))``.

    SA = 1×1(DW7 dil3(DW5(U))) (intra-frame), DA = sigmoid(FC2(ReLU(FC1(avgpool(U)))))
    (inter-frame, squeeze-excitation over the T·hid_S channels).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.lka = LargeKernelConv(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        ratio = max(dim // SE_REDUCTION, SE_MIN_RATIO)
        self.fc = nn.Sequential(
            nn.Linear(dim, dim // ratio, bias=False),
            nn.ReLU(),
            nn.Linear(dim // ratio, dim, bias=False),
            nn.Sigmoid(),
        )
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, D, H, W) -> (N, D, H, W)``; ``y`` is the normalised block input."""
        u = self.act(self.proj_1(y))
        sa = self.conv1(self.lka(u))
        da = self.fc(u.mean(dim=(2, 3)))[:, :, None, None]  # (N, D) -> (N, D, 1, 1)
        return self.proj_2(sa * da * u).add_(y)  # in place: conv outputs are not saved


@TRANSLATORS.register("tau")
class TAU(MetaStack):
    """Temporal Attention Unit translator (OpenSTL ``model_type='tau'``)."""

    uses_ddr_loss: ClassVar[bool] = True

    def make_block(self, dim: int, config: SimVPConfig, drop_path: float) -> nn.Module:
        # The reference builds a GASubBlock (fan-out init over everything), *then* replaces its
        # attention by a fresh TemporalAttention, which therefore keeps PyTorch's default init.
        block = MetaFormerBlock(dim, nn.Identity(), config.mlp_ratio, config.drop, drop_path)
        block.apply(fan_out_normal_init_)
        block.attn = TemporalAttention(dim)
        return block
