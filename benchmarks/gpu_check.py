"""GPU check: bf16-mixed throughput, MFU and peak memory of the presets, plus a real CLI run.

Run ``python -m benchmarks.gpu_check`` (or ``make gpu-check``) on a machine with one CUDA device.
In about 8 minutes (``--budget-s``) it:

1. trains a reduced Moving MNIST model through the real CLI (``python -m pipelines.cli train
   --source moving-mnist --preset mmnist-small`` into a temporary data directory) and forecasts
   once from the exported ``best.pt`` (``python -m pipelines.cli predict``), checking the
   forecast's shape and that it is finite;
2. measures, per published preset (MMNIST and TaxiBJ, IncepU / gSTA / TAU), channels_last, eager
   and ``torch.compile``: training samples/s (zero_grad + forward + MSE + backward + Adam step
   under ``torch.autocast(bfloat16)``, as Lightning's ``bf16-mixed``), inference samples/s
   (``torch.inference_mode`` + autocast), peak CUDA memory, and model FLOPs utilisation:
   ``MFU = k · MACs · 2 · samples/s / peak`` with the hook-counted forward MACs
   (:func:`benchmarks.model_throughput.count_macs`), k = 3 for training (forward + two backward
   products) and 1 for inference, against the dense bf16 peak of the device
   (:data:`BF16_PEAK_TFLOPS`, matched on the device name; ``--peak-tflops`` otherwise).

Items that do not fit the time budget are listed as skipped, failures are recorded with their
error (the check goes on); the exit status is 1 if anything failed. ``--smoke`` runs the same code
paths on CPU in seconds (``tiny`` preset, fp32, no compile, a 2-batch CPU CLI training), for the
test suite. Writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out``
(default ``benchmarks/results``; ``--smoke`` defaults to a temporary directory).

This script was written without access to a GPU: it is correct by construction (every path is
exercised on CPU by ``--smoke``), the CUDA numbers are still to be measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.model_throughput import count_macs
from simvp_model import SimVP, get_preset

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# Dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets, no sparsity), matched in order on
# torch.cuda.get_device_name(): more specific names first ("H100 PCIe" before "H100", "L40S"
# before "L4").
BF16_PEAK_TFLOPS = (
    ("H200", 989.4),  # same GH100 SXM part as H100 SXM
    ("GH200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)
PRESETS = (
    "mmnist-gsta",
    "mmnist-tau",
    "mmnist-incepu",
    "taxibj-gsta",
    "taxibj-tau",
    "taxibj-incepu",
)
MFU_GOAL = 0.30  # issue 14: >= 30 % bf16 MFU on the MMNIST presets

log = logging.getLogger("benchmarks.gpu_check")


def peak_tflops(device_name: str, override: float | None) -> float | None:
    """Dense bf16 peak of the device (``override`` wins); None when unknown."""
    if override is not None:
        if override <= 0:
            raise ValueError(f"--peak-tflops must be positive, got {override}")
        return override
    for key, value in BF16_PEAK_TFLOPS:
        if key in device_name:
            return value
    return None


@dataclass(frozen=True)
class Item:
    """One throughput measurement: a preset at a batch size, eager or compiled."""

    preset: str
    batch: int
    compile: bool


def _timed(step: Callable[[], None], sync: Callable[[], None], warmup: int, steps: int) -> float:
    """Median seconds per step after ``warmup`` untimed steps."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(item: Item, device: torch.device, amp: bool, warmup: int, steps: int) -> dict:
    """Train and inference throughput, MACs and peak memory of one item (fresh model)."""
    config = get_preset(item.preset)
    torch.manual_seed(0)
    model = SimVP(config, channels_last=True).to(device)
    shape = (config.in_frames, config.channels, config.height, config.width)
    macs = count_macs(model, torch.randn(1, *shape, device=device))
    x = torch.rand(item.batch, *shape, device=device)
    y = torch.rand(item.batch, config.out_frames, *shape[1:], device=device)
    net = torch.compile(model) if item.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.mse_loss(net(x).float(), y)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.inference_mode(), autocast:
            net(x)

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    model.train()
    train_s = _timed(train_step, sync, warmup, steps)
    peak_train = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    model.eval()
    infer_s = _timed(infer_step, sync, warmup, steps)
    return {
        **asdict(item),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gmacs_per_sample": macs / 1e9,
        "train_samples_per_s": item.batch / train_s,
        "infer_samples_per_s": item.batch / infer_s,
        "train_tflops": 3 * 2 * macs * item.batch / train_s / 1e12,
        "infer_tflops": 2 * macs * item.batch / infer_s / 1e12,
        "peak_mem_train_gib": peak_train,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
        "wall_s": time.perf_counter() - t0,
    }


def cli_run(smoke: bool, timeout_s: float) -> dict:
    """Train mmnist-small through the CLI (2 batches of 4 on CPU if ``smoke``), forecast once."""
    preset = "mmnist-small"
    config = get_preset(preset)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        data = Path(tmp)
        train = [sys.executable, "-m", "pipelines.cli", "train", "--source", "moving-mnist"]
        train += ["--preset", preset, "--data-dir", str(data), "--epochs", "1"]
        if smoke:
            train += ["--accelerator", "cpu", "--precision", "32-true", "--batch-size", "4"]
            train += ["--samples-per-epoch", "8", "--val-samples", "4", "--test-samples", "4"]
            train += ["--num-workers", "0"]
        else:  # ~1 minute on one GPU: 2048 samples, bf16-mixed (the CLI's CUDA default)
            train += ["--accelerator", "gpu", "--devices", "1", "--batch-size", "16"]
            train += ["--samples-per-epoch", "2048", "--val-samples", "256"]
            train += ["--test-samples", "256", "--num-workers", "4", "--max-minutes", "3"]
        t0 = time.perf_counter()
        proc = subprocess.run(
            train, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        out: dict[str, Any] = {"train_cmd": " ".join(train[1:]), "train_rc": proc.returncode}
        out["train_wall_s"] = time.perf_counter() - t0
        checkpoint = data / "models" / "moving-mnist" / "best.pt"
        if proc.returncode or not checkpoint.exists():
            out["error"] = f"train failed (rc {proc.returncode}): {proc.stderr[-1500:]}"
            return out
        frames = np.random.default_rng(0).random(
            (config.in_frames, config.channels, config.height, config.width), dtype=np.float32
        )
        np.save(data / "input.npy", frames)
        predict = [sys.executable, "-m", "pipelines.cli", "predict", "--checkpoint"]
        predict += [str(checkpoint), "--input", str(data / "input.npy")]
        predict += ["--output", str(data / "forecast.npy")]
        t0 = time.perf_counter()
        proc = subprocess.run(
            predict, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        out.update(predict_rc=proc.returncode, predict_wall_s=time.perf_counter() - t0)
        if proc.returncode:
            out["error"] = f"predict failed (rc {proc.returncode}): {proc.stderr[-1500:]}"
            return out
        forecast = np.load(data / "forecast.npy")
        expected = (config.out_frames, config.channels, config.height, config.width)
        out.update(
            forecast_shape=list(forecast.shape), forecast_finite=bool(np.isfinite(forecast).all())
        )
        if tuple(forecast.shape) != expected or not out["forecast_finite"]:
            out["error"] = f"forecast {forecast.shape} (expected {expected}) or not finite"
    return out


def _f(v: float | None, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def to_markdown(report: dict) -> str:
    """Tables of the report."""
    m = report["meta"]
    peak = m["peak_tflops"]
    lines = [
        "# GPU check" + (" (smoke: CPU, fp32, tiny)" if m["smoke"] else ""),
        "",
        f"{m['date']} — device {m['device_name']}, torch {m['torch']}, "
        f"{'bf16-mixed autocast' if m['amp'] else 'fp32'}, channels_last; warm-up {m['warmup']}, "
        f"{m['steps']} timed steps (median). MFU against {_f(peak, '.1f')} TFLOP/s "
        f"({m['peak_source']}); model FLOPs = hook-counted forward MACs × 2, × 3 for training.",
        "",
        "| preset | batch | compile | params (M) | GMACs/sample | train samples/s | train MFU "
        "| infer samples/s | infer MFU | peak mem train / all (GiB) | status |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["items"]:
        if "error" in r or "skipped" in r:
            status = r.get("error", r.get("skipped", ""))[:120].replace("\n", " ")
            lines.append(
                f"| {r['preset']} | {r['batch']} | {r['compile']} | | | | | | | | {status} |"
            )
            continue
        tmfu = r["train_tflops"] / peak if peak else None
        imfu = r["infer_tflops"] / peak if peak else None
        lines.append(
            f"| {r['preset']} | {r['batch']} | {r['compile']} | {r['params_m']:.2f} "
            f"| {r['gmacs_per_sample']:.2f} | {r['train_samples_per_s']:.1f} "
            f"| {_f(tmfu and 100 * tmfu, '.1f')} % | {r['infer_samples_per_s']:.1f} "
            f"| {_f(imfu and 100 * imfu, '.1f')} % | {_f(r['peak_mem_train_gib'])} / "
            f"{_f(r['peak_mem_gib'])} | ok |"
        )
    c = report["cli"]
    lines += [
        "",
        f"CLI: `{c.get('train_cmd', '')}` → rc {c.get('train_rc')} in "
        f"{_f(c.get('train_wall_s'), '.0f')} s; predict rc {c.get('predict_rc')} in "
        f"{_f(c.get('predict_wall_s'), '.0f')} s, forecast shape {c.get('forecast_shape')}, "
        f"finite {c.get('forecast_finite')}"
        + (f"; **{c['error'][:300]}**" if "error" in c else ""),
        "",
        f"Goal (issue 14): ≥ {100 * MFU_GOAL:.0f} % bf16 MFU on the MMNIST presets.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 1 if any item or the CLI run failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, fp32, tiny shapes, seconds")
    parser.add_argument("--presets", nargs="+", default=None, help=f"default: {PRESETS}")
    parser.add_argument("--batches", nargs="+", type=int, default=None, help="default: 16 64")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--budget-s", type=float, default=450.0, help="throughput time budget")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.smoke:
        device, amp, compile_modes = torch.device("cpu"), False, [False]
        presets, batches = args.presets or ["tiny"], args.batches or [2]
        warmup, steps = args.warmup or 1, args.steps or 2
        out_dir = args.out or Path(tempfile.mkdtemp(prefix="gpu_check_smoke_"))
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device visible; use --smoke for the CPU run")
        device, amp = torch.device("cuda", 0), True
        compile_modes = [False] if args.no_compile else [False, True]
        presets, batches = args.presets or list(PRESETS), args.batches or [16, 64]
        warmup, steps = args.warmup or 3, args.steps or 10
        out_dir = args.out or RESULTS
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name, args.peak_tflops)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device_name": name,
        "torch": torch.__version__,
        "smoke": args.smoke,
        "amp": amp,
        "warmup": warmup,
        "steps": steps,
        "peak_tflops": peak,
        "peak_source": "--peak-tflops"
        if args.peak_tflops
        else ("device table" if peak else "unknown device: pass --peak-tflops"),
    }
    log.info("device %s, peak %s TFLOP/s", name, peak)
    report: dict[str, Any] = {"meta": meta, "items": [], "cli": {}}
    if not args.skip_cli:  # first: the end-to-end check matters more than any one number
        try:
            report["cli"] = cli_run(args.smoke, timeout_s=240.0)
        except subprocess.TimeoutExpired as exc:
            report["cli"] = {"error": f"timed out: {exc}"}
        log.info("cli: %s", {k: v for k, v in report["cli"].items() if k != "train_cmd"})
    # eager for every preset first, then compiled: the budget cuts compiled runs first
    items = [Item(p, b, c) for c in compile_modes for p in presets for b in batches]
    deadline = time.perf_counter() + args.budget_s
    for item in items:
        if time.perf_counter() > deadline:
            report["items"].append({**asdict(item), "skipped": "time budget spent"})
            continue
        try:
            row = measure(item, device, amp, warmup, steps)
            log.info("%s", row)
        except Exception as exc:  # recorded in the report; the check goes on
            row = {**asdict(item), "error": f"{type(exc).__name__}: {exc}"}
            log.error("%s failed: %s", item, exc)
        report["items"].append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out_dir / "gpu_check.md").write_text(to_markdown(report))
    log.info("wrote %s", out_dir / "gpu_check.md")
    failed = any("error" in r for r in report["items"]) or "error" in report["cli"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
