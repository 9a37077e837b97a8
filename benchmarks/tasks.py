"""Per task: offline rows, dims, y range, load time, peak memory, and the time of 128 oracle calls.

    python benchmarks/tasks.py --data-root ../shared/design_bench_data --out benchmarks/results/tasks.json

Tasks whose files are under ``--data-root`` are measured on them (``real``). The others are
measured on files of Design-Bench's exact shapes written to a temporary folder (``stand-in``:
random designs, scores spread over the published range), which times the loader and the oracle
machinery but says nothing about scores. Each task runs in its own process so that peak memory
(``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Design-Bench's full row counts and widths (its README), for the stand-in files.
SHAPES = {
    "superconductor": ("superconductor", 21263, 86, 5000),
    "hopper": ("hopper_controller", 3200, 5126, 3200),
    "ant": ("ant_morphology", 25009, 60, 25009),
    "dkitty": ("dkitty_morphology", 25009, 56, 25009),
}
TASKS = ["tfbind8", "tfbind10", *SHAPES]


def write_stand_in(root: Path, task: str) -> None:
    from lightning_matchopt.tasks import make_task

    folder, rows, dim, shard = SHAPES[task]
    low, high = make_task(task).published_y_range
    rng = np.random.default_rng(0)
    if task == "ant":
        from lightning_matchopt.tasks.oracles.morphology import DEFAULT_DESIGN

        x = DEFAULT_DESIGN + rng.normal(0, 0.05, (rows, dim)) * np.abs(DEFAULT_DESIGN).clip(0.1)
    else:
        x = rng.normal(0, 0.1 if task == "hopper" else 1.0, (rows, dim))
    y = np.concatenate([[low, high], rng.uniform(low, high, rows - 2)])
    (root / folder).mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, shard)):
        np.save(root / folder / f"{folder}-x-{i}.npy", x[start : start + shard].astype(np.float32))
        np.save(root / folder / f"{folder}-y-{i}.npy", y[start : start + shard].astype(np.float32).reshape(-1, 1))


def measure(task: str, root: str, source: str) -> dict:
    """Runs in a child process: load, then score 128 offline designs with the oracle."""
    from lightning_matchopt.tasks import make_task

    t0 = time.perf_counter()
    task_obj = make_task(task, root)
    data = task_obj.data
    load_s = time.perf_counter() - t0
    record = {
        "task": task, "data": source, "offline_rows": int(len(data.y)), "design_shape": list(data.x.shape[1:]),
        "input_dim": task_obj.input_dim, "offline_y": [float(data.y.min()), float(data.y.max())],
        "y_min": data.y_min, "y_max": data.y_max, "load_s": round(load_s, 2),
        "peak_rss_mib_after_load": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    reason = task_obj.oracle_unavailable()
    if reason:
        record["oracle"] = f"unavailable: {reason}"
    else:
        top = np.argsort(data.y)[-128:]
        t0 = time.perf_counter()
        scores = task_obj.oracle(data.x[top])
        record["oracle_128_s"] = round(time.perf_counter() - t0, 2)
        record["oracle_vs_stored_y"] = {
            "exact_match_fraction": float(np.mean(np.isclose(scores, data.y[top], rtol=1e-6))),
            "pearson": float(np.corrcoef(scores, data.y[top])[0, 1]),
        }
    record["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--tasks", nargs="*", default=TASKS)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    records = []
    with tempfile.TemporaryDirectory(prefix="matchopt-stand-in-") as stand_in:
        for task in args.tasks:
            folder = SHAPES[task][0] if task in SHAPES else None
            real = folder is None or (args.data_root / folder).is_dir()
            root = str(args.data_root) if real else stand_in
            if not real:
                write_stand_in(Path(stand_in), task)
            out = subprocess.run(
                [sys.executable, __file__, "--data-root", str(args.data_root), "--child", task, root,
                 "real" if real else "stand-in"],
                capture_output=True, text=True, check=True,
            )
            records.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(records[-1]))
    if args.out:
        args.out.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
