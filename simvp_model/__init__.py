"""simvp_model: the SimVP family of video predictors in pure PyTorch.

Public API: :class:`SimVPConfig`, :class:`SimVP`, :func:`get_preset`, :func:`get_recipe`,
:func:`list_presets`, :data:`TRANSLATORS`, :data:`SPATIAL`; losses in
:mod:`simvp_model.losses`, tensor metrics in :mod:`simvp_model.metrics`.
"""

from simvp_model.config import SimVPConfig
from simvp_model.model import SimVP
from simvp_model.presets import get_preset, get_recipe, list_presets
from simvp_model.spatial import SPATIAL
from simvp_model.translators import TRANSLATORS

__all__ = [
    "SPATIAL",
    "TRANSLATORS",
    "SimVP",
    "SimVPConfig",
    "get_preset",
    "get_recipe",
    "list_presets",
]
