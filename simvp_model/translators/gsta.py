"""SimVPv2 gated spatio-temporal attention translator "gSTA" (spec §1.5).

A plain stack of ``temporal_layers`` (N_T) MetaFormer blocks (OpenSTL ``MidMetaNet``): block 1 runs
at ``T_in * hid_S`` channels followed by a 1×1 reduction to ``hid_T``; blocks 2..N_T-1 at ``hid_T``;
block N_T at ``hid_T`` followed by a 1×1 expansion back to ``T_in * hid_S``. TAU (``tau.py``) reuses
this stack with a different attention module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from simvp_model.layers import DropPath, fan_out_normal_init_
from simvp_model.polyphase import PolyphaseDepthwiseConv2d
from simvp_model.translators import TRANSLATORS
from simvp_model.translators.base import Translator

if TYPE_CHECKING:
    from simvp_model.config import SimVPConfig

# Large-kernel attention of kernel 21 at dilation 3 (OpenSTL AttentionModule):
# DW 5×5 (pad 2) then DW 7×7 dilated by 3 (pad 9): receptive field 5 + 3 * 6 = 23.
LKA_KERNEL, LKA_DILATED_KERNEL, LKA_DILATION = 5, 7, 3
LAYER_SCALE_INIT = 1e-2  # GASubBlock init_value


class LargeKernelConv(nn.Module):
    """Depth-wise 5×5 → depth-wise 7×7 dilation 3 (``(N, D, H, W) -> (N, D, H, W)``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, LKA_KERNEL, padding=LKA_KERNEL // 2, groups=dim)
        # the reference's dilated DW conv (padding 9), computed phase by phase (same function)
        self.conv_spatial = PolyphaseDepthwiseConv2d(dim, LKA_DILATED_KERNEL, LKA_DILATION)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_spatial(self.conv0(x))


class GatedAttention(nn.Module):
    """gSTA token mixer: ``proj_2(gate(LKA(GELU(proj_1(y))))) + y`` with a sigmoid gate.

    ``gate(a) = F * sigmoid(G)`` with ``[F, G] = split(Conv1x1_{D->2D}(a))``, computed by the fused
    :func:`torch.nn.functional.glu` (same function as the reference ``sigmoid(G) * F``).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.lka = LargeKernelConv(dim)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, D, H, W) -> (N, D, H, W)``; ``y`` is the normalised block input."""
        u = self.act(self.proj_1(y))
        gated = F.glu(self.conv1(self.lka(u)), dim=1)  # (N, 2D, H, W) -> (N, D, H, W)
        return self.proj_2(gated).add_(y)  # in place: a conv's output is not saved for backward


class MixMlp(nn.Module):
    """Conv-MLP channel mixer: 1×1 (D→rD) → DW 3×3 → GELU → Dropout → 1×1 (rD→D) → Dropout."""

    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D, H, W) -> (N, D, H, W)``."""
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class MetaFormerBlock(nn.Module):
    """``x + DropPath(γ1 · attn(BN1(x)))`` then ``x + DropPath(γ2 · mlp(BN2(x)))``.

    Parameters
    ----------
    dim : int
        Channels D.
    attention : nn.Module
        Token mixer taking the normalised input ``(N, D, H, W)`` (its own shortcut included).
    mlp_ratio : float
        MLP hidden width = ``int(D * mlp_ratio)``.
    drop, drop_path : float
        Dropout in the MLP; stochastic-depth probability of both residual branches.
    """

    def __init__(
        self, dim: int, attention: nn.Module, mlp_ratio: float, drop: float, drop_path: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = attention
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = MixMlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))

    def _residual(self, x: torch.Tensor, gamma: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        """``x + DropPath(gamma * branch)`` as one fused ``addcmul`` (no (N, D, H, W) temporary).

        The per-sample DropPath mask is folded into the (N, D, 1, 1) scale, which equals the
        reference's ``(gamma * branch) * mask`` up to floating-point association.
        """
        scale = gamma[:, None, None]  # (D,) -> (D, 1, 1)
        if isinstance(self.drop_path, DropPath):
            mask = self.drop_path.sample_mask(x)  # (N, 1, 1, 1) or None in eval mode
            if mask is not None:
                scale = scale * mask  # (N, D, 1, 1)
        return torch.addcmul(x, branch, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D, H, W) -> (N, D, H, W)``."""
        x = self._residual(x, self.layer_scale_1, self.attn(self.norm1(x)))
        return self._residual(x, self.layer_scale_2, self.mlp(self.norm2(x)))


class MetaStack(Translator):
    """OpenSTL ``MidMetaNet``: N_T MetaFormer blocks with 1×1 channel changes after blocks 1, N_T.

    Subclasses provide :meth:`make_block` (one block at ``dim`` channels, already initialised).
    """

    def make_block(self, dim: int, config: SimVPConfig, drop_path: float) -> nn.Module:
        raise NotImplementedError

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        c_in = config.in_frames * config.spatial_hidden
        hid, n = config.temporal_hidden, config.temporal_layers
        # stochastic depth: linspace(0.01, drop_path, N_T); the last block uses drop_path itself
        dpr = [1e-2 + (config.drop_path - 1e-2) * i / (n - 1) for i in range(n)]
        dpr[-1] = config.drop_path
        dims = [c_in] + [hid] * (n - 1)
        outs = [hid] * (n - 1) + [c_in]
        self.blocks = nn.ModuleList()
        self.projections = nn.ModuleList()
        for i in range(n):
            self.blocks.append(self.make_block(dims[i], config, dpr[i]))
            # 1×1 reduction/expansion where the width changes (PyTorch default init)
            proj = nn.Conv2d(dims[i], outs[i], 1) if dims[i] != outs[i] else nn.Identity()
            self.projections.append(proj)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, T_in * hid_S, H', W') -> (B, T_in * hid_S, H', W')``."""
        for block, proj in zip(self.blocks, self.projections, strict=True):
            z = proj(block(z))
        return z


@TRANSLATORS.register("gsta")
class GSTA(MetaStack):
    """SimVPv2 gSTA translator (OpenSTL ``model_type='gSTA'``)."""

    def make_block(self, dim: int, config: SimVPConfig, drop_path: float) -> nn.Module:
        block = MetaFormerBlock(dim, GatedAttention(dim), config.mlp_ratio, config.drop, drop_path)
        block.apply(fan_out_normal_init_)  # GASubBlock._init_weights over the whole block
        return block
