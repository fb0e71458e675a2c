"""Training engine: TrainConfig validation, overfitting one batch, selection/test/export."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from simvp_model.checkpoint import load_checkpoint
from simvp_model.engine import (
    DataSplits,
    TrainConfig,
    evaluate_predictor,
    fit,
    image_metrics_apply,
    resolve_runtime,
)
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset

TINY = get_preset("tiny")  # 4 → 4 frames, 1 × 16 × 16


def squares(n: int, seed: int) -> TensorDataset:
    """Bright 4×4 squares moving one pixel per frame in a random direction (8 frames)."""
    rng = np.random.default_rng(seed)
    seq = np.zeros((n, 8, 1, 16, 16), dtype=np.float32)
    for i in range(n):
        r, c = rng.integers(4, 8, size=2)
        dr, dc = rng.choice([-1, 1], size=2)
        for t in range(8):
            seq[i, t, 0, r + dr * t : r + dr * t + 4, c + dc * t : c + dc * t + 4] = 1.0
    data = torch.from_numpy(seq)
    return TensorDataset(data[:, :4], data[:, 4:])  # (n, 4, 1, 16, 16) each


def quiet(**kw: object) -> TrainConfig:
    base = {"progress_bar": False, "accelerator": "cpu", "devices": 1, "batch_size": 8}
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_train_config_validation() -> None:
    assert TrainConfig().scheduler == "onecycle" and TrainConfig().batch_size == 16
    cfg = TrainConfig(scheduler="cosine", warmup_epochs=5, epochs=50)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(lr=5e-4, epochs=None).lr == 5e-4
    for bad, match in [
        ({"lr": 0.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"scheduler": "step"}, "valid names"),
        ({"warmup_epochs": 3}, "only applies to scheduler 'cosine'"),
        ({"precision": "fp8"}, "precision"),
        ({"limit_val_batches": 0}, "disable validation"),
        ({"devices": 0}, "devices"),
        ({"max_minutes": -1.0}, "max_minutes"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_runtime_on_cpu() -> None:
    runtime = resolve_runtime(TrainConfig(accelerator="cpu"))
    assert runtime == {"accelerator": "cpu", "precision": "32-true", "channels_last": True}
    assert not resolve_runtime(TrainConfig(accelerator="cpu", channels_last=False))["channels_last"]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_runtime(TrainConfig(accelerator="gpu"))


def test_overfits_one_batch(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    batch = squares(8, seed=0)  # one batch of 8: every epoch is one optimiser step on it
    splits = DataSplits(batch, squares(2, seed=1), squares(2, seed=2), Normalisation.identity())
    result = fit(TINY, quiet(epochs=60, lr=3e-2, log_every_n_steps=1), splits, tmp_path)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 60
    assert losses[0] / losses[-1] > 10, losses
    # beyond fitting the background: well below predicting zeros everywhere (MSE 0.0486)
    zero_mse = float((batch.tensors[1] ** 2).mean())
    assert losses[-1] < 0.25 * zero_mse, (losses[-1], zero_mse)
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_fit_selects_on_val_scores_test_exports_bundle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    splits = DataSplits(
        squares(16, 0), squares(8, 1), squares(12, 2), Normalisation.identity(), {"source": "sq"}
    )
    cfg = quiet(epochs=3, scheduler="cosine", warmup_epochs=1, lr=5e-3)
    result = fit(TINY, cfg, splits, tmp_path, metadata={"variables": ["v"]})
    assert Path(result.checkpoint_path) == tmp_path / "best.pt"
    assert (tmp_path / "lightning" / "last.ckpt").is_file()
    expected = {"loss", "mse", "mae", "mse_per_pixel", "mae_per_pixel", "ssim", "ssim_published"}
    assert expected | {"psnr", "rmse", "val_loss"} == set(result.metrics)
    # the best epoch is the one with the lowest validation loss, and it was exported
    val_losses = [row["val_loss"] for row in result.history]
    assert result.metrics["val_loss"] == pytest.approx(min(val_losses), rel=1e-6)
    # cosine with 1 warm-up epoch: epoch 0 runs at warmup_lr_init
    assert result.history[0]["lr"] == pytest.approx(1e-5)
    loaded = load_checkpoint(result.checkpoint_path, expected_config=TINY)
    assert loaded.metrics == result.metrics
    assert loaded.metadata["source"] == "sq" and loaded.metadata["variables"] == ["v"]
    engine = loaded.metadata["engine"]
    assert engine["world_size"] == 1 and engine["global_step"] == 3 * 2  # 16 / batch 8
    assert engine["train_config"]["scheduler"] == "cosine"
    # the test scores are those of the exported weights
    model = loaded.model
    rescored = evaluate_predictor(model, splits.test, splits.normalisation, batch_size=8)
    assert rescored["mse"] == pytest.approx(result.metrics["mse"], rel=1e-4)
    assert rescored["ssim"] == pytest.approx(result.metrics["ssim"], rel=1e-4)
    assert result.metrics["mse"] == pytest.approx(result.metrics["mse_per_pixel"] * 256, rel=1e-5)
    # a second run into the same folder is refused unless resuming
    with pytest.raises(ValueError, match="already holds a run"):
        fit(TINY, cfg, splits, tmp_path)


def test_fit_refuses_mismatching_splits(tmp_path: Path) -> None:
    splits = DataSplits(squares(8, 0), squares(8, 1), squares(8, 2), Normalisation.identity())
    with pytest.raises(ValueError, match=r"model config needs x\(6, 1, 16, 16\)"):
        fit(TINY.replace(in_frames=6), quiet(), splits, tmp_path)
    with pytest.raises(ValueError, match="normalisation has 2 channels"):
        fit(
            TINY,
            quiet(),
            DataSplits(splits.train, splits.val, splits.test, Normalisation.identity(2)),
            tmp_path,
        )
    with pytest.raises(ValueError, match="must not be the test split"):
        DataSplits(splits.train, splits.val, splits.val, Normalisation.identity())
    with pytest.raises(ValueError, match=r"metadata\['store'\]"):
        fit(TINY, quiet(), splits, tmp_path, metadata={"store": tmp_path})
    assert not (tmp_path / "lightning").exists()  # refused before training started


def test_image_metrics_only_for_untransformed_data() -> None:
    assert image_metrics_apply(Normalisation.identity(2))
    assert not image_metrics_apply(Normalisation("identity", (280.0,), (10.0,)))
    assert not image_metrics_apply(Normalisation("dbr", threshold=0.1))


def test_nchw_training_and_plain_weights_in_bundle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    splits = DataSplits(squares(8, 0), squares(4, 1), squares(4, 2), Normalisation.identity())
    result = fit(TINY, quiet(epochs=1, channels_last=False), splits, tmp_path)
    loaded = load_checkpoint(result.checkpoint_path)
    assert loaded.metadata["engine"]["runtime"]["channels_last"] == "False"
    raw = torch.load(result.checkpoint_path, weights_only=True)["state_dict"]
    assert all(t.is_contiguous() for t in raw.values())  # layout-free weights in the file
    rescored = evaluate_predictor(loaded.model, splits.test, splits.normalisation, batch_size=8)
    assert rescored["mse"] == pytest.approx(result.metrics["mse"], rel=1e-4)


def test_time_budget_stops_after_an_epoch_and_resume_continues(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    splits = DataSplits(squares(16, 0), squares(4, 1), squares(4, 2), Normalisation.identity())
    first = fit(TINY, quiet(epochs=3, max_minutes=1e-5), splits, tmp_path)
    assert len(first.history) == 1  # budget exceeded: stopped after the first full epoch
    assert load_checkpoint(first.checkpoint_path).metadata["engine"]["global_step"] == 2
    resumed = fit(TINY, quiet(epochs=3), splits, tmp_path, resume=True)
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2]
    engine = load_checkpoint(resumed.checkpoint_path).metadata["engine"]
    assert engine["global_step"] == 6 and engine["epochs_completed"] == 3
    with pytest.raises(FileNotFoundError, match="last.ckpt"):
        fit(TINY, quiet(), splits, tmp_path / "fresh", resume=True)
