"""Cost of a vectorized ensemble: one training step of K members against one surrogate.

    python benchmarks/ensemble_cost.py --out benchmarks/results/ensemble_cost_cpu.json

Each step is the module's own ``training_step`` (gradient matching + regression, kappa = 5, one
trajectory of 128 points per member) + backward + fused Adam. K = 1 and K = 5 are timed in
alternation in the same process (so a busy machine slows both alike), as the median of repeats,
at the input widths of TF-Bind-8 (24 logits) and Superconductor (86 features). Goal of issue #15:
a K = 5 step at most 3x a single step on CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from lightning_matchopt.models import EnsembleMLP, MatchOptModule, MLPSurrogate


def surrogate_of(members: int):
    return MLPSurrogate if members == 1 else partial(EnsembleMLP, ensemble_size=members)


def make_step(d: int, members: int, points: int, device: torch.device):
    torch.manual_seed(0)
    module = MatchOptModule(d, surrogate_of(members)).to(device)
    optimizer = module.configure_optimizers()
    x = torch.randn(members, points, d, device=device)
    y = torch.randn(members, points, device=device).sort(dim=1).values

    def step():
        optimizer.zero_grad()
        module.training_step((x, y), 0).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[24, 86])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--points", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for d in args.dims:
        steps = {1: make_step(d, 1, args.points, device), args.members: make_step(d, args.members, args.points, device)}
        times: dict[int, list[float]] = {k: [] for k in steps}
        for _ in range(10):  # warm-up
            for step in steps.values():
                step()
        for _ in range(args.repeats):
            for k, step in steps.items():
                start = time.perf_counter()
                step()
                times[k].append(time.perf_counter() - start)
        single, ensemble = (statistics.median(times[k]) * 1e3 for k in steps)
        rows.append({"d": d, "K=1 ms": single, f"K={args.members} ms": ensemble, "ratio": ensemble / single})
        print(f"d={d}: K=1 {single:.2f} ms, K={args.members} {ensemble:.2f} ms, ratio {ensemble / single:.2f}x", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"device": str(device), "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": args.repeats}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
