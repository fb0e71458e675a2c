"""``nowcast predict``: forecast from your own frames with a trained checkpoint.

Examples::

    nowcast predict --checkpoint data/models/moving-mnist/best.pt --input seq.npy
    nowcast predict --checkpoint best.pt --input radar.npz --key precip --horizon 24 \\
        --output forecast.npy

The input is ``(T_in, C, H, W)`` or ``(B, T_in, C, H, W)`` in physical units (the units the
checkpoint was trained on); the output has the same rank with ``horizon`` frames, in the same
units, as a ``.npy`` file. A model that corrects a persistence or extrapolation base builds its
base from the input frames (:class:`pipelines.method.simvp.SimVPMethod`, as ``nowcast
forecast`` does); a climatology base needs the archive of a store: use ``nowcast forecast``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.cli import COMMANDS


def default_output(input_path: str) -> Path:
    """``<input stem>.forecast.npy`` beside the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}.forecast.npy")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and frames, forecast, write the ``.npy``, print a summary."""
    from simvp_model.checkpoint import load_checkpoint
    from simvp_model.predict import load_frames, predict

    loaded = load_checkpoint(args.checkpoint)
    frames = load_frames(args.input, key=args.key)
    if loaded.config.base == "none":
        forecast = predict(loaded, frames, horizon=args.horizon, batch_size=args.batch_size)
    else:
        forecast = _corrected(loaded, frames, args.horizon)
    output = Path(args.output) if args.output else default_output(args.input)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as file:  # np.save(path) would add ".npy" to any other name
        np.save(file, forecast)
    c = loaded.config
    print(f"model:    {c.translator} ({c.in_frames} -> {c.out_frames} frames, {c.channels} ch)")
    print(f"input:    {args.input} {tuple(frames.shape)}")
    print(
        f"forecast: {output} {tuple(forecast.shape)} float32, "
        f"min {float(forecast.min()):.4g}, max {float(forecast.max()):.4g}"
    )
    return 0


def _corrected(loaded: Any, frames: np.ndarray, horizon: int | None) -> np.ndarray:
    """Forecast with a base-correcting model: each sequence gets its base from its frames."""
    from pipelines.method.base_nowcasts import ARCHIVE_BASES
    from pipelines.method.simvp import SimVPMethod
    from simvp_model.predict import check_frames

    if loaded.config.base in ARCHIVE_BASES:
        raise SystemExit(
            f"this model corrects a {loaded.config.base} base, which needs the store's archive: "
            "use nowcast forecast --source NAME"
        )
    array = np.asarray(frames, dtype=np.float32)
    check_frames(array, loaded.config)
    batch = array if array.ndim == 5 else array[None]  # (B, T_in, C, H, W)
    steps = int(horizon or loaded.config.out_frames)
    # persistence and extrapolation do not depend on the clock: regular times at the model's step
    step = pd.Timedelta(
        pd.tseries.frequencies.to_offset(loaded.metadata.get("time_step") or "5min")
    )
    times = pd.date_range("2000-01-01", periods=batch.shape[1], freq=step).values
    method = SimVPMethod.from_loaded(loaded)
    out = np.stack([method.predict(sequence, steps, times=times) for sequence in batch])
    return out if array.ndim == 5 else out[0]


@COMMANDS.register("predict")
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="forecast from a .npy/.npz of frames with a trained checkpoint",
        description=(
            "Read (T_in, C, H, W) or (B, T_in, C, H, W) frames in physical units, check them "
            "against the checkpoint (frames, channels, grid, finite values), roll SimVP out to "
            "--horizon frames and save the forecast in physical units as .npy."
        ),
    )
    parser.add_argument("--checkpoint", required=True, help="a best.pt written by nowcast train")
    parser.add_argument("--input", required=True, help=".npy or .npz file of input frames")
    parser.add_argument("--key", default=None, help="array name inside a .npz with several")
    parser.add_argument(
        "--horizon", type=int, default=None, help="frames to forecast (default: the model's T_out)"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="output file, written in .npy format under exactly this name "
        "(default: INPUT_STEM.forecast.npy beside it)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    parser.set_defaults(func=run)
