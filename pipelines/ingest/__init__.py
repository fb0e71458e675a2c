"""Ingestion: catalog source files → the source's observation store (Zarr v3).

- :mod:`pipelines.ingest.store`: store layout, regular time axis and index from timestamps,
  template creation, crash-safe growth of the time axis, recovery, lock, digest.
- :mod:`pipelines.ingest.writer`: validation of decoded frames and region writes.
- :mod:`pipelines.ingest.chunks`: whole Zarr chunks gathered, checked, encoded and written
  straight from the decoded frames (the same bytes as Zarr's writer).
- :mod:`pipelines.ingest.work`: what runs on the workers (decode + validate a file, decode +
  write a batch's region) and the executors (threads, inline, a ``distributed`` cluster).
- :mod:`pipelines.ingest.ingest`: :func:`ingest_source`, the two-phase (validate, then write)
  ingest of a catalog source driven by a client that holds no arrays.
- :mod:`pipelines.ingest.report`: the :class:`IngestReport` (frames, events, gaps).
"""

from pipelines.ingest.ingest import ingest_source
from pipelines.ingest.report import IngestReport
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
