"""The ``train-simvp`` flow: an observation store → a SimVP checkpoint, with its metrics.

Each run trains into its own folder ``models/<source>/<UTC time>-<flow run name>/`` (the
training engine refuses to start over a previous run's folder, and a new run is a new model
version): the ``forecast`` and ``evaluate`` flows pick the newest ``best.pt`` under
``models/<source>/``. The checkpoint path and the test metrics are logged and published as a
table artifact (``train-metrics-<source>``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from data_catalog.paths import DataDir, is_url
from flows import tasks
from flows._common import check_source, resolve_data_dir


class SplitParams(BaseModel):
    """Train / val / test split of the store's frames (``pipelines.windows.SplitConfig``).

    Attributes
    ----------
    fractions : tuple of 3 float
        Shares of the valid frames for train, val and test (sum 1).
    gap : int, optional
        Time steps left out between two splits (default: one window length).
    by : {"time", "event"}
        Chronological cut, or whole contiguous events per split.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gap: Annotated[int | None, Field(ge=0)] = None
    by: Literal["time", "event"] = "time"


def run_directory(root: str, source: str) -> str:
    """A new model folder ``<root>/models/<source>/<YYYYmmddTHHMMSSZ>-<flow run name>``."""
    from prefect.runtime import flow_run

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{flow_run.name}" if flow_run.name else stamp
    models = DataDir(root).models(source)
    return f"{models}/{name}" if is_url(models) else str(Path(models, name))


def metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows ``{"metric", "value"}`` from a flat ``{name: number}`` metrics mapping."""
    return [{"metric": name, "value": value} for name, value in sorted(metrics.items())]


@flow(name="train-simvp")
def train_simvp(
    source: str,
    data_dir: str | None = None,
    preset: str | None = None,
    epochs: Annotated[int | None, Field(ge=1, le=10_000)] = None,
    max_minutes: Annotated[float | None, Field(gt=0)] = None,
    split: SplitParams | None = None,
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
        SimVP preset name (default: chosen per source kind and hardware by
        ``pipelines.training.source``).
    epochs : int, optional
        Training epochs, 1 to 10 000 (default: the preset's recipe).
    max_minutes : float, optional
        Wall-clock budget of the training in minutes (the best checkpoint so far is kept).
    split : SplitParams, optional
        Train / val / test split (default: chronological 70/15/15 with a window-long gap).
    overrides : dict, optional
        Further ``train_source`` options: ``SimVPConfig`` / ``TrainConfig`` fields and window
        options (``in_frames``, ``out_frames``, ``coarsen``...); unknown keys are refused.

    Returns
    -------
    FitResult
        ``checkpoint_path`` and test ``metrics`` of the trained model.
    """
    check_source(source)
    root = resolve_data_dir(data_dir)
    options = {"progress_bar": False, **dict(overrides or {})}
    if max_minutes is not None:
        options["max_minutes"] = max_minutes
    split_fields = None if split is None else split.model_dump()
    out_dir = run_directory(root, source)
    get_run_logger().info(
        "train %s (preset=%s, epochs=%s, split=%s, options=%s) from %s into %s",
        source,
        preset,
        epochs,
        split_fields,
        options,
        root,
        out_dir,
    )
    result = tasks.train_task(source, root, preset, epochs, options, split_fields, out_dir)
    tasks.publish_table(
        tasks.artifact_key("train-metrics", source),
        metric_rows(dict(result.metrics)),
        f"SimVP trained on {source}: {result.checkpoint_path}",
    )
    return result
