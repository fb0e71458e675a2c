"""Replay of the shipped MeteoSwiss event (2016-07-11) hour by hour through ``nowcast replay``.

A tiny random SimVP on the demo domain (the sample's 4 km grid, 160 x 176 px, 12 leads) keeps it
short: 21:00 issues the first forecast, 22:00 ingests its hour of observations, issues the next
one and verifies the first against them, with persistence and Lucas–Kanade recomputed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.live_replay import tiny_checkpoint
from pipelines.cli import main
from pipelines.live import VerificationStore

pytestmark = pytest.mark.timeout(300)


def test_replay_of_the_shipped_event(tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoint(
        tmp_path / "demo.pt", (160, 176), "mch-radar", coarsen=4, crop=[0, 640, 0, 704]
    )
    data = tmp_path / "data"
    args = ["replay", "--source", "mch-radar", "--start", "2016-07-11T21:00"]
    args += ["--end", "2016-07-11T22:00", "--checkpoint", str(checkpoint), "--data-dir", str(data)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["2016-07-11T21:00Z", "True", "0"]
    assert out[2].split()[:3] == ["2016-07-11T22:00Z", "True", "1"]
    rows = VerificationStore(data / "verification" / "mch-radar").read()
    assert set(rows["init_time"]) == {pd.Timestamp("2016-07-11T21:00")}
    assert set(rows["method"]) == {"simvp", "persistence", "optical_flow"}
    assert sorted(set(rows["lead_time_minutes"])) == [5.0 * k for k in range(1, 13)]
    mse = rows.query("score == 'mse'")
    assert mse["value"].notna().all() and (mse["value"] >= 0).all()
    assert Path(data / "reports" / "mch-radar" / "live.html").is_file()
