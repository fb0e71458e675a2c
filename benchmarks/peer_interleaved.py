"""Ours vs the released reference in ONE process, steps interleaved: CPU seconds per step.

``peer_compare`` (the peer's own harness) measures each model in a fresh process, one run: fair,
but a single burst of load on a shared 2-core machine moves one side only. This benchmark builds
the peer and our variants in one process and alternates their steps (peer, ours, ours, peer, …),
so both see the same machine; it reports the median CPU seconds (user + sys of the process) per
step and the speed-up over the first variant. The allocator is tuned for every variant alike
(:func:`simvp_model.allocator.tune_glibc_malloc`, the product's entry-point setting).

Variants: ``peer`` (OpenSTL ``SimVP_Model`` from ``../shared/peer``), ``ours``
(:func:`benchmarks.peer_candidate.build_bare`), ``ours_dilated`` (ours with the LKA's dilated
depth-wise conv run directly instead of on its polyphase components: the ablation of
:mod:`simvp_model.polyphase`) and ``ours_nchw`` (:func:`benchmarks.peer_candidate.build_nchw`).

Run it in the peer's virtualenv (it needs timm)::

    $PEER_VENV/bin/python -m benchmarks.peer_interleaved taxibj_gsta taxibj_tau --modes train infer

Writes ``benchmarks/results/peer_interleaved{tag}.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.peer_candidate import build_bare, build_nchw
from benchmarks.peer_compare import RESULTS, build_peer, harness
from simvp_model.allocator import tune_glibc_malloc
from simvp_model.polyphase import PolyphaseDepthwiseConv2d

log = logging.getLogger("benchmarks.peer_interleaved")


def _dilated(cfg: dict[str, Any]) -> nn.Module:
    model = build_bare(cfg)
    for module in model.modules():
        if isinstance(module, PolyphaseDepthwiseConv2d):
            module.forward = lambda x, conv=module: nn.Conv2d.forward(conv, x)  # type: ignore[method-assign]
    return model


VARIANTS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "peer": build_peer,
    "ours": build_bare,
    "ours_dilated": _dilated,
    "ours_nchw": build_nchw,
}


def measure(
    name: str, variants: list[str], mode: str, rounds: int, threads: int
) -> list[dict[str, Any]]:
    """Median CPU and wall seconds per step of each variant on harness config ``name``.

    Parameters
    ----------
    name : str
        A ``peer_bench.CONFIGS`` name, e.g. ``"taxibj_gsta"``.
    variants : list of str
        Keys of :data:`VARIANTS`; the first is the reference of the speed-ups.
    mode : {"train", "infer"}
        ``train``: zero_grad + forward + MSE + backward + Adam step (the harness's step);
        ``infer``: forward under ``torch.inference_mode()`` in eval mode.
    rounds, threads : int
        Timed steps per variant (after two warm-up steps each); torch threads.
    """
    configs = {c["name"]: c for c in harness().CONFIGS}
    if name not in configs:
        raise ValueError(f"unknown harness config {name!r}; valid: {sorted(configs)}")
    if mode not in ("train", "infer"):
        raise ValueError(f"mode must be 'train' or 'infer', got {mode!r}")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; valid: {sorted(VARIANTS)}")
    torch.set_num_threads(threads)
    cfg = dict(configs[name], in_shape=tuple(configs[name]["in_shape"]))
    models = {}
    for v in variants:
        torch.manual_seed(0)
        models[v] = VARIANTS[v](cfg)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(cfg["batch"], *cfg["in_shape"], generator=gen)
    y = torch.randn(cfg["batch"], *cfg["in_shape"], generator=gen)
    optimisers = {v: torch.optim.Adam(m.parameters(), 1e-3) for v, m in models.items()}

    def step(v: str) -> None:
        model = models[v]
        if mode == "train":
            model.train()
            optimisers[v].zero_grad(set_to_none=True)
            F.mse_loss(model(x), y).backward()
            optimisers[v].step()
        else:
            model.eval()
            with torch.inference_mode():
                model(x)

    for v in variants:
        step(v)
        step(v)
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            c0, t0 = time.process_time(), time.perf_counter()
            step(v)
            cpu[v].append(time.process_time() - c0)
            wall[v].append(time.perf_counter() - t0)
    base = statistics.median(cpu[variants[0]])
    rows = []
    for v in variants:
        med = statistics.median(cpu[v])
        rows.append(
            {
                "config": name,
                "mode": mode,
                "variant": v,
                "cpu_s": med,
                "wall_s": statistics.median(wall[v]),
                "speedup_cpu": base / med,
                "rounds": rounds,
                "threads": threads,
            }
        )
        log.info("%s %s %-13s cpu %.3f s  x%.2f", name, mode, v, med, base / med)
    return rows


def to_markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """One table: CPU s/step and speed-up over the first variant, per config and mode."""
    lines = [
        "# Ours vs the reference, interleaved in one process",
        "",
        f"`python -m benchmarks.peer_interleaved` {meta['date']}; {meta['threads']} torch "
        f"thread(s); {meta['rounds']} timed steps per variant after 2 warm-ups, alternating; "
        f"malloc tuned for all; load average at start {meta['load']}. Speed-up = CPU seconds of "
        "the first variant ÷ this variant's (median step).",
        "",
        "| config | mode | variant | CPU s/step | wall s/step | speed-up |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['mode']} | {r['variant']} | {r['cpu_s']:.3f} "
            f"| {r['wall_s']:.3f} | **{r['speedup_cpu']:.2f}** |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="harness config names, e.g. taxibj_gsta")
    parser.add_argument("--variants", default="peer,ours_dilated,ours")
    parser.add_argument("--modes", nargs="+", default=["train"], choices=["train", "infer"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tune_glibc_malloc()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": args.threads,
        "rounds": args.rounds,
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    rows = []
    for name in args.configs:
        for mode in args.modes:
            rows += measure(name, args.variants.split(","), mode, args.rounds, args.threads)
    tag = f"_{args.tag}" if args.tag else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"peer_interleaved{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}))
    (RESULTS / f"peer_interleaved{tag}.md").write_text(to_markdown(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
