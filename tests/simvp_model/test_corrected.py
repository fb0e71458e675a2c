"""SimVP as a correction to a base nowcast: zero start, roll-out per base block, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simvp_model.checkpoint import load_checkpoint, save_checkpoint
from simvp_model.config import SimVPConfig
from simvp_model.corrected import CorrectedSimVP, build_model, network_config, run_model
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset

T_IN, T_OUT = 4, 3


def _config(base: str = "extrapolation") -> SimVPConfig:
    return get_preset("tiny").replace(in_frames=T_IN, out_frames=T_OUT, base=base)


def test_base_field_validated_and_default_none() -> None:
    assert get_preset("tiny").base == "none"
    with pytest.raises(ValueError, match="base='advection' is unknown"):
        get_preset("tiny").replace(base="advection")


def test_config_without_base_field_loads_as_none() -> None:
    d = get_preset("tiny").to_dict()
    del d["base"]  # a checkpoint written before the field existed
    assert SimVPConfig.from_dict(d).base == "none"
    assert isinstance(build_model(SimVPConfig.from_dict(d)), SimVP)


@pytest.mark.parametrize("base", ["persistence", "extrapolation", "climatology"])
def test_untrained_model_is_its_base(base: str) -> None:
    torch.manual_seed(0)
    model = build_model(_config(base)).eval()
    assert isinstance(model, CorrectedSimVP)
    x = torch.randn(2, T_IN, 1, 16, 16)
    b = torch.randn(2, 8, 1, 16, 16)
    with torch.inference_mode():
        assert torch.equal(model(x, b[:, :T_OUT]), b[:, :T_OUT])
        # roll-out beyond T_out: every block is its own base frames (incl. a partial last block)
        assert torch.equal(model.rollout(x, b, 8), b)


def test_correction_learns_and_uses_the_observations() -> None:
    torch.manual_seed(0)
    model = build_model(_config())
    x = torch.randn(2, T_IN, 1, 16, 16)
    b = torch.randn(2, T_OUT, 1, 16, 16)
    target = b + 1.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(model(x, b), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    with torch.no_grad():  # the output now depends on the observed frames too
        assert not torch.allclose(model(x, b), model(torch.zeros_like(x), b))


def test_inner_network_sees_observations_and_base_frames() -> None:
    inner = network_config(_config())
    assert (inner.in_frames, inner.out_frames, inner.base) == (T_IN + T_OUT, T_IN + T_OUT, "none")
    with pytest.raises(ValueError, match="base != 'none'"):
        network_config(get_preset("tiny"))


def test_bad_inputs_are_refused() -> None:
    model = build_model(_config())
    x = torch.zeros(1, T_IN, 1, 16, 16)
    with pytest.raises(ValueError, match="expected base"):
        model(x, torch.zeros(1, T_OUT - 1, 1, 16, 16))
    with pytest.raises(ValueError, match="no base frames"):
        run_model(model, x, None)
    with pytest.raises(ValueError, match="takes no base"):
        run_model(build_model(get_preset("tiny")), x, torch.zeros(1, 4, 1, 16, 16))


def test_fully_convolutional_on_a_larger_domain() -> None:
    torch.manual_seed(0)
    small = build_model(_config())
    torch.nn.init.normal_(small.network.decoder.readout.weight)
    big = build_model(_config().replace(height=32, width=48))
    big.load_state_dict(small.state_dict())
    out = big.eval()(torch.randn(1, T_IN, 1, 32, 48), torch.randn(1, T_OUT, 1, 32, 48))
    assert out.shape == (1, T_OUT, 1, 32, 48)


def test_corrected_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(_config())
    torch.nn.init.normal_(model.network.decoder.readout.weight)
    norm = Normalisation("dbr", (-8.0,), (4.0,), 0.1)
    path = save_checkpoint(tmp_path / "best.pt", model, model.config, norm)
    loaded = load_checkpoint(path)
    assert loaded.config.base == "extrapolation"
    x, b = torch.randn(1, T_IN, 1, 16, 16), torch.randn(1, T_OUT, 1, 16, 16)
    with torch.inference_mode():
        assert torch.equal(loaded.model(x, b), model.eval()(x, b))
