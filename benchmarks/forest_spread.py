"""How much Superconductor's scores depend on which random forest scores them.

    python benchmarks/forest_spread.py --runs runs/published --forests 8 --out docs/baselines/forest_spread.md

Design-Bench's oracle is one unseeded draw of a recipe (2,000 rows, a 1,000-row training half, 100
trees); its pickle is gone, so this project re-fits the recipe with ``oracle_seed`` 0. Every paper's
number is therefore scored by some other draw. This script re-scores each finished Superconductor
run's final designs (``designs.npz``) with the forests of ``oracle_seed`` 0 .. K-1. For each method's
cell it reports the score under seed 0, which is the table's, and the mean, std and range over the K
forests. That spread is how far another draw of the same recipe, such as the published one, could
move the cell. It also reports how far the designs are from the data: the median distance, in z-scored
units, from each design to its nearest offline design. The 128 best offline designs, unsearched,
are scored the same way, as a reference. This is a diagnosis: nothing is chosen by it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from table_c import mean_std, verdict  # benchmarks/ is the script's folder, so on sys.path

from lightning_matchopt.metrics import percentile_scores
from lightning_matchopt.tasks import make_task


def superconductor_runs(root: Path) -> dict[str, list[Path]]:
    """Each method's newest final design file per seed, under the Table C layout."""
    cells: dict[str, list[Path]] = {}
    for results in sorted(root.glob("*/superconductor/*/seed_*/lightning_logs/version_*/results.json")):
        summary = json.loads(results.read_text())
        if summary.get("final") and (results.parent / "designs.npz").exists():
            method = results.relative_to(root).parts[0]
            newest = {p.parents[2]: p for p in cells.get(method, [])}
            newest[results.parents[2]] = results.parent / "designs.npz"
            cells[method] = sorted(newest.values())
    return cells


def percentiles(task, designs: np.ndarray) -> tuple[float, float]:
    scores = percentile_scores(torch.as_tensor(task.normalize_score(task.oracle(designs))))
    return scores["score_100th"], scores["score_50th"]


def nearest_offline_distance(designs: np.ndarray, offline: np.ndarray) -> float:
    """The median over designs of the distance to the nearest offline design, in the data's z-scored units."""
    mean, std = offline.mean(0), offline.std(0)
    std[std == 0] = 1.0
    z_designs, z_offline = ((np.asarray(a, dtype=np.float64) - mean) / std for a in (designs, offline))
    return float(np.median(torch.cdist(torch.as_tensor(z_designs), torch.as_tensor(z_offline)).min(dim=1).values.numpy()))


def spread_row(label: str, per_forest: list[list[tuple[float, float]]], distance: float, published: list | None) -> str:
    """One table row; ``per_forest[k]``: each run's (100th, 50th) under forest k."""
    cells = []
    for i in range(2):
        values = [statistics.fmean(run[i] for run in runs) for runs in per_forest]  # the cell's mean, each forest
        within = "—"
        if published and published[i]:
            verdicts = [verdict(mean_std([run[i] for run in runs]), published[i]) for runs in per_forest]
            within = f"{sum(v == 'within' for v in verdicts)} of {len(verdicts)}"
        cells += [f"{values[0]:.3f}", f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}",
                  f"{min(values):.3f} – {max(values):.3f}", within]
    return f"| {label} | {len(per_forest[0])} | " + " | ".join(cells) + f" | {distance:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/published"))
    parser.add_argument("--forests", type=int, default=8, help="oracle seeds 0 .. K-1 (0 is the one every run used)")
    parser.add_argument("--data-root")
    parser.add_argument("--published", type=Path, default=Path(__file__).parents[1] / "docs/baselines/published.json")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.forests < 2:
        parser.error("--forests must be at least 2: a spread needs two forests")
    cells = superconductor_runs(args.runs)
    if not cells:
        parser.error(f"no finished Superconductor run with a designs.npz under {args.runs}")
    tasks = [make_task("superconductor", args.data_root, oracle_seed=k) for k in range(args.forests)]
    offline = tasks[0].data
    designs = {m: [np.load(p)["designs"] for p in paths] for m, paths in cells.items()}
    top = offline.x[np.argsort(offline.y)[-128:]]
    published = json.loads(args.published.read_text())["methods"]
    rows = []
    for method, runs in designs.items():
        per_forest = [[percentiles(t, d) for d in runs] for t in tasks]
        for path, scores in zip(cells[method], per_forest[0], strict=True):  # forest 0: each run's own scores
            recorded = json.loads((path.parent / "results.json").read_text())
            if not np.allclose(scores, (recorded["score_100th"], recorded["score_50th"]), atol=1e-9):
                parser.error(f"{path}: forest 0 does not reproduce this run's scores: another oracle or data root?")
        distance = statistics.fmean(nearest_offline_distance(d, offline.x) for d in runs)
        rows.append(spread_row(method, per_forest, distance, published.get(method, {}).get("superconductor")))
    rows.append(spread_row("128 best offline designs, unsearched", [[percentiles(t, top)] for t in tasks],
                           nearest_offline_distance(top, offline.x), None))
    text = "\n".join([
        "# Superconductor: the same designs under other draws of Design-Bench's forest recipe",
        "",
        f"Generated by `python benchmarks/forest_spread.py --runs {args.runs} --forests {args.forests}` from each",
        "finished run's `designs.npz`. A cell's score under a forest: the mean over its runs (seeds: the",
        "runs column). Forest 0 is the oracle every run and Table C use; the others are the same recipe with",
        f"oracle_seed 1 .. {args.forests - 1}. Within: under how many forests the cell is within its published",
        "band (Table C's rule, with the runs' std under that forest). Distance: median over designs of the",
        "z-scored distance to the nearest offline design, averaged over runs.",
        "",
        "| method | runs | 100th, forest 0 | 100th over forests | 100th range | 100th within | 50th, forest 0 "
        "| 50th over forests | 50th range | 50th within | distance to data |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
