"""``matchopt grid``: tasks x methods x seeds as independent runs, summarized in one table.

Each run is its own ``matchopt fit`` process (task config + method overlay + seed) in
``<root>/<task>/<method>/seed_<s>/``; a run whose final ``results.json`` exists is skipped, and
the others continue from their ``last.ckpt`` (``--ckpt_path last``), so a killed grid resumes. ``--workers`` runs several at once on one machine; on a cluster, run
single cells (``--tasks T --methods M --seeds S``) as array jobs and summarize with
``--summarize-only`` (see the README).

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
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from lightning_matchopt.commands.config_names import resolve

SCORES = ("score_100th", "score_50th")


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
        return self.task_config.stem

    @property
    def method(self) -> str:
        return self.method_config.stem

    @property
    def run_dir(self) -> Path:
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
    for i, (method, part) in enumerate(zip(methods, parts)):
        for earlier, earlier_part in zip(methods[:i], parts[:i]):
            if earlier not in bases and earlier_part == part and earlier != method:
                bases[method] = earlier
                break
    return bases


def run_one(run: Run, extra: list[str], threads: int) -> tuple[Run, int, float]:
    """Train and search one cell in its own process (or only search, see ``trained_by``); output in ``run_dir/fit.log``."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    if run.base is None:
        command = [
            sys.executable, "-m", "lightning_matchopt", "fit", "--config", str(run.task_config),
            "--config", str(run.method_config), f"--seed_everything={run.seed}",
            f"--trainer.default_root_dir={run.run_dir}", "--trainer.enable_progress_bar=false",
            "--ckpt_path=last",  # a killed or preempted cell continues from its last epoch
            *extra,
        ]
    else:
        trained = run.base.finished_version()
        if trained is None:
            with open(run.run_dir / "fit.log", "w") as log:
                print(f"not run: it searches with the surrogate of {run.base.run_dir}, which has not finished", file=log)
            return run, 1, 0.0
        command = [
            sys.executable, "-m", "lightning_matchopt", "search", "--config", str(trained / "config.yaml"),
            "--config", str(run.method_config), f"--ckpt_path={trained / 'checkpoints' / 'last.ckpt'}",
            f"--trainer.default_root_dir={run.run_dir}", "--trainer.enable_progress_bar=false", *extra,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with open(run.run_dir / "fit.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    return run, code, time.perf_counter() - start


def collect(runs: list[Run]) -> list[dict]:
    """One row per finished run."""
    rows = []
    for run in runs:
        results = run.results()
        if results is not None:
            rows.append({
                "task": run.task, "method": run.method, "seed": run.seed,
                **{k: results[k] for k in ("score_100th", "score_50th", "score_mean", "d_best", "epoch")},
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
                        **{k: float(row[k]) for k in ("score_100th", "score_50th", "score_mean", "d_best")},
                        "random_designs": None, "history": [], "trace": [], "source": str(path),
                    })
    return rows


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def mean_normalized_ranks(rows: list[dict], methods: list[str], tasks: list[str], score: str) -> dict[str, float]:
    """Each method's rank among the methods on each task (1 = best mean score), averaged over tasks."""
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for task in tasks:
        means = {
            m: statistics.fmean(r[score] for r in rows if r["task"] == task and r["method"] == m)
            for m in methods
            if any(r["task"] == task and r["method"] == m for r in rows)
        }
        ordered = sorted(means.values(), reverse=True)
        for m, value in means.items():
            ranks[m].append(1 + ordered.index(value))  # ties share the better rank
    return {m: statistics.fmean(v) if v else float("nan") for m, v in ranks.items()}


def _random_cell(rows: list[dict], task: str) -> str:
    """The random-designs reference of a task, as its runs recorded it ("-" where it has none)."""
    ref = next((r["random_designs"] for r in rows if r["task"] == task and r.get("random_designs")), None)
    if ref is None:
        return "-"
    return f"{ref['score_100th']:.3f} ± {ref['score_100th_std']:.3f} / {ref['score_50th']:.3f} ({ref['draws']:,} draws)"


def _published_cell(entry: dict | None) -> str:
    """``{"score_100th": [mean, std], "score_50th": [mean, std]}`` (std or the whole score may be null)."""
    if not entry:
        return "-"
    parts = []
    for score in SCORES:
        values = list(entry.get(score) or [])
        mean, std = values + [None] * (2 - len(values))
        parts.append("-" if mean is None else f"{mean:.3f}" + ("" if std is None else f" ± {std:.3f}"))
    return " / ".join(parts)


def markdown_table(rows: list[dict], methods: list[str], tasks: list[str], published: dict | None = None) -> str:
    """score_100th / score_50th per task (rows) and method (columns), with MNR and the reference columns.

    References: D(best) (the best offline design), 128 uniformly random designs where the task
    records them (``random_designs`` in results.json), and ``published`` scores, e.g. anchors
    from others' runs: ``{"columns": [{"label": ..., "tasks": {task: cell}}]}`` (see
    ``docs/published.json``).
    """
    columns = (published or {}).get("columns", [])
    header = "| task | " + " | ".join(methods) + " | D(best) | 128 random designs | " + "".join(
        f"{c['label']} | " for c in columns
    )
    lines = [header.rstrip(), "|---" * (len(methods) + 3 + len(columns)) + "|"]
    for task in tasks:
        cells = []
        for m in methods:
            cell = [r for r in rows if r["task"] == task and r["method"] == m]
            earlier = sum(1 for r in cell if r.get("source"))
            marker = f", {earlier} from an earlier grid†" if earlier else ""
            cells.append(" / ".join(_mean_std([r[s] for r in cell]) for s in SCORES) + f" (n={len(cell)}{marker})")
        d_best = next((r["d_best"] for r in rows if r["task"] == task), float("nan"))
        refs = [f"{d_best:.3f}", _random_cell(rows, task), *(_published_cell(c["tasks"].get(task)) for c in columns)]
        lines.append(f"| {task} | " + " | ".join(cells + refs) + " |")
    if len(methods) > 1:
        for score in SCORES:
            mnr = mean_normalized_ranks(rows, methods, tasks, score)
            lines.append(f"| MNR ({score}) | " + " | ".join(f"{mnr[m]:.2f}" for m in methods) + " |" + " |" * (2 + len(columns)))
    notes = "\n\nCells: score_100th / score_50th, mean ± std over seeds (n = seeds)."
    notes += " D(best): the best offline design's normalized score."
    if any(r.get("random_designs") for r in rows):
        notes += " 128 random designs: 128 sequences drawn uniformly from the design space, scored by the exact oracle, mean ± std of the 100th percentile / mean of the 50th over the draws."
    for c in columns:
        if c.get("note"):
            notes += f" {c['label']}: {c['note']}"
    sources = sorted({r["source"] for r in rows if r.get("source")})
    if sources:
        notes += f" † runs read from an earlier grid's {', '.join(sources)} (their settings and code: that grid's)."
    return "\n".join(lines) + notes + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    fields = ["task", "method", "seed", "score_100th", "score_50th", "score_mean", "d_best", "epoch", "source"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _mean_curve(rows: list[dict], task: str, method: str, series: str, x: str, y: str) -> tuple[list, list[float]]:
    """Mean over seeds of ``y`` against ``x`` in each run's ``series`` (``history`` or ``trace``)."""
    by_x: dict[int, list[float]] = {}
    for r in rows:
        if r["task"] == task and r["method"] == method:
            for point in r[series]:
                by_x.setdefault(point[x], []).append(point[y])
    xs = sorted(by_x)
    return xs, [statistics.fmean(by_x[v]) for v in xs]


def plot(rows: list[dict], methods: list[str], tasks: list[str], out: Path) -> list[Path]:
    """Bar chart of scores per task and method, and score_100th against the epoch of each search."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'lightning_matchopt[plots]')")
        return []
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for i, m in enumerate(methods):
            values = [r["score_100th"] for r in rows if r["task"] == task and r["method"] == m]
            if values:
                ax.bar(i, statistics.fmean(values), yerr=statistics.pstdev(values), capsize=3)
        d_best = next((r["d_best"] for r in rows if r["task"] == task), None)
        if d_best is not None:
            ax.axhline(d_best, color="gray", linestyle="--", label="D(best)")
        ax.set_xticks(range(len(methods)), methods, rotation=30)
        ax.set_title(task)
        ax.set_ylabel("score_100th (normalized)")
    figure.tight_layout()
    paths = [out / "scores.png"]
    figure.savefig(paths[0], dpi=120)
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for m in methods:
            epochs, means = _mean_curve(rows, task, m, "history", "epoch", "score_100th")
            if epochs:
                ax.plot(epochs, means, marker="o", label=m)
        ax.set_title(task)
        ax.set_xlabel("epoch of the search")
        ax.set_ylabel("score_100th")
        ax.legend(fontsize=7)
    figure.tight_layout()
    paths.append(out / "scores_by_epoch.png")
    figure.savefig(paths[1], dpi=120)
    if any(r["trace"] for r in rows):
        figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            for i, m in enumerate(methods):
                for score, style in (("score_100th", "-"), ("score_50th", ":")):
                    steps, means = _mean_curve(rows, task, m, "trace", "step", score)
                    if steps:
                        ax.plot(steps, means, style, color=f"C{i}", label=f"{m} ({score[6:]})")
            ax.set_title(task)
            ax.set_xlabel("ascent step of the final search")
            ax.set_ylabel("normalized score")
            ax.legend(fontsize=6)
        figure.tight_layout()
        paths.append(out / "scores_by_step.png")
        figure.savefig(paths[-1], dpi=120)
    plt.close("all")
    return paths


def config_path(value: str) -> Path:
    """A config file, or the name of a shipped config (``shekel``, ``methods/coms``)."""
    return Path(resolve(value))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``matchopt grid``; returns the exit code (1 if a run failed)."""
    parser = argparse.ArgumentParser(prog="matchopt grid", description=__doc__.split("\n\n")[0])
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
    write_csv(rows, out / "runs.csv")
    published = json.loads(args.published.read_text()) if args.published else None
    table = markdown_table(rows, methods, tasks, published)
    (out / "results.md").write_text(table)
    plot(rows, methods, tasks, out)
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
