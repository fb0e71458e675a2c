"""Leave-one-event-out cross-validation: event folds (:mod:`.folds`) and the driver (:mod:`.run`).

``cross_validate("mch-radar,fmi-radar,knmi-radar,rmi-radar", data_dir)`` finds the events of
the stores, trains one model per fold with the source defaults, scores every held-out event with
the code of ``nowcast evaluate`` and writes one pooled report with event-bootstrap intervals.
"""

from __future__ import annotations

from pipelines.evaluation.cross_validation.folds import (
    Event,
    Fold,
    FoldSplit,
    StoreFrames,
    describe_folds,
    find_events,
    fold_labels,
    fold_split_config,
    leave_one_event_out,
    window_count,
)
from pipelines.evaluation.cross_validation.run import CV_REPORT, CVConfig, CVResult, cross_validate

__all__ = [
    "CV_REPORT",
    "CVConfig",
    "CVResult",
    "Event",
    "Fold",
    "FoldSplit",
    "StoreFrames",
    "cross_validate",
    "describe_folds",
    "find_events",
    "fold_labels",
    "fold_split_config",
    "leave_one_event_out",
    "window_count",
]
