"""Fixtures shared by all test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full shared data sets (``<repo>/../shared/data``); skips the test when absent."""
    path = (REPO.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"shared data not available at {path}")
    return path
