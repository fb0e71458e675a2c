"""predict(): physical units in/out, any horizon, clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simvp_model.checkpoint import load_checkpoint, save_checkpoint
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation
from simvp_model.predict import load_frames, predict
from simvp_model.presets import get_preset

NORM = Normalisation("log1p", (0.5,), (2.0,))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = SimVP(get_preset("tiny")).eval()  # T_in = T_out = 4, 1 × 16 × 16
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, model, model.config, NORM)
    return path


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).gamma(1.0, 2.0, size=(3, 4, 1, 16, 16)).astype(np.float32)


def _reference(path: Path, frames: np.ndarray, horizon: int) -> np.ndarray:
    loaded = load_checkpoint(path)
    with torch.no_grad():
        z = loaded.model.rollout(torch.from_numpy(NORM.encode(frames)), horizon)
    return NORM.decode(z).numpy()


@pytest.mark.parametrize("horizon", [2, 4, 10])
def test_horizons_in_physical_units(checkpoint: Path, frames: np.ndarray, horizon: int) -> None:
    out = predict(checkpoint, frames, horizon=horizon, batch_size=2)
    assert out.shape == (3, horizon, 1, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(checkpoint, frames, horizon), rtol=1e-5, atol=1e-5)
    assert (out > -1).all()  # decoded through expm1: physical counts, not normalised units


def test_horizon_consistency_and_single_sequence(checkpoint: Path, frames: np.ndarray) -> None:
    loaded = load_checkpoint(checkpoint)
    long = predict(loaded, frames, horizon=10)
    default = predict(loaded, frames)  # = out_frames = 4
    short = predict(loaded, frames, horizon=2)
    np.testing.assert_allclose(long[:, :4], default, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(default[:, :2], short, rtol=1e-5, atol=1e-6)
    single = predict(loaded, frames[1], horizon=6)  # (T, C, H, W) in, (horizon, C, H, W) out
    assert single.shape == (6, 1, 16, 16)
    np.testing.assert_allclose(single, predict(loaded, frames, horizon=6)[1], rtol=1e-5, atol=1e-6)
    assert not loaded.model.training
    # a bare model uses the normalisation given (identity by default) and keeps its mode
    bare = SimVP(loaded.config).train()
    bare.load_state_dict(loaded.model.state_dict())
    np.testing.assert_allclose(
        predict(bare, frames, normalisation=NORM), default, rtol=1e-5, atol=1e-6
    )
    assert bare.training


def test_from_files(checkpoint: Path, frames: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", frames)
    np.savez(tmp_path / "one.npz", radar=frames)
    np.savez(tmp_path / "two.npz", a=frames, b=frames[:, :2])
    expected = predict(checkpoint, frames)
    np.testing.assert_allclose(predict(checkpoint, tmp_path / "x.npy"), expected, rtol=1e-6)
    np.testing.assert_allclose(predict(checkpoint, tmp_path / "one.npz"), expected, rtol=1e-6)
    np.testing.assert_array_equal(load_frames(tmp_path / "two.npz", key="a"), frames)
    with pytest.raises(ValueError, match=r"holds arrays \['a', 'b'\]"):
        load_frames(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="no array 'c'"):
        load_frames(tmp_path / "two.npz", key="c")
    with pytest.raises(FileNotFoundError):
        load_frames(tmp_path / "nope.npy")


def test_bad_inputs(checkpoint: Path, frames: np.ndarray) -> None:
    loaded = load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="ndim=3"):
        predict(loaded, frames[0, 0])
    with pytest.raises(ValueError, match="T=3 but the model expects T=4"):
        predict(loaded, frames[:, :3])
    with pytest.raises(ValueError, match="C=2 but the model expects C=1"):
        predict(loaded, np.concatenate([frames, frames], axis=2))
    with pytest.raises(ValueError, match="H=7, not a multiple of the network's downsampling 2"):
        predict(loaded, frames[..., :7, :])
    with pytest.raises(ValueError, match="W=11, not a multiple"):
        predict(loaded, frames[..., :11])
    bad = frames.copy()
    bad[0, 0, 0, :3, 0] = np.nan
    bad[1, 1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"4 non-finite values \(3 NaN, 1 inf\)"):
        predict(loaded, bad)
    for horizon in (0, -2, 1.5):
        with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
            predict(loaded, frames, horizon=horizon)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="taken from the checkpoint"):
        predict(loaded, frames, normalisation=NORM)


def test_whole_domain_with_the_same_weights(checkpoint: Path, frames: np.ndarray) -> None:
    """Fully convolutional: a larger domain runs with the checkpoint's weights."""
    loaded = load_checkpoint(checkpoint)
    big = np.pad(frames, [(0, 0)] * 3 + [(8, 8), (8, 8)], mode="reflect")  # 16 -> 32 px
    out = predict(loaded, big, horizon=2)
    assert out.shape == (*frames.shape[:1], 2, *frames.shape[2:3], 32, 32)
    assert np.isfinite(out).all()


def test_plain_errors_for_wrong_files_and_empty_batches(
    checkpoint: Path, frames: np.ndarray, tmp_path: Path
) -> None:
    (tmp_path / "text.npy").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"text.npy is not a .npy file.*NumPy") as info:
        load_frames(tmp_path / "text.npy")
    assert "pickle" not in str(info.value)
    (tmp_path / "text.npz").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"text.npz is not a .npz file.*zip"):
        load_frames(tmp_path / "text.npz")
    with pytest.raises(ValueError, match=r"no sequences: batch size B=0"):
        predict(checkpoint, frames[:0])
