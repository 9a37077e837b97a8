"""The Ehrlich study's table, generated from the runs' results.json (never typed).

One row a method: score_100th / score_50th (mean ± std over seeds, all proposals, infeasible at
the worst score), how often the runs beat the generator's samples, and the mean counts of
infeasible, distinct and novel proposals; the references in the header::

    python benchmarks/ehrlich/table.py runs/ehrlich-study --out docs/ehrlich/study.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def final_results(run_dir: Path) -> dict | None:
    """The newest final results of one cell (as ``matchopt grid`` reads them), or None."""
    for path in sorted(run_dir.glob("lightning_logs/version_*/results.json"), reverse=True):
        results = json.loads(path.read_text())
        if results.get("final") and "oracle_error" not in results:
            return results
    return None


def mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def table(root: Path) -> str:
    lines, references = [], None
    for task_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        lines += [f"### {task_dir.name}", "",
                  "| method | seeds | score_100th | score_50th | beats generator 100th / 50th | infeasible | distinct | novel "
                  "| max_edits |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for method_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            runs = {int(s.name.split("_")[1]): r for s in sorted(method_dir.glob("seed_*")) if (r := final_results(s))}
            if not runs:
                continue
            rows = list(runs.values())
            references = references or (rows[0]["d_best"], rows[0]["random_designs"])
            beats = " / ".join(f"{statistics.fmean(r['random_designs'][f'beats_{p}'] for r in rows):.0%}"
                               for p in ("100th", "50th"))
            counts = [f"{statistics.fmean(r[k] for r in rows):.1f}" for k in ("n_infeasible", "n_unique", "n_novel")]
            lines.append(f"| {method_dir.name} | {', '.join(map(str, sorted(runs)))} | "
                         f"{mean_std([r['score_100th'] for r in rows])} | {mean_std([r['score_50th'] for r in rows])} | "
                         f"{beats} | {' | '.join(counts)} | {rows[0]['search'].get('max_edits') or '-'} |")
        lines.append("")
    if references:
        d_best, generator = references
        lines.append(f"References: D(best) = {d_best:.4f}; {generator['n_designs']} samples of the function's own generator: "
                     f"score_100th {generator['score_100th']:.3f} ± {generator['score_100th_std']:.3f}, score_50th "
                     f"{generator['score_50th']:.3f} ± {generator['score_50th_std']:.3f} ({generator['draws']} draws). "
                     "Scores over all 128 proposals, infeasible ones (-inf) at the worst score; beats generator: the share "
                     "of the generator draws whose percentile a run's exceeds, mean over seeds; infeasible, distinct, novel "
                     "(distinct and not in the offline data): mean counts a run.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a grid's root")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = table(args.root)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
