"""The ``evaluate`` flow: a checkpoint vs the baselines on the source's test period.

The scores are published as a table artifact (``evaluation-<source>``, one row per model and
metric) and logged; the report files written by :func:`pipelines.evaluate.evaluate_source`
stay under ``reports/<source>/``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows import tasks
from flows._common import check_source, resolve_data_dir


def score_rows(result: Any) -> list[dict[str, Any]]:
    """Table rows (one per model) from an evaluation result's ``scores`` table."""
    return [dict(row) for row in result.table_rows()]


@flow(name="evaluate")
def evaluate(
    source: str,
    data_dir: str | None = None,
    checkpoint: str | None = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """Score a SimVP checkpoint of ``source`` against persistence (and other baselines).

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    checkpoint : str, optional
        Checkpoint file (default: the newest under ``models/<source>/``).
    options : dict, optional
        Further keyword arguments of ``pipelines.evaluate.evaluate_source``.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    result = tasks.evaluate_task(source, root, checkpoint, options)
    tasks.publish_table(
        tasks.artifact_key("evaluation", source),
        score_rows(result),
        f"Skill of SimVP vs baselines on {source}",
    )
    get_run_logger().info("evaluation of %s written to %s", source, result)
    return result
