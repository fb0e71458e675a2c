"""Fine-tuning from a pretrained model (``train_source(init_from=...)``,
pipelines.training.finetune).
"""

from __future__ import annotations

import pytest
import torch

import pipelines.method.pretrained.card as card_module
from pipelines.method.pretrained import load_pretrained
from pipelines.training.source import train_source
from pipelines.windows import SplitConfig
from simvp_model.checkpoint import load_checkpoint
from tests.pipelines.pretrained_helpers import tiny_pretrained

SOURCE = "mch-radar"
SPLIT = SplitConfig((0.5, 0.25, 0.25), gap=0)
QUICK = {"epochs": 1, "batch_size": 4, "limit_train_batches": 2, "progress_bar": False}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The 2016-07-11 MeteoSwiss event (40 frames, 1 km), freshly ingested."""
    from pipelines.ingest import ingest_source

    root = tmp_path_factory.mktemp("data")
    ingest_source(SOURCE, str(root), "2016-07-11T20:45", "2016-07-12T00:00", progress=False)
    return root


def test_fine_tune_starts_from_the_pretrained_weights(data_dir, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    root = tmp_path / "pretrained"
    card = tiny_pretrained(root, resolution_m=16_000.0)  # 16 km: MCH coarsened 16x
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    initial = load_pretrained("radar").loaded
    result = train_source(
        SOURCE, data_dir, init_from="pretrained", split=SPLIT, out_dir=tmp_path / "ft", **QUICK
    )
    tuned = load_checkpoint(result.checkpoint_path)
    meta = tuned.metadata
    assert meta["init_from"]["sha256"] == card.sha256 and meta["coarsen"] == 16
    assert tuned.normalisation == initial.normalisation  # the weights' units are kept
    same = {"height", "width"}
    for name in type(initial.config).__dataclass_fields__:
        if name not in same:
            assert getattr(tuned.config, name) == getattr(initial.config, name), name
    assert (tuned.config.height, tuned.config.width) != (16, 16)  # another grid, same weights
    before, after = initial.model.state_dict(), tuned.model.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it was trained


def test_fine_tune_refuses_what_does_not_fit(data_dir, tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    tiny_pretrained(root, resolution_m=16_000.0)
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    common = {"init_from": "pretrained", "split": SPLIT, **QUICK}
    with pytest.raises(ValueError, match=r"spatial_hidden=32 \(model: 8\)"):
        train_source(SOURCE, data_dir, spatial_hidden=32, **common)
    with pytest.raises(ValueError, match="in_frames=6 differs from the initial model's 4"):
        train_source(SOURCE, data_dir, in_frames=6, **common)
    with pytest.raises(ValueError, match="conflicts with --init-from"):
        train_source(SOURCE, data_dir, preset="radar-small", **common)
    tiny_pretrained(tmp_path / "p10", resolution_m=16_000.0, time_step="10min")
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", tmp_path / "p10")
    with pytest.raises(ValueError, match="at 5min steps, the initial model"):
        train_source(SOURCE, data_dir, **common)
    tiny_pretrained(tmp_path / "p3", resolution_m=1_500.0)
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", tmp_path / "p3")
    with pytest.raises(ValueError, match="not a whole multiple"):
        train_source(SOURCE, data_dir, **common)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        train_source(SOURCE, data_dir, **{**common, "init_from": str(tmp_path / "none.pt")})


def test_evaluate_compares_the_fine_tuned_model_with_the_zero_shot_one(
    data_dir, tmp_path, monkeypatch
):
    from pipelines.evaluation.evaluate import evaluate_source

    torch.set_num_threads(1)
    root = tmp_path / "pretrained"
    tiny_pretrained(root, resolution_m=16_000.0, shape=(32, 32))
    monkeypatch.setattr(card_module, "PRETRAINED_ROOT", root)
    result = train_source(
        SOURCE, data_dir, init_from="pretrained", split=SPLIT, out_dir=tmp_path / "ft", **QUICK
    )
    report = evaluate_source(
        SOURCE,
        data_dir,
        checkpoint=result.checkpoint_path,
        max_samples=2,
        baselines=["persistence", "pretrained"],
    )
    mse = report.scores.query("score == 'mse'").groupby("method")["value"].mean()
    assert set(mse.index) == {"simvp", "persistence", "pretrained"}
    assert mse.notna().all()


def test_fine_tune_from_the_shipped_weights(data_dir, tmp_path):
    torch.set_num_threads(1)
    shipped = load_pretrained("radar")  # the package's own weights, hash-checked
    result = train_source(
        SOURCE,
        data_dir,
        init_from="pretrained",
        split=SPLIT,
        out_dir=tmp_path / "ft",
        **{**QUICK, "limit_train_batches": 1, "limit_val_batches": 1, "limit_test_batches": 1},
    )
    tuned = load_checkpoint(result.checkpoint_path)
    assert tuned.metadata["init_from"]["sha256"] == shipped.card.sha256
    assert tuned.metadata["coarsen"] == 4  # MeteoSwiss 1 km -> the model's 4 km
    assert tuned.config.base == shipped.loaded.config.base == "extrapolation"
    assert tuned.normalisation == shipped.loaded.normalisation
