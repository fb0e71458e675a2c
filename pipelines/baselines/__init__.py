"""Reference forecasts to beat: persistence, optical flow, S-PROG, ANVIL, (anomaly) climatology,
last day.

Contract of every baseline in :data:`BASELINES` (``forecast(history, steps, **context)``):

- ``history`` : ``xr.DataArray`` with dims ``(time, y, x)`` or ``(time, channel, y, x)`` in
  physical units (mm/h, K, counts), a regular datetime64 ``time`` coordinate, oldest first; its
  last frame is the forecast's initial time. NaN = no data.
- ``steps`` : number of lead times; lead ``k`` (1-based) is valid at ``init_time + k · step``,
  ``step`` being the history's spacing (or ``time_step=`` in the context).
- ``**context`` : optional inputs a baseline may need, ignored by those that don't:
  ``time_step`` (str or Timedelta), ``archive`` (``xr.DataArray`` of past observations with the
  same dims as ``history``; only frames up to ``init_time`` are ever used, so passing the whole
  store cannot leak the future).
- Returns ``xr.DataArray`` with dims ``(lead_time, *history.dims[1:])``, the same units and dtype,
  ``lead_time`` timedelta64 coordinate, scalar ``init_time`` coordinate, the history's spatial
  coords. NaN policy is stated by each baseline.

Ensemble baselines (:data:`ENSEMBLE_BASELINES`, e.g. ``steps``) follow the same contract with
``forecast(history, steps, *, members, seed, **context)`` and return
``(realization, lead_time, [channel,] y, x)``: ``members`` forecasts on a leading ``realization``
dim (integer coordinate ``0..M-1``, CF ``standard_name: realization``); the same ``seed`` gives
identical members. :func:`as_ensemble` builds that array.

Every method evaluated by :mod:`pipelines.evaluation.evaluate` (SimVP included) is such a function;
:func:`as_forecast` builds the returned array from ``(lead_time, ...)`` values.
"""

from __future__ import annotations

from pipelines.baselines import (
    anomaly_persistence,
    anvil,
    climatology,
    optical_flow,
    persistence,
    sprog,
    steps,
)
from pipelines.baselines._registry import (
    BASELINES,
    ENSEMBLE_BASELINES,
    BaselineFn,
    EnsembleFn,
    as_ensemble,
    as_forecast,
    time_step,
)


def get_baseline(name: str) -> BaselineFn:
    """The baseline registered as ``name`` (``ValueError`` listing the valid names)."""
    return BASELINES.get(name)


def get_ensemble_baseline(name: str) -> EnsembleFn:
    """The ensemble baseline registered as ``name`` (``ValueError`` listing the valid names)."""
    return ENSEMBLE_BASELINES.get(name)


__all__ = [
    "BASELINES",
    "BaselineFn",
    "ENSEMBLE_BASELINES",
    "EnsembleFn",
    "anomaly_persistence",
    "anvil",
    "as_ensemble",
    "as_forecast",
    "climatology",
    "get_baseline",
    "get_ensemble_baseline",
    "optical_flow",
    "persistence",
    "sprog",
    "steps",
    "time_step",
]
