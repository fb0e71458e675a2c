"""Prefect tasks: each wraps exactly one function of ``pipelines`` (or publishes an artifact).

Retry policy: only I/O can fail transiently (a network store that hiccups, a disk that is
full for a moment, a source file that has not arrived yet), so only :class:`OSError` (which
includes ``TimeoutError`` and ``ConnectionError``) is retried, with exponential backoff. A
``FileNotFoundError`` is retried only by the ingest (late source files); elsewhere it means a
missing store or checkpoint, which waiting does not fix. Every other exception (a bad
parameter, a shape mismatch, NaNs in training) fails at once: retrying would only repeat it.

No task caches its result (``NO_CACHE``): the stores are idempotent, so re-running a task for
the same time rewrites the same entries, and a cached result could hide a store that was
removed meanwhile.

The ``pipelines`` functions are imported inside the task bodies so that listing or serving
deployments does not import torch, and so that tests can replace them with ``monkeypatch``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import MissingContextError
from prefect.states import State
from prefect.tasks import Task, exponential_backoff
from prefect_dask import get_dask_client

#: Retries of an I/O failure (first delays: 10 s, 20 s, 40 s; ``exponential_backoff`` adds jitter).
IO_RETRIES = 3
IO_BACKOFF = exponential_backoff(backoff_factor=10)


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run logger inside a flow or task run, else this module's logger.

    Task bodies are also called directly (``task.fn(...)`` in unit tests, or from plain
    Python), where no run context exists.
    """
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def retry_on_io(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: True only when the task failed with an :class:`OSError`."""
    exception = state.result(raise_on_failure=False)
    return isinstance(exception, OSError)


def retry_on_transient_io(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: an :class:`OSError` other than ``FileNotFoundError``."""
    exception = state.result(raise_on_failure=False)
    return isinstance(exception, OSError) and not isinstance(exception, FileNotFoundError)


def io_task(name: str, retries: int = IO_RETRIES, missing_files_are_transient: bool = False) -> Any:
    """Decorator for a task that touches storage: retried with backoff on I/O errors only."""
    return task(
        name=name,
        retries=retries,
        retry_delay_seconds=IO_BACKOFF,
        retry_condition_fn=retry_on_io if missing_files_are_transient else retry_on_transient_io,
        cache_policy=NO_CACHE,
    )


@io_task("ingest-source", missing_files_are_transient=True)
def ingest_task(
    source: str,
    data_dir: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    on_dask: bool = False,
) -> Any:
    """Ingest ``source`` into its observation store (:func:`pipelines.ingest.ingest_source`).

    With ``on_dask`` (the task runs on a ``DaskTaskRunner``) the files are decoded on the
    runner's ``distributed`` client; otherwise Dask's default scheduler is used.
    """
    from pipelines.ingest import ingest_source

    def run(scheduler: Any) -> Any:
        return ingest_source(
            source, data_dir=data_dir, start=start, end=end, scheduler=scheduler, progress=False
        )

    if on_dask:
        with get_dask_client() as client:
            result = run(client)
    else:
        result = run(None)
    run_logger().info("%s", result.summary())
    return result


# Training reads the store (I/O) but a retry repeats minutes of compute: one retry only.
@io_task("train-source", retries=1)
def train_task(
    source: str,
    data_dir: str | None = None,
    preset: str | None = None,
    epochs: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    split: Mapping[str, Any] | None = None,
    out_dir: str | None = None,
) -> Any:
    """Train SimVP on ``source`` (:func:`pipelines.training.source.train_source`) → ``FitResult``.

    ``split`` holds :class:`pipelines.windows.SplitConfig` fields (None: its defaults);
    ``out_dir`` is where the run's ``best.pt`` goes (None: ``DIR/models/<source>``).
    """
    from pipelines.training.source import train_source
    from pipelines.windows import SplitConfig

    config = None if split is None else SplitConfig(**dict(split))
    result = train_source(
        source,
        data_dir=data_dir,
        preset=preset,
        epochs=epochs,
        split=config,
        out_dir=out_dir,
        **dict(overrides or {}),
    )
    run_logger().info("trained on %s: checkpoint %s", source, result.checkpoint_path)
    return result


@io_task("run-forecast")
def forecast_task(
    source: str,
    init_time: datetime | None = None,
    checkpoint: str | None = None,
    data_dir: str | None = None,
    render: bool = True,
    fallback: str = "none",
    lead_times: int | None = None,
    as_of: datetime | None = None,
) -> Any:
    """One forecast into the forecast store (:func:`pipelines.forecast.run.run_forecast`), then
    its maps (:func:`pipelines.render.run.render_forecast`) when ``render``.

    ``init_time=None``: the newest observation at or before ``as_of``. Missing or stale inputs
    raise ``pipelines.forecast.inputs.StaleInputError`` (a ``ValueError``, so not retried).
    """
    from pipelines.forecast.run import run_forecast
    from pipelines.render.run import render_forecast

    result = run_forecast(
        source,
        init_time=init_time,
        checkpoint=checkpoint,
        data_dir=data_dir,
        lead_times=lead_times,
        fallback=fallback,
        as_of=as_of,
    )
    if render:
        result = render_forecast(result, data_dir)
    run_logger().info(
        "forecast for %s at %s: %d leads into %s (entry %d)",
        source,
        result.init_time,
        len(result.lead_times),
        result.store,
        result.index,
    )
    return result


@io_task("evaluate-source")
def evaluate_task(
    source: str,
    data_dir: str | None = None,
    checkpoint: str | None = None,
    max_samples: int | None = None,
    baselines: Sequence[str] | None = None,
) -> Any:
    """Score a checkpoint against the baselines
    (:func:`pipelines.evaluation.evaluate.evaluate_source`).
    """
    from pipelines.evaluation.evaluate import evaluate_source

    report = evaluate_source(
        source,
        data_dir=data_dir,
        checkpoint=checkpoint,
        max_samples=max_samples,
        baselines=None if baselines is None else list(baselines),
    )
    run_logger().info(
        "evaluated %s on %d test windows: report in %s", source, report.n_windows, report.directory
    )
    return report


def artifact_key(*parts: str) -> str:
    """Artifact key from ``parts``: lowercase letters, digits and dashes only (Prefect's rule).

    >>> artifact_key("metrics", "MCH_radar")
    'metrics-mch-radar'
    """
    key = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    if not key:
        raise ValueError(f"artifact key from {parts!r} is empty")
    return key


def _cell(value: Any) -> Any:
    """Table cell: floats rounded for display, other scalars as they are, the rest as text."""
    if isinstance(value, float):
        return round(value, 4)
    if value is None or isinstance(value, int | str | bool):
        return value
    return str(value)


@task(name="publish-table", cache_policy=NO_CACHE)
def publish_table(
    key: str, rows: Sequence[Mapping[str, Any]], description: str, log: bool = True
) -> None:
    """Publish ``rows`` (one dict per row, same keys) as a Prefect table artifact.

    With ``log`` the table is also written to the run log as plain text.
    """
    if not rows:
        raise ValueError(f"table artifact {key!r} has no rows")
    table = [{name: _cell(value) for name, value in row.items()} for row in rows]
    create_table_artifact(table, key=key, description=description)
    if log:
        run_logger().info("%s\n%s", description, format_table(table))


@task(name="publish-markdown", cache_policy=NO_CACHE)
def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Publish a Markdown report (e.g. stale-input warnings) as a Prefect artifact."""
    create_markdown_artifact(markdown, key=key, description=description)


@task(name="publish-figure", cache_policy=NO_CACHE)
def publish_figure(key: str, path: str, description: str) -> None:
    """Publish a rendered map: a link artifact to the file and a Markdown card with its path."""
    figure = Path(path)
    if not figure.is_file():
        raise FileNotFoundError(f"figure {path!r} does not exist")
    create_link_artifact(figure.resolve().as_uri(), link_text=figure.name, key=key)
    create_markdown_artifact(
        f"**{description}**\n\n`{figure.resolve()}`", key=f"{key}-card", description=description
    )
    run_logger().info("%s: %s", description, figure.resolve())


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text rendering of table rows for logs and the terminal.

    >>> print(format_table([{"model": "simvp", "mse": 1.5}]))
    model  mse
    simvp  1.5
    """
    if not rows:
        return ""
    names = list(rows[0])
    cells = [[str(row.get(name, "")) for name in names] for row in rows]
    widths = [max(len(name), *(len(r[i]) for r in cells)) for i, name in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
