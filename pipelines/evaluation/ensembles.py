"""Ensemble methods in the evaluation: which run, their seeds, and their stacked forecasts.

An ensemble method is an :data:`pipelines.baselines.EnsembleFn`
(``forecast(history, steps, *, members, seed, **context)`` returning ``(realization,
lead_time, channel, y, x)``). :func:`pipelines.evaluation.evaluate.run_methods` calls each on
the same windows as the deterministic methods; the seed of a window is derived from the run's
seed and the window's init time (:func:`window_seed`), so a window gets the same members
whichever other windows are scored (subsampling, folds), and different windows get
independent noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, REALIZATION, X, Y
from pipelines.baselines import BASELINES, ENSEMBLE_BASELINES, BaselineFn, EnsembleFn
from pipelines.baselines._registry import check_members
from pipelines.baselines.steps import DEFAULT_MEMBERS

__all__ = [
    "DEFAULT_MEMBERS",
    "check_members",
    "run_ensemble",
    "split_names",
    "stack_ensembles",
    "window_seed",
]

_SEED_SPACE = 2**31 - 1  # numpy's legacy RandomState (used by pySTEPS) takes seeds < 2**32


def window_seed(seed: int, init_time: np.datetime64) -> int:
    """Seed of the window issued at ``init_time``: a hash of the run's ``seed`` and the time.

    Returns
    -------
    int
        In ``[0, 2**31 - 1)``; equal for equal ``(seed, init_time)``.
    """
    minutes = int(np.datetime64(init_time, "m").astype("int64"))
    sequence = np.random.SeedSequence([int(seed), minutes % _SEED_SPACE, minutes // _SEED_SPACE])
    return int(sequence.generate_state(1, np.uint32)[0] % _SEED_SPACE)


def split_names(
    names: Sequence[str],
) -> tuple[dict[str, BaselineFn], dict[str, EnsembleFn]]:
    """Registered deterministic and ensemble baselines of ``names`` (unknown names raise)."""
    deterministic: dict[str, BaselineFn] = {}
    ensembles: dict[str, EnsembleFn] = {}
    for name in names:
        if name in ENSEMBLE_BASELINES.names():
            ensembles[name] = ENSEMBLE_BASELINES.get(name)
        else:
            deterministic[name] = BASELINES.get(name)  # raises listing the valid names
    return deterministic, ensembles


def run_ensemble(
    name: str,
    method: EnsembleFn,
    history: xr.DataArray,
    truth: xr.DataArray,
    members: int,
    seed: int,
    **context: object,
) -> xr.DataArray:
    """One window's ensemble of ``method``, checked against the verifying frames' shape."""
    init = history["time"].values[-1]
    forecast = method(
        history, truth.sizes["time"], members=members, seed=window_seed(seed, init), **context
    )
    expected = (members, *truth.shape)
    if forecast.dims[0] != REALIZATION or forecast.shape != expected:
        raise ValueError(
            f"ensemble method {name!r} returned dims {forecast.dims} {forecast.shape}, expected "
            f"({REALIZATION}, lead_time, ...) {expected}"
        )
    return forecast


def stack_ensembles(
    forecasts: Mapping[str, Sequence[xr.DataArray]],
    init_times: np.ndarray,
    template: xr.DataArray,
) -> dict[str, xr.DataArray]:
    """Per-window ensembles → ``(init_time, realization, lead_time, channel, y, x)`` each."""
    coords = {k: v for k, v in template.coords.items() if set(v.dims) <= {CHANNEL, Y, X}}
    out = {}
    for name, parts in forecasts.items():
        values = np.stack([np.asarray(p.values) for p in parts])  # (N, M, lead, C, y, x)
        out[name] = xr.DataArray(
            values,
            dims=(INIT_TIME, REALIZATION, LEAD_TIME, CHANNEL, Y, X),
            coords={
                **coords,
                INIT_TIME: init_times,
                REALIZATION: np.arange(values.shape[1]),
                LEAD_TIME: parts[0][LEAD_TIME].values,
            },
        )
    return out
