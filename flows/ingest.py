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
        Frames written, the events and gaps of the period, store path and size.
    """
    check_source(source)
    check_period(start, end)
    root = resolve_data_dir(data_dir)
    get_run_logger().info("ingest %s into %s, period %s .. %s", source, root, start, end)
    report = tasks.ingest_task.submit(
        source, root, as_utc(start), as_utc(end), on_dask=True
    ).result()
    log_report(report)
    tasks.publish_table(
        tasks.artifact_key("ingest", source),
        report_rows(report),
        f"Ingest of {source} into {report.store}",
    )
    tasks.publish_table(
        tasks.artifact_key("ingest-events", source),
        event_rows(report),
        f"Events and gaps of the ingested period of {source}",
        log=False,
    )
    return report


def log_report(report: Any) -> None:
    """Warn about the gaps of a period the caller asked for (the ingest task has logged the
    report's summary: frames written, events and gaps).

    Gaps of a period the caller gave (``start`` and ``end``) are time steps that were asked
    for and that no file provided: forecasts whose input window falls there will report
    stale inputs, so they are a warning. Without an explicit period the gaps are the time
    between the events of an archive (the shipped samples are three storms, years apart):
    information, not a fault.
    """
    if report.gaps and report.period_requested:
        get_run_logger().warning(
            "%s: the requested period %s .. %s has %s; forecasts whose input window falls "
            "in a gap will report stale inputs",
            report.source,
            report.period[0],
            report.period[1],
            report.gaps_text(where=False),
        )


def report_rows(report: Any) -> list[dict[str, Any]]:
    """One-row table of an ``IngestReport`` for the ``ingest-<source>`` artifact."""
    return [
        {
            "files": report.files,
            "frames_written": report.frames_written,
            "frames_new": report.frames_new,
            "events": len(report.events),
            "gaps": len(report.gaps),
            "missing_steps": report.missing_steps,
            "first": str(report.first),
            "last": str(report.last),
            "store_time_steps": report.store_frames,
            "store_mib": report.store_bytes / 2**20,
            "seconds": report.seconds,
            "store": report.store,
        },
    ]


def event_rows(report: Any) -> list[dict[str, Any]]:
    """One row per event and gap of the ingested period, in time order (an artifact table)."""
    runs = [("event", s) for s in report.events] + [("gap", s) for s in report.gaps]
    runs.sort(key=lambda item: item[1].first)
    return [
        {"kind": kind, "first": str(s.first), "last": str(s.last), "steps": s.steps}
        for kind, s in runs
    ]
