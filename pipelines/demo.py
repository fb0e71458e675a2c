"""Demo launchers: the full radar pipeline (default) or a short Moving MNIST run.

``python -m pipelines.demo [ARGS]`` runs the whole pipeline on the shipped radar sample
through the Prefect flows (``python -m flows.demo [ARGS]``, started as a subprocess because
``pipelines`` never imports prefect): ingest, train, forecast, map, skill vs persistence.
``make demo`` calls ``flows.demo`` directly.

``python -m pipelines.demo --mmnist [--data-dir DIR] [--epochs N]`` runs the Moving MNIST demo
instead: :func:`run_mmnist_demo` trains the ``mmnist-small`` preset for a couple of short epochs on
the CPU (or the GPU if there is one), forecasts a few test sequences with
:func:`simvp_model.predict.predict` from the exported ``best.pt`` (as a user would), and draws
inputs / truth / SimVP / persistence for one of them. Everything goes under the data directory
(``--data-dir`` / ``$NOWCAST_DATA_DIR`` / ``./data``)::

    DIR/models/moving-mnist-demo/best.pt            checkpoint bundle (+ lightning/, logs/)
    DIR/models/moving-mnist-demo/inputs.npy         (4, 10, 1, 64, 64) test inputs
    DIR/models/moving-mnist-demo/forecast.npy       (4, 10, 1, 64, 64) SimVP forecast
    DIR/figures/moving-mnist-demo/sequence.png      one sequence, 4 rows of frames

A short CPU run is far from the published skill (that takes hundreds of GPU epochs); the
printed table compares it with the copy-last-frame baseline on the same test sequences.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_catalog.paths import DataDir

logger = logging.getLogger(__name__)

DEMO_NAME = "moving-mnist-demo"


def _figure(inputs: np.ndarray, truth: np.ndarray, forecast: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    persistence = np.repeat(inputs[-1:], len(truth), axis=0)
    rows = [("input", inputs), ("truth", truth), ("SimVP", forecast), ("persistence", persistence)]
    cols = max(len(inputs), len(truth))
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 1.1, len(rows) * 1.2))
    for r, (label, frames) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(frames):
                ax.imshow(frames[c, 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle("Moving MNIST: 10 input frames, 10 forecast frames", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def run_mmnist_demo(
    data_dir: str | None = None,
    preset: str = "mmnist-small",
    epochs: int = 2,
    samples_per_epoch: int = 256,
    val_samples: int = 64,
    test_samples: int = 128,
    batch_size: int = 16,
    max_minutes: float | None = 10.0,
) -> dict[str, Any]:
    """Train briefly on Moving MNIST, forecast from the checkpoint, draw one sequence.

    Parameters
    ----------
    data_dir : str, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    preset : str
        Model preset (1 × 64 × 64 frames).
    epochs, samples_per_epoch, val_samples, test_samples, batch_size : int
        Size of the run.
    max_minutes : float, optional
        Stop after the epoch that exceeds this budget.

    Returns
    -------
    dict
        ``checkpoint``, ``inputs``, ``forecast``, ``figure`` (paths) and ``metrics``.
    """
    from pipelines.training.moving_mnist import moving_mnist_splits, train_moving_mnist
    from simvp_model.predict import predict

    root = DataDir.resolve(data_dir)
    out_dir = Path(root.models(DEMO_NAME))
    if out_dir.exists():  # the demo is re-runnable: start its own folder afresh
        shutil.rmtree(out_dir)
    result = train_moving_mnist(
        preset=preset,
        epochs=epochs,
        out_dir=out_dir,
        samples_per_epoch=samples_per_epoch,
        val_samples=val_samples,
        test_samples=test_samples,
        batch_size=batch_size,
        max_minutes=max_minutes,
        num_workers=0,
    )
    test = moving_mnist_splits(samples_per_epoch=1, val_samples=1, test_samples=4).test
    inputs = np.stack([test[i][0].numpy() for i in range(4)])  # (4, T_in, 1, 64, 64)
    truth = np.stack([test[i][1].numpy() for i in range(4)])
    forecast = predict(result.checkpoint_path, inputs)  # physical units, default horizon
    np.save(out_dir / "inputs.npy", inputs)
    np.save(out_dir / "forecast.npy", forecast)
    figure = Path(root.figures(DEMO_NAME)) / "sequence.png"
    _figure(inputs[0], truth[0], forecast[0], figure)
    return {
        "checkpoint": result.checkpoint_path,
        "inputs": str(out_dir / "inputs.npy"),
        "forecast": str(out_dir / "forecast.npy"),
        "figure": str(figure),
        "metrics": dict(result.metrics),
    }


def mmnist_main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.demo --mmnist``: the Moving MNIST demo with its printed table."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.demo --mmnist",
        description="Short Moving MNIST training run, forecast from its checkpoint, figure.",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples-per-epoch", type=int, default=256)
    args = parser.parse_args(None if argv is None else list(argv))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    out = run_mmnist_demo(
        args.data_dir, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch
    )
    metrics = out["metrics"]
    print("\nMoving MNIST demo (short CPU run; published skill needs hundreds of GPU epochs)")
    print(f"{'test metric':<14} {'SimVP':>10} {'copy last frame':>16}")
    for name in ("mse", "mae", "ssim", "psnr"):
        print(f"{name:<14} {metrics[name]:>10.4g} {metrics[f'persistence_{name}']:>16.4g}")
    print(f"checkpoint: {out['checkpoint']}")
    print(f"inputs:     {out['inputs']}")
    print(f"forecast:   {out['forecast']}")
    print(f"figure:     {out['figure']}")
    print(f"try:        nowcast predict --checkpoint {out['checkpoint']} --input {out['inputs']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.demo``: the radar pipeline demo (``flows.demo``) or ``--mmnist``.

    Returns the exit code of the demo.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--mmnist"]:
        return mmnist_main(args[1:])
    # A subprocess, not an import: only flows/ imports prefect.
    return subprocess.run([sys.executable, "-m", "flows.demo", *args], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
