"""``nowcast train`` → ``nowcast predict`` end to end on Moving MNIST in a temporary data dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.cli import main
from simvp_model.checkpoint import load_checkpoint, save_checkpoint
from simvp_model.datasets.moving_mnist import MovingMNIST, MovingMNISTConfig
from simvp_model.model import SimVP
from simvp_model.normalisation import Normalisation
from simvp_model.presets import get_preset


@pytest.mark.timeout(240)
def test_train_then_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    data_dir = tmp_path / "data"
    code = main(
        [
            "train",
            "--source=moving-mnist",
            "--preset=mmnist-small",
            "--epochs=1",
            "--samples-per-epoch=4",
            "--val-samples=2",
            "--test-samples=2",
            "--batch-size=2",
            "--in-frames=2",
            "--out-frames=2",
            "--accelerator=cpu",
            f"--data-dir={data_dir}",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    bundle = data_dir / "models" / "moving-mnist" / "best.pt"
    assert f"checkpoint: {bundle}" in printed
    assert "ssim" in printed and "persistence" in printed
    loaded = load_checkpoint(bundle, expected_config={"in_frames": 2, "out_frames": 2})
    assert (
        loaded.metadata["source"] == "moving-mnist" and loaded.metadata["preset"] == "mmnist-small"
    )
    assert loaded.metadata["engine"]["global_step"] == 2  # 4 samples / batch 2
    persistence = loaded.metadata["baselines"]["persistence"]
    assert set(persistence) >= {"mse", "ssim", "psnr"}

    # predict from the user's own .npz (two arrays, so --key is needed), horizon > T_out
    test = MovingMNIST("test", 3, seed=0, config=MovingMNISTConfig(2, 2))
    frames = np.stack([test[i][0].numpy() for i in range(3)])  # (3, 2, 1, 64, 64)
    np.savez(tmp_path / "seq.npz", frames=frames, other=frames[:, :1])
    out = tmp_path / "forecast.npy"
    code = main(
        [
            "predict",
            f"--checkpoint={bundle}",
            f"--input={tmp_path / 'seq.npz'}",
            "--key=frames",
            "--horizon=5",
            f"--output={out}",
        ]
    )
    assert code == 0
    assert f"forecast: {out} (3, 5, 1, 64, 64)" in capsys.readouterr().out
    forecast = np.load(out)
    assert forecast.shape == (3, 5, 1, 64, 64) and np.isfinite(forecast).all()

    # a .npy with one sequence, default horizon and output name beside the input
    np.save(tmp_path / "one.npy", frames[0])
    assert main(["predict", f"--checkpoint={bundle}", f"--input={tmp_path / 'one.npy'}"]) == 0
    assert np.load(tmp_path / "one.forecast.npy").shape == (2, 1, 64, 64)

    # bad input: one clear line on stderr, exit code 2
    bad = frames.copy()
    bad[0, 0, 0, 0, :7] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert main(["predict", f"--checkpoint={bundle}", f"--input={tmp_path / 'bad.npy'}"]) == 2
    assert "7 non-finite values (7 NaN, 0 inf)" in capsys.readouterr().err
    assert main(["predict", f"--checkpoint={bundle}", f"--input={tmp_path / 'seq.npz'}"]) == 2
    assert "choose one with key/--key" in capsys.readouterr().err


def test_train_rejects_mmnist_options_for_other_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--source=knmi-radar", "--samples-per-epoch=4"])
    assert code == 2
    assert "--samples-per-epoch only apply to --source moving-mnist" in capsys.readouterr().err


def test_train_rejects_catalog_for_moving_mnist(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--source=moving-mnist", "--catalog=x.yaml"]) == 2
    assert "--catalog does not apply" in capsys.readouterr().err


def test_train_rejects_preset_with_other_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--source=moving-mnist", "--preset=tiny", f"--data-dir={tmp_path}"])
    assert code == 2
    assert "Moving MNIST needs 1×64×64" in capsys.readouterr().err


def test_predict_writes_and_prints_the_path_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = SimVP(get_preset("tiny")).eval()  # T_in = T_out = 4, 1 x 16 x 16
    save_checkpoint(tmp_path / "best.pt", model, model.config, Normalisation.identity(1))
    np.save(tmp_path / "seq.npy", np.ones((4, 1, 16, 16), np.float32))
    out = tmp_path / "result.txt"
    args = ["predict", f"--checkpoint={tmp_path / 'best.pt'}", f"--input={tmp_path / 'seq.npy'}"]
    assert main([*args, f"--output={out}"]) == 0
    assert f"forecast: {out} " in capsys.readouterr().out
    assert out.is_file() and not (tmp_path / "result.txt.npy").exists()
    assert np.load(out).shape == (4, 1, 16, 16)


def test_user_error_is_one_line_and_verbose_shows_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--source=moving-mnist", "--catalog=x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert main(["-v", "train", "--source=moving-mnist", "--catalog=x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError" in err
    assert err.rstrip().splitlines()[-1].startswith("nowcast train: error: --catalog")


def test_predict_with_a_base_correcting_checkpoint(tmp_path: Path) -> None:
    """An untrained extrapolation-base model through the CLI returns the LK nowcast."""
    from pipelines.method.base_nowcasts import base_nowcast
    from simvp_model.checkpoint import save_checkpoint
    from simvp_model.corrected import build_model
    from simvp_model.normalisation import Normalisation
    from simvp_model.presets import get_preset

    yy, xx = np.mgrid[0:32, 0:32]
    frames = np.stack(
        [1.0 + 9.0 * np.exp(-((yy - 12) ** 2 + (xx - 6 - t) ** 2) / 8.0) for t in range(4)]
    )[:, None].astype(np.float32)  # (T, C, H, W) mm/h, a cell moving +x
    np.save(tmp_path / "cell.npy", frames)
    config = get_preset("tiny").replace(in_frames=4, out_frames=3, base="extrapolation")
    norm = Normalisation("dbr", (-5.0,), (8.0,), 0.1)
    bundle = save_checkpoint(
        tmp_path / "best.pt", build_model(config), config, norm, {}, {"time_step": "5min"}
    )
    assert main(["predict", f"--checkpoint={bundle}", f"--input={tmp_path / 'cell.npy'}"]) == 0
    out = np.load(tmp_path / "cell.forecast.npy")
    times = np.datetime64("2000-01-01") + np.arange(4) * np.timedelta64(5, "m")
    lk = base_nowcast("extrapolation", frames, times, 3)
    np.testing.assert_allclose(out, np.where(lk > 0.1, lk, 0.0), rtol=2e-6)
