"""Evaluation windows of any period and the zero-shot crop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluation.windows import overlapping_periods, period_starts, zero_shot_crop

pytestmark = pytest.mark.timeout(30)

STEP = pd.Timedelta("5min")


def test_period_starts_keep_windows_inside_the_period_and_present_frames() -> None:
    times = pd.date_range("2024-07-01T12:00", periods=20, freq=STEP).values
    present = np.ones(20, dtype=bool)
    present[8] = False  # a missing frame breaks windows
    np.testing.assert_array_equal(
        period_starts(times, present, STEP, 5), [0, 1, 2, 3, 9, 10, 11, 12, 13, 14, 15]
    )
    # Every frame of a window inside [12:10, 13:10] (frames 2 .. 14), tz-aware bounds converted.
    got = period_starts(times, present, STEP, 5, "2024-07-01T14:10+02:00", "2024-07-01T13:10Z")
    np.testing.assert_array_equal(got, [2, 3, 9, 10])
    irregular = np.concatenate([times[:10], times[10:] + np.timedelta64(1, "m")])
    assert 8 not in period_starts(irregular, np.ones(20, bool), STEP, 3)
    with pytest.raises(ValueError, match="after end"):
        period_starts(times, present, STEP, 5, "2024-07-02", "2024-07-01")


def test_zero_shot_crop_is_centred_and_refuses_a_small_store() -> None:
    assert zero_shot_crop((765, 700), (64, 64), 8) == (126, 638, 94, 606)
    assert zero_shot_crop((512, 512), (64, 64), 8) is None
    with pytest.raises(ValueError, match="512 x 512 store pixels .* store grid is 400 x 700"):
        zero_shot_crop((400, 700), (64, 64), 8)


def test_overlap_with_training_periods_is_named() -> None:
    periods = {"train": ["2024-07-01T00:00Z", "2024-07-01T10:00Z"], "val": None}
    first, last = np.datetime64("2024-07-01T09:00"), np.datetime64("2024-07-01T12:00")
    assert overlapping_periods(first, last, periods) == ["train"]
    assert overlapping_periods(last, last, periods) == []
