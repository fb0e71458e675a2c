"""A verification run killed (SIGKILL) at each stage resumes and loses nothing.

Each case runs ``nowcast verify`` in a subprocess that kills itself at one stage
(``NOWCAST_LIVE_KILL_AT``, :func:`pipelines.live.store.stage`), then reruns it to completion:
the verification store must equal that of an uninterrupted run, hold no temporary file, and a
third run must add nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.live import AlertConfig, VerificationStore, verify_source
from tests.pipelines import live_helpers as lh

pytestmark = pytest.mark.timeout(240)
QUIET = AlertConfig(max_input_age=None, min_skill=-1e9)
ROOT = Path(__file__).resolve().parents[2]
STAGES = ("discovered", "scored", "day_written", "day_committed", "page_written")
INITS = lh.INITS[:2]  # two entries: a kill after the first commit leaves one to resume


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return lh.build(tmp_path_factory.mktemp("live"), inits=INITS)


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> pd.DataFrame:
    data = lh.copy(template, tmp_path_factory.mktemp("ref") / "data")
    report = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    return VerificationStore(report.store).read()


def _verify_killed_at(data: Path, stage: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NOWCAST_LIVE_KILL_AT": stage, "PYTHONPATH": str(ROOT)}
    args = ["--as-of", str(lh.AS_OF), "--max-input-age", "none", "--min-skill", "-100"]
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "verify", "--source", lh.SOURCE,
         "--data-dir", str(data), *args],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_killed_run_resumes_and_loses_nothing(template, reference, tmp_path, stage) -> None:
    data = lh.copy(template, tmp_path / "data")
    killed = _verify_killed_at(data, stage)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = VerificationStore(data / "verification" / lh.SOURCE)
    resumed = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET)
    done_before = {"day_committed": 1, "page_written": len(INITS)}.get(stage, 0)
    assert len(resumed.scored) == len(INITS) - done_before
    pd.testing.assert_frame_equal(store.read(), reference)
    assert not list(store.path.glob(".*tmp")) and Path(resumed.page).is_file()
    again = verify_source(lh.SOURCE, data, as_of=lh.AS_OF, alerts=QUIET, render=False)
    assert again.scored == ()
