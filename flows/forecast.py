"""The ``forecast`` flow (hourly): newest checkpoint + latest inputs → forecast store + map.

By default (``init_time=None``, as in the hourly schedule) the forecast starts from the newest
observation at or before ``as_of`` (the newest ``frame_present`` time of the store: stores
grow in whole chunks, so their last time steps may be empty slots), falling back to the
newest complete input window when frames inside the window are missing
(``fallback="latest-complete"``, recorded in the forecast's provenance). A manual run may name
``init_time``; then nothing is substituted unless asked.

Stale inputs: the flow compares the forecast's init time with ``as_of``, the time the
forecast was wanted for (the run's scheduled start; now for a manual run). When the inputs
are older than ``max_input_age_minutes`` (an ingest failed or is late) or a fallback window
was used, the forecast is still written and the staleness is reported where an operator looks
first: a WARNING in the run log, a ``forecast-inputs-<source>`` Markdown artifact and the
``stale`` column of the ``forecast-<source>`` table. When no forecast can be made at all
(``StaleInputError``: the requested init time is not covered by the store), the same report is
published and the run fails with that message. A failed ingest therefore never poisons later
forecasts: nothing is written for it, and the next successful ingest makes the inputs fresh.

Re-running for an ``init_time`` already in the forecast store replaces that entry (the
store's per-``init_time`` writes are idempotent).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from data_catalog.vocabulary import duration_text
from flows import tasks
from flows._common import as_utc, check_source, resolve_data_dir
from pipelines.forecast import inputs

#: Inputs older than this (relative to ``as_of``) are reported stale. The ingest runs at minute
#: 0 and the forecast at minute 5, so fresh inputs are 5-15 min old (radar latency included).
MAX_INPUT_AGE_MINUTES = 30.0


def wanted_time(as_of: datetime | None) -> datetime:
    """``as_of`` in UTC, else the current run's scheduled start, else now (UTC)."""
    if as_of is not None:
        return as_utc(as_of)  # type: ignore[return-value]
    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time
    return as_utc(scheduled) if scheduled is not None else datetime.now(UTC)


def input_age(result: Any, as_of: datetime) -> timedelta:
    """How much older the forecast's init time is than ``as_of``
    (:func:`pipelines.forecast.inputs.input_age`)."""
    return inputs.input_age(result.init_time, as_of).to_pytimedelta()


def used_fallback(result: Any) -> str:
    """The fallback note recorded in the forecast's provenance ("" when none was used)."""
    forecast = result.forecast
    if forecast is None or "fallback" not in forecast:
        return ""
    return str(forecast["fallback"].values.ravel()[0])


def summary_rows(result: Any, age: timedelta, stale: bool) -> list[dict[str, Any]]:
    """One-row summary table of a ``ForecastResult`` for the ``forecast-<source>`` artifact."""
    return [
        {
            "init_time": str(result.init_time),
            "lead_times": len(result.lead_times),
            "last_lead": duration_text(result.lead_times[-1]),
            "input_age": str(age),
            "stale": stale,
            "store": result.store,
            "entry": result.index,
            "checkpoint": result.checkpoint,
        }
    ]


def stale_report(source: str, as_of: datetime, problems: list[str]) -> str:
    """Markdown explaining the stale inputs of one forecast run."""
    lines = [
        f"# Stale inputs for {source}",
        "",
        f"Forecast wanted for **{as_of:%Y-%m-%d %H:%M}Z**.",
        "",
    ]
    lines += [f"- {problem}" for problem in problems]
    lines += [
        "",
        f"Check the latest `ingest/{source}` runs. Later forecasts are not affected: the next "
        "successful ingest makes the inputs fresh again.",
    ]
    return "\n".join(lines)


@flow(name="forecast")
def forecast(
    source: str,
    init_time: datetime | None = None,
    checkpoint: str | None = None,
    data_dir: str | None = None,
    render: bool = True,
    fallback: Literal["none", "latest-complete"] | None = None,
    lead_times: Annotated[int | None, Field(ge=1, le=1000)] = None,
    as_of: datetime | None = None,
    max_input_age_minutes: Annotated[float, Field(gt=0)] = MAX_INPUT_AGE_MINUTES,
) -> Any:
    """Forecast ``source`` from its newest checkpoint into the forecast store.

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    init_time : datetime, optional
        Initialisation time (UTC; naive values are UTC). Default: the newest observation at
        or before ``as_of``.
    checkpoint : str, optional
        Checkpoint file (default: the newest ``best.pt`` under ``models/<source>/``).
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    render : bool
        Render the forecast map (``figures/<source>/``) and publish it as an artifact.
    fallback : {"none", "latest-complete"}, optional
        Missing-input policy of ``run_forecast``. Default: ``"latest-complete"`` when
        ``init_time`` is None (scheduled runs), else ``"none"``.
    lead_times : int, optional
        Number of lead times (default: the model's ``out_frames``).
    as_of : datetime, optional
        When the forecast is wanted (default: the run's scheduled start time, or now).
    max_input_age_minutes : float
        Inputs older than this relative to ``as_of`` are reported stale.

    Returns
    -------
    ForecastResult
        See :func:`pipelines.forecast.run.run_forecast`.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    wanted = wanted_time(as_of)
    policy = fallback or ("latest-complete" if init_time is None else "none")
    logger = get_run_logger()
    report_key = tasks.artifact_key("forecast-inputs", source)
    try:
        # init_time None: the newest observation at or before ``wanted`` (pipelines' rule)
        result = tasks.forecast_task(
            source, as_utc(init_time), checkpoint, root, render, policy, lead_times, wanted
        )
    except inputs.StaleInputError as error:
        logger.error("STALE INPUTS for %s, no forecast made: %s", source, error)
        tasks.publish_markdown(
            report_key,
            stale_report(source, wanted, [f"No forecast was made: {error}"]),
            f"No {source} forecast: stale inputs",
        )
        raise

    age = input_age(result, wanted)
    problems = []
    if inputs.stale_message(result.init_time, timedelta(minutes=max_input_age_minutes), wanted):
        problems.append(
            f"The newest usable inputs end at {result.init_time}, {age} before the wanted time "
            f"(more than {max_input_age_minutes:g} min)."
        )
    if note := used_fallback(result):
        problems.append(f"A fallback input window was used: {note}.")
    if problems:
        logger.warning("STALE INPUTS for %s: %s", source, " ".join(problems))
        tasks.publish_markdown(
            report_key,
            stale_report(source, wanted, problems),
            f"Stale inputs for the {source} forecast at {result.init_time}",
        )
    tasks.publish_table(
        tasks.artifact_key("forecast", source),
        summary_rows(result, age, bool(problems)),
        f"Forecast for {source} initialised at {result.init_time}",
    )
    maps = [path for path in result.figures if str(path).endswith(".png")]
    for path in maps[:1]:
        tasks.publish_figure(
            tasks.artifact_key("forecast-map", source),
            str(path),
            f"Forecast map for {source} initialised at {result.init_time}",
        )
    return result
