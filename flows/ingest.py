"""The ``ingest`` flow: one catalog source's files → its observation store.

The flow runs on a Dask task runner: the ingest task hands the runner's ``distributed``
client to :func:`pipelines.ingest.ingest_source`, which decodes the many source files in
parallel. The cluster uses threads, not processes: in Prefect's ephemeral mode every Dask
worker *process* would start its own temporary Prefect server (ecosystem.md §2e).
Re-ingesting a period rewrites the same time steps (the store's writes are region writes
at offsets derived from timestamps), so a retried or repeated run is idempotent.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner

from flows import tasks
from flows._common import as_utc, check_period, check_source, resolve_data_dir

#: Dask workers of the ingest flow (threads; override with ``$NOWCAST_DASK_WORKERS``).
DASK_WORKERS = int(os.environ.get("NOWCAST_DASK_WORKERS", "2"))


def dask_runner(workers: int = DASK_WORKERS) -> DaskTaskRunner:
    """Dask task runner on an in-process ``LocalCluster`` of ``workers`` single-thread workers."""
    if workers < 1:
        raise ValueError(f"need at least one Dask worker, got {workers=}")
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": False,  # processes would each start an ephemeral Prefect server
            "dashboard_address": None,  # no web dashboard (and no port to bind)
        }
    )


@flow(name="ingest", task_runner=dask_runner(), log_prints=False)
def ingest(
    source: str,
    data_dir: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """Ingest ``source`` (all files of the catalog pattern, or those in ``[start, end]``).

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    start, end : datetime, optional
        Inclusive period to ingest (UTC; naive values are UTC). Default: everything.

    Returns
    -------
    pipelines.ingest.IngestReport
        Frames written, missing time steps, store path and size.
    """
    check_source(source)
    check_period(start, end)
    root = resolve_data_dir(data_dir)
    get_run_logger().info("ingest %s into %s, period %s .. %s", source, root, start, end)
    report = tasks.ingest_task.submit(
        source, root, as_utc(start), as_utc(end), on_dask=True
    ).result()
    if len(report.missing):
        get_run_logger().warning(
            "%s: %d time steps of the ingested period have no frame (first: %s); forecasts "
            "needing them will report stale inputs",
            source,
            len(report.missing),
            ", ".join(str(t) for t in report.missing[:3]),
        )
    tasks.publish_table(
        tasks.artifact_key("ingest", source),
        report_rows(report),
        f"Ingest of {source} into {report.store}",
    )
    return report


def report_rows(report: Any) -> list[dict[str, Any]]:
    """One-row table of an ``IngestReport`` for the ``ingest-<source>`` artifact."""
    return [
        {
            "files": report.files,
            "frames_written": report.frames_written,
            "frames_new": report.frames_new,
            "missing": len(report.missing),
            "first": str(report.first),
            "last": str(report.last),
            "store_time_steps": report.store_frames,
            "store_mib": report.store_bytes / 2**20,
            "seconds": report.seconds,
            "store": report.store,
        }
    ]
