"""The ``train-simvp`` flow: an observation store → a SimVP checkpoint, with its metrics.

The checkpoint path and the validation metrics are logged and published as a table
artifact (``train-metrics-<source>``). The flow trains; it does not forecast: the
``forecast`` flow picks up the newest checkpoint of the source.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from flows import tasks
from flows._common import check_source, resolve_data_dir


def metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows ``{"metric", "value"}`` from a flat ``{name: number}`` metrics mapping."""
    return [{"metric": name, "value": value} for name, value in sorted(metrics.items())]


@flow(name="train-simvp")
def train_simvp(
    source: str,
    data_dir: str | None = None,
    preset: str | None = None,
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 10,
    max_minutes: Annotated[float | None, Field(gt=0)] = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Train SimVP on ``source`` and publish the checkpoint's metrics.

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    data_dir : str, optional
        Data directory holding ``stores/<source>.zarr`` (written by the ``ingest`` flow).
    preset : str, optional
        SimVP preset name (default: the source's preset, see ``pipelines.train_source``).
    epochs : int
        Training epochs (1 to 10 000).
    max_minutes : float, optional
        Wall-clock budget of the training in minutes; it stops after the epoch in progress.
    overrides : dict, optional
        Further keyword arguments for ``pipelines.train_source.train_source`` (e.g. a tiny
        ``max_windows`` for tests).

    Returns
    -------
    FitResult
        ``checkpoint_path`` and ``metrics`` of the trained model.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    options = dict(overrides or {})
    if max_minutes is not None:
        options["max_minutes"] = max_minutes
    get_run_logger().info(
        "train %s (preset=%s, epochs=%d, options=%s) from %s", source, preset, epochs, options, root
    )
    result = tasks.train_task(source, root, preset, epochs, options)
    tasks.publish_table(
        tasks.artifact_key("train-metrics", source),
        metric_rows(dict(result.metrics)),
        f"SimVP trained on {source}: {result.checkpoint_path}",
    )
    return result
