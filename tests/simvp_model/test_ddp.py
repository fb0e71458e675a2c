"""Two-process DDP (gloo on CPU) through Lightning's Trainer: sharded data, one exported bundle.

``ddp_fork`` is Lightning's DDP strategy with the fork start method: the same DDP wrapping,
gloo process group, DistributedSampler and result recovery in the main process as
``ddp_spawn``, without re-importing torch and Lightning in each child (about 15 s instead of
35 s on the 2-core CI machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from simvp_model.checkpoint import load_checkpoint
from simvp_model.engine import DataSplits, TrainConfig, fit
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset


def _windows(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    seq = torch.rand(n, 8, 1, 16, 16, generator=g)  # (n, T_in + T_out, C, H, W)
    return TensorDataset(seq[:, :4], seq[:, 4:])


@pytest.mark.timeout(120)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_two_cpu_processes_gloo(tmp_path: Path) -> None:
    splits = DataSplits(_windows(16, 0), _windows(8, 1), _windows(8, 2), Normalisation.identity())
    config = TrainConfig(
        epochs=1,
        batch_size=2,
        lr=1e-3,
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        progress_bar=False,
    )
    result = fit(get_preset("tiny"), config, splits, tmp_path)
    loaded = load_checkpoint(result.checkpoint_path)
    engine = loaded.metadata["engine"]
    assert engine["world_size"] == 2
    # 16 samples sharded over 2 ranks (DistributedSampler) = 4 steps of batch 2 per rank;
    # one process would take 8
    assert engine["global_step"] == 4
    assert set(loaded.metrics) >= {"mse", "ssim", "val_loss"}
    assert all(torch.isfinite(torch.tensor(v)) for v in loaded.metrics.values())
    assert len(result.history) == 1 and result.is_global_zero
