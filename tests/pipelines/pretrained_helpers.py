"""A tiny test-built pretrained model (the shipped one: benchmarks/pretrained.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from pipelines.method.pretrained import ModelCard, package_model
from simvp_model.corrected import build_model
from simvp_model.normalisation import Normalisation
from tests.pipelines.forecast_helpers import tiny_config

CARD = "# Test model\n\nNot for use.\n\n{table}\n"


def tiny_pretrained(
    root: Path,
    *,
    name: str = "radar",
    resolution_m: float = 4000.0,
    time_step: str = "5min",
    in_frames: int = 4,
    out_frames: int = 3,
    shape: tuple[int, int] = (16, 16),
    **config: object,
) -> ModelCard:
    """Write ``root/name/{weights.pt, MODEL_CARD.md}`` for a seeded, untrained tiny SimVP."""
    torch.manual_seed(0)
    cfg = tiny_config(in_frames, out_frames, shape, **config)
    return package_model(
        root / name,
        build_model(cfg),
        cfg,
        Normalisation("dbr", (0.0,), (10.0,), 0.1),
        name=name,
        version="v-test",
        resolution_m=resolution_m,
        time_step=time_step,
        units="mm/h",
        card_text=CARD,
        metadata={
            "variables": ["precipitation_rate"],
            "in_frames": in_frames,
            "out_frames": out_frames,
            "time_step": time_step,
        },  # fmt: skip
    )
