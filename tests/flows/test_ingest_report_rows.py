"""The ingest flow's artifact tables: one summary row, and the events and gaps in time order."""

from __future__ import annotations

import pandas as pd

from flows.ingest import event_rows, report_rows
from pipelines.ingest.report import IngestReport, Span

T = pd.Timestamp("2016-07-11 20:45")
STEP = pd.Timedelta("5min")


def _report() -> IngestReport:
    events = (Span(T, T + 3 * STEP, 4), Span(T + 6 * STEP, T + 6 * STEP, 1))
    gaps = (Span(T + 4 * STEP, T + 5 * STEP, 2),)
    return IngestReport(
        source="mch-radar",
        store="data/stores/mch-radar.zarr",
        files=5,
        frames_written=5,
        frames_new=5,
        period=(T, T + 6 * STEP),
        period_requested=True,
        events=events,
        gaps=gaps,
        first=T,
        last=T + 6 * STEP,
        store_frames=12,
        store_bytes=2**20,
        seconds=1.0,
    )


def test_report_rows_count_events_and_gaps_not_missing_timestamps():
    (row,) = report_rows(_report())
    assert (row["events"], row["gaps"], row["missing_steps"]) == (2, 1, 2)
    assert "missing" not in row


def test_event_rows_interleave_events_and_gaps_in_time_order():
    rows = event_rows(_report())
    assert [(r["kind"], r["steps"]) for r in rows] == [("event", 4), ("gap", 2), ("event", 1)]
    assert rows[1]["first"] == "2016-07-11 21:05:00"
