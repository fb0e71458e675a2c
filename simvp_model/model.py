"""The SimVP network: spatial encoder → temporal translator → spatial decoder, plus roll-out."""

from __future__ import annotations

import torch
from torch import nn

from simvp_model.config import SimVPConfig
from simvp_model.spatial import SPATIAL
from simvp_model.translators import TRANSLATORS


def check_horizon(horizon: object) -> None:
    """Raise ``ValueError`` unless ``horizon`` (number of future frames) is an int ≥ 1."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon={horizon!r} must be a positive integer")


class SimVP(nn.Module):
    """SimVP video predictor (V1 / SimVPv2 gSTA / TAU, spec §1).

    Parameters
    ----------
    config : SimVPConfig
        Architecture. The network itself maps T_in frames to T_in frames; :meth:`forward` rolls it
        out to ``config.out_frames`` (differentiable through every call) and :meth:`rollout` to any
        horizon.
    channels_last : bool
        Run every convolution on NHWC (``torch.channels_last``) tensors: the same function
        (differences ~1e-6 from summation order), 1.3–2.7× faster convolutions on CPU (oneDNN avoids
        layout reorders; depth-wise kernels gain most) and the preferred layout of cuDNN with AMP.
        ``False`` keeps the plain NCHW path of the reference implementations. Parameters and
        inputs are converted; state dicts load into either layout.
    """

    def __init__(self, config: SimVPConfig, channels_last: bool = True) -> None:
        super().__init__()
        if not isinstance(config, SimVPConfig):
            raise TypeError(f"config must be a SimVPConfig, got {type(config).__name__}")
        self.config = config
        family = SPATIAL.get(config.spatial)
        self.encoder = family.encoder(config)
        self.translator = TRANSLATORS.get(config.translator)(config)
        self.decoder = family.decoder(config)
        self.channels_last = False
        self.set_channels_last(channels_last)

    def set_channels_last(self, enabled: bool) -> SimVP:
        """Switch between the NHWC fast path and the plain NCHW path (in place; returns self)."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        self.to(memory_format=fmt)  # converts the 4-D parameters (conv weights) only
        self.channels_last = bool(enabled)
        return self

    def _check_input(self, x: torch.Tensor) -> None:
        c = self.config
        expected = (c.in_frames, c.channels, c.height, c.width)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected input (B, {', '.join(map(str, expected))}), got {x.shape=}")

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One network call: the next T_in frames.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T_in, C, H, W)`` normalised frames.

        Returns
        -------
        torch.Tensor
            ``(B, T_in, C, H, W)``: frames ``T_in + 1 .. 2 T_in``.
        """
        self._check_input(x)
        B, T, C, H, W = x.shape
        frames = x.reshape(B * T, C, H, W)  # fold time into the batch
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        z, skip = self.encoder(frames)  # (B*T, hid_S, H', W'), (B*T, hid_S, H, W)
        z = self.translator(self._time_to_channels(z, B, T))  # (B, T*hid_S, H', W')
        y = self.decoder(self._channels_to_time(z, B, T), skip)  # (B*T, C, H, W)
        return y.reshape(B, T, C, H, W)

    def _time_to_channels(self, z: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """``(B*T, C', H', W') -> (B, T*C', H', W')``, channel index ``t*C' + c``."""
        N, C_, H_, W_ = z.shape
        if not self.channels_last:
            return z.reshape(B, T * C_, H_, W_)
        # NHWC memory (B*T, H', W', C') -> (B, H', W', T, C') -> one copy -> NHWC (B, T*C', H', W')
        nhwc = z.permute(0, 2, 3, 1).reshape(B, T, H_, W_, C_).permute(0, 2, 3, 1, 4)
        return nhwc.reshape(B, H_, W_, T * C_).permute(0, 3, 1, 2)

    def _channels_to_time(self, z: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """``(B, T*C', H', W') -> (B*T, C', H', W')`` (inverse of :meth:`_time_to_channels`)."""
        _, TC, H_, W_ = z.shape
        C_ = TC // T
        if not self.channels_last:
            return z.reshape(B * T, C_, H_, W_)
        # NHWC memory (B, H', W', T*C') -> (B, T, H', W', C') -> one copy -> NHWC (B*T, C', H', W')
        nhwc = z.permute(0, 2, 3, 1).reshape(B, H_, W_, T, C_).permute(0, 3, 1, 2, 4)
        return nhwc.reshape(B * T, H_, W_, C_).permute(0, 3, 1, 2)

    def rollout(self, x: torch.Tensor, horizon: int) -> torch.Tensor:
        """Predict ``horizon`` frames by feeding whole T_in-frame predictions back (OpenSTL).

        ``horizon <= T_in``: one call, first ``horizon`` frames. Otherwise ``horizon // T_in``
        calls each fed the previous prediction, plus one more call (truncated) for the remainder.
        Gradients flow through every call; wrap in ``torch.inference_mode()`` at inference.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T_in, C, H, W)``.
        horizon : int
            Number of future frames, ≥ 1.

        Returns
        -------
        torch.Tensor
            ``(B, horizon, C, H, W)``.
        """
        check_horizon(horizon)
        t_in = self.config.in_frames
        outputs = []
        produced = 0
        current = x
        while produced < horizon:
            current = self.step(current)
            outputs.append(current[:, : horizon - produced])
            produced += t_in
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T_in, C, H, W) -> (B, T_out, C, H, W)`` with ``T_out = config.out_frames``."""
        return self.rollout(x, self.config.out_frames)

    def num_parameters(self) -> int:
        """Total number of parameters (sum of ``numel``), the count quoted in the papers."""
        return sum(p.numel() for p in self.parameters())
