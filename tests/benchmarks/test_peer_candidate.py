"""The peer-benchmark candidate factory and the OpenSTL → ours state-dict key mapping."""

from __future__ import annotations

import pytest

from benchmarks.peer_candidate import build, config_from_harness, peer_to_ours

# peer_bench.py's taxibj gSTA config, and a reduced one with the same structure
TAXIBJ_GSTA = dict(name="taxibj_gsta", dataset="taxibj", in_shape=(4, 2, 32, 32), hid_S=32,
                   hid_T=256, N_S=2, N_T=8, model_type="gSTA", drop_path=0.1, batch=16)  # fmt: skip


def test_config_mapping_and_published_size():
    cfg = config_from_harness(TAXIBJ_GSTA)
    assert (cfg.in_frames, cfg.out_frames, cfg.channels, cfg.height, cfg.width) == (4, 4, 2, 32, 32)
    assert (cfg.spatial, cfg.translator, cfg.mlp_ratio, cfg.drop_path) == (
        "openstl",
        "gsta",
        8,
        0.1,
    )
    model = build(TAXIBJ_GSTA)
    assert model.channels_last  # the product's default
    assert model.num_parameters() == pytest.approx(9.96e6, abs=5e3)  # OpenSTL: 9.96M
    with pytest.raises(ValueError, match=r"lacks keys \['N_T'\]"):
        config_from_harness({k: v for k, v in TAXIBJ_GSTA.items() if k != "N_T"})


@pytest.mark.parametrize(
    ("translator", "peer_keys"),
    [
        (
            "gsta",
            [
                "enc.enc.0.conv.conv.weight",
                "enc.enc.1.conv.norm.bias",
                "dec.dec.0.conv.conv.0.weight",  # PixelShuffle branch: Sequential(conv, shuffle)
                "dec.dec.1.conv.conv.bias",
                "dec.readout.weight",
                "hid.enc.0.reduction.weight",
                "hid.enc.0.block.layer_scale_1",
                "hid.enc.0.block.norm1.running_var",
                "hid.enc.1.block.attn.proj_1.weight",
                "hid.enc.1.block.attn.spatial_gating_unit.conv0.weight",
                "hid.enc.1.block.attn.spatial_gating_unit.conv_spatial.bias",
                "hid.enc.1.block.attn.spatial_gating_unit.conv1.weight",
                "hid.enc.2.block.mlp.dwconv.dwconv.weight",
                "hid.enc.2.block.mlp.fc2.bias",
                "hid.enc.3.reduction.bias",
            ],
        ),
        ("tau", ["hid.enc.1.block.attn.spatial_gating_unit.fc.2.weight"]),
        (
            "incepu",
            [
                "hid.enc.0.conv1.weight",
                "hid.enc.1.layers.3.conv.weight",
                "hid.dec.3.layers.0.norm.bias",
            ],
        ),
    ],
)
def test_peer_keys_map_onto_our_state_dict(translator, peer_keys):
    cfg = dict(TAXIBJ_GSTA, model_type=translator, hid_T=64, N_T=4)
    ours = build(cfg).state_dict()
    for key in peer_keys:
        assert peer_to_ours(key) in ours, key
    with pytest.raises(ValueError, match="no mapping for peer state-dict key 'hid.foo'"):
        peer_to_ours("hid.foo")
