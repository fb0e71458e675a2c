"""Small building blocks shared by the spatial encoders/decoders and the translators.

Every block maps an image batch ``(N, C_in, H, W)`` to ``(N, C_out, H', W')``; no block knows
about time (time is folded into the batch or the channels by :class:`simvp_model.model.SimVP`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def trunc_normal_init_(module: nn.Module, std: float = 0.02) -> None:
    """OpenSTL ``BasicConv2d`` init: conv weights ~ trunc-normal(0, ``std``, bounds ±2), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.trunc_normal_(module.weight, std=std)  # bounds ±2 absolute, as timm's helper
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def fan_out_normal_init_(module: nn.Module) -> None:
    """MetaFormer-block init (OpenSTL ``GASubBlock``): conv weights ~ N(0, sqrt(2 / fan_out)).

    ``fan_out = k_h * k_w * out_channels / groups``; biases 0. Linear layers get trunc-normal(0.02)
    weights and zero bias (never hit by gSTA, kept for parity with the reference ``_init_weights``).
    """
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        fan_out //= module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ConvNormAct(nn.Module):
    """Convolution → GroupNorm → activation, the basic SimVP spatial layer.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Odd square kernel size.
    stride : int
        1, or 2 for a down-sampling layer (``mode="conv"``) / up-sampling layer (other modes).
    mode : {"conv", "transpose", "pixelshuffle"}
        ``"conv"``: plain Conv2d (stride ``stride``). ``"transpose"`` (V1 up-sampling):
        ConvTranspose2d(stride 2, output_padding 1). ``"pixelshuffle"`` (OpenSTL up-sampling):
        Conv2d to ``4 * out_channels`` then PixelShuffle(2).
    padding : int
        Spatial padding of the convolution.
    norm_groups : int
        GroupNorm groups (2 in both SimVP variants).
    act : nn.Module
        Activation (LeakyReLU(0.2) for V1, SiLU for OpenSTL).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        mode: str,
        padding: int,
        norm_groups: int,
        act: nn.Module,
    ) -> None:
        super().__init__()
        self.conv: nn.Module
        if mode == "conv":
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        elif mode == "transpose":
            # output size = (H - 1) * 2 - 2 * padding + k + 1 = 2H for padding = k // 2
            self.conv = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, stride=2, padding=padding, output_padding=1
            )
        elif mode == "pixelshuffle":
            # (N, 4 * C_out, H, W) -> PixelShuffle(2) -> (N, C_out, 2H, 2W)
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * 4, kernel_size, 1, padding),
                nn.PixelShuffle(2),
            )
        else:
            raise ValueError(
                f"unknown ConvNormAct mode {mode!r}; valid: conv, transpose, pixelshuffle"
            )
        self.norm = nn.GroupNorm(norm_groups, out_channels)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H', W')``."""
        return self.act(self.norm(self.conv(x)))


class DropPath(nn.Module):
    """Stochastic depth per sample (as ``timm.layers.DropPath``, scale by 1/keep).

    Parameters
    ----------
    p : float
        Probability of dropping the residual branch of a sample, in [0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p=}")
        self.p = float(p)

    def sample_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-sample keep mask ``(N, 1, ..., 1)`` scaled by 1/keep, or None when inactive."""
        if self.p == 0.0 or not self.training:
            return None
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # one Bernoulli draw per sample
        return x.new_empty(shape).bernoulli_(keep).div_(keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...) -> (N, ...)``: identity in eval mode or for p = 0."""
        mask = self.sample_mask(x)
        return x if mask is None else x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
