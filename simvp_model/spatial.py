"""Spatial encoder/decoder families of SimVP (spec §1.2 V1, §1.3 OpenSTL).

Contract of every family registered in :data:`SPATIAL`:

- ``encoder(config)`` maps frames ``(N, C, H, W)`` (``N = B * T``) to
  ``(latent (N, hid_S, H', W'), skip (N, hid_S, H, W))`` with ``H' = H / 2**n_down``;
- ``decoder(config)`` maps ``(latent (N, hid_S, H', W'), skip)`` to ``(N, C, H, W)``, raw regression
  output (no activation);
- ``validate(config)`` raises ``ValueError`` for configurations the family cannot build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from simvp_model.layers import ConvNormAct, trunc_normal_init_
from simvp_model.registry import Registry

if TYPE_CHECKING:
    from simvp_model.config import SimVPConfig

# GroupNorm groups in every spatial layer of both variants (V1 modules.py, OpenSTL BasicConv2d).
SPATIAL_NORM_GROUPS = 2


@dataclass(frozen=True)
class SpatialFamily:
    """Constructors and validation of one encoder/decoder variant."""

    encoder: Callable[[SimVPConfig], nn.Module]
    decoder: Callable[[SimVPConfig], nn.Module]
    validate: Callable[[SimVPConfig], None]
    downsampling_layers: Callable[[int], int]


SPATIAL: Registry[SpatialFamily] = Registry("spatial")


def _v1_strides(n_layers: int) -> list[int]:
    """V1 ``stride_generator``: ``[1, 2, 1, 2, ...][:N_S]`` (first layer keeps full resolution)."""
    return [1 + (i % 2) for i in range(n_layers)]


class _Encoder(nn.Module):
    """Stack of ConvNormAct layers; returns the latent and the first layer's output (skip)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W) -> ((N, hid_S, H', W'), (N, hid_S, H, W))``."""
        skip = self.layers[0](x)
        z = skip
        for layer in self.layers[1:]:
            z = layer(z)
        return z, skip


class V1Decoder(nn.Module):
    """V1 decoder: ConvTranspose2d up-sampling, skip **concatenated** before the last layer."""

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        hid, k = config.spatial_hidden, config.spatial_kernel
        strides = list(reversed(_v1_strides(config.spatial_layers)))
        layers = []
        for i, s in enumerate(strides):
            c_in = 2 * hid if i == len(strides) - 1 else hid  # concat([h, skip]) for the last
            mode = "transpose" if s == 2 else "conv"
            layers.append(
                ConvNormAct(c_in, hid, k, 1, mode, k // 2, SPATIAL_NORM_GROUPS, nn.LeakyReLU(0.2))
            )
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Conv2d(hid, config.channels, 1)

    def forward(self, z: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``(N, hid_S, H', W'), (N, hid_S, H, W) -> (N, C, H, W)``."""
        for layer in self.layers[:-1]:
            z = layer(z)
        z = self.layers[-1](torch.cat([z, skip], dim=1))  # (N, 2 * hid_S, H, W)
        return self.readout(z)


def _v1_encoder(config: SimVPConfig) -> nn.Module:
    hid, k = config.spatial_hidden, config.spatial_kernel
    layers = [
        ConvNormAct(
            config.channels if i == 0 else hid,
            hid,
            k,
            s,
            "conv",
            k // 2,
            SPATIAL_NORM_GROUPS,
            nn.LeakyReLU(0.2),
        )
        for i, s in enumerate(_v1_strides(config.spatial_layers))
    ]
    return _Encoder(layers)


def _check_common(config: SimVPConfig) -> None:
    if config.spatial_hidden % SPATIAL_NORM_GROUPS:
        raise ValueError(
            f"spatial_hidden={config.spatial_hidden} must be divisible by the "
            f"{SPATIAL_NORM_GROUPS} GroupNorm groups of the spatial layers"
        )
    if config.spatial_kernel % 2 != 1:
        raise ValueError(f"spatial_kernel={config.spatial_kernel} must be odd")


def _validate_v1(config: SimVPConfig) -> None:
    _check_common(config)


SPATIAL.add(
    "v1",
    SpatialFamily(
        encoder=_v1_encoder,
        decoder=V1Decoder,
        validate=_validate_v1,
        downsampling_layers=lambda n_layers: n_layers // 2,
    ),
)


def _ostl_sampling(n_layers: int) -> list[bool]:
    """OpenSTL ``sampling_generator``: ``[False, True] * (N_S // 2)`` (True = stride-2 layer)."""
    return [False, True] * (n_layers // 2)


def _ostl_padding(kernel: int, stride: int) -> int:
    """OpenSTL ConvSC padding ``(k - stride + 1) // 2`` (1 for k = 3 at either stride)."""
    return (kernel - stride + 1) // 2


class OpenSTLDecoder(nn.Module):
    """OpenSTL decoder: Conv + PixelShuffle up-sampling, skip **added** before the last layer."""

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        hid, k = config.spatial_hidden, config.spatial_kernel
        layers = []
        for up in reversed(_ostl_sampling(config.spatial_layers)):
            mode = "pixelshuffle" if up else "conv"
            layers.append(
                ConvNormAct(
                    hid, hid, k, 1, mode, _ostl_padding(k, 1), SPATIAL_NORM_GROUPS, nn.SiLU()
                )
            )
        self.layers = nn.ModuleList(layers)
        self.layers.apply(trunc_normal_init_)
        self.readout = nn.Conv2d(hid, config.channels, 1)  # PyTorch default init, as OpenSTL

    def forward(self, z: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``(N, hid_S, H', W'), (N, hid_S, H, W) -> (N, C, H, W)``."""
        for layer in self.layers[:-1]:
            z = layer(z)
        z = self.layers[-1](z + skip)
        return self.readout(z)


def _ostl_encoder(config: SimVPConfig) -> nn.Module:
    hid, k = config.spatial_hidden, config.spatial_kernel
    layers = []
    for i, down in enumerate(_ostl_sampling(config.spatial_layers)):
        stride = 2 if down else 1
        layers.append(
            ConvNormAct(
                config.channels if i == 0 else hid,
                hid,
                k,
                stride,
                "conv",
                _ostl_padding(k, stride),
                SPATIAL_NORM_GROUPS,
                nn.SiLU(),
            )
        )
    encoder = _Encoder(layers)
    encoder.apply(trunc_normal_init_)
    return encoder


def _validate_ostl(config: SimVPConfig) -> None:
    _check_common(config)
    if config.spatial_layers % 2:
        raise ValueError(
            f"spatial_layers={config.spatial_layers} must be even for spatial='openstl' "
            "(the reference silently drops the last layer of an odd count)"
        )


SPATIAL.add(
    "openstl",
    SpatialFamily(
        encoder=_ostl_encoder,
        decoder=OpenSTLDecoder,
        validate=_validate_ostl,
        downsampling_layers=lambda n_layers: n_layers // 2,
    ),
)
