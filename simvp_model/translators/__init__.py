"""Temporal translators of SimVP, selected by name through :data:`TRANSLATORS`.

Contract of every translator class registered here:

- constructed as ``cls(config: SimVPConfig)``;
- ``forward(z)`` maps the time-folded latent ``(B, T_in * hid_S, H', W')`` to a tensor of the same
  shape (the model unfolds it back to ``(B * T_in, hid_S, H', W')`` for the decoder);
- ``validate(config)`` (classmethod) raises ``ValueError`` naming the field and value for configs
  the translator cannot build (e.g. channels not divisible by groups) — never a silent fix-up;
- ``uses_ddr_loss`` (class attribute) tells :func:`simvp_model.losses.simvp_loss` whether the
  TAU differential-divergence regulariser belongs to this translator's training objective.
"""

from __future__ import annotations

from simvp_model.registry import Registry
from simvp_model.translators.base import Translator

TRANSLATORS: Registry[type[Translator]] = Registry("translator")

# Importing the implementations registers them.
from simvp_model.translators import gsta, incepu, tau  # noqa: E402, F401

__all__ = ["TRANSLATORS", "Translator"]
