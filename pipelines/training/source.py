"""Train SimVP on a catalog source: store → windows → :func:`simvp_model.engine.fit`.

``train_source("knmi-radar", data_dir)`` reads ``DIR/stores/knmi-radar.zarr`` (ingest it first),
cuts leak-free train / val / test windows (:func:`pipelines.windows.source_windows`), builds
the model from a preset sized for the hardware, trains with model selection on validation,
scores the test split once and writes ``DIR/models/<source>/best.pt``. The checkpoint's
``metadata`` records the source, variables, crop, coarsening, windows, periods and store
(``docs/ARCHITECTURE.md``), so :func:`pipelines.windows.prepare_frames` and
:func:`pipelines.windows.windows_from_metadata` reproduce the data at evaluation and forecast
time.

Per-kind recipe (:data:`HARDWARE_DEFAULTS`, one entry per source kind, chosen on validation,
issue 10): SimVP as a learned correction of a base nowcast (radar: Lucas–Kanade extrapolation;
crowd flow: persistence; climate: damped anomaly persistence), the loss (radar and crowd flow: MSE
in physical units), the grid (radar: the whole domain at 4 km on CPU, 2 km on a GPU) and, for
radar, random crops turned by the symmetries of the square. Without a GPU a reduced network;
with one the preset's. The model's frame counts, channels and grid always come from the data,
never from the preset; the checkpoint's ``metadata["recipe"]`` records base, loss and grid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from data_catalog.catalog import Catalog, get_source, load_catalog
from data_catalog.paths import DataDir
from pipelines.training.finetune import fine_tune_plan, initial_model
from pipelines.windows import (
    KIND_DEFAULTS,
    SplitConfig,
    open_store,
    source_names,
    source_windows,
)
from simvp_model.config import SimVPConfig
from simvp_model.lightning_module import fit
from simvp_model.presets import get_preset, get_recipe
from simvp_model.registry import Registry
from simvp_model.scoring import evaluate_predictor
from simvp_model.train_config import FitResult, TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HardwareChoice:
    """Preset and grid for one kind of source on one kind of hardware.

    Parameters
    ----------
    preset : str
        Name in :mod:`simvp_model.presets` (its recipe is the training default).
    model : dict
        :class:`SimVPConfig` fields changed on top of the preset.
    recipe : dict
        :class:`TrainConfig` fields changed on top of the preset's recipe.
    coarsen : int or None
        Grid coarsening (None = the kind's default from :data:`pipelines.windows.KIND_DEFAULTS`).
    tile : (H, W) or None
        Random training crops of the prepared grid (None = whole grids); the network is fully
        convolutional, so evaluation and forecasts still cover the whole domain.
    augment : bool
        Random rotations/flips of the training samples (:mod:`pipelines.windows.augment`): for
        fields
        without a preferred direction (radar), not for fields tied to places.
    base : str
        Base nowcast the network corrects (``SimVPConfig.base``).
    loss : str
        Training loss (``TrainConfig.loss``).

    ``model`` and ``recipe`` size the default preset and apply only when no preset is chosen;
    the grid, crops, augmentation, base and loss are the kind's recipe and apply to any preset
    (each can be overridden by name).
    """

    preset: str
    model: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    coarsen: int | None = None
    tile: tuple[int, int] | None = None
    augment: bool = False
    base: str = "none"
    loss: str = "mse"


@dataclass(frozen=True)
class HardwareDefaults:
    """What to train for one source kind, without (``cpu``) and with (``gpu``) a CUDA device."""

    cpu: HardwareChoice
    gpu: HardwareChoice

    def pick(self, cuda: bool) -> HardwareChoice:
        """The choice for this machine."""
        return self.gpu if cuda else self.cpu


HARDWARE_DEFAULTS: Registry[HardwareDefaults] = Registry("source kind")
# Every kind trains SimVP as a learned correction of a base nowcast (simvp_model.corrected),
# chosen by validation on the shipped data (CPU, 1.5-2.5 min, hid_S 8 / hid_T 32 / N_T 2,
# AdamW-free Adam 3e-3 cosine; issue 10's note has the numbers):
# - radar: Lucas-Kanade extrapolation base, loss = MSE in mm/h ("mse_physical"): MeteoSwiss val
#   MSE 0.275 (untrained = LK) -> 0.236; MSE of the dBR field never beat the untrained model
#   (0.275 -> 0.307) and B-MSE in mm/h barely moved (0.272). 4 km grid (coarsen 4) over the whole
#   domain; training on random 64 x 64 px crops turned by the 8 symmetries of the square.
# - crowd flow: persistence base, loss in counts ("mse_physical"): NYC val 2782 -> 2075.
# - climate: damped anomaly persistence base (daily-cycle climatology + the last anomaly times a
#   least-squares damping per lead, pipelines.baselines.anomaly_persistence), MSE (identity
#   normalisation). ERA5 validation (81 windows), MSE in K^2 of the bases (= untrained models)
#   at +1/+3/+6/+12 h: anomaly persistence 0.11/0.61/1.40/2.14 (mean over 12 leads 1.35),
#   climatology 1.43/1.51/1.57/1.61 (1.55), persistence 0.22/1.52/4.46/8.80; the climatology
#   base never beat its untrained model in benchmarks/skill.py's 8 epochs. Anomaly persistence
#   still loses to climatology on validation from +7 h.
# CPU sizes: ~1-2 s per step of batch 8-16 on the shared 2-core box.
_CPU_NET = {"spatial_hidden": 8, "temporal_hidden": 32, "temporal_layers": 2}
_CPU_RECIPE = {"lr": 3e-3, "scheduler": "cosine", "warmup_epochs": 0}
_RADAR: dict[str, Any] = {
    "base": "extrapolation",
    "loss": "mse_physical",
    "coarsen": 4,
    "tile": (64, 64),
    "augment": True,
}
HARDWARE_DEFAULTS.add(
    "radar",
    HardwareDefaults(
        cpu=HardwareChoice(
            "radar-small",
            model=_CPU_NET,
            recipe={**_CPU_RECIPE, "batch_size": 8, "epochs": 12},
            **_RADAR,
        ),
        # the preset's own width on larger crops of a 2 km grid
        gpu=HardwareChoice("radar-small", **{**_RADAR, "coarsen": 2, "tile": (128, 128)}),
    ),
)
HARDWARE_DEFAULTS.add(
    "crowd-flow",
    HardwareDefaults(
        cpu=HardwareChoice(
            "taxibj-gsta",
            model=_CPU_NET,
            recipe={**_CPU_RECIPE, "epochs": 3},
            base="persistence",
            loss="mse_physical",
        ),
        gpu=HardwareChoice("taxibj-gsta", base="persistence", loss="mse_physical"),
    ),
)
HARDWARE_DEFAULTS.add(
    "climate",
    HardwareDefaults(
        cpu=HardwareChoice(
            "taxibj-gsta",
            model=_CPU_NET,
            recipe={**_CPU_RECIPE, "epochs": 8},
            base="anomaly_persistence",
        ),
        gpu=HardwareChoice(
            "taxibj-gsta", recipe={"lr": 5e-3, "warmup_epochs": 0}, base="anomaly_persistence"
        ),
    ),
)


def _fitting_tile(
    tile: tuple[int, int],
    names: Sequence[str],
    data_dir: str | os.PathLike[str] | None,
    catalog: Catalog | None,
    window_over: Mapping[str, Any],
) -> tuple[int, int] | None:
    """The kind's training crop, or None (whole grids) when the prepared grid is not larger."""
    spec = get_source(names[0], catalog)
    k = int(window_over.get("coarsen") or KIND_DEFAULTS.get(spec.kind).coarsen)
    root = DataDir.resolve(data_dir)
    smallest = None
    for name in names:
        path = root.store(name)
        if not os.path.exists(path):
            return tile  # source_windows names the missing store
        with open_store(path) as ds:
            grid = (ds.sizes["y"] // k, ds.sizes["x"] // k)
        smallest = (
            grid if smallest is None else (min(smallest[0], grid[0]), min(smallest[1], grid[1]))
        )
    if smallest is None or smallest[0] <= tile[0] or smallest[1] <= tile[1]:
        return None
    return tile


def persistence(out_frames: int) -> Any:
    """The persistence nowcast: the last input frame repeated, ``(B, T_in, C, H, W)`` →
    ``(B, T_out, C, H, W)`` (any units)."""

    def predict(x: torch.Tensor, *base: torch.Tensor) -> torch.Tensor:  # a base is ignored
        return x[:, -1:].expand(-1, out_frames, -1, -1, -1)  # (B, T_out, C, H, W)

    return predict


_WINDOW_OPTIONS = (
    "in_frames",
    "out_frames",
    "crop",
    "coarsen",
    "tile",
    "tile_mode",
    "stride",
    "augment",
)


def split_overrides(
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Route keyword overrides to the model config, the train config or the windows.

    Returns
    -------
    (model, train, windows) : tuple of dict
        ``SimVPConfig`` fields, ``TrainConfig`` fields and :func:`source_windows` options.

    Raises
    ------
    ValueError
        For a key that is none of these, listing the valid ones.
    """
    model_fields = {f.name for f in dataclasses.fields(SimVPConfig)} - {
        "in_frames",
        "out_frames",
        "channels",
        "height",
        "width",
    }
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    windows: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in _WINDOW_OPTIONS:
            windows[key] = value
        elif key in train_fields:
            train[key] = value
        elif key in model_fields:
            model[key] = value
        else:
            valid = sorted(model_fields | train_fields | set(_WINDOW_OPTIONS))
            raise ValueError(f"unknown training option {key!r}; valid: {valid}")
    return model, train, windows


def train_source(
    source: str | Sequence[str],
    data_dir: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    epochs: int | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    split: SplitConfig | None = None,
    resume: bool = False,
    cuda: bool | None = None,
    init_from: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> FitResult:
    """Train SimVP on the store of a catalog source and export the best checkpoint.

    Parameters
    ----------
    source : str or sequence of str
        Catalog source name (its store must exist: ``nowcast ingest --source NAME``), or several
        sources of one kind trained as one dataset (``"mch-radar,knmi-radar"``; see
        :func:`pipelines.windows.source_windows`); their model directory is named by joining
        the names with ``+``.
    data_dir : str or path-like, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    preset : str, optional
        Model preset; default per kind and hardware (:data:`HARDWARE_DEFAULTS`). Frame
        counts, channels and grid are replaced by the data's.
    epochs : int, optional
        Training epochs (default: the preset's recipe).
    catalog : Catalog or path, optional
        Default: the shipped catalog.
    out_dir : str or path-like, optional
        Where ``best.pt``, ``lightning/`` and ``logs/`` go (default ``DIR/models/<source>``).
    split : SplitConfig, optional
        Default: chronological 70/15/15 with a gap of one window.
    resume : bool
        Continue the run in ``out_dir``.
    cuda : bool, optional
        Pretend a GPU is (not) present when choosing the defaults; default: detect (a GPU
        counts unless ``accelerator="cpu"``).
    init_from : str or path, optional
        Fine-tune: start from ``"pretrained"`` (the shipped model) or a checkpoint path; its
        architecture, frame counts, normalisation, time step and resolution are kept
        (:mod:`pipelines.training.finetune`, clear errors for options that differ).
    **overrides
        ``SimVPConfig`` fields (``spatial_hidden``...), ``TrainConfig`` fields (``lr``,
        ``batch_size``, ``max_minutes``, ``limit_train_batches``...) and window options
        (``in_frames``, ``out_frames``, ``crop``, ``coarsen``, ``tile``, ``tile_mode``,
        ``stride``).

    Returns
    -------
    FitResult
        ``checkpoint_path``, test ``metrics`` (physical units) and the per-epoch ``history``.
        ``metrics`` also holds ``persistence_<name>``: the same scores of the persistence
        nowcast on the same test windows (recorded in the checkpoint's
        ``metadata["baselines"]``).
    """
    if isinstance(catalog, str | os.PathLike):
        catalog = load_catalog(catalog)
    names = source_names(source)
    label = "+".join(names)
    spec = get_source(names[0], catalog)
    KIND_DEFAULTS.get(spec.kind)  # a clear error for a kind without window defaults
    model_over, train_over, window_over = split_overrides(overrides)
    if cuda is None:
        cuda = torch.cuda.is_available() and train_over.get("accelerator", "auto") != "cpu"
    choice = HARDWARE_DEFAULTS.get(spec.kind).pick(cuda)
    preset_name = preset or choice.preset
    base = get_preset(preset_name)
    given_model = dict(model_over)  # the caller's own model options (checked by fine-tuning)
    if preset is None:
        model_over = {**choice.model, **model_over}
    plan = None
    if init_from is not None:
        if len(names) != 1:
            raise ValueError(f"--init-from fine-tunes one source, got {names}")
        plan = fine_tune_plan(
            initial_model(init_from),
            spec,
            DataDir.resolve(data_dir).store(names[0]),
            given_model,
            window_over,
            preset,
        )
        base, model_over, window_over = plan.model_config, {}, plan.windows
    window_over.setdefault("coarsen", choice.coarsen)
    window_over.setdefault("augment", choice.augment)
    if plan is None:  # a fine-tuned model keeps its initial model's base
        model_over.setdefault("base", choice.base)
    train_over.setdefault("loss", choice.loss)
    if choice.tile is not None and "tile" not in window_over:
        window_over["tile"] = _fitting_tile(choice.tile, names, data_dir, catalog, window_over)
    model_base = base.replace(**model_over).base
    windows = source_windows(
        names,
        data_dir,
        window_over.pop("in_frames", None),
        window_over.pop("out_frames", None),
        catalog,
        split=split,
        multiple=2 ** base.replace(**model_over).downsampling_layers,
        base=None if model_base == "none" else model_base,
        **window_over,
    )
    C, H, W = windows.train.sample_shape
    model_config = base.replace(
        **model_over,
        in_frames=windows.train.window.in_frames,
        out_frames=windows.train.window.out_frames,
        channels=C,
        height=H,
        width=W,
    )
    recipe = get_recipe(preset_name)
    if preset is None:
        recipe.update(choice.recipe)
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    recipe.update(train_over)
    warmup = recipe.get("warmup_epochs", 0)
    if warmup > recipe["epochs"] // 2 and "warmup_epochs" not in train_over:
        # A recipe's warm-up (TaxiBJ: 5 of 50 epochs) must not eat a short run.
        log.warning(
            "recipe warm-up of %s epochs is over half of epochs=%s: warm-up set to %s",
            warmup,
            recipe["epochs"],
            recipe["epochs"] // 4,
        )
        recipe["warmup_epochs"] = recipe["epochs"] // 4
    n_train = len(windows.train)
    if recipe["batch_size"] > n_train and "batch_size" not in train_over:
        log.warning(
            "recipe batch_size=%s exceeds the %s train samples: batch_size=%s",
            recipe["batch_size"],
            n_train,
            n_train,
        )
        recipe["batch_size"] = n_train
    train_config = TrainConfig(**recipe)
    target = out_dir if out_dir is not None else DataDir.resolve(data_dir).models(label)
    reference = evaluate_predictor(
        persistence(model_config.out_frames), windows.test, windows.normalisation
    )
    metadata = {
        "baselines": {"persistence": reference},
        "preset": preset_name,
        "hardware": "cuda" if cuda else "cpu",
        "model_overrides": {k: v for k, v in model_over.items()},
        **(plan.metadata if plan is not None else {}),
        # the recipe in one place (issue 10): base nowcast, loss, resolution and crops
        "recipe": {
            "base": model_config.base,
            "loss": train_config.loss,
            "coarsen": windows.metadata["coarsen"],
            "grid": windows.metadata["grid"],
            "tile": windows.metadata["tile"],
            "augment": bool(window_over.get("augment", False)),
        },
    }
    log.info(
        "training %s: %s, %s, %s samples/%s/%s, %s epochs -> %s",
        label,
        f"preset {preset_name}" if plan is None else f"architecture of {init_from}",
        model_config,
        n_train,
        len(windows.val),
        len(windows.test),
        train_config.epochs,
        target,
    )
    result = fit(
        model_config,
        train_config,
        windows.data_splits(),
        os.fspath(target),
        metadata=metadata,
        resume=resume,
        init_state=None if plan is None else plan.init_state,
    )
    log.info(
        "%s test mse %.4g (persistence %.4g), mae %.4g (persistence %.4g)",
        label,
        result.metrics.get("mse", float("nan")),
        reference["mse"],
        result.metrics.get("mae", float("nan")),
        reference["mae"],
    )
    scores = {**result.metrics, **{f"persistence_{k}": v for k, v in reference.items()}}
    return dataclasses.replace(result, metrics=scores)
