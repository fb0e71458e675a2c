"""Base class of the translators (the registry contract lives in the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from simvp_model.config import SimVPConfig


class Translator(nn.Module):
    """Maps ``(B, T_in * hid_S, H', W') -> (B, T_in * hid_S, H', W')``."""

    uses_ddr_loss: ClassVar[bool] = False

    @classmethod
    def validate(cls, config: SimVPConfig) -> None:
        """Raise ``ValueError`` if ``config`` cannot be built by this translator."""
        if config.temporal_layers < 2:
            raise ValueError(
                f"temporal_layers={config.temporal_layers} must be >= 2 for translator "
                f"{config.translator!r}"
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
