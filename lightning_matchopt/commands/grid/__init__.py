"""``matchopt grid``: tasks x methods x seeds as independent runs, summarized in one table.

Each run is its own ``matchopt fit`` process (task config + method overlay + seed) in
``<root>/<task>/<method>/seed_<s>/``; a run whose final ``results.json`` exists is skipped, and
the others continue from their ``last.ckpt`` (``--ckpt_path last``), so a killed grid resumes. ``--workers`` runs several at once on one machine; on a cluster, run
single cells (``--tasks T --methods M --seeds S``) as array jobs and summarize with
``--summarize-only`` (docs/scaling-out.md).

Writes into ``--out``: ``runs.csv`` (every run), ``results.md`` (score_100th and score_50th,
mean ± std per task and method, the mean normalized rank of each method, and the dataset's
best design D(best) as a reference row) and, with matplotlib installed, ``scores.png``,
``scores_by_epoch.png`` and, for runs traced with ``search.trace_every``, ``scores_by_step.png``
(score against the ascent step of the final search).

A method overlay that differs from an earlier one of the same grid only in ``search.*`` (say
``methods/matchopt-ensemble-lcb`` after ``methods/matchopt-ensemble``) trains nothing: its cells
run ``matchopt search`` from that method's ``last.ckpt`` of the same task and seed, once those
runs have finished. The scores are those a full ``fit`` would give (the search settings never
touch training, and a search from ``last.ckpt`` repeats the in-fit final search exactly), at
the cost of a search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lightning_matchopt.commands.config_names import resolve
from lightning_matchopt.commands.grid.plots import plot
from lightning_matchopt.commands.grid.report import (
    markdown_table,
    mean_normalized_ranks,
    write_runs,
)
from lightning_matchopt.commands.grid.run import (
    Run,
    collect,
    earlier_rows,
    run_one,
    search_only_bases,
)

__all__ = ["Run", "earlier_rows", "main", "markdown_table", "mean_normalized_ranks", "plot"]


def config_path(value: str) -> Path:
    """A config file, or the name of a shipped config (``shekel``, ``methods/coms``)."""
    return Path(resolve(value))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``matchopt grid``; returns the exit code (1 if a run failed)."""
    # allow_abbrev off: --task would silently mean --tasks (the Trainer subcommands refuse it too)
    parser = argparse.ArgumentParser(
        prog="matchopt grid", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--tasks", nargs="+", type=config_path, required=True, help="task configs, e.g. shekel or my.yaml")
    parser.add_argument("--methods", nargs="+", type=config_path, required=True, help="method overlays, e.g. methods/coms")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--root", type=Path, default=Path("runs/grid"), help="where the runs go")
    parser.add_argument("--out", type=Path, default=None, help="where the table and plots go (default: --root)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once on this machine")
    parser.add_argument("--threads", type=int, default=None, help="threads per run (default: cores / workers)")
    parser.add_argument("--summarize-only", action="store_true", help="run nothing; summarize what finished")
    parser.add_argument("--published", type=Path, default=None, help="JSON of published scores to show beside (docs/published.json)")
    parser.add_argument(
        "--earlier-runs", nargs="+", type=Path, default=[],
        help="runs.csv files of earlier grids: their rows fill the cells this grid has no finished run of (marked in the table)",
    )
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    for path in [*args.tasks, *args.methods, *([args.published] if args.published else []), *args.earlier_runs]:
        if not path.is_file():
            print(f"matchopt grid: error: config {str(path)!r} does not exist", file=sys.stderr)
            return 2
    bases = search_only_bases(args.methods)
    runs = [Run(t, m, s, args.root, bases.get(m)) for t in args.tasks for m in args.methods for s in args.seeds]
    todo = [] if args.summarize_only else [r for r in runs if r.results() is None]
    print(f"grid: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
    for method, base in bases.items():
        print(f"grid: {method.stem} differs from {base.stem} only in search.*: it searches with {base.stem}'s surrogates")
    threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, args.workers))
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        # Runs that train first; then the searches that reuse their surrogates.
        for phase in ([r for r in todo if r.base is None], [r for r in todo if r.base is not None]):
            for run, code, wall in pool.map(lambda r: run_one(r, extra, threads), phase):
                kind = "search" if run.base is not None else "fit"
                status = "ok" if code == 0 else f"FAILED (exit {code}, see {run.run_dir / 'fit.log'})"
                print(f"  {run.task} / {run.method} / seed {run.seed}: {kind} {status} in {wall:.0f}s", flush=True)
                if code:
                    failed.append(run)
    rows = collect(runs)
    rows += earlier_rows(args.earlier_runs, runs, {(r["task"], r["method"], r["seed"]) for r in rows})
    tasks = list(dict.fromkeys(r.task for r in runs))
    methods = list(dict.fromkeys(r.method for r in runs))
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    write_runs(rows, out / "runs.csv")
    published = json.loads(args.published.read_text()) if args.published else None
    table = markdown_table(rows, methods, tasks, published)
    (out / "results.md").write_text(table)
    plot(rows, methods, tasks, out)
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
