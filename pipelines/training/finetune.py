"""Fine-tuning: start training from a pretrained model or a checkpoint (``--init-from``).

:func:`initial_model` resolves ``"pretrained"`` (the shipped model, hash-checked by
:func:`pipelines.method.pretrained.load_pretrained`), ``"pretrained:NAME"`` or a checkpoint path.
:func:`fine_tune_plan` checks that the source and the requested options fit it and returns what
:func:`pipelines.training.source.train_source` needs:

- the **architecture** is the initial model's (every ``SimVPConfig`` field but ``height`` and
  ``width``: the network is fully convolutional, so the grid size may differ); a model option
  that differs from it (``spatial_hidden``, ``base``, ...) or a preset is an error;
- ``in_frames``/``out_frames`` are the model's (different ones are an error);
- the **normalisation** is the model's (the weights were learned in its units);
- the **time step** of the source must be the model's (a clear error otherwise);
- the **resolution**: a pretrained model records its grid spacing; the source's windows are
  coarsened to it (the store's spacing must divide it), unless ``coarsen`` is given explicitly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from data_catalog.spec import SourceSpec
from pipelines.method.pretrained import load_pretrained
from pipelines.method.resample import RegularGrid
from pipelines.method.simvp import file_sha256
from simvp_model.checkpoint import LoadedModel, load_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["FineTunePlan", "InitialModel", "fine_tune_plan", "initial_model"]

#: SimVPConfig fields a fine-tuned model may change (the grid it runs on).
FREE_FIELDS = ("height", "width")
#: Relative tolerance when the pretrained resolution must be a whole multiple of the store's.
RESOLUTION_RTOL = 0.01


@dataclass(frozen=True)
class InitialModel:
    """The model a fine-tuning run starts from.

    Parameters
    ----------
    loaded : LoadedModel
        Network, config, normalisation, metadata.
    label : str
        ``"pretrained radar v1 (sha256 …)"`` or the checkpoint path.
    sha256 : str
        Hash of its file.
    resolution_m : float or None
        Grid spacing it was trained at (pretrained models record it), metres.
    time_step : str or None
        Its frames' time step.
    units : tuple of str, optional
        Units of its channels, as recorded (``None`` when the checkpoint records none).
    trained_on : str
        What it was trained on (a source name, ``moving-mnist``...), for messages.
    """

    loaded: LoadedModel = field(repr=False)
    label: str
    sha256: str
    resolution_m: float | None
    time_step: str | None
    units: tuple[str, ...] | None = None
    trained_on: str = "unknown"

    def provenance(self) -> dict[str, Any]:
        """Plain ``metadata["init_from"]`` of the fine-tuned checkpoint."""
        return {
            "label": self.label,
            "sha256": self.sha256,
            "resolution_m": self.resolution_m,
            "time_step": self.time_step,
        }


def initial_model(init_from: str | os.PathLike[str]) -> InitialModel:
    """Resolve ``"pretrained"``, ``"pretrained:NAME"`` or a checkpoint path.

    Raises
    ------
    FileNotFoundError
        No such pretrained model or file.
    """
    text = os.fspath(init_from)
    if text == "pretrained" or text.startswith("pretrained:"):
        name = text.partition(":")[2] or "radar"
        model = load_pretrained(name)
        return InitialModel(
            model.loaded,
            model.card.label,
            model.card.sha256,
            model.card.resolution_m,
            model.card.time_step,
            (str(model.card.units),),
            f"the shipped {name} model",
        )
    if not os.path.isfile(text):
        raise FileNotFoundError(
            f"--init-from {text!r}: no such checkpoint (or use 'pretrained' for the shipped model)"
        )
    loaded = load_checkpoint(text)
    recorded = dict(loaded.metadata.get("pretrained") or {})
    resolution = recorded.get("resolution_m")
    units = loaded.metadata.get("units")
    return InitialModel(
        loaded,
        text,
        file_sha256(text),
        None if resolution is None else float(resolution),
        loaded.metadata.get("time_step"),
        None
        if units is None
        else tuple(str(u) for u in ([units] if isinstance(units, str) else units)),
        str(loaded.metadata.get("source") or "unknown"),
    )


@dataclass(frozen=True)
class FineTunePlan:
    """What a fine-tuning run uses (see the module docstring).

    Parameters
    ----------
    model_config : SimVPConfig
        The initial model's config (``height``/``width`` set from the data later).
    windows : dict
        :func:`pipelines.windows.source_windows` options (frames, coarsen, normalisation).
    init_state : dict
        The initial weights.
    metadata : dict
        ``{"init_from": ...}`` for the checkpoint.
    """

    model_config: Any
    windows: dict[str, Any]
    init_state: Mapping[str, Any] = field(repr=False)
    metadata: dict[str, Any]


def _step(text: str | None) -> pd.Timedelta | None:
    return None if not text else pd.Timedelta(pd.tseries.frequencies.to_offset(text))


def fine_tune_plan(
    init: InitialModel,
    spec: SourceSpec,
    store: str | os.PathLike[str],
    model_overrides: Mapping[str, Any],
    window_overrides: Mapping[str, Any],
    preset: str | None = None,
) -> FineTunePlan:
    """Check the source and options against ``init`` and plan the run.

    Parameters
    ----------
    init : InitialModel
        From :func:`initial_model`.
    spec : SourceSpec
        The catalog entry of the (single) source.
    store : path
        Its observation store (for its grid spacing).
    model_overrides, window_overrides : mapping
        The user's ``SimVPConfig`` and window options.
    preset : str, optional
        Must be None (the architecture is the initial model's).

    Raises
    ------
    ValueError
        A model of other units (another kind, e.g. Moving MNIST for radar), a preset, a
        differing model option, frame count, time step or a resolution the store cannot be
        coarsened to.
    """
    config = init.loaded.config
    wanted = tuple(v.units for v in spec.variables)
    if init.units is not None and init.units != wanted:
        raise ValueError(
            f"--init-from {init.label}: that model was trained on {init.trained_on} with units "
            f"{list(init.units)}, source {spec.name!r} ({spec.kind}) has {list(wanted)}; "
            "fine-tuning needs a model of the same kind and units (train from scratch instead)"
        )
    if preset is not None:
        raise ValueError(
            f"--preset {preset!r} conflicts with --init-from {init.label}: the architecture is "
            "the initial model's"
        )
    differing = {
        k: (v, getattr(config, k))
        for k, v in model_overrides.items()
        if k not in FREE_FIELDS and getattr(config, k, v) != v
    }
    if differing:
        detail = ", ".join(f"{k}={v!r} (model: {m!r})" for k, (v, m) in differing.items())
        raise ValueError(f"options differ from the initial model {init.label}: {detail}")
    windows = dict(window_overrides)
    for name in ("in_frames", "out_frames"):
        want = int(getattr(config, name))
        given = windows.get(name)
        if given is not None and int(given) != want:
            raise ValueError(f"{name}={given} differs from the initial model's {want}")
        windows[name] = want
    source_step, model_step = _step(spec.time_step), _step(init.time_step)
    if model_step is not None and source_step != model_step:
        raise ValueError(
            f"source {spec.name!r} is at {spec.time_step} steps, the initial model "
            f"{init.label} at {init.time_step}: fine-tuning needs the same time step"
        )
    if windows.get("coarsen") is None and init.resolution_m is not None:
        with xr.open_zarr(store, chunks=None) as ds:
            spacing = RegularGrid.from_store(ds).resolution_m
        ratio = init.resolution_m / spacing
        k = round(ratio)
        if k < 1 or abs(ratio - k) > RESOLUTION_RTOL * ratio:
            raise ValueError(
                f"source {spec.name!r} has {spacing:g} m pixels; the initial model works at "
                f"{init.resolution_m:g} m, not a whole multiple: pass coarsen= explicitly"
            )
        windows["coarsen"] = k
        logger.info(
            "fine-tuning %s at the model's %g m: coarsen %d", spec.name, init.resolution_m, k
        )
    windows["normalisation"] = init.loaded.normalisation
    state = {k: v.detach().clone() for k, v in init.loaded.model.state_dict().items()}
    return FineTunePlan(config, windows, state, {"init_from": init.provenance()})
