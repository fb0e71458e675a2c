"""Dilated depth-wise convolution computed on its polyphase components.

A depth-wise convolution of dilation ``d`` only ever combines pixels whose row and column indices
agree modulo ``d``. Split the image into its ``d × d`` phases (every ``d``-th row and column,
starting at each of the ``d²`` offsets), convolve each phase with the same kernel *undilated*, and
interleave the results back: that is exactly the dilated convolution (zero padding included, since
a phase's zero border is the dilated border's zeros). oneDNN's dilated depth-wise kernels are slow
on CPU (its weight gradient runs at ~2 % of the core's rate), while its dense depth-wise kernels
are several times faster, so the same function costs about half as much per training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PolyphaseDepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(C, C, k, padding=d * (k // 2), dilation=d, groups=C)`` via polyphase components.

    Same parameters (``weight`` ``(C, 1, k, k)``, ``bias`` ``(C,)``), state-dict keys and output
    as the plain module, to floating-point round-off; a drop-in replacement.

    Parameters
    ----------
    channels : int
        C (input = output channels = groups).
    kernel_size : int
        Odd k.
    dilation : int
        d ≥ 1 (d = 1 is computed directly).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if dilation < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation}")
        super().__init__(
            channels,
            channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            groups=channels,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, C, H, W)``, in ``x``'s memory format."""
        d = self.dilation[0]
        if d == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        hs, ws = -(-h // d), -(-w // d)  # phase size; the image is zero-padded to (hs·d, ws·d)
        channels_last = c > 1 and x.is_contiguous(memory_format=torch.channels_last)
        x = F.pad(x, (0, ws * d - w, 0, hs * d - h))
        k = self.kernel_size[0]
        if channels_last:
            # physical (n, hs, d, ws, d, c) -> (n, d, d, hs, ws, c): phases become batch entries
            phases = x.permute(0, 2, 3, 1).reshape(n, hs, d, ws, d, c).permute(0, 2, 4, 1, 3, 5)
            phases = phases.reshape(n * d * d, hs, ws, c).permute(0, 3, 1, 2)
        else:
            phases = x.reshape(n, c, hs, d, ws, d).permute(0, 3, 5, 1, 2, 4)
            phases = phases.reshape(n * d * d, c, hs, ws)
        y = F.conv2d(phases, self.weight, self.bias, padding=k // 2, groups=c)
        if channels_last:
            y = y.permute(0, 2, 3, 1).reshape(n, d, d, hs, ws, c).permute(0, 3, 1, 4, 2, 5)
            y = y.reshape(n, hs * d, ws * d, c)[:, :h, :w].permute(0, 3, 1, 2)
            return y.contiguous(memory_format=torch.channels_last)
        y = y.reshape(n, d, d, c, hs, ws).permute(0, 3, 4, 1, 5, 2).reshape(n, c, hs * d, ws * d)
        return y[:, :, :h, :w].contiguous()
