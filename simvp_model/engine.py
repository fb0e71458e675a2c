"""Training engine, re-exported from its three rooms (kept so existing imports keep working).

- :mod:`simvp_model.train_config`: :class:`TrainConfig`, :class:`DataSplits`, :class:`FitResult`,
  :func:`resolve_runtime` (no Lightning import);
- :mod:`simvp_model.scoring`: :func:`evaluate_predictor`, :func:`score_batch`,
  :func:`image_metrics_apply` (test scoring of SimVP and baselines);
- :mod:`simvp_model.lightning_module`: :class:`SimVPModule`, :class:`HistoryWriter`,
  :func:`fit`, :func:`read_history` (the Lightning ``Trainer`` around SimVP).

Importing this module imports Lightning; import from the rooms above to avoid it.
"""

from __future__ import annotations

from simvp_model.lightning_module import HistoryWriter, SimVPModule, fit, read_history
from simvp_model.scoring import evaluate_predictor, image_metrics_apply, score_batch
from simvp_model.train_config import (
    BUNDLE_NAME,
    MONITOR,
    PRECISIONS,
    DataSplits,
    FitResult,
    TrainConfig,
    resolve_runtime,
)

__all__ = [
    "BUNDLE_NAME",
    "MONITOR",
    "PRECISIONS",
    "DataSplits",
    "FitResult",
    "HistoryWriter",
    "SimVPModule",
    "TrainConfig",
    "evaluate_predictor",
    "fit",
    "image_metrics_apply",
    "read_history",
    "resolve_runtime",
    "score_batch",
]
