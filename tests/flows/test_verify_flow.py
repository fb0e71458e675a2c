"""The ``verify`` flow on ``prefect_test_harness``: artifacts linking the page; alerts fail it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from flows.verify import verify
from tests.pipelines import live_helpers as lh

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("prefect_harness")]
AS_OF = datetime(2021, 6, 1, 15, 0)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return lh.build(tmp_path_factory.mktemp("live"), inits=lh.INITS[:3])


def _artifact(key: str):
    from prefect.artifacts import Artifact

    return Artifact.get(key)


def test_verify_flow_scores_and_links_the_page(data) -> None:
    report = verify(lh.SOURCE, str(data), as_of=AS_OF, min_skill=-100.0, max_input_age_minutes=None)
    assert len(report.scored) == 3 and Path(report.page).is_file()
    summary = _artifact(f"verify-{lh.SOURCE}").data
    assert Path(report.page).resolve().as_uri() in summary and "No alert." in summary
    assert _artifact(f"verify-scores-{lh.SOURCE}") is not None
    rerun = verify(lh.SOURCE, str(data), as_of=AS_OF, min_skill=-100.0, max_input_age_minutes=None)
    assert rerun.scored == () and rerun.unchanged == 3


def test_alerts_fail_the_run_with_a_one_line_reason(data) -> None:
    # the fake model is worse than persistence: the default floor (skill 0) alerts
    state = verify(lh.SOURCE, str(data), as_of=AS_OF, max_input_age_minutes=None, return_state=True)
    assert state.is_failed()
    assert state.message.count("\n") == 0
    assert "skill against persistence over the last 24h" in state.message
    assert "ALERT" in _artifact(f"verify-{lh.SOURCE}").data  # published before failing
    # stale inputs: the newest observation (14:55) is 3 h old at 18:00
    later = datetime(2021, 6, 1, 18, 0)
    state = verify(
        lh.SOURCE, str(data), as_of=later, min_skill=-100.0, max_input_age_minutes=30,
        return_state=True,
    )  # fmt: skip
    assert state.is_failed() and "stale inputs" in state.message
