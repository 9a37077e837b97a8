"""Time one optimizer step of MATCH-OPT's loss: fast path vs generic JVP vs naive Jacobian vs regression only.

    python benchmarks/step_time.py --out benchmarks/results/step_time_cpu.json

Each method is timed as zero_grad + loss + backward + Adam step on the same surrogate and batch
(B trajectory points -> B - 1 pairs, kappa = 5), after warm-up, as the median of repeats. The
naive reference is the official code's computation (a full per-sample Jacobian at each of the
kappa points, O(B^2 d)); all losses are checked to agree before timing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.autograd import functional as autof

from lightning_matchopt.models import MLPSurrogate, gradient_matching_loss, regression_loss


def naive_gradient_matching(net, x_u, x_v, y_u, y_v, kappa):
    source = 0.0
    for i in range(kappa):
        t = i / kappa
        jac = autof.jacobian(lambda inp: net(inp).flatten(), x_u * (1 - t) + x_v * t, create_graph=True)
        source = source + torch.einsum("aab->ab", jac) / kappa
    return ((y_v - y_u - (source * (x_v - x_u)).sum(1)) ** 2).mean()


def median_time(step, repeats, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(d, batch, kappa, repeats, naive_max_d, device):
    torch.manual_seed(0)
    net = MLPSurrogate(d).to(device)
    x = torch.randn(batch, d, device=device)
    y = torch.randn(batch, device=device).sort().values
    pairs = (x[:-1], x[1:], y[:-1], y[1:])
    losses = {
        "matchopt (fast path)": lambda: gradient_matching_loss(net, *pairs, kappa) + regression_loss(net, x, y),
        "matchopt (generic JVP)": lambda: gradient_matching_loss(lambda z: net(z), *pairs, kappa) + regression_loss(net, x, y),
        "regression only": lambda: regression_loss(net, x, y),
    }
    if d <= naive_max_d:
        losses["matchopt (naive Jacobian)"] = lambda: naive_gradient_matching(net, *pairs, kappa) + regression_loss(net, x, y)
    reference = losses["matchopt (fast path)"]().item()
    for name, loss in losses.items():
        if name != "regression only":
            value = loss().item()
            assert abs(value - reference) <= 1e-4 * max(1.0, abs(reference)), (name, value, reference)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)

    def make_step(loss):
        def step():
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return step

    row = {"d": d, "B": batch, "kappa": kappa, "loss_value": reference}
    for name, loss in losses.items():
        slow = "naive" in name
        row[name] = median_time(make_step(loss), 3 if slow else repeats, 1 if slow else 10) * 1e3
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[24, 60, 86, 5126])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--kappa", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--naive-max-d", type=int, default=100, help="skip the naive reference above this d (memory)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [bench(d, args.batch, args.kappa, args.repeats, args.naive_max_d, device) for d in args.dims]
    names = ["matchopt (fast path)", "matchopt (generic JVP)", "matchopt (naive Jacobian)", "regression only"]
    print(f"step time in ms (median), B={args.batch}, kappa={args.kappa}, device={device}, threads={torch.get_num_threads()}")
    print("| d | " + " | ".join(names) + " | naive / fast | fast / regression |")
    print("|---" * (len(names) + 3) + "|")
    for row in rows:
        cells = [f"{row[n]:.2f}" if n in row else "-" for n in names]
        speedup = f"{row[names[2]] / row[names[0]]:.0f}x" if names[2] in row else "-"
        print(f"| {row['d']} | " + " | ".join(cells) + f" | {speedup} | {row[names[0]] / row[names[3]]:.1f}x |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"device": str(device), "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(), "torch": torch.__version__}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
