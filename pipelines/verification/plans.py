"""Evaluation plans: which baselines and scores apply to each source kind (:data:`PLANS`).

:func:`pipelines.evaluation.evaluate.evaluate_source` runs the plan of a source's kind: every
method on the same test windows, each :class:`ScoreRequest` per lead time, with the same
scoring code; ensemble methods (``ensembles``) are scored with ``ensemble_scores`` (the
probabilistic scores of :mod:`pipelines.verification.probabilistic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipelines.baselines import BASELINES, ENSEMBLE_BASELINES
from pipelines.verification import get_score
from pipelines.verification.probabilistic import PROBABILISTIC_SCORES
from simvp_model.registry import Registry

__all__ = [
    "FSS_SCALES",
    "FSS_THRESHOLDS",
    "PLANS",
    "PROBABILITY_THRESHOLDS",
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
    ensembles : tuple of str
        Names in :data:`pipelines.baselines.ENSEMBLE_BASELINES` run by default (``steps``).
    ensemble_scores : tuple of ScoreRequest
        Probabilistic scores of every ensemble method (names in
        :data:`pipelines.verification.probabilistic.PROBABILISTIC_SCORES`).
    """

    baselines: tuple[str, ...]
    scores: tuple[ScoreRequest, ...]
    image_scores: bool = False
    threshold_units: str | None = None
    spectra: bool = False
    ensembles: tuple[str, ...] = ()
    ensemble_scores: tuple[ScoreRequest, ...] = ()

    def __post_init__(self) -> None:
        for name in self.baselines:
            BASELINES.get(name)
        for name in self.ensembles:
            ENSEMBLE_BASELINES.get(name)
        for request in self.scores:
            if request.score in PROBABILISTIC_SCORES:
                raise ValueError(f"{request.score!r} scores an ensemble: put it in ensemble_scores")
        for request in self.ensemble_scores:
            if request.score not in PROBABILISTIC_SCORES:
                raise ValueError(
                    f"ensemble_scores must be in {PROBABILISTIC_SCORES}, got {request.score!r}"
                )


PLANS: Registry[EvaluationPlan] = Registry("evaluation plan")
"""Evaluation plan per catalog source kind (``data_catalog.vocabulary.SOURCE_KINDS``)."""

_CONTINUOUS = tuple(ScoreRequest(s) for s in ("mse", "mae", "rmse", "bias"))
RAIN_THRESHOLDS: tuple[float, ...] = (0.1, 1.0, 5.0)  # mm/h: drizzle, light, moderate rain
FSS_THRESHOLDS: tuple[float, ...] = (1.0, 5.0)  # mm/h
FSS_SCALES: tuple[int, ...] = (1, 5, 11, 21)  # pixels: grid scale up to ~1/6 of a 128-px domain
PROBABILITY_THRESHOLDS: tuple[float, ...] = RAIN_THRESHOLDS  # mm/h: P(>= 0.1), P(>= 1), P(>= 5)
RANK_THRESHOLD = 0.1  # mm/h: rank histogram only where rain is observed or forecast (pySTEPS X_min)
_PROBABILISTIC = (
    (ScoreRequest("crps"),)
    + tuple(
        ScoreRequest(s, threshold=t)
        for s in ("brier", "bss", "roc_auc", "reliability")
        for t in PROBABILITY_THRESHOLDS
    )
    + (ScoreRequest("rank_histogram", threshold=RANK_THRESHOLD), ScoreRequest("spread_skill"))
)

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
        # STEPS: the stochastic ensemble of S-PROG, the probabilistic anchor (issue 26).
        ensembles=("steps",),
        ensemble_scores=_PROBABILISTIC,
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
