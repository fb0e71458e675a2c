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

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
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

from simvp_model.checkpoint import (
    check_plain,
    check_resumable,
    save_checkpoint,
    state_dict_mismatch,
)
from simvp_model.config import SimVPConfig
from simvp_model.corrected import CorrectedSimVP, build_model, run_model
from simvp_model.losses import LossSpec, training_loss
from simvp_model.normalisation import Normalisation
from simvp_model.optim import ScheduleSpec, build_optimizer, build_scheduler
from simvp_model.scoring import image_metrics_apply, score_batch
from simvp_model.train_config import (
    BUNDLE_NAME,
    MONITOR,
    DataSplits,
    FitResult,
    TrainConfig,
    resolve_runtime,
)

logger = logging.getLogger(__name__)


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
        self.model = build_model(model_config, channels_last=channels_last)
        self.loss_spec = LossSpec(train_config.loss)

    def setup(self, stage: str) -> None:
        # In every process (after a spawn), once: compile the network in place
        # (nn.Module.compile keeps the state-dict keys); Lightning's own hooks and
        # self.log stay eager.
        if self.train_config.compile and not self._compiled:
            self.model.compile()
            self._compiled = True

    def forward(self, x: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T_in, C, H, W)`` [+ base ``(B, T_out, C, H, W)``] → ``(B, T_out, C, H, W)``."""
        return run_model(self.model, x, base)

    def _loss(self, batch: Sequence[torch.Tensor]) -> tuple[Any, ...]:
        # (x, y) for a plain SimVP, (x, base, y) for a corrected one (see pipelines.windows)
        x, *base, y = batch
        pred = run_model(self.model, x, base[0] if base else None)
        loss, parts = training_loss(self.model_config, self.loss_spec, pred, y, self.normalisation)
        return loss, parts, pred, y

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> Any:
        loss, parts, _, y = self._loss(batch)
        n = y.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for name, value in parts.items():
            self.log(
                f"train/{name}", value, on_step=False, on_epoch=True, sync_dist=True, batch_size=n
            )
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        loss, parts, _, y = self._loss(batch)
        n = y.shape[0]
        self.log(MONITOR, loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=n)
        for name, value in parts.items():
            self.log(f"val/{name}", value, on_epoch=True, sync_dist=True, batch_size=n)

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
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
    x, *base, y = splits.train[0]
    c = model_config
    if bool(base) != (c.base != "none"):
        raise ValueError(
            f"model base={c.base!r} but the train samples {'carry' if base else 'lack'} base frames"
        )
    if base and tuple(base[0].shape) != (c.out_frames, c.channels, c.height, c.width):
        raise ValueError(f"train base frames are {tuple(base[0].shape)}, model needs T_out frames")
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


def _initial_candidate(
    module: SimVPModule, val_loader: DataLoader
) -> tuple[dict[str, torch.Tensor], float] | None:
    """Weights and validation loss of the untrained model, a model-selection candidate.

    A corrected SimVP starts as its base (zero correction), so keeping this candidate means
    selection on validation never picks a model worse than the base. Returns None for a plain
    SimVP (its untrained output is noise, never a sensible pick).
    """
    if not isinstance(module.model, CorrectedSimVP):
        return None
    state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    total, count = 0.0, 0
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        for batch in val_loader:
            loss = module._loss(batch)[0]
            n = int(batch[-1].shape[0])
            total += float(loss) * n
            count += n
    module.train(was_training)
    if count == 0:
        return None
    logger.info("untrained model (the base): val/loss %.5g", total / count)
    return state, total / count


def fit(
    model_config: SimVPConfig,
    train_config: TrainConfig,
    splits: DataSplits,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    resume: bool = False,
    init_state: Mapping[str, torch.Tensor] | None = None,
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
    init_state : mapping of str to Tensor, optional
        Initial weights (fine-tuning from a pretrained model); must match ``model_config``'s
        network exactly (the network is fully convolutional, so the grid size may differ).

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
    if init_state is not None:
        problems = state_dict_mismatch(module.model.state_dict(), dict(init_state))
        if problems:
            raise ValueError(f"initial weights do not fit the model: {'; '.join(problems)}")
        module.model.load_state_dict(dict(init_state))
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
        # at most once an epoch: short epochs (a few batches) would otherwise log nothing and warn
        log_every_n_steps=max(1, min(tc.log_every_n_steps, len(train_loader))),
        enable_progress_bar=tc.progress_bar,
        enable_model_summary=tc.progress_bar,
        num_sanity_val_steps=0,
        benchmark=on_cuda,  # fixed input shapes: let cuDNN pick the fastest kernels
        default_root_dir=out,
    )
    initial = None if resume else _initial_candidate(module, val_loader)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume_path) if resume else None)
    best = checkpointing.best_model_path
    if not best:
        raise RuntimeError(f"no validation score was recorded, so no checkpoint in {ckpt_dir}")
    best_state, best_val = _read_best(best)
    untrained_wins = initial is not None and initial[1] <= best_val
    if untrained_wins:
        # The untrained model (for a corrected SimVP: its base) scores best on validation.
        best_state, best_val = initial  # type: ignore[misc]
        module.model.load_state_dict(best_state)
        logger.info("untrained model kept: val/loss %.5g <= best trained epoch", best_val)
        test_scores = trainer.test(module, test_loader, verbose=False)
    else:
        test_scores = trainer.test(module, test_loader, ckpt_path=best, verbose=False)
    scores = {k.removeprefix("test/"): float(v) for k, v in test_scores[0].items()}
    scores["rmse"] = math.sqrt(scores["mse"])
    scores["val_loss"] = best_val
    history = read_history(history_file)
    bundle = out / BUNDLE_NAME
    if trainer.is_global_zero:
        engine_meta = {
            "train_config": tc.to_dict(),
            "runtime": {k: str(v) for k, v in runtime.items()},
            "world_size": int(trainer.world_size),
            "epochs_completed": len(history),
            "global_step": int(history[-1]["global_step"]) if history else 0,
            "lightning_checkpoint": "untrained" if untrained_wins else str(best),
            "untrained_val_loss": None if initial is None else initial[1],
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": str(torch.__version__), "lightning": str(L.__version__)},
        }
        model = build_model(model_config)
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
