"""simvp_model: the SimVP family of video predictors in pure PyTorch.

Public API: :class:`SimVPConfig`, :class:`SimVP`, :func:`get_preset`, :func:`get_recipe`,
:func:`list_presets`, :data:`TRANSLATORS`, :data:`SPATIAL`; losses in
:mod:`simvp_model.losses`, tensor metrics in :mod:`simvp_model.metrics`, training in
:mod:`simvp_model.engine`, checkpoints in :mod:`simvp_model.checkpoint`, prediction in
:mod:`simvp_model.predict`.

The names are resolved lazily so that light modules (``simvp_model.registry``, used by the
readers and the CLI) do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SimVPConfig": "simvp_model.config",
    "SimVP": "simvp_model.model",
    "get_preset": "simvp_model.presets",
    "get_recipe": "simvp_model.presets",
    "list_presets": "simvp_model.presets",
    "SPATIAL": "simvp_model.spatial",
    "TRANSLATORS": "simvp_model.translators",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'simvp_model' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
