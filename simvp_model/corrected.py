"""SimVP as a learned correction to a base nowcast (``SimVPConfig.base != "none"``).

The base (persistence, Lucas–Kanade extrapolation, climatology: computed outside the network,
in the data path) already carries the motion; the network only learns what it misses (growth and
decay, smoothing where motion is uncertain, the daily cycle): the idea of advection-free /
Lagrangian CNNs (L-CNN, Ritvanen et al. 2023) and of NowcastNet's evolution network.

Design
------
One network call sees the ``T_in`` observed frames followed by the ``T_out`` base frames, as one
sequence of ``T_in + T_out`` frames of ``C`` channels: a plain :class:`~simvp_model.model.SimVP`
with ``in_frames = T_in + T_out`` (per-frame encoder, translator mixing all frames, per-frame
decoder with the encoder's skip). Its outputs at the base positions ``T_in .. T_in + T_out - 1``
are the correction, so base frame ``k`` and its correction share a frame slot and the decoder's
skip path sees the base frame it corrects::

    pred[:, k] = base[:, k] + network([x, base])[:, T_in + k]        (normalised units)

The decoder's readout (the last 1×1 convolution) starts at zero, so an untrained model returns its
base exactly, and model selection on validation that includes the untrained model can never pick
a model worse than its base. Horizons beyond ``T_out`` roll out block by block: block ``j`` sees
the last ``T_in`` frames of observations and predictions so far and base frames
``j·T_out .. (j+1)·T_out - 1`` (the base is computed for the whole horizon from the observations).
"""

from __future__ import annotations

import torch
from torch import nn

from simvp_model.config import SimVPConfig
from simvp_model.model import SimVP, check_horizon


def network_config(config: SimVPConfig) -> SimVPConfig:
    """The inner SimVP of a corrected model: ``T_in + T_out`` frames in and out, no base."""
    if config.base == "none":
        raise ValueError("network_config is for base != 'none'; use SimVP directly")
    frames = config.in_frames + config.out_frames
    return config.replace(in_frames=frames, out_frames=frames, base="none")


class CorrectedSimVP(nn.Module):
    """A base nowcast plus a SimVP-predicted correction (see the module docstring).

    Parameters
    ----------
    config : SimVPConfig
        With ``base != "none"``; ``in_frames``/``out_frames`` are T_in/T_out of the data.
    channels_last : bool
        Passed to the inner :class:`SimVP`.
    """

    def __init__(self, config: SimVPConfig, channels_last: bool = True) -> None:
        super().__init__()
        if not isinstance(config, SimVPConfig):
            raise TypeError(f"config must be a SimVPConfig, got {type(config).__name__}")
        self.config = config
        self.network = SimVP(network_config(config), channels_last=channels_last)
        readout = self.network.decoder.readout
        nn.init.zeros_(readout.weight)  # the correction head starts at zero: model == base
        nn.init.zeros_(readout.bias)

    @property
    def channels_last(self) -> bool:
        """Whether the inner network runs on NHWC tensors."""
        return self.network.channels_last

    def set_channels_last(self, enabled: bool) -> CorrectedSimVP:
        """Switch the inner network's memory layout (in place; returns self)."""
        self.network.set_channels_last(enabled)
        return self

    def _check(self, x: torch.Tensor, base: torch.Tensor, min_base: int) -> None:
        c = self.config
        frame = (c.channels, c.height, c.width)
        if x.ndim != 5 or tuple(x.shape[1:]) != (c.in_frames, *frame):
            raise ValueError(
                f"expected input (B, {c.in_frames}, {', '.join(map(str, frame))}), got {x.shape=}"
            )
        if (
            base.ndim != 5
            or base.shape[0] != x.shape[0]
            or tuple(base.shape[2:]) != frame
            or base.shape[1] < min_base
        ):
            raise ValueError(
                f"expected base (B={x.shape[0]}, >= {min_base}, {', '.join(map(str, frame))}), "
                f"got {base.shape=}"
            )

    def correct(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """One block: ``base + correction``.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T_in, C, H, W)`` normalised observed (or earlier predicted) frames.
        base : torch.Tensor
            ``(B, T_out, C, H, W)`` the base nowcast of the next T_out frames, normalised.

        Returns
        -------
        torch.Tensor
            ``(B, T_out, C, H, W)``.
        """
        self._check(x, base, self.config.out_frames)
        t_in = self.config.in_frames
        base = base[:, : self.config.out_frames]
        sequence = torch.cat([x, base], dim=1)  # (B, T_in + T_out, C, H, W)
        return base + self.network.step(sequence)[:, t_in:]

    def rollout(self, x: torch.Tensor, base: torch.Tensor, horizon: int) -> torch.Tensor:
        """Predict ``horizon`` frames block by block, each block correcting its base frames.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T_in, C, H, W)`` normalised observations.
        base : torch.Tensor
            ``(B, >= horizon, C, H, W)`` the base nowcast for leads ``1 .. horizon`` (normalised).
            A last partial block is padded with the last base frame, its extra outputs dropped.
        horizon : int
            Number of future frames, ≥ 1.

        Returns
        -------
        torch.Tensor
            ``(B, horizon, C, H, W)``.
        """
        check_horizon(horizon)
        self._check(x, base, horizon)
        t_in, t_out = self.config.in_frames, self.config.out_frames
        outputs: list[torch.Tensor] = []
        history = x
        for start in range(0, horizon, t_out):
            block = base[:, start : start + t_out]  # (B, <= T_out, C, H, W)
            if block.shape[1] < t_out:
                pad = block[:, -1:].expand(-1, t_out - block.shape[1], -1, -1, -1)
                block = torch.cat([block, pad], dim=1)  # (B, T_out, C, H, W)
            pred = self.correct(history, block)
            outputs.append(pred[:, : horizon - start])
            history = torch.cat([history, pred], dim=1)[:, -t_in:]  # (B, T_in, C, H, W)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """``(B, T_in, C, H, W), (B, T_out, C, H, W) -> (B, T_out, C, H, W)``."""
        return self.rollout(x, base, self.config.out_frames)

    def num_parameters(self) -> int:
        """Total number of parameters."""
        return sum(p.numel() for p in self.parameters())


def build_model(config: SimVPConfig, channels_last: bool = True) -> SimVP | CorrectedSimVP:
    """The network ``config`` describes: :class:`SimVP` for ``base="none"``, else corrected."""
    if config.base == "none":
        return SimVP(config, channels_last=channels_last)
    return CorrectedSimVP(config, channels_last=channels_last)


def run_model(
    model: SimVP | CorrectedSimVP,
    x: torch.Tensor,
    base: torch.Tensor | None,
    horizon: int | None = None,
) -> torch.Tensor:
    """Call either kind of model with one signature.

    Parameters
    ----------
    model : SimVP or CorrectedSimVP
    x : torch.Tensor
        ``(B, T_in, C, H, W)`` normalised.
    base : torch.Tensor or None
        ``(B, >= horizon, C, H, W)`` normalised base frames; required for a corrected model and
        refused for a plain SimVP (a silently ignored base would hide a wiring error).
    horizon : int, optional
        Frames to predict (default ``config.out_frames``).

    Returns
    -------
    torch.Tensor
        ``(B, horizon, C, H, W)``.
    """
    horizon = model.config.out_frames if horizon is None else horizon
    if isinstance(model, CorrectedSimVP):
        if base is None:
            raise ValueError(f"model has base={model.config.base!r} but no base frames were given")
        return model.rollout(x, base, horizon)
    if base is not None:
        raise ValueError("a base='none' SimVP takes no base frames")
    return model.rollout(x, horizon)
