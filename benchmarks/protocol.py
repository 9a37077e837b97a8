"""Full runs of a config, one process per seed: scores (mean +- std), wall time, peak memory.

    python benchmarks/protocol.py --config configs/tfbind8.yaml --seeds 0 1 2 3 \
        --out benchmarks/results/tfbind8.json -- --data.data_root ../shared/design_bench_data

Arguments after ``--`` go to every ``matchopt fit`` call. Runs go to ``--root/seed_<s>``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_seed(config: str, seed: int, root: Path, extra: list[str]) -> dict:
    run_dir = root / f"seed_{seed}"
    cmd = [sys.executable, "-m", "lightning_matchopt", "fit", "--config", config, f"--seed_everything={seed}",
           f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = json.loads(max(run_dir.glob("lightning_logs/version_*/results.json"), key=lambda p: p.stat().st_mtime).read_text())
    return {"seed": seed, "wall_s": wall, "peak_rss_mib": max(peak_kib, before) / 1024, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--root", type=Path, default=Path("runs/protocol"))
    parser.add_argument("--out", type=Path)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(args.config, seed, args.root, extra))
        r = runs[-1]
        print(f"seed {seed}: score_100th={r['score_100th']:.4f} score_50th={r['score_50th']:.4f} "
              f"wall={r['wall_s']:.1f}s peak_rss={r['peak_rss_mib']:.0f}MiB", flush=True)
    summary = {"config": args.config, "extra_args": extra, "machine": platform.processor() or platform.machine(),
               "runs": [{k: v for k, v in r.items() if k != "history"} for r in runs]}
    for key in ("score_100th", "score_50th", "score_mean", "wall_s"):
        values = [r[key] for r in runs]
        summary[key] = {"mean": statistics.fmean(values), "std": statistics.pstdev(values)}
        print(f"{key}: {summary[key]['mean']:.4f} +- {summary[key]['std']:.4f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
