"""What to train with: :class:`TrainConfig`, :class:`DataSplits`, :class:`FitResult` (no Lightning).

Pure configuration and data containers of the training engine (:mod:`simvp_model.lightning_module`),
importable without Lightning, e.g. by :mod:`pipelines.training.source` to build a config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

from simvp_model.checkpoint import check_plain
from simvp_model.losses import LOSSES
from simvp_model.normalisation import Normalisation
from simvp_model.optim import OPTIMIZERS, SCHEDULERS

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
    loss : str
        Training loss, a name in :data:`simvp_model.losses.LOSSES` (``mse``: the paper's MSE of
        the normalised field; ``mse_physical``, ``bmse``, ``bmae``, ``bmse_physical``: see
        :class:`simvp_model.losses.LossSpec`, Shi et al. 2017 weights 1/2/5/10/30 at
        2/5/10/30 physical units).
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
    loss: str = "mse"
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
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r} is unknown; valid: {LOSSES.names()}")
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
