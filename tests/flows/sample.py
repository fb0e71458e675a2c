"""The shipped sample and the tiny training shared by the Prefect tests."""

from __future__ import annotations

from typing import Any

import pandas as pd

SOURCE = "mch-radar"
#: One event of the shipped MeteoSwiss sample (the 2016-07-11 one, 40 frames).
FIRST, LAST = pd.Timestamp("2016-07-11 20:45"), pd.Timestamp("2016-07-12 00:00")

#: ``train_source`` options for one optimiser step on a 40 x 44 grid with a narrow network.
TINY_OVERRIDES: dict[str, Any] = {
    "in_frames": 4,
    "out_frames": 4,
    "batch_size": 4,
    "limit_train_batches": 1,
    "limit_val_batches": 1,
    "limit_test_batches": 1,
    "spatial_hidden": 8,
    "temporal_hidden": 16,
    "coarsen": 16,
    # the base path is exercised with the cheap persistence base (the radar default, LK, would
    # add a Lucas-Kanade run per window to every flow test)
    "base": "persistence",
}

#: Tiny training parameters (the split is gap-less: one event cannot hold three gapped splits;
#: these tests check plumbing, not skill).
TINY_TRAINING: dict[str, Any] = {
    "epochs": 1,
    "max_minutes": None,
    "split": {"fractions": [0.5, 0.25, 0.25], "gap": 0},
}
