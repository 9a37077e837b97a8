"""How far each run's final search moved its designs from where it started.

    python benchmarks/search_moves.py runs/official runs/defaults --data-root ../shared/design_bench_data

For every finished run under the given roots (``<root>/<task>/<method>/seed_<s>/``), rebuilds the
run's own search start from its saved ``config.yaml`` (same task, seed, start rule and data draw)
and compares it with the final designs in ``designs.npz``: for token tasks, how many of the 128
sequences differ from their starting sequence and how many distinct sequences there are; for
vector tasks, the mean distance moved in z-scored units; and the oracle's scores of the start
designs themselves, unsearched, beside the final ones. It explains what a protocol's scores
measure: a search that cannot move returns the start designs, scored by the oracle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from lightning_matchopt.data import MatchOptDataModule


def run_moves(run_dir: Path, data_root: str) -> dict | None:
    logs = sorted(run_dir.glob("lightning_logs/version_*"))
    if not logs or not (logs[-1] / "results.json").is_file():
        return None
    if not json.loads((logs[-1] / "results.json").read_text()).get("final"):
        return None  # still training: its designs are a mid-training search's
    config = yaml.safe_load((logs[-1] / "config.yaml").read_text())
    data = config["data"]
    datamodule = MatchOptDataModule(
        task=data["task"], data_root=data_root, task_options=data.get("task_options"), n_bins=data["n_bins"],
        seed=config["seed_everything"], binning=data.get("binning", "balanced"),
        val_fraction=data.get("val_fraction", 0.0),  # a config without the key predates the held-out split
    )
    datamodule.setup()
    search = config["search"]
    seed = search.get("seed") if search.get("seed") is not None else datamodule.seed
    start = datamodule.denormalize_x(datamodule.search_start(search["n_designs"], search["start"], seed).double())
    task = datamodule.task
    designs = np.load(logs[-1] / "designs.npz")
    row = {"task": data["task"], "seed": config["seed_everything"], "start": search["start"], "lr": search.get("lr")}
    start_scores = task.normalize_score(task.oracle(task.from_features(start.numpy())))  # the search's start, unsearched
    row["start_100th"], row["start_50th"] = float(np.nanmax(start_scores)), float(np.nanmedian(start_scores))
    row["final_100th"] = float(np.nanmax(designs["normalized_scores"]))
    row["final_50th"] = float(np.nanmedian(designs["normalized_scores"]))
    if task.is_discrete:
        before, after = task.from_features(start.numpy()), designs["designs"]
        row["changed"] = int((before != after).any(axis=1).sum())
        row["distinct"] = len({tuple(d) for d in after})
    else:
        moved = (designs["features"] - start.numpy()) / datamodule.x_std.numpy()
        row["mean_move_z"] = float(np.linalg.norm(moved, axis=1).mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--data-root", required=True)
    args = parser.parse_args()
    print("| root | task | method | seeds | start | search lr | designs changed (of 128) | distinct designs "
          "| mean move (z units) | start designs, unsearched: 100th / 50th (mean over seeds) | final designs: 100th / 50th |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for root in args.roots:
        for method_dir in sorted(root.glob("*/*")):
            rows = [r for r in (run_moves(d, args.data_root) for d in sorted(method_dir.glob("seed_*"))) if r]
            if not rows:
                continue
            first = rows[0]

            def mean(key: str, rows: list[dict] = rows) -> float:
                return float(np.mean([r[key] for r in rows]))

            def cell(key: str, rows: list[dict] = rows) -> str:  # every seed shown, in seed order
                values = [r[key] for r in rows if key in r]
                return "-" if not values else " / ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values)

            print(
                f"| {root} | {first['task']} | {method_dir.name} | {len(rows)} | {first['start']} | {first['lr']} "
                f"| {cell('changed')} | {cell('distinct')} | {cell('mean_move_z')} "
                f"| {mean('start_100th'):.3f} / {mean('start_50th'):.3f} | {mean('final_100th'):.3f} / {mean('final_50th'):.3f} |"
            )


if __name__ == "__main__":
    main()
