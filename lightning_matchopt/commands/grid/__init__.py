"""``matchopt grid``: tasks x methods x seeds as independent runs, summarized in one table.

Each run is its own ``matchopt fit`` process (task config + method overlay + seed) in
``<root>/<task>/<method>/seed_<s>/``; a run whose final ``results.json`` exists is skipped, and
the others continue from their ``last.ckpt`` (``--ckpt_path last``), so a killed grid resumes.
``--workers`` runs several at once on one machine, ``--devices 0,1`` gives each running cell its
own GPU (``--cells-per-device`` to share one), and ``--engine slurm`` submits each cell as its own
SLURM job through submitit, asking for the GPUs its trainer config trains on (docs/grids.md).

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
from pathlib import Path

from lightning_matchopt.commands.config_names import resolve
from lightning_matchopt.commands.grid import engines
from lightning_matchopt.commands.grid.devices import DevicePool, GridError, gpus_of, parse_devices
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
    search_only_bases,
)
from lightning_matchopt.extras import missing

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
    parser.add_argument("--workers", type=int, default=None,
                        help="runs at once (default: 1; with --devices, one a slot; --engine slurm: every cell)")
    parser.add_argument("--threads", type=int, default=None, help="threads per run (default: cores / workers)")
    parser.add_argument("--devices", default=None, help="GPUs for the cells, e.g. 0,1 or auto: each running cell gets one")
    parser.add_argument("--cells-per-device", type=int, default=None, help="cells at once on one GPU of --devices (default 1)")
    parser.add_argument(
        "--engine", choices=engines.ENGINES, default="local",
        help="local: a pool of processes here; slurm: a submitit job a cell; submitit-local: submitit's jobs here",
    )
    parser.add_argument("--gpus-per-cell", type=int, default=None,
                        help="submitit engines: GPUs a job asks for (default: from its trainer config)")
    parser.add_argument("--cpus-per-cell", type=int, default=None,
                        help="submitit engines: CPUs a job asks for (default: --threads, or 2)")
    parser.add_argument("--cell-time", type=int, default=24 * 60,
                        help="submitit engines: minutes a job may run before it is requeued")
    parser.add_argument("--slurm-partition", default=None, help="--engine slurm: the partition")
    parser.add_argument("--slurm-setup", nargs="+", default=[],
                        help="--engine slurm: shell lines each job runs first (module load, source venv)")
    parser.add_argument("--summarize-only", action="store_true", help="run nothing; summarize what finished")
    parser.add_argument("--published", type=Path, default=None,
                        help="JSON of published scores to show beside (docs/published.json)")
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
    try:
        engine = _engine(args, extra, todo)
    except GridError as error:
        print(f"matchopt grid: error: {error}", file=sys.stderr)
        return 2
    print(f"grid: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
    for method, base in bases.items():
        print(f"grid: {method.stem} differs from {base.stem} only in search.*: it searches with {base.stem}'s surrogates")
    failed = []
    # Runs that train first; then the searches that reuse their surrogates.
    for phase in ([r for r in todo if r.base is None], [r for r in todo if r.base is not None]):
        for run, code, wall in engine(phase):
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


def _engine(args: argparse.Namespace, extra: list[str], todo: list[Run]):
    """``cells -> (cell, exit code, seconds)`` for each ended cell, from the engine and device arguments.

    Checks everything before a cell runs (also what each cell of ``todo`` asks for), so a bad
    argument is one line at the start, not a failure half way through the grid.
    """
    if args.cells_per_device is not None and args.devices is None:
        raise GridError("--cells-per-device needs --devices (the GPUs to share), e.g. --devices 0,1 --cells-per-device 2")
    if args.workers is not None and args.workers < 1:
        raise GridError(f"--workers {args.workers}: it must be at least 1")
    if args.devices is not None and args.engine == "slurm":
        raise GridError("--devices: SLURM gives each job its GPUs; leave --devices out (--gpus-per-cell sets how many)")
    pool = None
    if args.devices is not None:
        per_device = 1 if args.cells_per_device is None else args.cells_per_device
        pool = DevicePool(parse_devices(args.devices), per_device)
        print(f"grid: {pool.size} cells at once on GPUs {','.join(pool.devices)} ({per_device} a GPU)")
    workers = args.workers or (pool.size if pool else 1)
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    needs = {}  # cell -> (GPUs, CPUs) it asks for
    for run in todo:
        gpus = args.gpus_per_cell if args.gpus_per_cell is not None else gpus_of([run.task_config, run.method_config], extra)
        if gpus is None and args.engine != "local":
            raise GridError(f"{run.method} on {run.task}: its trainer config trains on as many GPUs as the machine has; "
                            "say how many a job asks for with --gpus-per-cell")
        if pool is not None and gpus is not None and gpus > 1:  # "auto" devices: the one GPU the cell sees
            raise GridError(f"--devices gives each cell one GPU, and {run.method} on {run.task} trains on {gpus}; "
                            "set --trainer.devices=1 after --, or run it without --devices")
        needs[run] = (gpus, args.cpus_per_cell or args.threads or 2)
    if args.engine == "local":
        return lambda cells: engines.run_local(cells, extra, threads, workers, pool)
    if why := missing("submitit", extra="cluster"):
        raise GridError(f"--engine {args.engine} {why}")
    resources = needs.__getitem__
    def new_executor():
        return engines.executor(args.engine, args.root / ".submitit", args.cell_time, args.slurm_partition, args.slurm_setup)

    try:
        new_executor()
    except RuntimeError as error:  # submitit: no sbatch/srun here
        raise GridError(f"--engine {args.engine}: {error} (run the grid on a machine that submits to SLURM)") from None
    if args.engine == "slurm":  # a cell's threads: the CPUs its job asked for; every cell in the queue at once
        return lambda cells: engines.run_submitit(
            cells, extra, new_executor, resources, args.threads, args.workers or max(1, len(cells)), None
        )
    return lambda cells: engines.run_submitit(cells, extra, new_executor, resources, threads, workers, pool)


if __name__ == "__main__":
    sys.exit(main())
