"""Live verification: score every issued forecast as its observations arrive, and show it.

The folder reads like the data's path: :mod:`.verify` finds the forecast-store entries whose
valid times are observed and not yet scored, :mod:`.scoring` scores each with the one scoring
code (SimVP, the recomputed baselines, the probabilistic products), :mod:`.store` keeps the rows
(``DIR/verification/<source>/``, Parquet day files), :mod:`.skill` aggregates them,
:mod:`.page` draws ``DIR/reports/<source>/live.html``, :mod:`.alerts` decides when a run fails,
and :mod:`.replay` plays an archive as if it were live (ingest → forecast → verify each hour).
"""

from __future__ import annotations

from pipelines.live.alerts import AlertConfig, check_alerts
from pipelines.live.scoring import ScoreConfig, probabilistic_rows, score_entry
from pipelines.live.store import VerificationStore
from pipelines.live.verify import VerifyReport, verify_source

__all__ = [
    "AlertConfig",
    "ScoreConfig",
    "VerificationStore",
    "VerifyReport",
    "check_alerts",
    "probabilistic_rows",
    "score_entry",
    "verify_source",
]
