"""The ``evaluate`` flow: a checkpoint vs the baselines on the source's test period.

Two table artifacts are published: ``skill-<source>`` (one row per method: MSE and MAE
averaged over lead times and the MSE skill score against persistence) and
``evaluation-<source>`` (the full table: score × method × lead time). The report files written
by :func:`pipelines.evaluation.evaluate.evaluate_source` stay under ``reports/<source>/``.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from prefect import flow, get_run_logger
from pydantic import Field

from flows import tasks
from flows._common import check_source, resolve_data_dir

#: Reference method of the skill score.
REFERENCE = "persistence"


def skill_rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per method: lead-averaged MSE and MAE and the MSE skill vs persistence.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long score table with columns ``method``, ``score``, ``lead_time_minutes``, ``value``
        (``pipelines.evaluation.evaluate.Report.scores``); MSE/MAE rows have no threshold.

    Returns
    -------
    list of dict
        ``{"method", "mse", "mae", "mse_skill_vs_persistence"}`` with the skill
        ``1 - MSE / MSE_persistence`` (both averaged over the same lead times; 0 for
        persistence itself, > 0 is better than persistence), SimVP first.
    """
    plain = scores[scores["score"].isin(["mse", "mae"])]
    if plain.empty:
        raise ValueError(f"no mse/mae rows among scores {sorted(set(scores['score']))}")
    means = plain.pivot_table(index="method", columns="score", values="value", aggfunc="mean")
    if REFERENCE not in means.index or "mse" not in means.columns:
        raise ValueError(f"skill needs {REFERENCE!r} MSE rows; methods: {list(means.index)}")
    reference = float(means.loc[REFERENCE, "mse"])
    order = sorted(means.index, key=lambda m: (m != "simvp", m != REFERENCE, m))
    rows = []
    for method in order:
        row: dict[str, Any] = {"method": method}
        for score in ("mse", "mae"):
            row[score] = float(means.loc[method, score]) if score in means.columns else None
        row["mse_skill_vs_persistence"] = (
            1.0 - row["mse"] / reference if reference > 0 else float("nan")
        )
        rows.append(row)
    return rows


@flow(name="evaluate")
def evaluate(
    source: str,
    data_dir: str | None = None,
    checkpoint: str | None = None,
    max_samples: Annotated[int | None, Field(ge=1)] = None,
    baselines: list[str] | None = None,
) -> Any:
    """Score a SimVP checkpoint of ``source`` against persistence and the other baselines.

    Parameters
    ----------
    source : str
        Catalog source name, e.g. ``"mch-radar"``.
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    checkpoint : str, optional
        Checkpoint file (default: the newest under ``models/<source>/``).
    max_samples : int, optional
        Score at most this many test windows (default: all).
    baselines : list of str, optional
        Baselines to compare with (default: those of the source's kind).

    Returns
    -------
    pipelines.evaluation.evaluate.Report
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    report = tasks.evaluate_task(source, root, checkpoint, max_samples, baselines)
    tasks.publish_table(
        tasks.artifact_key("skill", source),
        skill_rows(report.scores),
        f"Skill of SimVP vs {REFERENCE} on {source} ({report.n_windows} test windows)",
    )
    tasks.publish_table(
        tasks.artifact_key("evaluation", source),
        report.table_rows(),
        f"Scores per lead time on {source}; files in {report.directory}",
        log=False,  # dozens of rows (score x threshold x scale x method): see the artifact
    )
    get_run_logger().info("evaluation of %s written to %s", source, report.directory)
    return report
