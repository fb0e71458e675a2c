"""The ``verify`` flow (hourly, after ingest and forecast): score the issued forecasts.

Each run calls :func:`pipelines.live.verify.verify_source` for the deployment's source: every
forecast-store entry whose valid times have been observed since and that is not yet scored (or
whose observations or forecast changed) is scored against its observations, with persistence and
Lucas–Kanade recomputed for the same init times; the scores go to ``DIR/verification/<source>/``
and the page ``DIR/reports/<source>/live.html`` is rebuilt. The run publishes a
``verify-<source>`` Markdown artifact that links to the page and a ``verify-scores-<source>``
table of its rolling skill.

Alerts (rolling skill against persistence below ``min_skill`` over ``skill_window``, or inputs
older than ``max_input_age_minutes``) end the run in a **failed** state whose message is the
one-line reason (:class:`VerificationAlertError`), after the artifacts are published: the page and
the scores are still written, the operator sees why in the run's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows import tasks
from flows._common import as_utc, check_source, resolve_data_dir
from flows.forecast import wanted_time

#: Inputs older than this at the run's time make it fail (ingest runs hourly at minute 0).
MAX_INPUT_AGE_MINUTES = 90.0


class VerificationAlertError(RuntimeError):
    """A verification alert: the flow run fails with this one-line message."""


@tasks.io_task("verify-source")
def verify_task(
    source: str,
    data_dir: str,
    since: datetime | None,
    as_of: datetime,
    leads: int | None,
    alert_options: dict[str, Any],
) -> Any:
    """Score the observed, unscored forecasts (:func:`pipelines.live.verify.verify_source`)."""
    from pipelines.live import AlertConfig, verify_source

    report = verify_source(
        source,
        data_dir,
        since=since,
        as_of=as_of,
        leads=leads,
        alerts=AlertConfig(**alert_options),
    )
    tasks.run_logger().info(
        "verified %s as of %s: %d scored, %d unchanged, %d awaiting observations; page %s",
        source,
        report.as_of,
        len(report.scored),
        report.unchanged,
        report.pending,
        report.page,
    )
    return report


def summary_markdown(report: Any) -> str:
    """The ``verify-<source>`` artifact: counts, alerts and a link to the live page."""
    lines = [
        f"# Live verification of {report.source}",
        "",
        f"As of **{report.as_of:%Y-%m-%d %H:%M}Z**: {len(report.scored)} forecasts scored, "
        f"{report.unchanged} already scored, {report.pending} awaiting observations.",
        "",
    ]
    if report.page:
        from pathlib import Path

        uri = Path(report.page).resolve().as_uri()
        lines.append(f"Live page: [{Path(report.page).name}]({uri})")
        lines.append("")
    lines += [f"- **ALERT**: {line}" for line in report.alerts] or ["No alert."]
    return "\n".join(lines)


def skill_rows(report: Any) -> list[dict[str, Any]]:
    """Rolling skill rows (window, reference, forecasts, all leads) of the run's page."""
    import pandas as pd

    from pipelines.live import VerificationStore
    from pipelines.live.page import skill_table

    store = VerificationStore(report.store)
    rows = store.read(report.as_of - pd.Timedelta("30D"), report.as_of)
    table = skill_table(rows, report.as_of, ("persistence", "optical_flow"))
    keep = ["window", "reference", "forecasts", "all leads"]
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in table[keep].to_dict("records")
    ]


@flow(name="verify")
def verify(
    source: str,
    data_dir: str | None = None,
    since: datetime | None = None,
    as_of: datetime | None = None,
    leads: Annotated[int | None, Field(ge=1, le=1000)] = None,
    skill_window: str = "24h",
    min_skill: float = 0.0,
    min_entries: Annotated[int, Field(ge=1)] = 3,
    max_input_age_minutes: Annotated[float | None, Field(gt=0)] = MAX_INPUT_AGE_MINUTES,
) -> Any:
    """Verify the issued forecasts of ``source``; fail with the reason when an alert fires.

    Parameters
    ----------
    source : str
        Catalog source name.
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    since : datetime, optional
        Oldest init time to (re)check (default: a day before ``as_of``).
    as_of : datetime, optional
        Verification time (default: the run's scheduled start, or now).
    leads : int, optional
        Verify ``<source>-<N>leads.zarr`` instead of the model's own horizon.
    skill_window : str
        Span of the rolling skill the alert looks at, e.g. ``"24h"``.
    min_skill : float
        Alert when the skill against persistence over ``skill_window`` is below this.
    min_entries : int
        Verified forecasts needed in the window before the skill can alert.
    max_input_age_minutes : float or None
        Alert when the newest observation is older than this (None: never).

    Returns
    -------
    VerifyReport
        See :func:`pipelines.live.verify.verify_source`.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    wanted = wanted_time(as_of)
    options = {
        "window": skill_window,
        "min_skill": min_skill,
        "min_entries": min_entries,
        "max_input_age": None if max_input_age_minutes is None else f"{max_input_age_minutes}min",
    }
    report = verify_task(source, root, as_utc(since), wanted, leads, options)
    tasks.publish_markdown(
        tasks.artifact_key("verify", source),
        summary_markdown(report),
        f"Live verification of {source} as of {report.as_of}",
    )
    rows = skill_rows(report)
    if rows:
        tasks.publish_table(
            tasks.artifact_key("verify-scores", source),
            rows,
            f"Rolling MSE skill of {source} as of {report.as_of}",
        )
    if report.alerts:
        raise VerificationAlertError(report.alerts[0])
    return report
