"""The ingest report a person reads: frames written, events (runs of frames) and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog.catalog import get_source, list_files
from pipelines.ingest import ingest_source
from pipelines.ingest.report import Span, spans
from pipelines.ingest.synthetic import read_npy, synthetic_spec, write_files
from pipelines.readers.base import frames_to_dataset

pytestmark = pytest.mark.timeout(120)
TIMES = pd.date_range("2024-05-01T00:00", periods=12, freq="5min")


def test_spans_split_a_mask_into_events_and_gaps():
    present = np.array([True, True, False, False, True, False])
    events, gaps = spans(present, TIMES[:6])
    assert events == [Span(TIMES[0], TIMES[1], 2), Span(TIMES[4], TIMES[4], 1)]
    assert gaps == [Span(TIMES[2], TIMES[3], 2), Span(TIMES[5], TIMES[5], 1)]
    assert spans(np.zeros(0, dtype=bool), TIMES[:0]) == ([], [])


def test_gaps_in_a_requested_period_are_named_with_their_times(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, TIMES.delete([4, 5, 9]))
    report = ingest_source(
        spec,
        store_path=str(tmp_path / "s.zarr"),
        start=TIMES[0],
        end=TIMES[-1] + pd.Timedelta("10min"),  # two steps after the last file: a gap too
        reader=read_npy,
        progress=False,
    )
    assert report.frames_written == 9 and report.period_requested
    assert [(e.first, e.steps) for e in report.events] == [
        (TIMES[0], 4),
        (TIMES[6], 3),
        (TIMES[10], 2),
    ]
    assert [(g.first, g.steps) for g in report.gaps] == [
        (TIMES[4], 2),
        (TIMES[9], 1),
        (TIMES[-1] + pd.Timedelta("5min"), 2),
    ]
    assert report.missing_steps == 5 and len(report.missing) == 5
    text = report.summary()
    assert (
        "9 frames written (9 new) from 9 files; 3 events: 2024-05-01 00:00..00:15 (4 frames" in text
    )
    assert (
        "3 gaps: 2024-05-01 00:20..00:25 (2 steps, 10 min); 2024-05-01 00:45 (1 step, 5 min)"
        in text
    )
    assert "(in the requested period)" in text
    assert report.value_ranges["precipitation_rate"][0] >= 0.0


def test_shipped_three_event_sample_reports_events_not_missing_steps(tmp_path):
    """The shipped MeteoSwiss sample is three storms of 40 frames (2015, 2016, 2017)."""
    files = list_files(get_source("mch-radar"))
    times = pd.DatetimeIndex(sorted(f.time for f in files))
    starts = list(times[np.r_[True, np.diff(times) != pd.Timedelta("5min")]])
    assert len(files) == 120 and len(starts) == 3
    report = ingest_source("mch-radar", data_dir=str(tmp_path), progress=False)
    assert report.frames_written == 120 and not report.period_requested
    assert [e.first for e in report.events] == starts and [e.steps for e in report.events] == [
        40,
        40,
        40,
    ]
    assert len(report.gaps) == 2
    span = (report.last - report.first) // report.time_step + 1
    assert report.missing_steps == span - 120  # the old report's "180424 missing"
    text = report.summary()
    assert (
        "120 frames written (120 new) from 120 files; 3 events: 2015-05-15 15:45..19:00 "
        "(40 frames, 3 h 20 min); 2016-07-11 20:45..2016-07-12 00:00 (40 frames, 3 h 20 min); "
        "2017-01-31 09:45..13:00 (40 frames, 3 h 20 min); 2 gaps: 2015-05-15 19:05..2016-07-11 "
        "20:40 (121844 steps, 1 y 58 d); 2016-07-12 00:05..2017-01-31 09:40 (58580 steps, "
        "203 d 9 h) (between the events)"
    ) in text
    assert "missing" not in text


def _dataset_with_qc(path, spec):
    """A Dataset reader whose quality control masked 3 out-of-range values per file."""
    ds = frames_to_dataset(spec, [read_npy(path, spec)])
    ds["precipitation_rate"].attrs["qc_masked_count"] = 3
    return ds


def test_masked_out_of_range_values_are_reported_and_recorded(tmp_path):
    spec = synthetic_spec(tmp_path / "files")
    write_files(spec, TIMES[:4])
    report = ingest_source(
        spec, store_path=str(tmp_path / "s.zarr"), reader=_dataset_with_qc, progress=False
    )
    assert report.masked == 12
    assert "12 out-of-range pixels masked to NaN" in report.summary()
    history = xr.open_zarr(report.store).attrs["history"]
    assert history.endswith("; 12 out-of-range values masked to NaN")
