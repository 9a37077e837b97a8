"""The cells of ``matchopt grid``: each its own ``matchopt fit`` (or ``search``) process, and their rows."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from lightning_matchopt.search.metrics import SEARCH_METRICS


@dataclass(frozen=True)
class Run:
    """One cell of the grid."""

    task_config: Path
    method_config: Path
    seed: int
    root: Path
    trained_by: Path | None = None  # the method overlay whose run of this task and seed holds the surrogate

    @property
    def task(self) -> str:
        """The task's name: its config's file name."""
        return self.task_config.stem

    @property
    def method(self) -> str:
        """The method's name: its overlay's file name."""
        return self.method_config.stem

    @property
    def run_dir(self) -> Path:
        """The cell's folder: ``<root>/<task>/<method>/seed_<s>``."""
        return self.root / self.task / self.method / f"seed_{self.seed}"

    @property
    def base(self) -> Run | None:
        """The run that trained this one's surrogate (``trained_by``), or None if it trains its own."""
        return None if self.trained_by is None else Run(self.task_config, self.trained_by, self.seed, self.root)

    def results(self) -> dict | None:
        """The final results of this run, or None if it has not finished (or its final oracle failed)."""
        version = self.finished_version()
        return None if version is None else json.loads((version / "results.json").read_text())

    def finished_version(self) -> Path | None:
        """The newest log dir holding final results (its ``config.yaml`` and checkpoints belong to them)."""
        for path in sorted(self.run_dir.glob("lightning_logs/version_*/results.json"), reverse=True):
            results = json.loads(path.read_text())
            if results.get("final") and "oracle_error" not in results:
                return path.parent
        return None


def search_only_bases(methods: list[Path]) -> dict[Path, Path]:
    """``{overlay: earlier overlay}`` for each overlay that differs from an earlier one only in ``search.*``."""
    def training_part(path: Path) -> dict:
        loaded = yaml.safe_load(path.read_text()) or {}
        return {key: value for key, value in loaded.items() if key != "search"}

    bases: dict[Path, Path] = {}
    parts = [training_part(path) for path in methods]
    for i, (method, part) in enumerate(zip(methods, parts, strict=True)):
        for earlier, earlier_part in zip(methods[:i], parts[:i], strict=True):
            if earlier not in bases and earlier_part == part and earlier != method:
                bases[method] = earlier
                break
    return bases


def cell_command(run: Run, extra: list[str]) -> list[str] | str:
    """The command of one cell: a ``fit`` (resuming once the cell has a checkpoint) or a search-only run, or why it cannot run."""
    if run.base is None:
        # A killed or preempted cell continues from its last epoch; a fresh one is not told to, or
        # Lightning warns in its log that there is no last checkpoint (with a hint that does not apply).
        resume = ["--ckpt_path=last"] if any(run.run_dir.rglob("*.ckpt")) else []
        return [
            sys.executable, "-m", "lightning_matchopt", "fit", "--config", str(run.task_config),
            "--config", str(run.method_config), f"--seed_everything={run.seed}",
            f"--trainer.default_root_dir={run.run_dir}", "--trainer.enable_progress_bar=false",
            *resume, *extra,
        ]
    trained = run.base.finished_version()
    if trained is None:
        return f"not run: it searches with the surrogate of {run.base.run_dir}, which has not finished"
    return [
        sys.executable, "-m", "lightning_matchopt", "search", "--config", str(trained / "config.yaml"),
        "--config", str(run.method_config), f"--ckpt_path={trained / 'checkpoints' / 'last.ckpt'}",
        f"--trainer.default_root_dir={run.run_dir}", "--trainer.enable_progress_bar=false", *extra,
    ]


def run_one(run: Run, extra: list[str], env: dict[str, str], log_name: str = "fit.log") -> tuple[Run, int, float]:
    """Train and search one cell in its own process (or only search, see ``trained_by``); output in ``run_dir/fit.log``.

    ``env``: the variables the cell gets on top of this process's (threads, ``CUDA_VISIBLE_DEVICES``);
    every engine runs a cell through here, so a cell is the same command wherever it runs.
    """
    run.run_dir.mkdir(parents=True, exist_ok=True)
    command = cell_command(run, extra)
    if isinstance(command, str):
        (run.run_dir / log_name).write_text(command + "\n")
        return run, 1, 0.0
    start = time.perf_counter()
    with open(run.run_dir / log_name, "w") as log:
        print("grid: " + " ".join(f"{k}={v}" for k, v in sorted(env.items())), file=log, flush=True)
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}).returncode
    return run, code, time.perf_counter() - start


def collect(runs: list[Run]) -> list[dict]:
    """One row per finished run."""
    rows = []
    for run in runs:
        results = run.results()
        if results is not None:
            rows.append({
                "task": run.task, "method": run.method, "seed": run.seed,
                **{k: results.get(k) for k in SEARCH_METRICS}, "d_best": results["d_best"], "epoch": results["epoch"],
                "random_designs": results.get("random_designs"),
                "history": results.get("history", []),
                "trace": results.get("trace", []),
            })
    return rows


def earlier_rows(paths: list[Path], runs: list[Run], done: set[tuple]) -> list[dict]:
    """Rows of earlier grids' ``runs.csv`` for this grid's cells that have no finished run here.

    Each keeps its ``source`` (the CSV), and the table marks the cells they fill: a run made by
    another grid, perhaps with other code, is shown as such, never passed off as this one's.
    """
    wanted = {(r.task, r.method, r.seed) for r in runs} - done
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["task"], row["method"], int(row["seed"]))
                if key in wanted:
                    wanted.discard(key)
                    rows.append({
                        "task": key[0], "method": key[1], "seed": key[2], "epoch": int(row["epoch"]),
                        "d_best": float(row["d_best"]),  # a metric an earlier grid did not have: None
                        **{k: float(row[k] or "nan") if k in row else None for k in SEARCH_METRICS},
                        "random_designs": None, "history": [], "trace": [], "source": str(path),
                    })
    return rows
