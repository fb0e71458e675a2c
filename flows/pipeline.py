"""The ``nowcast-demo`` flow: ingest → train → forecast → evaluate, as sub-flows of one run.

This is what ``make demo`` runs (through :mod:`flows.demo`, in Prefect's ephemeral mode): the
same four flows the deployments serve, chained for one catalog source, with a wall-clock
budget for the training so the whole run fits in a few minutes on two CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from flows._common import check_source, resolve_data_dir
from flows.evaluate import evaluate, skill_rows
from flows.forecast import forecast
from flows.ingest import ingest
from flows.train import SplitParams, train_simvp


@dataclass(frozen=True)
class PipelineResult:
    """Where each output of a pipeline run is, and the forecast's skill.

    Parameters
    ----------
    source : str
        Catalog source name.
    ingest, fit, forecast, evaluation : Any
        ``IngestReport``, ``FitResult``, ``ForecastResult`` and evaluation ``Report``.
    skill : list of dict
        :func:`flows.evaluate.skill_rows` of the evaluation (SimVP first, then persistence).
    seconds : dict of str to float
        Wall-clock seconds per stage.
    """

    source: str
    ingest: Any
    fit: Any
    forecast: Any
    evaluation: Any
    skill: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)


@flow(name="nowcast-pipeline")
def nowcast_pipeline(
    source: str = "mch-radar",
    data_dir: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    preset: str | None = None,
    epochs: Annotated[int | None, Field(ge=1, le=10_000)] = None,
    max_minutes: Annotated[float | None, Field(gt=0)] = 2.5,
    split: SplitParams | None = None,
    train_overrides: dict[str, Any] | None = None,
    max_samples: Annotated[int | None, Field(ge=1)] = None,
    render: bool = True,
) -> PipelineResult:
    """Run the whole pipeline for ``source``: ingest, train, forecast the last init time, score.

    Parameters
    ----------
    source : str
        Catalog source name (default the shipped MeteoSwiss radar sample).
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    start, end : datetime, optional
        Period to ingest (default: every file of the catalog pattern).
    preset : str, optional
        SimVP preset (default: the source kind's,
        :data:`pipelines.training.source.HARDWARE_DEFAULTS`).
    epochs : int, optional
        Training epochs (default: the preset's recipe); ``max_minutes`` may end it first.
    max_minutes : float, optional
        Training wall-clock budget in minutes.
    split : SplitParams, optional
        Train / val / test split (see :func:`flows.train.train_simvp`).
    train_overrides : dict, optional
        Further ``train_source`` options (see :func:`flows.train.train_simvp`).
    max_samples : int, optional
        Test windows scored by the evaluation (default: all).
    render : bool
        Render the forecast map.

    Returns
    -------
    PipelineResult
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    logger = get_run_logger()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    report = ingest(source, root, start, end)
    lap("ingest")
    fit = train_simvp(source, root, preset, epochs, max_minutes, split, train_overrides)
    lap("train")
    checkpoint = str(fit.checkpoint_path)
    # Forecast from the newest observation just ingested (wanted for that time: not stale).
    result = forecast(source, None, checkpoint, root, render, as_of=report.last.to_pydatetime())
    lap("forecast")
    evaluation = evaluate(source, root, checkpoint, max_samples)
    lap("evaluate")
    skill = skill_rows(evaluation.scores)
    logger.info("pipeline for %s done: %s", source, {k: round(v, 1) for k, v in seconds.items()})
    return PipelineResult(source, report, fit, result, evaluation, skill, seconds)
