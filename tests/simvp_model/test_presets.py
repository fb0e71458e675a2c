"""Presets: published parameter counts, recipes, registry errors."""

from __future__ import annotations

import pytest
import torch

from simvp_model import SimVP, get_preset, get_recipe, list_presets

# Published (OpenSTL docs, V1 code at hid_T 512) parameter counts, in millions (spec §4).
PUBLISHED_PARAMS_M = {
    "mmnist-v1": 57.76,
    "mmnist-incepu": 57.95,
    "mmnist-gsta": 46.77,
    "mmnist-tau": 44.66,
    "taxibj-incepu": 13.79,
    "taxibj-gsta": 9.96,
    "taxibj-tau": 9.55,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS_M))
def test_published_parameter_counts(name):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = SimVP(get_preset(name))
    count = sum(p.numel() for p in model.parameters())
    published = PUBLISHED_PARAMS_M[name] * 1e6
    assert abs(count - published) / published < 0.005, (name, count)


def test_exact_counts_of_our_implementation():
    # exact values of this implementation (within 0.01 % of the 4-digit published numbers)
    with torch.device("meta"):
        counts = {n: SimVP(get_preset(n)).num_parameters() for n in ("mmnist-gsta", "taxibj-tau")}
    assert counts == {"mmnist-gsta": 46_769_665, "taxibj-tau": 9_545_442}


def test_list_presets():
    names = list_presets()
    assert set(PUBLISHED_PARAMS_M) | {"mmnist-small", "radar-small", "tiny"} <= set(names)
    assert names == sorted(names)


def test_preset_details():
    assert get_preset("mmnist-v1").spatial == "v1"
    assert get_preset("mmnist-tau").translator == "tau"
    assert get_preset("taxibj-gsta").drop_path == 0.1
    assert get_preset("mmnist-gsta").drop_path == 0.0
    radar = get_preset("radar-small")
    assert (radar.in_frames, radar.out_frames, radar.channels) == (12, 12, 1)


def test_recipes():
    assert get_recipe("mmnist-gsta")["lr"] == 1e-3
    assert get_recipe("mmnist-gsta")["scheduler"] == "onecycle"
    taxi = get_recipe("taxibj-gsta")
    assert (taxi["lr"], taxi["scheduler"], taxi["warmup_epochs"], taxi["batch_size"]) == (
        5e-4,
        "cosine",
        5,
        16,
    )
    assert get_recipe("taxibj-incepu")["lr"] == 1e-3
    r = get_recipe("tiny")
    r["lr"] = 99.0  # a copy: the registry is not mutated
    assert get_recipe("tiny")["lr"] == 1e-3


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown preset 'mmnist'.*mmnist-gsta"):
        get_preset("mmnist")
    with pytest.raises(ValueError, match="unknown preset"):
        get_recipe("nope")


def test_small_presets_are_small():
    with torch.device("meta"):
        assert SimVP(get_preset("mmnist-small")).num_parameters() < 2e6
        assert SimVP(get_preset("radar-small")).num_parameters() < 3e6
        assert SimVP(get_preset("tiny")).num_parameters() < 1e5
