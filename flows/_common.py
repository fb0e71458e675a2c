"""Parameter checks and small helpers shared by the flows (no Prefect tasks here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from data_catalog.paths import DataDir


def check_source(source: str) -> str:
    """Return ``source`` if the catalog knows it, else raise ``ValueError`` naming valid ones."""
    from data_catalog.catalog import get_source

    get_source(source)  # raises ValueError listing the catalog's sources
    return source


def resolve_data_dir(data_dir: str | None) -> str:
    """The data directory a run writes to (``data_dir``, ``$NOWCAST_DATA_DIR`` or ``./data``).

    Resolved once in the flow so every task of a run (and the deployment run's logs) names
    the same absolute location.
    """
    return DataDir.resolve(data_dir).root


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as a timezone-aware UTC datetime; naive values are taken to be UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_period(start: datetime | None, end: datetime | None) -> None:
    """Raise ``ValueError`` if both ends are given and ``start`` is after ``end``."""
    if start is not None and end is not None and as_utc(start) > as_utc(end):
        raise ValueError(f"start must not be after end, got start={start!r}, end={end!r}")


def field(result: Any, name: str, default: Any = None) -> Any:
    """Attribute or mapping item ``name`` of a pipelines result (dataclass or dict)."""
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)
