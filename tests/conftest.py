"""Fixtures shared by all test packages."""

from __future__ import annotations

from pathlib import Path

# pyproj must load its PROJ library before ecCodes does: the eccodes wheel (eckitlib) bundles
# another libproj, and importing eccodes/cfgrib first leaves pyproj with "no database context"
# (every CRS fails, then a double free). Importing pyproj first avoids it.
import pyproj  # noqa: F401  (isort: keep first)
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full shared data sets (``<repo>/../shared/data``); skips the test when absent."""
    path = (REPO.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"shared data not available at {path}")
    return path


def pytest_collection_modifyitems(session, config, items):
    """Run the Prefect tests last.

    The Prefect test harness and servers leave background threads in the pytest process; a
    child forked after that (the fork-based DDP and concurrent-writer tests) fails in
    ``threading._shutdown`` on exit. Ordering keeps every fork before Prefect starts.
    """
    flows_dir = REPO / "tests" / "flows"
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(flows_dir))
