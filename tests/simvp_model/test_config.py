"""SimVPConfig validation and serialisation."""

from __future__ import annotations

import dataclasses

import pytest

from simvp_model import SimVPConfig, get_preset


def test_round_trip_all_presets():
    from simvp_model import list_presets

    for name in list_presets():
        cfg = get_preset(name)
        d = cfg.to_dict()
        assert isinstance(d["inception_kernels"], list)
        assert SimVPConfig.from_dict(d) == cfg


def test_frozen():
    cfg = get_preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.height = 32  # type: ignore[misc]


def test_from_dict_rejects_unknown_keys():
    d = get_preset("tiny").to_dict() | {"hid_S": 16}
    with pytest.raises(ValueError, match="hid_S"):
        SimVPConfig.from_dict(d)


def test_latent_shape():
    assert get_preset("mmnist-gsta").latent_shape == (640, 16, 16)
    assert get_preset("taxibj-tau").latent_shape == (128, 16, 16)
    # V1 with odd N_S = 3: strides 1, 2, 1 -> one down-sampling layer
    cfg = get_preset("tiny").replace(spatial="v1", spatial_layers=3)
    assert cfg.latent_shape == (32, 8, 8)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"spatial_layers": 3}, r"spatial_layers=3 must be even"),
        ({"height": 17}, r"height=17 must be divisible by .* = 2"),
        ({"width": 18, "spatial_layers": 4}, r"width=18 must be divisible by .* = 4"),
        ({"spatial_hidden": 7}, r"spatial_hidden=7 .* GroupNorm"),
        ({"spatial_hidden": 0}, r"spatial_hidden=0 must be a positive integer"),
        ({"in_frames": -1}, r"in_frames=-1"),
        ({"out_frames": 2.5}, r"out_frames=2.5"),
        ({"channels": True}, r"channels=True"),
        ({"temporal_layers": 1}, r"temporal_layers=1 must be >= 2"),
        ({"spatial": "v3"}, r"spatial='v3' is unknown; valid: \['openstl', 'v1'\]"),
        (
            {"translator": "swin"},
            r"translator='swin' is unknown; valid: \['gsta', 'incepu', 'tau'\]",
        ),
        ({"drop_path": 1.0}, r"drop_path=1.0 must be in \[0, 1\)"),
        ({"drop": -0.1}, r"drop=-0.1"),
        ({"mlp_ratio": 0}, r"mlp_ratio=0"),
        ({"tau_temperature": 0.0}, r"tau_temperature=0.0"),
        ({"tau_alpha": -1.0}, r"tau_alpha=-1.0"),
        ({"spatial_kernel": 4}, r"spatial_kernel=4 must be odd"),
        # incepu groups: never silently fall back to groups=1 like the reference
        (
            {"translator": "incepu", "temporal_hidden": 24},
            r"groups=8 must divide temporal_hidden // 2",
        ),
        ({"translator": "incepu", "temporal_hidden": 48, "groups": 16}, r"groups=16 must divide"),
        (
            {"translator": "incepu", "spatial_hidden": 6, "in_frames": 3, "out_frames": 3},
            r"groups=8 must divide in_frames \* spatial_hidden .* = 18",
        ),
        ({"translator": "incepu", "inception_kernels": (3, 4)}, r"inception_kernels=\(3, 4\)"),
    ],
)
def test_invalid_configs_raise(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_preset("tiny").replace(**changes)


def test_v1_allows_odd_spatial_layers():
    cfg = get_preset("tiny").replace(spatial="v1", spatial_layers=3)
    assert cfg.spatial_layers == 3
