"""Named model presets (published configurations and reduced CPU ones) and their training recipes.

``get_preset(name) -> SimVPConfig``; ``get_recipe(name) -> dict`` with the published training
settings (spec §2) as plain keys ``lr, epochs, batch_size, scheduler ("onecycle"|"cosine"),
warmup_epochs, optimizer, weight_decay, seed`` (the engine converts it into its ``TrainConfig``).
Published parameter counts (spec §4.2–4.4) are pinned in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simvp_model.config import SimVPConfig
from simvp_model.registry import Registry


@dataclass(frozen=True)
class Preset:
    """A model configuration, its training recipe and where both come from."""

    config: SimVPConfig
    recipe: dict[str, Any] = field(default_factory=dict)
    source: str = ""


PRESETS: Registry[Preset] = Registry("preset")

# OpenSTL common settings (openstl/utils/parser.py): Adam, no weight decay, batch 16, seed 42.
_COMMON = {"optimizer": "adam", "weight_decay": 0.0, "batch_size": 16, "seed": 42}
_ONECYCLE_MMNIST = {
    **_COMMON,
    "lr": 1e-3,
    "scheduler": "onecycle",
    "warmup_epochs": 0,
    "epochs": 200,
}
_MMNIST = {"in_frames": 10, "out_frames": 10, "channels": 1, "height": 64, "width": 64}
_MMNIST_OSTL = {**_MMNIST, "spatial_hidden": 64, "temporal_hidden": 512, "spatial_layers": 4,
                "temporal_layers": 8}  # fmt: skip
_TAXIBJ = {"in_frames": 4, "out_frames": 4, "channels": 2, "height": 32, "width": 32,
           "spatial_hidden": 32, "temporal_hidden": 256, "spatial_layers": 2,
           "temporal_layers": 8, "drop_path": 0.1}  # fmt: skip
_COSINE_TAXIBJ = {**_COMMON, "scheduler": "cosine", "warmup_epochs": 5, "epochs": 50}


def _add(name: str, config: SimVPConfig, recipe: dict[str, Any], source: str) -> None:
    PRESETS.add(name, Preset(config, dict(recipe), source))


_add(
    "mmnist-v1",
    SimVPConfig(**_MMNIST_OSTL, spatial="v1", translator="incepu"),
    # V1 main.py: lr 0.01, OneCycle, bs 16; paper numbers come from 2000 epochs (OpenSTL #30)
    {**_COMMON, "lr": 1e-2, "scheduler": "onecycle", "warmup_epochs": 0, "epochs": 2000, "seed": 1},
    "A4Bio/SimVP V1 code at hid_T 512 (57.76M params)",
)
_add(
    "mmnist-incepu",
    SimVPConfig(**_MMNIST_OSTL, translator="incepu"),
    _ONECYCLE_MMNIST,
    "OpenSTL configs/mmnist/simvp/SimVP_IncepU.py (58.0M)",
)
_add(
    "mmnist-gsta",
    SimVPConfig(**_MMNIST_OSTL, translator="gsta"),
    _ONECYCLE_MMNIST,
    "OpenSTL configs/mmnist/simvp/SimVP_gSTA.py (46.8M)",
)
_add(
    "mmnist-tau",
    SimVPConfig(**_MMNIST_OSTL, translator="tau"),
    _ONECYCLE_MMNIST,
    "OpenSTL configs/mmnist/TAU.py (44.7M)",
)
_add(
    "taxibj-incepu",
    SimVPConfig(**_TAXIBJ, translator="incepu"),
    {**_COSINE_TAXIBJ, "lr": 1e-3},
    "OpenSTL configs/taxibj/simvp/SimVP_IncepU.py (13.79M)",
)
_add(
    "taxibj-gsta",
    SimVPConfig(**_TAXIBJ, translator="gsta"),
    {**_COSINE_TAXIBJ, "lr": 5e-4},
    "OpenSTL configs/taxibj/simvp/SimVP_gSTA.py (9.96M)",
)
_add(
    "taxibj-tau",
    SimVPConfig(**_TAXIBJ, translator="tau"),
    {**_COSINE_TAXIBJ, "lr": 5e-4},
    "OpenSTL configs/taxibj/TAU.py (9.55M)",
)
_add(
    "mmnist-small",
    SimVPConfig(
        **_MMNIST,
        translator="gsta",
        spatial_hidden=16,
        temporal_hidden=64,
        spatial_layers=4,
        temporal_layers=4,
    ),  # fmt: skip
    {**_COMMON, "lr": 1e-3, "scheduler": "onecycle", "warmup_epochs": 0, "epochs": 10},
    "reduced gSTA for CPU training in minutes (not published)",
)
_add(
    "radar-small",
    SimVPConfig(
        in_frames=12,
        out_frames=12,
        channels=1,
        height=128,
        width=128,
        translator="gsta",
        spatial_hidden=16,
        temporal_hidden=128,
        spatial_layers=4,
        temporal_layers=4,
        drop_path=0.1,
    ),  # fmt: skip
    {
        **_COMMON,
        "lr": 1e-3,
        "scheduler": "onecycle",
        "warmup_epochs": 0,
        "epochs": 20,
        "batch_size": 8,
    },  # fmt: skip
    "reduced gSTA for 1-channel radar nowcasting, 1 h in / 1 h out at 5 min (not published)",
)
_add(
    "tiny",
    SimVPConfig(
        in_frames=4,
        out_frames=4,
        channels=1,
        height=16,
        width=16,
        translator="gsta",
        spatial_hidden=8,
        temporal_hidden=16,
        spatial_layers=2,
        temporal_layers=2,
    ),
    {
        **_COMMON,
        "lr": 1e-3,
        "scheduler": "onecycle",
        "warmup_epochs": 0,
        "epochs": 1,
        "batch_size": 4,
    },  # fmt: skip
    "smallest useful network, for tests",
)


def get_preset(name: str) -> SimVPConfig:
    """Return the model configuration registered as ``name`` (``ValueError`` lists valid names)."""
    return PRESETS.get(name).config


def get_recipe(name: str) -> dict[str, Any]:
    """Return a fresh copy of the training recipe of preset ``name`` (plain dict)."""
    return dict(PRESETS.get(name).recipe)


def list_presets() -> list[str]:
    """Sorted preset names."""
    return PRESETS.names()
