"""The ``SCORES`` registry (kept apart so score modules can register without import cycles)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from simvp_model.registry import Registry

ScoreFn = Callable[..., xr.DataArray]
"""``score(forecast, observation, dims=None, **params) -> xr.DataArray`` (see the package doc)."""

SCORES: Registry[ScoreFn] = Registry("score")
