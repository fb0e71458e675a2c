"""Leave-one-event-out folds: no event in both train and test, validation inside training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluation.cross_validation import (
    FoldSplit,
    StoreFrames,
    describe_folds,
    find_events,
    fold_labels,
    fold_split_config,
    leave_one_event_out,
    window_count,
)
from pipelines.windows import TEST, TRAIN, UNUSED, VAL

pytestmark = pytest.mark.timeout(60)

STEP = pd.Timedelta("5min")
WINDOW = 12  # 6 -> 6


def _store(source: str, runs: list[tuple[str, int]], total: int | None = None) -> StoreFrames:
    """A store whose time axis starts at the first run and holds ``runs`` (start, frames)."""
    origin = pd.Timestamp(runs[0][0])
    ends = [(pd.Timestamp(t) - origin) // STEP + n for t, n in runs]
    length = total or int(max(ends))
    times = pd.date_range(origin, periods=length, freq=STEP).values
    valid = np.zeros(length, dtype=bool)
    for t, n in runs:
        a = (pd.Timestamp(t) - origin) // STEP
        valid[a : a + n] = True
    return StoreFrames(source, times, valid, STEP)


def _shipped_radar() -> list[StoreFrames]:
    """The layout of the 7 shipped radar events (sources, days, frame counts)."""
    return [
        _store(
            "mch-radar",
            [("2015-05-15T15:45", 40), ("2016-07-11T20:45", 40), ("2017-01-31T09:45", 40)],
        ),
        _store("fmi-radar", [("2016-09-28T14:45", 40), ("2017-05-09T10:45", 40)]),
        _store("knmi-radar", [("2010-08-26T00:00", 92)], total=96),
        _store("rmi-radar", [("2021-07-04T15:50", 39)]),
    ]


def test_the_shipped_radar_has_seven_events_and_seven_folds() -> None:
    stores = _shipped_radar()
    events = find_events(stores, WINDOW)
    assert [e.source for e in events] == ["mch-radar"] * 3 + ["fmi-radar"] * 2 + [
        "knmi-radar",
        "rmi-radar",
    ]
    assert [e.frames for e in events] == [40, 40, 40, 40, 40, 92, 39]
    assert events[0].name == "mch-radar@2015-05-15T15:45"
    folds = leave_one_event_out(events)
    table = describe_folds(folds)
    assert list(table["train_events"]) == [6] * 7 and table["test_event"].is_unique


@pytest.mark.parametrize("k", range(7))
def test_no_event_in_train_and_test_and_validation_inside_training_events(k: int) -> None:
    stores = _shipped_radar()
    events = find_events(stores, WINDOW)
    fold = leave_one_event_out(events)[k]
    labels = fold_labels(stores, fold, FoldSplit(0.15, gap=WINDOW), WINDOW)
    test_frames = set()
    for s, lab in enumerate(labels):
        for e in events:
            if e.store != s:
                continue
            inside = set(np.unique(lab[e.start : e.stop]))
            if e.id == fold.test.id:
                assert inside == {TEST}  # the held-out event is wholly test
                test_frames.add(e.id)
            else:
                assert TEST not in inside  # training events never test
        outside = np.ones(len(lab), dtype=bool)
        for e in events:
            if e.store == s:
                outside[e.start : e.stop] = False
        assert (lab[outside] == UNUSED).all()  # frames outside events (missing) unused
    assert test_frames == {fold.test.id}
    # Validation exists, lies in training events, after every train frame on the time line.
    pairs = list(zip(stores, labels, strict=True))
    train_times = np.concatenate([st.times[lab == TRAIN] for st, lab in pairs])
    val_times = np.concatenate([st.times[lab == VAL] for st, lab in pairs])
    assert len(val_times) >= WINDOW and len(train_times) > 0
    assert train_times.max() + WINDOW * STEP < val_times.min()
    n_val = sum(window_count(lab, VAL, WINDOW, st.breaks) for st, lab in pairs)
    n_test = sum(window_count(lab, TEST, WINDOW, st.breaks) for st, lab in pairs)
    assert n_val >= 1 and n_test == fold.test.frames - WINDOW + 1


def test_training_frames_keep_a_gap_from_the_held_out_event_in_the_same_store() -> None:
    # One store, three runs separated by 2 missing frames: joined, they are one event; strict,
    # three events, and the neighbours of the held-out middle one lose `gap` frames.
    store = _store(
        "x",
        [("2024-01-01T00:00", 30), ("2024-01-01T02:40", 30), ("2024-01-01T05:20", 30)],
    )
    assert len(find_events([store], WINDOW, join_steps=2)) == 1
    events = find_events([store], WINDOW)
    assert len(events) == 3
    fold = leave_one_event_out(events)[1]
    (lab,) = fold_labels([store], fold, FoldSplit(0.3, gap=4), WINDOW)
    test_idx = np.flatnonzero(lab == TEST)
    used = np.flatnonzero((lab == TRAIN) | (lab == VAL))
    steps_apart = np.abs(used[:, None] - test_idx[None, :]).min(1)
    assert steps_apart.min() > 4


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least 2 events"):
        leave_one_event_out(find_events([_store("x", [("2024-01-01", 30)])], WINDOW))
    with pytest.raises(ValueError, match="val_fraction"):
        FoldSplit(val_fraction=0.0)
    short = [_store("x", [("2024-01-01", 14)]), _store("y", [("2024-02-01", 14)])]
    fold = leave_one_event_out(find_events(short, WINDOW))[0]
    with pytest.raises(ValueError, match="fold 0 .*only 14 valid frames"):
        fold_labels(short, fold, FoldSplit(), WINDOW)
    assert find_events([_store("x", [("2024-01-01", 5)])], WINDOW) == []


def test_source_windows_of_a_fold_test_only_the_held_out_event(tmp_path) -> None:
    from pipelines import windows as W
    from tests.pipelines.test_windows import synthetic_catalog, write_store

    # Three events of 20 frames separated by 10 missing frames; 3 -> 2 windows, gap 5.
    missing = tuple(range(20, 30)) + tuple(range(50, 60))
    path = write_store(tmp_path / "stores" / "synthetic.zarr", 80, missing=missing)
    ds = W.open_store(path)
    frames = StoreFrames("synthetic", ds["time"].values, ds["frame_present"].values, STEP)
    events = find_events([frames], 5)
    assert [(e.start, e.stop) for e in events] == [(0, 20), (30, 50), (60, 80)]
    fold = leave_one_event_out(events)[1]
    split = fold_split_config(fold, FoldSplit(0.25, gap=5), 5)
    got = W.source_windows(
        "synthetic", tmp_path, 3, 2, synthetic_catalog(), crop="full", coarsen=1, split=split
    )
    test_starts = [ref.start for ref in got.splits.windows["test"]]
    assert test_starts == list(range(30, 46))  # every window of the held-out event, only those
    for name in ("train", "val"):
        assert all(not 25 <= r.start < 55 for r in got.splits.windows[name])
    (labels,) = got.splits.labels
    expected = fold_labels([frames], fold, FoldSplit(0.25, gap=5), 5)[0]
    np.testing.assert_array_equal(labels, expected)
    assert got.metadata["split"]["holdout"] == [list(h) for h in fold.holdout()]
    again = W.windows_from_metadata(got.metadata, catalog=synthetic_catalog())
    assert again.splits.windows == got.splits.windows
    with pytest.raises(ValueError, match="fractions\\[2\\] must be 0"):
        W.SplitConfig((0.7, 0.15, 0.15), holdout=fold.holdout())
    with pytest.raises(ValueError, match="holdout entries"):
        W.SplitConfig((0.8, 0.2, 0.0), holdout=((0, "2024-01-02", "2024-01-01"),))
