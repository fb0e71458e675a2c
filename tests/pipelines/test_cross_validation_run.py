"""The cross-validation driver end to end on a tiny synthetic store with two events."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pipelines.evaluation.cross_validation import CVConfig, cross_validate
from pipelines.verification.bootstrap import BootstrapConfig
from simvp_model.checkpoint import load_checkpoint
from tests.pipelines.test_evaluate import _noisy_ensemble
from tests.pipelines.test_windows import synthetic_catalog, write_store

pytestmark = pytest.mark.timeout(300)


def test_every_event_is_held_out_once_and_the_folds_are_pooled(tmp_path) -> None:
    torch.set_num_threads(1)
    missing = tuple(range(20, 30))  # events 0-19 and 30-49
    write_store(tmp_path / "stores" / "synthetic.zarr", 50, missing=missing, shape=(8, 12))

    def run(out: str, folds: tuple[int, ...] | None = None):
        return cross_validate(
            "synthetic",
            tmp_path,
            catalog=synthetic_catalog(),
            out_dir=tmp_path / out,
            # The synthetic grid has no distance units (STEPS needs them): a test ensemble.
            config=CVConfig(
                baselines=("persistence",),
                bootstrap=BootstrapConfig(200),
                folds=folds,
                ensembles=(),
                members=3,
            ),
            ensembles={"noisy": _noisy_ensemble},
            in_frames=3,
            out_frames=2,
            preset="tiny",
            epochs=1,
            crop="full",
            coarsen=1,
            batch_size=4,
            progress_bar=False,
        )

    result = run("cv")
    assert [f.test.id for f in result.folds] == [0, 1]
    # Each fold's checkpoint tests exactly its held-out event (recorded as the holdout).
    for fold in result.folds:
        meta = load_checkpoint(tmp_path / "cv" / f"fold_{fold.index}" / "best.pt").metadata
        assert meta["split"]["holdout"] == [list(h) for h in fold.holdout()]
        assert meta["test_period"][0] == fold.test.first
    # 16 windows of 5 frames per 20-frame event, pooled with the event as bootstrap group.
    assert len(result.groups) == 32
    np.testing.assert_array_equal(np.bincount(result.groups), [16, 16])
    assert set(result.per_fold["event"]) == {e.name for e in result.events}
    mse = result.scores[(result.scores["score"] == "mse")]
    assert set(mse["method"]) == {"simvp", "persistence"}
    assert mse["lower"].notna().all() and (mse["lower"] <= mse["value"] + 1e-9).all()
    paired = result.comparisons
    assert set(paired["score"]) == {"mse", "csi"} and (paired["n_groups"] == 2).all()
    names = {os.path.basename(f) for f in result.files}
    assert {"index.html", "scores.csv", "comparisons.csv", "rapsd.png"} <= names
    # The ensemble: probabilistic rows with event intervals, its diagrams' tables.
    assert result.forecasts.ensembles["noisy"].sizes["realization"] == 3
    crps = result.scores[result.scores["score"] == "crps"]
    assert set(crps["method"]) == {"noisy"} and crps["lower"].notna().all()
    assert {"reliability.csv", "rank_histogram.csv", "reliability.png"} <= names
    assert os.path.exists(os.path.join(result.directory, "folds.csv"))
    # Same seed, same numbers: fold 1 again gives the same SimVP scores.
    again = run("again", folds=(1,)).per_fold
    first = result.per_fold[result.per_fold["fold"] == 1].reset_index(drop=True)
    np.testing.assert_array_equal(again["mse"].values, first["mse"].values)


def test_cli_cv_refuses_a_checkpoint_and_a_missing_store(tmp_path, capsys) -> None:
    from pipelines.cli import main

    args = ["evaluate", "--source", "mch-radar", "--data-dir", str(tmp_path), "--cv", "event"]
    assert main([*args, "--checkpoint", "x.pt"]) == 2
    assert "takes no --checkpoint" in capsys.readouterr().err
    assert main(args) == 2
    assert "ingest it first: nowcast ingest mch-radar" in capsys.readouterr().err
