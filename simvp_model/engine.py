"""Training engine: Lightning ``Trainer`` around SimVP, with model selection and export.

:func:`fit` trains a :class:`~simvp_model.model.SimVP` on :class:`DataSplits`:

1. the Trainer runs the recipe (optimiser and LR schedule from :mod:`simvp_model.optim`),
   on CPU or CUDA (bf16 autocast, channels-last, optional ``torch.compile``), on one device
   or with DDP over ``devices × num_nodes`` (Lightning's strategies; nothing hand-written);
2. every epoch the **validation** split is scored and ``ModelCheckpoint`` keeps the weights
   with the lowest ``val/loss`` (plus ``last.ckpt`` for resuming);
3. after training the **test** split is scored once with that best checkpoint: the loss in
   normalised units plus the metrics of :mod:`simvp_model.metrics` on de-normalised
   (physical-unit) fields;
4. the best weights, configs, normalisation, test metrics and metadata are exported as the
   product's checkpoint bundle ``out_dir/best.pt`` (:mod:`simvp_model.checkpoint`).

Files under ``out_dir``: ``best.pt`` (the bundle), ``lightning/`` (Lightning ``.ckpt`` files:
``best-*.ckpt``, ``last.ckpt``), ``history.jsonl`` (one line per epoch: train/val loss, LR,
seconds) and ``logs/`` (Lightning's CSV log of every logged value).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    Timer,
)
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset

from simvp_model import metrics as simvp_metrics
from simvp_model.checkpoint import check_plain, check_resumable, save_checkpoint
from simvp_model.config import SimVPConfig
from simvp_model.losses import simvp_loss
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation
from simvp_model.optim import OPTIMIZERS, SCHEDULERS, ScheduleSpec, build_optimizer, build_scheduler

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
MONITOR = "val/loss"
BUNDLE_NAME = "best.pt"


@dataclass(frozen=True)
class TrainConfig:
    """How to train (user configuration; defaults = OpenSTL's common settings).

    Parameters
    ----------
    lr : float
        Peak learning rate.
    epochs : int
        Training epochs.
    batch_size : int
        Per-device training batch; the global batch is ``batch_size × devices × num_nodes``.
    val_batch_size : int or None
        Per-device evaluation batch (default ``batch_size``).
    optimizer : str
        ``adam`` (OpenSTL) or ``adamw``.
    scheduler : str
        ``onecycle`` (per step), ``cosine`` (per epoch, timm semantics) or ``constant``.
    warmup_epochs : int
        Linear warm-up epochs of ``cosine``.
    weight_decay : float
        Optimiser weight decay (OpenSTL: 0).
    gradient_clip_val : float or None
        Clip the gradient norm (OpenSTL: none).
    seed : int
        Seeds Python, numpy, torch and DataLoader workers.
    accelerator : str
        Lightning accelerator: ``auto``, ``cpu``, ``gpu``/``cuda``.
    devices : int or str
        Devices per node (``auto``, a count, ``-1`` for all, or Lightning's id string).
    num_nodes : int
        Nodes for multi-node DDP.
    strategy : str
        Lightning strategy: ``auto``, ``ddp``, ``ddp_spawn``, ...
    precision : str
        ``auto`` = ``bf16-mixed`` on a CUDA device with bf16 support, else ``32-true``.
    channels_last : bool or None
        Run the network on NHWC tensors (:class:`SimVP` ``channels_last``); ``None`` = the
        network's default (on: faster on CPU and with cuDNN AMP).
    compile : bool
        ``torch.compile`` the network.
    num_workers : int
        DataLoader worker processes per device.
    early_stopping_patience : int or None
        Stop after this many epochs without a lower ``val/loss``.
    limit_train_batches, limit_val_batches, limit_test_batches : int, float or None
        Lightning limits (batches per epoch, or a fraction); ``None`` = all.
    max_minutes : float or None
        Wall-clock budget; training stops at the end of the epoch that exceeds it.
    accumulate_grad_batches : int
        Gradient accumulation.
    progress_bar : bool
        Show Lightning's progress bar.
    log_every_n_steps : int
        Logging interval of step metrics.
    """

    lr: float = 1e-3
    epochs: int = 200
    batch_size: int = 16
    val_batch_size: int | None = None
    optimizer: str = "adam"
    scheduler: str = "onecycle"
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    gradient_clip_val: float | None = None
    seed: int = 42
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    num_workers: int = 0
    early_stopping_patience: int | None = None
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    max_minutes: float | None = None
    accumulate_grad_batches: int = 1
    progress_bar: bool = True
    log_every_n_steps: int = 50

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr=}")
        for name in ("epochs", "batch_size", "num_nodes", "accumulate_grad_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.val_batch_size is not None and self.val_batch_size < 1:
            raise ValueError(f"val_batch_size must be >= 1, got {self.val_batch_size=}")
        OPTIMIZERS.get(self.optimizer)
        SCHEDULERS.get(self.scheduler)
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs=}")
        if self.warmup_epochs and self.scheduler != "cosine":
            raise ValueError(
                f"warmup_epochs={self.warmup_epochs} only applies to scheduler 'cosine', "
                f"got scheduler={self.scheduler!r}"
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay=}")
        if self.gradient_clip_val is not None and not self.gradient_clip_val > 0:
            raise ValueError(f"gradient_clip_val must be > 0, got {self.gradient_clip_val=}")
        if isinstance(self.devices, int) and (self.devices == 0 or self.devices < -1):
            raise ValueError(f"devices must be >= 1, -1 or a string, got {self.devices=}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.num_workers < 0 or self.log_every_n_steps < 1:
            raise ValueError(f"bad num_workers/log_every_n_steps in {self}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience must be >= 1, got {self.early_stopping_patience}"
            )
        if self.limit_val_batches is not None and self.limit_val_batches <= 0:
            raise ValueError(
                f"limit_val_batches={self.limit_val_batches} would disable validation, which "
                "selects the checkpoint"
            )
        for name in ("limit_train_batches", "limit_test_batches"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes=}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid: {sorted(names)}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """Copy with some fields changed (validated again); ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class DataSplits:
    """Train / validation / test datasets of one source, and how they were normalised.

    Each split yields ``(x, y)`` float32 tensors ``(T_in, C, H, W)`` and ``(T_out, C, H, W)``
    in normalised units. Validation selects the checkpoint; test is scored once at the end.

    Parameters
    ----------
    train, val, test : torch.utils.data.Dataset
        The splits; ``val`` must not be the test split.
    normalisation : Normalisation
        Physical → normalised units (fitted on ``train``).
    description : mapping
        Plain provenance copied into the checkpoint's ``metadata`` (source, periods, ...).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    normalisation: Normalisation
    description: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.val is self.test:
            raise ValueError("the validation split must not be the test split")
        for name in ("train", "val", "test"):
            if len(self.__getattribute__(name)) == 0:  # type: ignore[arg-type]
                raise ValueError(f"the {name} split is empty")
        if not isinstance(self.description, Mapping):
            raise ValueError(
                f"description must be a mapping, got {type(self.description).__name__}"
            )
        check_plain(dict(self.description), "description")


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    checkpoint_path : str
        The exported bundle (``out_dir/best.pt``).
    metrics : dict of str to float
        Test-split scores of the best checkpoint (physical units) and ``val_loss``.
    lightning_checkpoint : str
        Lightning's best ``.ckpt`` (for resuming / inspection).
    history : list of dict
        Per-epoch rows of ``history.jsonl`` (see :class:`HistoryWriter`).
    is_global_zero : bool
        False in the extra processes of a multi-process ``ddp`` launch (they should not
        report).
    """

    checkpoint_path: str
    metrics: dict[str, float]
    lightning_checkpoint: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    is_global_zero: bool = True


def resolve_runtime(config: TrainConfig) -> dict[str, Any]:
    """Concrete accelerator, precision and channels-last setting for this machine."""
    wants_gpu = config.accelerator in ("auto", "gpu", "cuda")
    on_cuda = wants_gpu and torch.cuda.is_available()
    if config.accelerator in ("gpu", "cuda") and not on_cuda:
        raise ValueError(f"accelerator={config.accelerator!r} but CUDA is not available")
    precision = config.precision
    if precision == "auto":
        precision = "bf16-mixed" if on_cuda and torch.cuda.is_bf16_supported() else "32-true"
    channels_last = True if config.channels_last is None else config.channels_last
    accelerator = (
        "cuda" if on_cuda else ("cpu" if config.accelerator == "auto" else config.accelerator)
    )
    return {"accelerator": accelerator, "precision": precision, "channels_last": channels_last}


def image_metrics_apply(normalisation: Normalisation) -> bool:
    """True when SSIM/PSNR are meaningful: the data are used as they are (identity).

    SSIM and PSNR as the literature codes them assume frames in [0, 1] (predictions are
    clipped to it); the benchmarks that provide such frames (Moving MNIST, TaxiBJ in [0, 1])
    are trained without transform, offset or scale. Physical fields (rain rate, temperature)
    are scored with MSE/MAE only.
    """
    return (
        normalisation.transform == "identity"
        and all(v == 0.0 for v in normalisation.offset)
        and all(v == 1.0 for v in normalisation.scale)
    )


def score_batch(
    pred: torch.Tensor | Any, true: torch.Tensor | Any, image_metrics: bool
) -> dict[str, float]:
    """Test metrics of one batch in physical units (means over its frames).

    Parameters
    ----------
    pred, true : torch.Tensor or numpy.ndarray
        ``(B, T, C, H, W)`` in physical units.
    image_metrics : bool
        Also compute ``ssim`` (data_range 1), ``ssim_published`` (data_range 2, as the
        published tables) and ``psnr`` (OpenSTL formula); see :func:`image_metrics_apply`.

    Returns
    -------
    dict of str to float
        ``mse``, ``mae`` (literature per-frame sums over C·H·W), ``mse_per_pixel``,
        ``mae_per_pixel`` and, optionally, the image metrics. All are means over frames, so
        batch means weighted by batch size give the split's value (except ``rmse``, which
        :func:`fit` derives from the final ``mse``).
    """
    scores = {
        "mse": simvp_metrics.mse(pred, true),
        "mae": simvp_metrics.mae(pred, true),
        "mse_per_pixel": simvp_metrics.mse_per_pixel(pred, true),
        "mae_per_pixel": simvp_metrics.mae_per_pixel(pred, true),
    }
    if image_metrics:
        scores["ssim"] = simvp_metrics.ssim(pred, true, data_range=1.0)
        scores["ssim_published"] = simvp_metrics.ssim(pred, true, data_range=2.0)
        scores["psnr"] = simvp_metrics.psnr(pred, true)
    return scores


def evaluate_predictor(
    predictor: Any,
    dataset: Dataset,
    normalisation: Normalisation,
    batch_size: int = 16,
) -> dict[str, float]:
    """Score any ``predictor(x) -> y`` (normalised units) on a split like the test step does.

    Used for baselines (e.g. persistence) so that they are scored with exactly the metrics
    and averaging of :func:`fit`'s test split.

    Parameters
    ----------
    predictor : callable
        ``(B, T_in, C, H, W)`` → ``(B, T_out, C, H, W)`` tensors, normalised units.
    dataset : torch.utils.data.Dataset
        Yields ``(x, y)`` in normalised units.
    normalisation : Normalisation
        Decodes both to physical units before scoring.
    batch_size : int
        Samples per batch.

    Returns
    -------
    dict of str to float
        Sample-weighted means of :func:`score_batch` plus ``rmse``.
    """
    image = image_metrics_apply(normalisation)
    totals: dict[str, float] = {}
    count = 0
    with torch.inference_mode():
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            pred = predictor(x)
            scores = score_batch(normalisation.decode(pred.float()), normalisation.decode(y), image)
            for name, value in scores.items():
                totals[name] = totals.get(name, 0.0) + value * len(x)
            count += len(x)
    result = {name: total / count for name, total in totals.items()}
    result["rmse"] = math.sqrt(result["mse"])
    return result


class SimVPModule(L.LightningModule):
    """Lightning wrapper: loss, logging, schedule and test metrics around one SimVP.

    Parameters
    ----------
    model_config : SimVPConfig
        Network configuration.
    train_config : TrainConfig
        Optimiser / schedule settings.
    normalisation : Normalisation
        Used to score the test split in physical units.
    channels_last : bool
        Run the network on NHWC (channels-last) tensors.
    """

    def __init__(
        self,
        model_config: SimVPConfig,
        train_config: TrainConfig,
        normalisation: Normalisation,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self._compiled = False
        self.model_config = model_config
        self.train_config = train_config
        self.normalisation = normalisation
        self.model = SimVP(model_config, channels_last=channels_last)

    def setup(self, stage: str) -> None:
        # In every process (after a spawn), once: compile the network in place
        # (nn.Module.compile keeps the state-dict keys); Lightning's own hooks and
        # self.log stay eager.
        if self.train_config.compile and not self._compiled:
            self.model.compile()
            self._compiled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T_in, C, H, W)`` → ``(B, T_out, C, H, W)``."""
        return self.model(x)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[Any, ...]:
        x, y = batch
        pred = self.model(x)
        loss, parts = simvp_loss(self.model_config, pred, y)
        return loss, parts, pred, y

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        loss, parts, _, y = self._loss(batch)
        n = y.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for name, value in parts.items():
            self.log(
                f"train/{name}", value, on_step=False, on_epoch=True, sync_dist=True, batch_size=n
            )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, parts, _, y = self._loss(batch)
        n = y.shape[0]
        self.log(MONITOR, loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=n)
        for name, value in parts.items():
            self.log(f"val/{name}", value, on_epoch=True, sync_dist=True, batch_size=n)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, _, pred, y = self._loss(batch)
        n = y.shape[0]
        self.log("test/loss", loss, on_epoch=True, sync_dist=True, batch_size=n)
        physical_pred = self.normalisation.decode(pred.float())
        physical_true = self.normalisation.decode(y.float())
        scores = score_batch(physical_pred, physical_true, image_metrics_apply(self.normalisation))
        for name, value in scores.items():
            self.log(f"test/{name}", value, on_epoch=True, sync_dist=True, batch_size=n)

    def configure_optimizers(self) -> dict[str, Any]:
        tc = self.train_config
        optimizer = build_optimizer(tc.optimizer, self.model.parameters(), tc.lr, tc.weight_decay)
        total_steps = int(self.trainer.estimated_stepping_batches)
        spec = ScheduleSpec(tc.lr, tc.epochs, max(total_steps, 1), tc.warmup_epochs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": build_scheduler(tc.scheduler, optimizer, spec),
        }


def _check_splits(model_config: SimVPConfig, splits: DataSplits) -> None:
    if splits.normalisation.channels != model_config.channels:
        raise ValueError(
            f"normalisation has {splits.normalisation.channels} channels, "
            f"model has {model_config.channels}"
        )
    x, y = splits.train[0]
    c = model_config
    want_x = (c.in_frames, c.channels, c.height, c.width)
    want_y = (c.out_frames, c.channels, c.height, c.width)
    if tuple(x.shape) != want_x or tuple(y.shape) != want_y:
        raise ValueError(
            f"train samples are x{tuple(x.shape)}, y{tuple(y.shape)} but the model config needs "
            f"x{want_x}, y{want_y}"
        )
    if x.dtype != torch.float32 or y.dtype != torch.float32:
        raise ValueError(f"samples must be float32 tensors, got {x.dtype}, {y.dtype}")


def _loader(
    dataset: Dataset, batch_size: int, shuffle: bool, train_config: TrainConfig, cuda: bool
) -> DataLoader:
    workers = train_config.num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle,  # train: full batches only (BatchNorm, constant step size)
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=cuda,
    )


class HistoryWriter(Callback):
    """Append one JSON line per epoch to ``path`` (global rank 0 only).

    Each line: ``{"epoch", "train_loss", "val_loss", "lr", "global_step", "seconds"}`` with the
    mean training loss of rank 0's batches, the (synchronised) validation loss, the LR at the
    start of the epoch, the optimiser steps so far and the epoch's wall time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._sum: torch.Tensor | float = 0.0
        self._count = 0
        self._lr = float("nan")
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sum, self._count = 0.0, 0
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self._sum = self._sum + loss.detach()  # stays on the device: no sync per step
        self._count += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        val = trainer.callback_metrics.get(MONITOR)
        row = {
            "epoch": int(trainer.current_epoch),
            "train_loss": float(self._sum) / max(self._count, 1),
            "val_loss": float(val) if val is not None else float("nan"),
            "lr": self._lr,
            "global_step": int(trainer.global_step),
            "seconds": time.perf_counter() - self._start,
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


def read_history(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Rows written by :class:`HistoryWriter` (empty list if there is no file)."""
    file = Path(path)
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _read_best(ckpt_path: str) -> tuple[dict[str, torch.Tensor], float]:
    """Network weights and monitored score stored in a Lightning ``ModelCheckpoint`` file.

    Read from the file rather than from the Trainer, because with ``ddp_spawn`` training
    ran in other processes and the main process's callbacks never saw the score.
    """
    # our own file, written moments ago by ModelCheckpoint; tensors, numbers and strings only
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    score = float("nan")
    for key, callback_state in ckpt.get("callbacks", {}).items():
        if str(key).startswith("ModelCheckpoint") and "best_model_score" in callback_state:
            value = callback_state["best_model_score"]
            score = float(value) if value is not None else score
    return state, score


def fit(
    model_config: SimVPConfig,
    train_config: TrainConfig,
    splits: DataSplits,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> FitResult:
    """Train, select on validation, score the test split once, export ``out_dir/best.pt``.

    Parameters
    ----------
    model_config : SimVPConfig
        Network to train (shapes must match the splits' samples).
    train_config : TrainConfig
        Recipe and hardware settings.
    splits : DataSplits
        Train/val/test datasets (normalised units) and their normalisation.
    out_dir : str or PathLike
        Local directory for ``best.pt``, ``lightning/`` and ``logs/``.
    metadata : mapping, optional
        Plain provenance stored in the bundle (on top of ``splits.description``).
    resume : bool
        Continue from ``out_dir/lightning/last.ckpt`` (must exist).

    Returns
    -------
    FitResult
        Bundle path, test metrics and per-epoch history.
    """
    _check_splits(model_config, splits)
    meta: dict[str, Any] = {**dict(splits.description), **dict(metadata or {})}
    check_plain(meta)  # fail now, not after hours of training
    out = Path(out_dir)
    ckpt_dir = out / "lightning"
    resume_path = ckpt_dir / "last.ckpt"
    if resume and not resume_path.is_file():
        raise FileNotFoundError(f"resume requested but {resume_path} does not exist")
    if resume:
        check_resumable(resume_path)  # a broken file: one clear error before the Trainer starts
    if not resume and resume_path.exists():
        raise ValueError(
            f"{ckpt_dir} already holds a run; pass resume=True to continue it or use a new out_dir"
        )
    tc = train_config
    runtime = resolve_runtime(tc)
    on_cuda = runtime["accelerator"] == "cuda"
    if on_cuda:
        torch.set_float32_matmul_precision("high")  # TF32 for the fp32 parts
    L.seed_everything(tc.seed, workers=True, verbose=False)

    n_train = len(splits.train)  # type: ignore[arg-type]
    if n_train < tc.batch_size:
        raise ValueError(f"train split has {n_train} samples, fewer than {tc.batch_size=}")
    module = SimVPModule(model_config, tc, splits.normalisation, runtime["channels_last"])
    eval_batch = tc.val_batch_size or tc.batch_size
    train_loader = _loader(splits.train, tc.batch_size, True, tc, on_cuda)
    val_loader = _loader(splits.val, eval_batch, False, tc, on_cuda)
    test_loader = _loader(splits.test, eval_batch, False, tc, on_cuda)

    checkpointing = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-epoch{epoch:03d}",
        monitor=MONITOR,
        mode="min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    history_file = out / "history.jsonl"
    if not resume:
        history_file.unlink(missing_ok=True)
    callbacks: list[Callback] = [
        checkpointing,
        LearningRateMonitor(logging_interval="step"),
        HistoryWriter(history_file),
    ]
    if tc.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(MONITOR, patience=tc.early_stopping_patience, mode="min"))
    if tc.max_minutes is not None:
        # interval="epoch": stop only after a finished epoch, so validation has run.
        callbacks.append(Timer(timedelta(minutes=tc.max_minutes), interval="epoch"))
    csv_logger = CSVLogger(save_dir=out, name="logs", version="")
    trainer = L.Trainer(
        accelerator=runtime["accelerator"],
        devices=tc.devices,
        num_nodes=tc.num_nodes,
        strategy=tc.strategy,
        precision=runtime["precision"],
        max_epochs=tc.epochs,
        limit_train_batches=tc.limit_train_batches,
        limit_val_batches=tc.limit_val_batches,
        limit_test_batches=tc.limit_test_batches,
        accumulate_grad_batches=tc.accumulate_grad_batches,
        gradient_clip_val=tc.gradient_clip_val,
        callbacks=callbacks,
        logger=csv_logger,
        log_every_n_steps=tc.log_every_n_steps,
        enable_progress_bar=tc.progress_bar,
        enable_model_summary=tc.progress_bar,
        num_sanity_val_steps=0,
        benchmark=on_cuda,  # fixed input shapes: let cuDNN pick the fastest kernels
        default_root_dir=out,
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume_path) if resume else None)
    best = checkpointing.best_model_path
    if not best:
        raise RuntimeError(f"no validation score was recorded, so no checkpoint in {ckpt_dir}")
    test_scores = trainer.test(module, test_loader, ckpt_path=best, verbose=False)
    scores = {k.removeprefix("test/"): float(v) for k, v in test_scores[0].items()}
    scores["rmse"] = math.sqrt(scores["mse"])
    best_state, scores["val_loss"] = _read_best(best)
    history = read_history(history_file)
    bundle = out / BUNDLE_NAME
    if trainer.is_global_zero:
        engine_meta = {
            "train_config": tc.to_dict(),
            "runtime": {k: str(v) for k, v in runtime.items()},
            "world_size": int(trainer.world_size),
            "epochs_completed": len(history),
            "global_step": int(history[-1]["global_step"]) if history else 0,
            "lightning_checkpoint": str(best),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": str(torch.__version__), "lightning": str(L.__version__)},
        }
        model = SimVP(model_config)
        model.load_state_dict(best_state, strict=True)
        save_checkpoint(
            bundle,
            model,
            model_config,
            splits.normalisation,
            scores,
            {**meta, "engine": engine_meta},
        )
        logger.info("best val/loss %.5g; test %s; bundle %s", scores["val_loss"], scores, bundle)
    return FitResult(
        checkpoint_path=str(bundle),
        metrics=scores,
        lightning_checkpoint=str(best),
        history=history,
        is_global_zero=bool(trainer.is_global_zero),
    )
