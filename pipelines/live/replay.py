"""Replay an archive as if it were live: each simulated hour ingest → forecast → verify.

For every hour ``h`` of ``[start, end]`` (UTC), :func:`replay_source`

1. ingests the source's files with times in ``(h - 1 h, h]`` (the frames that would have
   arrived; the first hour also ingests the ``warmup`` before it, the model's inputs),
2. issues the forecast at ``h`` (:func:`pipelines.forecast.run.run_forecast`, ``as_of = h``;
   an hour whose inputs are missing is logged and skipped, as the live deployment would),
3. verifies with ``as_of = h`` (:func:`pipelines.live.verify.verify_source`), so forecasts are
   scored only once their observations have "arrived".

It records the wall time and the process's peak RSS after each hour (:class:`HourRecord`),
which is what the replay benchmark reports.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from data_catalog.catalog import list_files, load_catalog
from data_catalog.paths import DataDir
from data_catalog.spec import SourceSpec
from pipelines.live.alerts import AlertConfig
from pipelines.live.scoring import ScoreConfig
from pipelines.live.verify import VerifyReport, verify_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HourRecord:
    """One simulated hour: what happened and what it cost."""

    hour: pd.Timestamp
    forecast: bool
    scored: int
    alerts: tuple[str, ...]
    seconds: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def replay_source(
    source: str | SourceSpec,
    start: object,
    end: object,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    checkpoint: Any = None,
    leads: int | None = None,
    warmup: str | pd.Timedelta = "1h",
    catalog: Any = None,
    reader: Any = None,
    config: ScoreConfig | None = None,
    alerts: AlertConfig | None = None,
    render: bool = True,
    on_hour: Callable[[HourRecord, VerifyReport | None], None] | None = None,
) -> list[HourRecord]:
    """Play ``[start, end]`` of ``source``'s archive hour by hour (see the module doc).

    Parameters
    ----------
    source : str or SourceSpec
        Catalog source name, or a spec (synthetic sources of the benchmark).
    start, end : datetime-like
        First and last simulated hour (UTC; floored/ceiled to whole hours).
    data_dir : path, optional
        Data directory the replay writes its stores, verification and page to.
    checkpoint : path, LoadedModel or SimVPMethod, optional
        The model (default: as ``nowcast forecast``: newest ``best.pt``, else the shipped
        pretrained model).
    leads : int, optional
        Lead times per forecast (default: the model's own).
    warmup : str or pandas.Timedelta
        Archive ingested before the first hour (the first forecast's inputs).
    catalog, reader : optional
        Passed to :func:`pipelines.ingest.ingest_source`.
    config, alerts : optional
        Passed to :func:`verify_source`; the default replay alerts never on stale inputs
        (``max_input_age=None``: the archive has gaps by nature).
    render : bool
        Rebuild the live page every hour.
    on_hour : callable, optional
        Called with each hour's record and verification report.

    Returns
    -------
    list of HourRecord
    """
    from pipelines.forecast.inputs import StaleInputError
    from pipelines.forecast.run import run_forecast
    from pipelines.ingest import ingest_source

    if isinstance(source, SourceSpec):
        spec = source
    else:
        spec = (load_catalog(catalog) if isinstance(catalog, str | None) else catalog).get(source)
    name = spec.name
    alerts = alerts or AlertConfig(max_input_age=None)
    first = pd.Timestamp(start).floor("h")
    last = pd.Timestamp(end).ceil("h")
    if last < first:
        raise ValueError(f"end {end!r} is before start {start!r}")
    hours = pd.date_range(first, last, freq="h")
    records = []
    previous = first - pd.Timedelta(warmup)
    for hour in hours:
        t0 = time.perf_counter()
        arrived = (previous + pd.Timedelta("1s") if hour != first else previous, hour)
        if list_files(spec, *arrived):  # an hour without files ingests nothing, as live
            ingest_source(spec, data_dir, *arrived, progress=False, use_dask=False, reader=reader)
        previous = hour
        made = True
        try:
            run_forecast(
                name,
                init_time=hour,
                checkpoint=checkpoint,
                data_dir=data_dir,
                lead_times=leads,
                as_of=hour,
            )
        except StaleInputError as error:
            made = False
            logger.warning("replay %s %s: no forecast (%s)", name, hour, error)
        report = None
        if Path(DataDir.resolve(data_dir).forecast_store(name, leads)).exists():
            report = verify_source(
                name,
                data_dir,
                as_of=hour,
                leads=leads,
                config=config,
                alerts=alerts,
                render=render,
            )
        record = HourRecord(
            hour=hour,
            forecast=made,
            scored=0 if report is None else len(report.scored),
            alerts=() if report is None else report.alerts,
            seconds=time.perf_counter() - t0,
            peak_rss_mb=peak_rss_mb(),
        )
        records.append(record)
        logger.info(
            "replay %s %s: forecast %s, %d scored, %.2f s, peak RSS %.0f MiB",
            name,
            hour,
            made,
            record.scored,
            record.seconds,
            record.peak_rss_mb,
        )
        if on_hour is not None:
            on_hour(record, report)
    return records
