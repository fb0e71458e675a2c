"""Ingestion: catalog source files → the source's observation store (Zarr v3).

- :mod:`pipelines.ingest.store`: store layout, regular time axis and index from timestamps,
  template creation, crash-safe growth of the time axis, recovery, lock, digest.
- :mod:`pipelines.ingest.writer`: validation of decoded frames and region writes.
- :mod:`pipelines.ingest.ingest`: :func:`ingest_source`, the two-phase (validate, then write)
  ingest of a catalog source, returning an :class:`IngestReport`.
"""

from pipelines.ingest.ingest import IngestReport, ingest_source
from pipelines.ingest.store import StoreError, StoreLayout, store_digest
from pipelines.ingest.writer import IngestError

__all__ = [
    "IngestError",
    "IngestReport",
    "StoreError",
    "StoreLayout",
    "ingest_source",
    "store_digest",
]
