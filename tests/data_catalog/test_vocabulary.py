"""Durations spelled as users write them (catalog time steps, CLI flags)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_catalog.vocabulary import duration_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (pd.Timedelta("5min"), "5min"),
        (np.timedelta64(60, "m"), "1h"),
        ("90min", "1h30min"),
        ("2D", "2D"),
        ("1D6h", "1D6h"),
        ("90s", "90s"),
        ("-10min", "-10min"),
        ("0s", "0min"),
    ],
)
def test_duration_text_round_trips(value, text):
    assert duration_text(value) == text
    assert pd.Timedelta(text) == pd.Timedelta(value)
