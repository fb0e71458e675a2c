"""SimVP V1 translator "Mid_Xnet" / OpenSTL ``MidIncepNet`` (spec §1.4): an Inception U-Net.

``temporal_layers`` (N_T) encoder and N_T decoder Inception blocks; the decoder consumes the
encoder outputs in mirror order through channel concatenation. PyTorch default init (as both
reference implementations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from simvp_model.translators import TRANSLATORS
from simvp_model.translators.base import Translator

if TYPE_CHECKING:
    from simvp_model.config import SimVPConfig


class GroupConvNormAct(nn.Module):
    """Grouped Conv2d → GroupNorm(groups) → LeakyReLU(0.2) (reference ``GroupConv2d``).

    Unlike the reference, ``groups`` is never silently reduced to 1: callers validate first.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups
        )
        self.norm = nn.GroupNorm(groups, out_channels)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H, W)``."""
        return self.act(self.norm(self.conv(x)))


class Inception(nn.Module):
    """1×1 bottleneck then the **sum** of parallel grouped branches with different kernels.

    Parameters
    ----------
    in_channels, hidden_channels, out_channels : int
        ``C_in -> C_hid`` (1×1 conv with bias) ``-> C_out`` (each branch).
    kernels : tuple of int
        Branch kernel sizes (3, 5, 7, 11 in SimVP).
    groups : int
        Groups of every branch conv and GroupNorm.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernels: tuple[int, ...],
        groups: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 1)
        self.branches = nn.ModuleList(
            GroupConvNormAct(hidden_channels, out_channels, k, groups) for k in kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H, W)``."""
        x = self.conv1(x)
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y += branch(x)  # in place, as the reference: LeakyReLU saves its input, not its output
        return y


@TRANSLATORS.register("incepu")
class InceptionUNet(Translator):
    """Inception U-Net translator (V1 ``Mid_Xnet``; OpenSTL ``model_type='IncepU'``)."""

    @classmethod
    def validate(cls, config: SimVPConfig) -> None:
        super().validate(config)
        g = config.groups
        checks = {
            "temporal_hidden // 2 (Inception bottleneck)": config.temporal_hidden // 2,
            "temporal_hidden": config.temporal_hidden,
            "in_frames * spatial_hidden (translator channels)": config.in_frames
            * config.spatial_hidden,
        }
        for what, channels in checks.items():
            if channels % g:
                raise ValueError(
                    f"groups={g} must divide {what} = {channels} for translator 'incepu' "
                    f"(temporal_hidden={config.temporal_hidden}, "
                    f"spatial_hidden={config.spatial_hidden}, in_frames={config.in_frames})"
                )
        bad = [k for k in config.inception_kernels if k < 1 or k % 2 == 0]
        if not config.inception_kernels or bad:
            raise ValueError(
                f"inception_kernels={config.inception_kernels} must be a non-empty tuple of odd "
                "positive sizes"
            )

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        c_in = config.in_frames * config.spatial_hidden
        hid, n = config.temporal_hidden, config.temporal_layers
        kernels, g = tuple(config.inception_kernels), config.groups

        def block(c_i: int, c_o: int) -> Inception:
            return Inception(c_i, hid // 2, c_o, kernels, g)

        self.encoder = nn.ModuleList([block(c_in, hid)] + [block(hid, hid) for _ in range(n - 1)])
        self.decoder = nn.ModuleList(
            [block(hid, hid)] + [block(2 * hid, hid) for _ in range(n - 2)] + [block(2 * hid, c_in)]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, T_in * hid_S, H', W') -> (B, T_in * hid_S, H', W')``."""
        skips = []
        for i, block in enumerate(self.encoder):
            z = block(z)
            if i < len(self.encoder) - 1:
                skips.append(z)
        z = self.decoder[0](z)
        for i, block in enumerate(self.decoder[1:], start=1):
            z = block(torch.cat([z, skips[-i]], dim=1))  # (B, 2 * hid_T, H', W')
        return z
