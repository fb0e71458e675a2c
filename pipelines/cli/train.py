"""``nowcast train``: train SimVP and export ``DIR/models/SOURCE/best.pt``.

Examples::

    nowcast train --source moving-mnist --preset mmnist-small --epochs 2 --samples-per-epoch 512
    nowcast train --source moving-mnist --preset mmnist-gsta --epochs 200 --devices 4 --strategy ddp
    nowcast train --source knmi-radar --epochs 20 --max-minutes 30
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir

MMNIST_ONLY = ("samples_per_epoch", "val_samples", "test_samples")


def _devices(text: str) -> int | str:
    """``auto``, a count (``2``, ``-1`` = all) or Lightning's device-id list (``0,1``)."""
    try:
        return int(text)
    except ValueError:
        return text


def _training_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "devices": args.devices,
        "num_nodes": args.num_nodes,
        "strategy": args.strategy,
        "accelerator": args.accelerator,
        "precision": args.precision,
        "compile": True if args.compile else None,
        "num_workers": args.num_workers,
        "max_minutes": args.max_minutes,
        "limit_train_batches": args.limit_train_batches,
    }
    return {k: v for k, v in options.items() if v is not None}


def _print_result(result: Any) -> None:
    print(f"checkpoint: {result.checkpoint_path}")
    metrics = dict(result.metrics)
    names = sorted(k for k in metrics if not k.startswith("persistence_"))
    print(f"{'test metric':<16} {'SimVP':>12} {'persistence':>12}")
    for name in names:
        reference = metrics.get(f"persistence_{name}", math.nan)
        print(f"{name:<16} {metrics[name]:>12.5g} {reference:>12.5g}")
    if result.history:
        last = result.history[-1]
        print(
            f"epochs: {len(result.history)}, last train loss {last['train_loss']:.5g}, "
            f"val loss {last['val_loss']:.5g}"
        )


def run(args: argparse.Namespace) -> int:
    """Train and print the checkpoint path and the test metrics."""
    options = _training_options(args)
    if args.source == "moving-mnist":
        if args.catalog is not None:
            raise ValueError("--catalog does not apply to --source moving-mnist (no store)")
        if args.init_from is not None:
            raise ValueError("--init-from applies to catalog sources, not moving-mnist")
        from pipelines.training.moving_mnist import DEFAULT_PRESET, train_moving_mnist

        result = train_moving_mnist(
            data_dir=args.data_dir,
            preset=args.preset or DEFAULT_PRESET,
            epochs=args.epochs,
            samples_per_epoch=args.samples_per_epoch or 10_000,
            val_samples=args.val_samples or 1_000,
            test_samples=args.test_samples or 10_000,
            in_frames=args.in_frames,
            out_frames=args.out_frames,
            resume=args.resume,
            **options,
        )
    else:
        given = [f"--{n.replace('_', '-')}" for n in MMNIST_ONLY if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to --source moving-mnist")
        from pipelines.training.source import train_source

        windows = {"in_frames": args.in_frames, "out_frames": args.out_frames}
        result = train_source(
            args.source,
            data_dir=args.data_dir,
            preset=args.preset,
            epochs=args.epochs,
            catalog=args.catalog,
            resume=args.resume,
            init_from=args.init_from,
            **options,
            **{k: v for k, v in windows.items() if v is not None},
        )
    if getattr(result, "is_global_zero", True):
        _print_result(result)
    return 0


@COMMANDS.register("train")
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train SimVP on Moving MNIST or an ingested source; export best.pt",
        description=(
            "Train SimVP with Lightning (CPU, or CUDA with bf16 autocast; DDP over --devices × "
            "--num-nodes), keep the weights with the lowest validation loss, score the test "
            "split once and write DIR/models/SOURCE/best.pt. Moving MNIST is generated from "
            "the shipped MNIST digits; other sources are read from DIR/stores/SOURCE.zarr."
        ),
    )
    parser.add_argument("--source", required=True, help="moving-mnist or a catalog source name")
    parser.add_argument(
        "--preset", default=None, help="model preset (moving-mnist default: mmnist-gsta)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's recipe")
    parser.add_argument("--batch-size", type=int, default=None, help="per-device batch size")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    add_data_dir(parser)
    parser.add_argument("--catalog", default=None, help="catalog YAML (non-MMNIST sources)")
    parser.add_argument(
        "--devices", type=_devices, default=None, help="devices per node: auto, N, -1 or 0,1"
    )
    parser.add_argument("--num-nodes", type=int, default=None, help="nodes for multi-node DDP")
    parser.add_argument("--strategy", default=None, help="Lightning strategy, e.g. ddp")
    parser.add_argument("--accelerator", default=None, help="auto (default), cpu or gpu")
    parser.add_argument(
        "--precision", default=None, help="auto (bf16-mixed on CUDA), 32-true, bf16-mixed, ..."
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop after the epoch exceeding this"
    )
    parser.add_argument(
        "--limit-train-batches", type=int, default=None, help="batches per epoch (quick runs)"
    )
    parser.add_argument(
        "--samples-per-epoch",
        type=int,
        default=None,
        help="moving-mnist: generated training samples per epoch (default 10000)",
    )
    parser.add_argument(
        "--val-samples", type=int, default=None, help="moving-mnist: validation set size (1000)"
    )
    parser.add_argument(
        "--test-samples", type=int, default=None, help="moving-mnist: test set size (10000)"
    )
    parser.add_argument("--in-frames", type=int, default=None, help="T_in (default: preset's)")
    parser.add_argument("--out-frames", type=int, default=None, help="T_out (default: preset's)")
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="pretrained|PATH",
        help=(
            "fine-tune: start from the shipped pretrained model or a checkpoint (its "
            "architecture, frames, normalisation, time step and resolution are kept)"
        ),
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from DIR/models/SOURCE/lightning/last.ckpt"
    )
    parser.set_defaults(func=run)
