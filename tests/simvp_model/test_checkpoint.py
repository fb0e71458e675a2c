"""Checkpoint bundle: safe loading, round trip, refusal of mismatching configs/weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simvp_model.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset


@pytest.fixture(scope="module")
def tiny() -> tuple[SimVP, Normalisation]:
    torch.manual_seed(0)
    model = SimVP(get_preset("tiny"))
    # move BatchNorm statistics away from their defaults so they are checked too
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 4, 1, 16, 16))
    return model.eval(), Normalisation("log1p", (0.5,), (2.0,))


def _save(path: Path, tiny: tuple[SimVP, Normalisation], **kw: object) -> str:
    model, norm = tiny
    return save_checkpoint(path, model, model.config, norm, **kw)  # type: ignore[arg-type]


def test_round_trip_identical_predictions(
    tmp_path: Path, tiny: tuple[SimVP, Normalisation]
) -> None:
    model, norm = tiny
    path = _save(
        tmp_path / "sub" / "best.pt",
        tiny,
        metrics={"mse": torch.tensor(0.25), "ssim": 0.5},
        metadata={"source": "unit", "variables": ["precip"], "crop": None, "period": ("a", "b")},
    )
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["config"] == model.config.to_dict()
    loaded = load_checkpoint(path, expected_config=model.config)
    assert not loaded.model.training
    assert loaded.config == model.config and loaded.normalisation == norm
    assert loaded.metrics == {"mse": 0.25, "ssim": 0.5}
    assert loaded.metadata["variables"] == ["precip"] and loaded.metadata["crop"] is None
    x = torch.randn(2, 4, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write left no temporary file


def test_refuses_other_config(tmp_path: Path, tiny: tuple[SimVP, Normalisation]) -> None:
    model, _ = tiny
    path = _save(tmp_path / "best.pt", tiny)
    other = model.config.replace(temporal_hidden=32, out_frames=8)
    with pytest.raises(ValueError, match="out_frames: 4 in file != 8 expected") as info:
        load_checkpoint(path, expected_config=other)
    assert "temporal_hidden: 16 in file != 32 expected" in str(info.value)
    # a mapping checks only the named fields
    assert (
        load_checkpoint(path, expected_config={"channels": 1, "in_frames": 4}).config.channels == 1
    )
    with pytest.raises(ValueError, match="channels: 1 in file != 3"):
        load_checkpoint(path, expected_config={"channels": 3})
    with pytest.raises(ValueError, match="unknown fields"):
        load_checkpoint(path, expected_config={"colour": 3})


def test_refuses_weights_not_matching_config(
    tmp_path: Path, tiny: tuple[SimVP, Normalisation]
) -> None:
    path = Path(_save(tmp_path / "best.pt", tiny))
    bundle = torch.load(path, weights_only=True)
    bundle["config"]["temporal_hidden"] = 32  # config edited, weights left as they were
    torch.save(bundle, path)
    with pytest.raises(ValueError, match="weights do not match its config.*shape"):
        load_checkpoint(path)
    bundle["config"]["temporal_hidden"] = 16
    bundle["state_dict"].pop(next(iter(bundle["state_dict"])))
    torch.save(bundle, path)
    with pytest.raises(ValueError, match="missing weights"):
        load_checkpoint(path)


def test_refuses_foreign_files(tmp_path: Path, tiny: tuple[SimVP, Normalisation]) -> None:
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="not a simvp-nowcast checkpoint"):
        load_checkpoint(tmp_path / "x.ckpt")
    path = Path(_save(tmp_path / "best.pt", tiny))
    bundle = torch.load(path, weights_only=True)
    bundle["format_version"] = 99
    torch.save(bundle, path)
    with pytest.raises(ValueError, match="format_version 99"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_save_refuses_bad_inputs(tmp_path: Path, tiny: tuple[SimVP, Normalisation]) -> None:
    model, _ = tiny
    with pytest.raises(ValueError, match=r"metadata\['store'\].*PosixPath"):
        _save(tmp_path / "a.pt", tiny, metadata={"store": tmp_path})
    with pytest.raises(ValueError, match="normalisation has 2 channels"):
        save_checkpoint(tmp_path / "b.pt", model, model.config, Normalisation.identity(2))
    with pytest.raises(ValueError, match="do not match the config"):
        save_checkpoint(tmp_path / "c.pt", model, model.config.replace(temporal_hidden=32), tiny[1])


class _RunsCode:
    def __reduce__(self):  # unpickling would call eval("1 + 1")
        return (eval, ("1 + 1",))


def test_refusal_of_code_reads_plainly(tmp_path: Path) -> None:
    torch.save({"payload": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refusing to load it") as info:
        load_checkpoint(tmp_path / "evil.pt")
    message = str(info.value)
    assert "\x1b[" not in message  # torch's colour codes
    assert "add_safe_globals" not in message and "weights_only" not in message
    assert "eval" in message and "\n" not in message
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match=r"text.pt .*not a PyTorch checkpoint file"):
        load_checkpoint(tmp_path / "text.pt")
