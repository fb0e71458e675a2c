"""This project's SimVP against the released reference (OpenSTL ``SimVP_Model``), side by side.

Run ``python -m benchmarks.peer_compare [--configs taxibj mmnist radar] [--envs default tuned]``.
It drives the peer's own harness (``../shared/peer/peer_bench.py``, OpenSTL c74deb5 in
``../shared/peer/openstl``) in the peer's virtualenv (``$PEER_VENV``, default
``~/.cache/simvp-peer-venv``, made by ``../shared/peer/setup.sh``) with
our network as the candidate, once per allocator environment:

- ``default``: glibc's default malloc for both sides (candidate
  :func:`benchmarks.peer_candidate.build_bare`: the network alone);
- ``shipped``: the same environment, candidate :func:`benchmarks.peer_candidate.build`: ours as
  ``nowcast`` and the flows run it, i.e. after their runtime malloc tuning
  (:func:`simvp_model.allocator.tune_glibc_malloc`); the peer keeps glibc's defaults;
- ``tuned``: ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` set for both sides (what the
  Makefile exports).

Each model runs in its own child process with 2 torch threads (the harness's protocol). Besides
the harness's wall-clock ratios, the report gives the ratio of CPU seconds (user + sys) per step,
which moves less when other jobs share the cores.

It also checks fidelity (``--fidelity``, run first): per config the peer is built with the
harness's seed, its weights are loaded into our network through
:func:`benchmarks.peer_candidate.peer_to_ours`, and outputs (eval and train mode, the same DropPath
draws) and every parameter gradient are compared. FLOP rates use the hook-counted forward MACs
(:func:`benchmarks.model_throughput.count_macs`): inference 2·MACs per sample, training 3× that
(forward + the two backward products).

Writes ``benchmarks/results/peer_compare.{json,md}`` (+ the harness's raw JSON per environment).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PEER_DIR = Path(os.environ.get("SIMVP_PEER_DIR", REPO.parent / "shared" / "peer"))
PEER_VENV = Path(os.environ.get("PEER_VENV", Path.home() / ".cache" / "simvp-peer-venv"))
TUNED_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
ENVS = ("default", "shipped", "tuned")
CANDIDATES = {
    "default": "benchmarks.peer_candidate:build_bare",
    "shipped": "benchmarks.peer_candidate:build",
    "tuned": "benchmarks.peer_candidate:build",
}
# The 2-core budget quoted by the issue: 2 cores × 2 FMA × 8 fp32 lanes × 2 flop × ~3 GHz.
CPU_PEAK_GFLOPS = 200.0
FIDELITY_BATCH = 2

log = logging.getLogger("benchmarks.peer_compare")


def harness() -> ModuleType:
    """The peer's harness module ``peer_bench``: its ``CONFIGS``, its way of importing the peer."""
    if str(PEER_DIR) not in sys.path:
        sys.path.insert(0, str(PEER_DIR))
    import peer_bench

    return peer_bench


def build_peer(cfg: dict[str, Any]) -> Any:
    """OpenSTL's ``SimVP_Model`` for one harness config (needs the peer venv: timm)."""
    import torch

    peer_bench = harness()
    peer_cls, _ = peer_bench._import_peer(str(PEER_DIR / "openstl"), torch)
    return peer_cls(tuple(cfg["in_shape"]), **{k: cfg[k] for k in peer_bench.PEER_KWARGS})


# --------------------------------------------------------------------------- fidelity (peer venv)
def _fidelity_worker(names: list[str], seed: int) -> list[dict[str, Any]]:
    """Load the peer's weights into ours; compare outputs and gradients (runs in the peer venv)."""
    import torch

    from benchmarks.peer_candidate import build_bare as build
    from benchmarks.peer_candidate import peer_to_ours

    torch.set_num_threads(2)
    out = []
    for cfg in (c for c in harness().CONFIGS if c["name"] in names):
        torch.manual_seed(seed)
        peer = build_peer(cfg)
        ours = build(dict(cfg, in_shape=tuple(cfg["in_shape"])))
        ours.load_state_dict({peer_to_ours(k): v for k, v in peer.state_dict().items()})
        gen = torch.Generator().manual_seed(seed + 1)
        x = torch.randn(FIDELITY_BATCH, *cfg["in_shape"], generator=gen)
        row: dict[str, Any] = {"config": cfg["name"]}
        for mode in ("eval", "train"):
            ys, grads = [], []
            for model in (peer, ours):
                model.train(mode == "train")
                model.zero_grad(set_to_none=True)
                torch.manual_seed(seed + 2)  # the same DropPath draws on both sides
                y = model(x)
                ys.append(y.detach())
                if mode == "train":
                    y.square().mean().backward()
                    grads.append([p.grad for p in model.parameters()])
            scale = ys[0].abs().max().item()
            row[f"{mode}_max_abs_diff"] = (ys[0] - ys[1]).abs().max().item()
            row[f"{mode}_output_max_abs"] = scale
        # parameter order differs; pair the gradients through the state-dict key mapping
        peer_grads = dict(zip([n for n, _ in peer.named_parameters()], grads[0], strict=True))
        our_grads = dict(zip([n for n, _ in ours.named_parameters()], grads[1], strict=True))
        worst = 0.0
        for name, g in peer_grads.items():
            h = our_grads[peer_to_ours(name)]
            worst = max(worst, ((g - h).abs().max() / g.abs().max().clamp_min(1e-12)).item())
        row["grad_max_rel_diff"] = worst
        out.append(row)
    return out


def run_fidelity(names: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """Run :func:`_fidelity_worker` in the peer venv; returns one row per config."""
    cmd = [str(PEER_VENV / "bin" / "python"), "-m", "benchmarks.peer_compare", "--_fidelity"]
    cmd += [json.dumps({"names": names, "seed": seed})]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"fidelity worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- throughput
def run_harness(
    configs: list[str], env_name: str, steps: dict[str, int], out: Path, candidate: str
) -> dict[str, Any]:
    """One peer_bench.py sweep (peer and candidate per config) under one allocator environment."""
    if env_name not in ENVS:
        raise ValueError(f"unknown allocator environment {env_name!r}; valid: {ENVS}")
    cmd = [str(PEER_VENV / "bin" / "python"), str(PEER_DIR / "peer_bench.py")]
    cmd += ["--openstl-path", str(PEER_DIR / "openstl"), "--configs", *configs]
    cmd += ["--candidate", candidate, "--candidate-path", str(REPO), "--out", str(out)]
    cmd += [f"--{k.replace('_', '-')}={v}" for k, v in steps.items()]
    env = {k: v for k, v in os.environ.items() if k not in TUNED_ENV}  # the Makefile exports them
    if env_name == "tuned":
        cmd += [f"--child-env={k}={v}" for k, v in TUNED_ENV.items()]
    log.info("%s", " ".join(cmd))
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def _cpu_s(res: dict[str, Any], phase: str) -> float:
    r = res[phase]["per_step_rusage"]
    return r["user_cpu_s"] + r["sys_cpu_s"]


def macs_per_sample(names: list[str]) -> dict[str, int]:
    """Hook-counted forward MACs of one sample of our network, per harness config."""
    import torch

    from benchmarks.model_throughput import count_macs
    from benchmarks.peer_candidate import build_bare as build

    peer_bench = harness()
    out = {}
    for cfg in (c for c in peer_bench.CONFIGS if c["name"] in names):
        model = build(dict(cfg, in_shape=tuple(cfg["in_shape"])))
        out[cfg["name"]] = count_macs(model, torch.randn(1, *cfg["in_shape"]))
    return out


def summarise(sweeps: dict[str, dict[str, Any]], macs: dict[str, int]) -> list[dict[str, Any]]:
    """Rows per (config, environment, run): both sides' samples/s, ratios, our GFLOP/s."""
    rows = []
    for env_name, report in sweeps.items():
        for run in report["runs"]:
            by: dict[str, dict[str, dict[str, Any]]] = {}
            for r in run["results"]:
                if r.get("status") == "ok":
                    by.setdefault(r["config"], {})[r["who"]] = r
            for name, pair in by.items():
                if set(pair) != {"peer", "candidate"}:
                    continue
                p, c = pair["peer"], pair["candidate"]
                row: dict[str, Any] = {"config": name, "env": env_name, "run": run["run"]}
                for phase in ("train", "infer", "infer_after_train"):
                    row[f"{phase}_peer"] = p[phase]["samples_per_s"]
                    row[f"{phase}_ours"] = c[phase]["samples_per_s"]
                    row[f"{phase}_ratio"] = c[phase]["samples_per_s"] / p[phase]["samples_per_s"]
                    row[f"{phase}_cpu_ratio"] = _cpu_s(p, phase) / _cpu_s(c, phase)
                    row[f"{phase}_faults_k_ours"] = (
                        c[phase]["per_step_rusage"]["minor_faults"] / 1e3
                    )
                    row[f"{phase}_faults_k_peer"] = (
                        p[phase]["per_step_rusage"]["minor_faults"] / 1e3
                    )
                m = macs.get(name)
                if m:
                    batch = c["train"]["samples_per_s"] * c["train"]["median_s"]
                    row["gmacs_per_sample"] = m / 1e9
                    row["train_gflops_ours"] = 6 * m * row["train_ours"] / 1e9
                    row["infer_gflops_ours"] = 2 * m * row["infer_after_train_ours"] / 1e9
                    # per CPU-second (one core's share): the rate the load does not dilute
                    row["train_gflops_per_core"] = 6 * m * batch / _cpu_s(c, "train") / 1e9
                    row["infer_gflops_per_core"] = 2 * m * batch / _cpu_s(c, "infer") / 1e9
                row["load_start"] = c.get("loadavg_start", [None])[0]
                rows.append(row)
    return rows


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def to_markdown(meta: dict[str, Any], rows: list[dict[str, Any]], fidelity: list[dict]) -> str:
    """The side-by-side tables."""
    lines = [
        "# SimVP vs the released reference (OpenSTL SimVP_Model @ c74deb5), CPU",
        "",
        f"Generated by `python -m benchmarks.peer_compare` {meta['date']}; {meta['cpu']}; "
        f"torch {meta['torch']} in both processes; 2 torch threads; harness "
        f"`../shared/peer/peer_bench.py` ({meta['steps']}); candidate `{meta['candidate']}`. "
        "Each model in its own process; only ratios from the same run mean anything: the machine "
        f"is shared (load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}).",
        "",
        "`wall` = ours ÷ peer samples/s (median step); `cpu` = peer ÷ ours CPU seconds "
        "(user+sys) per step, less sensitive to other jobs on the cores. `after train` = inference "
        "in the same process after training (warm allocator). GFLOP/s = hook-counted forward MACs "
        f"× 2 (inference) or × 6 (train) × samples/s (wall; `% peak` of {CPU_PEAK_GFLOPS:.0f} "
        "GFLOP/s), and the same FLOPs per CPU-second (`/core`: one core's rate, out of ~"
        f"{CPU_PEAK_GFLOPS / 2:.0f}), which other jobs on the machine do not dilute.",
        "",
        "| config | alloc | run | train s/s peer → ours | train wall / cpu | infer s/s peer → ours "
        "| infer wall / cpu | after train wall | minflt/train step (k) peer → ours "
        "| train GFLOP/s (% peak), /core | infer GFLOP/s (% peak), /core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["config"], r["env"], r["run"])):
        tg, ig = r.get("train_gflops_ours"), r.get("infer_gflops_ours")
        lines.append(
            f"| {r['config']} | {r['env']} | {r['run']} "
            f"| {_f(r['train_peer'])} → {_f(r['train_ours'])} "
            f"| **{_f(r['train_ratio'])}** / {_f(r['train_cpu_ratio'])} "
            f"| {_f(r['infer_peer'])} → {_f(r['infer_ours'])} "
            f"| **{_f(r['infer_ratio'])}** / {_f(r['infer_cpu_ratio'])} "
            f"| {_f(r['infer_after_train_ratio'])} "
            f"| {_f(r['train_faults_k_peer'], 0)} → {_f(r['train_faults_k_ours'], 0)} "
            f"| {_f(tg, 0)} ({_f(tg and 100 * tg / CPU_PEAK_GFLOPS, 0)} %), "
            f"{_f(r.get('train_gflops_per_core'), 0)} "
            f"| {_f(ig, 0)} ({_f(ig and 100 * ig / CPU_PEAK_GFLOPS, 0)} %), "
            f"{_f(r.get('infer_gflops_per_core'), 0)} |"
        )
    if fidelity:
        lines += [
            "",
            f"Fidelity: the peer's weights loaded into ours, batch {FIDELITY_BATCH}, same DropPath "
            "draws (train mode); max |ours − peer| of the outputs and max relative difference of "
            "any parameter gradient (loss = mean of squared outputs).",
            "",
            "| config | eval max abs diff | train max abs diff | output max abs "
            "| grad max rel diff |",
            "|---|---:|---:|---:|---:|",
        ]
        for f in fidelity:
            lines.append(
                f"| {f['config']} | {f['eval_max_abs_diff']:.1e} | {f['train_max_abs_diff']:.1e} "
                f"| {f['eval_output_max_abs']:.2f} | {f['grad_max_rel_diff']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--_fidelity", help=argparse.SUPPRESS)
    parser.add_argument("--configs", nargs="+", default=["taxibj", "mmnist", "radar"])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument(
        "--candidate", help="MODULE:FACTORY for every environment (default: per environment)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--min-steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--skip-fidelity", action="store_true")
    parser.add_argument(
        "--fidelity-only", action="store_true", help="write peer_fidelity{tag}.{json,md} only"
    )
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    args = parser.parse_args(argv)
    if args._fidelity:
        spec = json.loads(args._fidelity)
        print(json.dumps(_fidelity_worker(spec["names"], spec["seed"])))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (PEER_VENV / "bin" / "python").exists():
        parser.error(f"no peer venv at {PEER_VENV}: run ../shared/peer/setup.sh (or set PEER_VENV)")
    import torch

    peer_bench = harness()
    names = [c["name"] for c in peer_bench.CONFIGS if {c["name"], c["dataset"]} & set(args.configs)]
    if not names:
        parser.error(f"no harness config matches {args.configs}")
    tag = f"_{args.tag}" if args.tag else ""
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": peer_bench._cpu_model(),
        "torch": torch.__version__,
        "candidate": args.candidate or ", ".join(f"{k}: {v}" for k, v in CANDIDATES.items()),
        "steps": f"warm-up {args.warmup}, {args.steps} timed steps (≥ {args.min_steps}), "
        f"{args.runs} run(s)",
        "loadavg_start": _loadavg(),
    }
    fidelity = [] if args.skip_fidelity else run_fidelity(names)
    for f in fidelity:
        log.info("fidelity %s", f)
    if args.fidelity_only:
        meta["loadavg_end"] = _loadavg()
        report = {"meta": meta, "rows": [], "fidelity": fidelity}
        (RESULTS / f"peer_fidelity{tag}.json").write_text(json.dumps(report, indent=1))
        (RESULTS / f"peer_fidelity{tag}.md").write_text(to_markdown(meta, [], fidelity))
        return 0
    steps = {"warmup": args.warmup, "steps": args.steps, "min_steps": args.min_steps}
    steps["runs"] = args.runs
    sweeps = {}
    for env_name in args.envs:
        raw = RESULTS / f"peer_compare{tag}_{env_name}_raw.json"
        candidate = args.candidate or CANDIDATES[env_name]
        sweeps[env_name] = run_harness(names, env_name, steps, raw, candidate)
    meta["loadavg_end"] = _loadavg()
    rows = summarise(sweeps, macs_per_sample(names))
    report = {"meta": meta, "rows": rows, "fidelity": fidelity}
    (RESULTS / f"peer_compare{tag}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"peer_compare{tag}.md").write_text(to_markdown(meta, rows, fidelity))
    log.info("wrote %s", RESULTS / f"peer_compare{tag}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
