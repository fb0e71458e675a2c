"""The ``forecast`` flow (hourly): newest checkpoint + latest inputs → forecast store + map.

Scheduled runs forecast from the latest inputs at or before the run's scheduled time; a
manual run may name ``init_time``. Writing a forecast for an ``init_time`` that is already in
the store replaces that entry (idempotent, by the forecast store's per-``init_time`` writes).

Stale inputs: when the newest observation is older than the time the forecast was wanted for
(an ingest failed or is late), the forecast still runs from the inputs that exist, and the
staleness is reported where an operator looks first: a WARNING in the run log, a
``forecast-inputs-<source>`` Markdown artifact and the ``stale`` column of the summary table.
A failed ingest therefore never poisons later forecasts: the next successful ingest makes the
inputs fresh again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger

from flows import tasks
from flows._common import as_utc, check_source, resolve_data_dir


def scheduled_time() -> datetime | None:
    """Scheduled start of the current flow run (UTC), or None outside a flow run."""
    from prefect.runtime import flow_run

    value = flow_run.scheduled_start_time
    return as_utc(value) if value is not None else None


def summary_rows(result: Any) -> list[dict[str, Any]]:
    """One-row summary table of a ``ForecastResult`` for the ``forecast-<source>`` artifact."""
    return [
        {
            "init_time": str(result.init_time),
            "lead_times": len(result.lead_times),
            "stale": bool(result.stale),
            "input_age": str(result.input_age),
            "store": str(result.store_path),
            "checkpoint": str(result.checkpoint_path),
        }
    ]


def stale_report(source: str, result: Any) -> str:
    """Markdown explaining which inputs were stale and what the forecast was made from."""
    lines = [
        f"# Stale inputs for {source}",
        "",
        f"The forecast initialised at **{result.init_time}** used inputs "
        f"**{result.input_age}** older than wanted.",
        "",
    ]
    lines += [f"- {message}" for message in result.warnings]
    lines += [
        "",
        "Check the `ingest/" + source + "` runs: the next successful ingest makes the inputs "
        "fresh again; this forecast is written but flagged stale.",
    ]
    return "\n".join(lines)


@flow(name="forecast")
def forecast(
    source: str,
    init_time: datetime | None = None,
    checkpoint: str | None = None,
    data_dir: str | None = None,
    render: bool = True,
) -> Any:
    """Forecast ``source`` from its newest checkpoint and write it to the forecast store.

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    init_time : datetime, optional
        Initialisation time (UTC). Default: the latest inputs at or before the run's scheduled
        time (for a manual run: now).
    checkpoint : str, optional
        Checkpoint file (default: the newest under ``models/<source>/``).
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    render : bool
        Render the forecast map (``figures/<source>/``) and publish it as an artifact.

    Returns
    -------
    ForecastResult
        See :func:`pipelines.forecast.run.run_forecast`.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    logger = get_run_logger()
    result = tasks.forecast_task(source, as_utc(init_time), checkpoint, root, render)
    tasks.publish_table(
        tasks.artifact_key("forecast", source),
        summary_rows(result),
        f"Forecast for {source} initialised at {result.init_time}",
    )
    if result.stale:
        logger.warning(
            "STALE INPUTS for %s: forecast at %s made from inputs %s old (%s)",
            source,
            result.init_time,
            result.input_age,
            "; ".join(result.warnings),
        )
        tasks.publish_markdown(
            tasks.artifact_key("forecast-inputs", source),
            stale_report(source, result),
            f"Stale inputs for the {source} forecast at {result.init_time}",
        )
    for figure in result.figures:
        tasks.publish_figure(
            tasks.artifact_key("forecast-map", source),
            str(figure),
            f"Forecast map for {source} initialised at {result.init_time}",
        )
    return result
