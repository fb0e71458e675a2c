"""Fixtures of the flow tests: an isolated Prefect home and one test harness per session.

``PREFECT_HOME`` must point at a temporary directory *before* prefect is first imported
(Prefect reads its settings at import), so it is set here at conftest import time, which
pytest does before it imports the test modules of this folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

_PREFECT_HOME = tempfile.mkdtemp(prefix="nowcast-prefect-home-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Tests see Prefect's failures as exceptions; quiet the per-run INFO chatter.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API + SQLite database for the whole session (~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
