"""Pretrained models shipped with the package: weights, model cards and their loader.

Each model lives in ``pipelines/method/pretrained/<name>/`` as ``weights.pt`` (a
:func:`simvp_model.checkpoint.save_checkpoint` bundle) and ``MODEL_CARD.md`` (training data and
events, resolution, time step, base, loss, training time, cross-validated scores and the
weights' SHA-256). :func:`load_pretrained` refuses a file whose hash differs from its card.

The weights live under ``pipelines`` (not ``simvp_model``) because they are only usable with the
pipelines' data path: inputs resampled to the model's grid (:mod:`pipelines.method.resample`) and,
for
a corrected model, the base nowcast computed by ``pipelines``.
"""

from pipelines.method.pretrained.card import (
    CARD_NAME,
    PRETRAINED_ROOT,
    WEIGHTS_NAME,
    ModelCard,
    Pretrained,
    PretrainedIntegrityError,
    available,
    card_table,
    load_card,
    load_pretrained,
    package_model,
)

__all__ = [
    "CARD_NAME",
    "PRETRAINED_ROOT",
    "WEIGHTS_NAME",
    "ModelCard",
    "Pretrained",
    "PretrainedIntegrityError",
    "available",
    "card_table",
    "load_card",
    "load_pretrained",
    "package_model",
]
