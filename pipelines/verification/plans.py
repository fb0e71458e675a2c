"""Evaluation plans: which baselines and scores apply to each source kind (:data:`PLANS`).

:func:`pipelines.evaluation.evaluate.evaluate_source` runs the plan of a source's kind: every
method on the
same test windows, each :class:`ScoreRequest` per lead time, with the same scoring code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipelines.baselines import BASELINES
from pipelines.verification import get_score
from simvp_model.registry import Registry

__all__ = [
    "FSS_SCALES",
    "FSS_THRESHOLDS",
    "PLANS",
    "RAIN_THRESHOLDS",
    "EvaluationPlan",
    "ScoreRequest",
]


@dataclass(frozen=True)
class ScoreRequest:
    """One score to compute: a :data:`pipelines.verification.SCORES` name and its parameters.

    Parameters
    ----------
    score : str
        Registered score name (``mse``, ``csi``, ``fss`` ...).
    threshold : float, optional
        Event threshold in the variable's units (categorical and FSS scores).
    scale : int, optional
        FSS neighbourhood side in pixels of the evaluated grid.
    """

    score: str
    threshold: float | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        get_score(self.score)  # unknown names raise, listing the valid ones
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")
        if self.scale is not None and (isinstance(self.scale, bool) or self.scale < 1):
            raise ValueError(f"scale must be a positive number of pixels, got {self.scale!r}")

    def params(self) -> dict[str, Any]:
        """Keyword arguments for the score function."""
        out: dict[str, Any] = {}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.scale is not None:
            out["scale"] = self.scale
        return out


@dataclass(frozen=True)
class EvaluationPlan:
    """What to run and score for one kind of source.

    Parameters
    ----------
    baselines : tuple of str
        Names in :data:`pipelines.baselines.BASELINES`.
    scores : tuple of ScoreRequest
        Scores per lead time.
    image_scores : bool
        Also SSIM and PSNR (``data_range`` = range of the evaluated observations).
    threshold_units : str, optional
        Units the score thresholds are given in; the variables must have them.
    spectra : bool
        Also the RAPSD of every method vs the observations (``rapsd_ratio`` rows per
        wavelength and the spectrum plot: is the forecast blurred?).
    """

    baselines: tuple[str, ...]
    scores: tuple[ScoreRequest, ...]
    image_scores: bool = False
    threshold_units: str | None = None
    spectra: bool = False

    def __post_init__(self) -> None:
        for name in self.baselines:
            BASELINES.get(name)


PLANS: Registry[EvaluationPlan] = Registry("evaluation plan")
"""Evaluation plan per catalog source kind (``data_catalog.vocabulary.SOURCE_KINDS``)."""

_CONTINUOUS = tuple(ScoreRequest(s) for s in ("mse", "mae", "rmse", "bias"))
RAIN_THRESHOLDS: tuple[float, ...] = (0.1, 1.0, 5.0)  # mm/h: drizzle, light, moderate rain
FSS_THRESHOLDS: tuple[float, ...] = (1.0, 5.0)  # mm/h
FSS_SCALES: tuple[int, ...] = (1, 5, 11, 21)  # pixels: grid scale up to ~1/6 of a 128-px domain

PLANS.add(
    "radar",
    EvaluationPlan(
        # S-PROG: the smooth (MSE-fair) extrapolation an MSE-trained network must also beat.
        baselines=("persistence", "optical_flow", "sprog"),
        scores=_CONTINUOUS
        + tuple(
            ScoreRequest(s, threshold=t) for s in ("csi", "pod", "far") for t in RAIN_THRESHOLDS
        )
        + tuple(
            ScoreRequest("fss", threshold=t, scale=n) for t in FSS_THRESHOLDS for n in FSS_SCALES
        ),
        image_scores=True,
        threshold_units="mm/h",
        spectra=True,
    ),
)
PLANS.add(
    "climate",
    EvaluationPlan(
        baselines=("persistence", "climatology", "anomaly_persistence"),
        scores=_CONTINUOUS + (ScoreRequest("weighted_rmse"), ScoreRequest("acc")),
    ),
)
PLANS.add(
    "crowd-flow",
    EvaluationPlan(
        baselines=("persistence", "climatology", "last_day"),
        scores=_CONTINUOUS,
        image_scores=True,
    ),
)
