"""Translator registry and blocks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from simvp_model import TRANSLATORS, SimVP, get_preset
from simvp_model.layers import DropPath
from simvp_model.translators.gsta import GatedAttention
from simvp_model.translators.tau import TemporalAttention


def test_registry_names_and_unknown():
    assert TRANSLATORS.names() == ["gsta", "incepu", "tau"]
    with pytest.raises(ValueError, match=r"unknown translator 'convlstm'; valid names: \['gsta'"):
        TRANSLATORS.get("convlstm")
    assert TRANSLATORS.get("tau").uses_ddr_loss and not TRANSLATORS.get("gsta").uses_ddr_loss


@pytest.mark.parametrize("name", ["incepu", "gsta", "tau"])
def test_translator_preserves_latent_shape(name):
    cfg = get_preset("tiny").replace(translator=name, temporal_layers=3)
    torch.manual_seed(0)
    translator = TRANSLATORS.get(name)(cfg)
    z = torch.randn(2, *cfg.latent_shape)
    assert translator(z).shape == z.shape


def test_incepu_unet_wiring():
    cfg = get_preset("taxibj-incepu")
    with torch.device("meta"):
        t = TRANSLATORS.get("incepu")(cfg)
    assert len(t.encoder) == len(t.decoder) == 8
    assert (
        t.encoder[0].conv1.in_channels == 128 and t.decoder[-1].branches[0].conv.out_channels == 128
    )
    assert [b.conv1.in_channels for b in t.decoder] == [256] + [512] * 7  # concat skips
    branch = t.encoder[1].branches[3]
    assert branch.conv.kernel_size == (11, 11) and branch.conv.groups == 8
    assert branch.norm.num_groups == 8 and branch.act.negative_slope == 0.2


def test_gsta_stack_drop_path_schedule():
    cfg = get_preset("taxibj-gsta")  # drop_path 0.1, N_T 8
    with torch.device("meta"):
        t = TRANSLATORS.get("gsta")(cfg)
    rates = [b.drop_path.p for b in t.blocks]
    expected = [0.01 + 0.09 * i / 7 for i in range(7)] + [0.1]
    assert rates == pytest.approx(expected)
    assert [b.norm1.num_features for b in t.blocks] == [128] + [256] * 7
    assert isinstance(t.projections[0], nn.Conv2d) and isinstance(t.projections[1], nn.Identity)
    assert t.projections[-1].out_channels == 128


def test_gsta_zero_drop_path_still_small_rates():
    with torch.device("meta"):
        t = TRANSLATORS.get("gsta")(get_preset("mmnist-gsta"))
    rates = [getattr(b.drop_path, "p", 0.0) for b in t.blocks]
    assert rates[0] == pytest.approx(0.01) and rates[-2] == pytest.approx(0.01 / 7)
    assert rates[-1] == 0.0


def test_gated_attention_matches_unfused_formula():
    torch.manual_seed(0)
    attn = GatedAttention(6)
    y = torch.randn(2, 6, 9, 9)
    u = nn.functional.gelu(attn.proj_1(y))
    a = attn.lka.conv_spatial(attn.lka.conv0(u))
    f, g = attn.conv1(a).split(6, dim=1)
    expected = attn.proj_2(torch.sigmoid(g) * f) + y
    torch.testing.assert_close(attn(y), expected)
    assert attn.lka.conv_spatial.dilation == (3, 3) and attn.lka.conv_spatial.padding == (9, 9)


def test_tau_se_width_and_formula():
    assert TemporalAttention(640).fc[0].out_features == 16  # r = max(640 // 16, 4) = 40
    assert TemporalAttention(32).fc[0].out_features == 8  # r = 4
    torch.manual_seed(0)
    attn = TemporalAttention(8)
    y = torch.randn(2, 8, 7, 7)
    u = nn.functional.gelu(attn.proj_1(y))
    sa = attn.conv1(attn.lka(u))
    da = torch.sigmoid(attn.fc[2](torch.relu(attn.fc[0](u.mean(dim=(2, 3))))))
    torch.testing.assert_close(attn(y), attn.proj_2(sa * da[:, :, None, None] * u) + y)


def test_block_init():
    torch.manual_seed(0)
    model = SimVP(get_preset("mmnist-small"))
    block = model.translator.blocks[1]
    fc1 = block.mlp.fc1  # 1x1, 64 -> 512: std sqrt(2 / 512)
    assert fc1.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    assert (block.layer_scale_1 == 1e-2).all()


def test_drop_path():
    torch.manual_seed(0)
    dp = DropPath(0.5)
    x = torch.ones(1000, 3)
    y = dp(x)
    kept = y[:, 0] != 0
    assert 400 < kept.sum() < 600
    assert torch.equal(y[kept], torch.full_like(y[kept], 2.0))  # scaled by 1 / keep
    dp.eval()
    assert torch.equal(dp(x), x)
    with pytest.raises(ValueError, match="p=1.0"):
        DropPath(1.0)
