"""The SimVP network: spatial encoder → temporal translator → spatial decoder, plus roll-out."""

from __future__ import annotations

import torch
from torch import nn

from simvp_model.config import SimVPConfig
from simvp_model.spatial import SPATIAL
from simvp_model.translators import TRANSLATORS


class SimVP(nn.Module):
    """SimVP video predictor (V1 / SimVPv2 gSTA / TAU, spec §1).

    Parameters
    ----------
    config : SimVPConfig
        Architecture. The network itself maps T_in frames to T_in frames; :meth:`forward` rolls it
        out to ``config.out_frames`` (differentiable through every call) and :meth:`rollout` to any
        horizon.
    """

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        if not isinstance(config, SimVPConfig):
            raise TypeError(f"config must be a SimVPConfig, got {type(config).__name__}")
        self.config = config
        family = SPATIAL.get(config.spatial)
        self.encoder = family.encoder(config)
        self.translator = TRANSLATORS.get(config.translator)(config)
        self.decoder = family.decoder(config)

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
        z, skip = self.encoder(x.reshape(B * T, C, H, W))  # fold time into the batch
        _, C_, H_, W_ = z.shape
        z = self.translator(z.reshape(B, T * C_, H_, W_))  # fold time into the channels
        y = self.decoder(z.reshape(B * T, C_, H_, W_), skip)  # (B*T, C, H, W)
        return y.reshape(B, T, C, H, W)

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
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon={horizon!r} must be a positive integer")
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
