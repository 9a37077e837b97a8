"""Where a grid's cells run: a pool of local processes, or one submitit job a cell (SLURM, or submitit's local executor).

Every engine runs a cell through :func:`~lightning_matchopt.commands.grid.run.run_one`, so a cell
is the same ``matchopt fit`` (or search-only) command in its own folder wherever it runs; which
cells to run, and the table, come from the folders (``Run.results``), not from an engine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lightning_matchopt.commands.grid.devices import DevicePool, cell_env
from lightning_matchopt.commands.grid.run import Run, run_one

ENGINES = ("local", "slurm", "submitit-local")

Result = tuple[Run, int, float]


def run_local(cells: list[Run], extra: list[str], threads: int, workers: int, pool: DevicePool | None) -> Iterator[Result]:
    """``workers`` cells at once as subprocesses of this one; with ``pool``, each holds a device while it runs."""
    def one(run: Run) -> Result:
        if pool is None:
            return run_one(run, extra, cell_env(threads))
        with pool.slot() as device:
            return run_one(run, extra, cell_env(threads, device))

    with ThreadPoolExecutor(max_workers=workers) as executor:
        yield from executor.map(one, cells)


@dataclasses.dataclass
class Cell:
    """One cell as a submitit job: picklable, and checkpointable, so a cell past its time limit is requeued.

    Requeued, it runs the same command again, which continues from the cell's ``last.ckpt``.
    """

    run: Run
    extra: list[str]
    env: dict[str, str]

    def __call__(self) -> Result:
        """Run the cell (one task per GPU of a multi-GPU cell: the non-zero ranks log to ``fit.rank<N>.log``)."""
        import os

        rank = os.environ.get("SLURM_PROCID", "0") if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" else "0"
        return run_one(self.run, self.extra, self.env, log_name="fit.log" if rank == "0" else f"fit.rank{rank}.log")

    def checkpoint(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        """Submitit's hook at the time limit or a preemption: requeue this cell as it is."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def executor(engine: str, folder: Path, time_min: int, partition: str | None, setup: list[str]):
    """A new submitit executor: ``slurm`` submits to the cluster, ``submitit-local`` runs its jobs on this machine."""
    import submitit

    if engine == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        ex.update_parameters(slurm_setup=setup, **({"slurm_partition": partition} if partition else {}))
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="local")
    ex.update_parameters(timeout_min=time_min, nodes=1, name="matchopt-grid")
    return ex


def run_submitit(
    cells: list[Run], extra: list[str], new_executor: Callable, resources: Callable[[Run], tuple[int, int]],
    threads: int | None, workers: int, pool: DevicePool | None, poll_s: float = 0.5,
) -> Iterator[Result]:
    """Submit each cell as a job asking for its ``resources(cell)`` (GPUs, CPUs); at most ``workers`` in flight.

    Cells are yielded as their jobs end. ``threads`` None: a cell gets as many threads as CPUs it asked for.
    """
    pending = list(cells)
    running: dict = {}  # job -> (run, device)
    while pending or running:
        while pending and len(running) < workers:
            device = None if pool is None else pool.take(block=False)
            if pool is not None and device is None:
                break
            run = pending.pop(0)
            gpus, cpus = resources(run)
            job = submit_cell(new_executor(), run, extra, gpus, cpus, cell_env(threads or cpus, device))
            print(f"  {run.task} / {run.method} / seed {run.seed}: job {job.job_id} ({gpus} GPU, {cpus} CPU)", flush=True)
            running[job] = (run, device)
        ended = [job for job in running if job.done()]
        for job in ended:
            run, device = running.pop(job)
            if device is not None:
                pool.give_back(device)
            try:
                yield job.result()
            except Exception as error:  # the job died (killed, out of memory, out of requeues): a failed cell
                first = str(error).strip().splitlines()[-1:] or [type(error).__name__]
                print(f"  {run.task} / {run.method} / seed {run.seed}: job {job.job_id} ended: {first[0]} "
                      f"(see {job.paths.stderr})", flush=True)
                yield run, 1, 0.0
        if not ended:
            time.sleep(poll_s)


def submit_cell(ex, run: Run, extra: list[str], gpus: int, cpus: int, env: dict[str, str]):
    """Submit one cell as a job on one node asking for ``gpus`` GPUs (one task each) and ``cpus`` CPUs a task.

    ``ex``: a fresh executor a cell, since submitit's parameters only accumulate (a CPU cell after a
    GPU cell would keep its ``--gpus-per-node``); a CPU cell asks for no GPU option at all.
    """
    ex.update_parameters(tasks_per_node=max(1, gpus), cpus_per_task=cpus, **({"gpus_per_node": gpus} if gpus else {}))
    return ex.submit(Cell(_absolute(run), extra, env))


def _absolute(run: Run) -> Run:
    """The cell with absolute paths: a job may start in another folder (or on another machine)."""
    return dataclasses.replace(
        run, task_config=run.task_config.resolve(), method_config=run.method_config.resolve(), root=run.root.resolve(),
        trained_by=None if run.trained_by is None else run.trained_by.resolve(),
    )
