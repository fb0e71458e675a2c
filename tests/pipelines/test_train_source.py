"""Training on a catalog source (pipelines/training/source.py) on a tiny synthetic store."""

from __future__ import annotations

import pytest
import torch

from pipelines.prepare import KIND_DEFAULTS
from pipelines.training import source as TS
from pipelines.windows import SplitConfig, windows_from_metadata
from simvp_model.checkpoint import load_checkpoint
from tests.pipelines.test_windows import synthetic_catalog, write_store


def test_split_overrides_routes_and_refuses():
    model, train, windows = TS.split_overrides(
        {"lr": 0.01, "spatial_hidden": 8, "crop": [0, 8, 0, 8], "batch_size": None}
    )
    assert model == {"spatial_hidden": 8}
    assert train == {"lr": 0.01}
    assert windows == {"crop": [0, 8, 0, 8]}
    with pytest.raises(ValueError, match="unknown training option 'colour'"):
        TS.split_overrides({"colour": "red"})


def test_hardware_defaults_cover_every_kind():
    from data_catalog.vocabulary import SOURCE_KINDS

    for kind in SOURCE_KINDS:
        cpu = TS.HARDWARE_DEFAULTS.get(kind).pick(cuda=False)
        gpu = TS.HARDWARE_DEFAULTS.get(kind).pick(cuda=True)
        assert cpu.preset and gpu.preset
    # radar: the whole domain at 4 km on CPU (KIND_DEFAULTS), 2 km on a GPU, in random crops
    radar = TS.HARDWARE_DEFAULTS.get("radar")
    assert KIND_DEFAULTS.get("radar").coarsen == radar.pick(False).coarsen == 4
    assert KIND_DEFAULTS.get("radar").crop_size is None
    assert radar.pick(True).coarsen == 2
    assert radar.pick(False).tile == (64, 64) and radar.pick(False).augment
    # every kind corrects a base nowcast chosen on validation (issue 10)
    bases = {k: TS.HARDWARE_DEFAULTS.get(k).pick(False).base for k in SOURCE_KINDS}
    assert bases == {
        "radar": "extrapolation",
        "crowd-flow": "persistence",
        "climate": "anomaly_persistence",
    }
    assert radar.pick(False).loss == radar.pick(True).loss == "mse_physical"


def test_train_source_end_to_end(tmp_path):
    torch.set_num_threads(1)
    write_store(tmp_path / "stores" / "synthetic.zarr", 60, missing=(30,), shape=(16, 16))
    result = TS.train_source(
        "synthetic",
        tmp_path,
        preset="tiny",
        epochs=2,
        catalog=synthetic_catalog(),
        split=SplitConfig((0.6, 0.2, 0.2)),
        in_frames=3,
        out_frames=2,
        crop="full",
        coarsen=2,
        batch_size=4,
        progress_bar=False,
    )
    assert result.checkpoint_path == str(tmp_path / "models" / "synthetic" / "best.pt")
    assert len([h for h in result.history if "val_loss" in h]) == 2
    loaded = load_checkpoint(result.checkpoint_path)
    meta = loaded.metadata
    assert (loaded.config.in_frames, loaded.config.out_frames) == (3, 2)
    assert (loaded.config.height, loaded.config.width) == (8, 8)
    assert meta["source"] == "synthetic" and meta["preset"] == "tiny"
    # the radar recipe applies to any preset: a correction of the LK nowcast, loss in mm/h
    assert loaded.config.base == "extrapolation" and meta["base"] == "extrapolation"
    assert meta["recipe"]["loss"] == "mse_physical" and meta["recipe"]["augment"]
    assert all(
        len(p) == 3 for p in [windows_from_metadata(meta, catalog=synthetic_catalog()).test[0]]
    )
    assert meta["coarsen"] == 2 and meta["crop"] is None and meta["variables"] == ["precipitation"]
    assert meta["train_period"][1] < meta["val_period"][0] < meta["test_period"][0]
    assert loaded.normalisation.transform == "dbr"
    assert {"mse", "mae", "persistence_mse", "persistence_mae"} <= set(result.metrics)
    assert meta["baselines"]["persistence"]["mse"] == result.metrics["persistence_mse"]
    # The persistence score, recomputed by hand on the test windows rebuilt from the metadata
    # (literature MSE: per-frame sum over C*H*W of squared physical errors, mean over frames).
    test = windows_from_metadata(meta, catalog=synthetic_catalog()).test
    pairs = [test[i] for i in range(len(test))]
    x = torch.stack([p[0] for p in pairs])  # (N, T_in, C, H, W) normalised
    y = torch.stack([p[-1] for p in pairs])  # (N, T_out, C, H, W); p = (x, base, y)
    last = x[:, -1:].expand_as(y)  # persistence
    error = loaded.normalisation.decode(last).double() - loaded.normalisation.decode(y).double()
    by_hand = float((error**2).sum(dim=(2, 3, 4)).mean())
    assert meta["baselines"]["persistence"]["mse"] == pytest.approx(by_hand, rel=1e-4)


def test_persistence_repeats_the_last_input_frame():
    x = torch.arange(2 * 3 * 1 * 2 * 2, dtype=torch.float32).reshape(2, 3, 1, 2, 2)
    y = TS.persistence(4)(x)
    assert y.shape == (2, 4, 1, 2, 2)
    torch.testing.assert_close(y[:, 3], x[:, 2])
