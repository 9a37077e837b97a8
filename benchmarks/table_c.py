"""Table C: the field's baselines as their authors ran them, beside their published scores.

    python benchmarks/table_c.py --runs runs/published --out docs/baselines \
        [--cost-log LOG] [--data-root ../shared/design_bench_data]

Reads every finished final ``results.json`` under ``--runs/<method>/<task>/as-published/seed_<s>/``
(the layout of ``matchopt grid --tasks published/<method>/<task> --methods published/as-published
--root runs/published/<method>``) and writes ``table_c.md`` and ``runs.csv`` (one row a run) into
``--out``. Per cell: mean ± std over seeds (sample std; one seed's score alone) of the 100th and 50th
percentile, the published mean ± std (``docs/baselines/published.json``), the verdict
``|ours - published| <= 2 x max(published std, our std, 0.01)``, and on token tasks how often a
run beats 128 uniformly random designs: the share of 2,000 random draws (seed 0, as each run's
``random_designs`` reference) whose 100th (50th) percentile the run's exceeds, averaged over seeds.
``--recorded CSV``: a ``runs.csv`` this script wrote before, for runs whose folders are no longer
on this machine (a fresh machine keeps none); a run folder on disk replaces its recorded row.
``--cost-log``: the runner's log (``=== HH:MM:SS method task seed N`` then ``WALL s PEAK kB``
lines from ``/usr/bin/time``), for a wall-time and peak-memory table.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np

TASKS = ("tfbind8", "tfbind10", "superconductor")
METHODS = (
    "grad",
    "grad-mean",
    "grad-min",
    "coms",
    "ram-listnet",
    "ram-rankcosine",
    "ram-listnet-no-aug",
    "ram-rankcosine-no-aug",
)
SCORES = ("score_100th", "score_50th")
N_DESIGNS = 128  # the draws: the task's own random_reference_draws (2,000 for the token tasks)


def finished_runs(root: Path) -> list[dict]:
    """One row per finished final search (the newest version of each seed folder)."""
    rows = []
    for method_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for results in sorted(method_dir.glob("*/*/seed_*/lightning_logs/version_*/results.json")):
            summary = json.loads(results.read_text())
            if not summary.get("final") or "oracle_error" in summary:
                continue
            config = results.parent / "config.yaml"
            wall = (
                results.stat().st_mtime - config.stat().st_mtime
                if config.exists()
                else float("nan")
            )
            rows.append(
                {
                    "method": method_dir.name,
                    "task": summary["task"],
                    "seed": summary["seed"],
                    "score_100th": summary["score_100th"],
                    "score_50th": summary["score_50th"],
                    "epoch": summary["epoch"],
                    "fit_and_search_s": round(wall, 1),
                    "log_dir": str(results.parent),
                }
            )
    newest = {}
    for row in rows:  # a resumed or repeated cell: its newest finished version
        newest[(row["method"], row["task"], row["seed"])] = row
    return sorted(newest.values(), key=cell_order)


def cell_order(row: dict) -> tuple:
    return METHODS.index(row["method"]) if row["method"] in METHODS else 99, row["task"], row["seed"]


def recorded_runs(path: Path) -> list[dict]:
    """The rows of an earlier ``runs.csv`` (numbers parsed back), marked as recorded."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["seed"], row["epoch"] = int(row["seed"]), int(row["epoch"])
        for key in ("score_100th", "score_50th", "fit_and_search_s"):
            row[key] = float(row[key])
        row["log_dir"] = f"recorded in {path}"
    return rows


def merged(recorded: list[dict], on_disk: list[dict]) -> list[dict]:
    """Recorded rows, each replaced by the run folder of the same method, task and seed where one exists."""
    rows = {(r["method"], r["task"], r["seed"]): r for r in recorded + on_disk}
    return sorted(rows.values(), key=cell_order)


def random_draws(task_name: str, data_root: str | None) -> dict[str, np.ndarray] | None:
    """The 100th and 50th percentile of each draw of 128 random designs (token tasks): the runs' own reference."""
    from lightning_matchopt.search.references import random_draws as task_draws
    from lightning_matchopt.tasks import make_task

    task = make_task(task_name, data_root)
    return task_draws(task, N_DESIGNS) if task.is_discrete else None


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def verdict(ours: tuple[float, float], published: list[float] | None) -> str:
    if published is None:
        return "—"
    band = 2 * max(published[1], ours[1], 0.01)
    return (
        "within"
        if abs(ours[0] - published[0]) <= band
        else f"outside ({ours[0] - published[0]:+.3f}, band {band:.3f})"
    )


def table(rows: list[dict], published: dict, draws: dict) -> str:
    lines = [
        "| method | task | seeds | ours 100th | published 100th | verdict 100th | ours 50th "
        "| published 50th | verdict 50th | beats random (100th / 50th) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        for task in TASKS:
            cell = [r for r in rows if r["method"] == method and r["task"] == task]
            if not cell:
                continue
            pub = published["methods"].get(method, {}).get(task, [None, None])
            parts = [method, task, ", ".join(str(r["seed"]) for r in cell)]
            for i, score in enumerate(SCORES):
                ours = mean_std([r[score] for r in cell])
                ref = pub[i]
                parts += [
                    f"{ours[0]:.3f} ± {ours[1]:.3f}" if len(cell) > 1 else f"{ours[0]:.3f} (one seed)",
                    "—" if ref is None else f"{ref[0]:.3f} ± {ref[1]:.3f}",
                    verdict(ours, ref),
                ]
            if draws.get(task) is None:
                parts.append("—")
            else:
                shares = [np.mean([(r[s] > draws[task][s]).mean() for r in cell]) for s in SCORES]
                parts.append(f"{shares[0]:.0%} / {shares[1]:.0%}")
            lines.append("| " + " | ".join(parts) + " |")
    return "\n".join(lines)


def cost_table(log: Path) -> str:
    """Wall time and peak memory of each cell the runner ran (its /usr/bin/time lines)."""
    lines = ["| method | task | seed | wall (min) | peak memory (GiB) |", "|---|---|---|---|---|"]
    current = None
    for line in log.read_text().splitlines():
        if m := re.match(r"=== \S+ (\S+) (\S+) seed (\d+)", line):
            current = m.groups()
        elif (m := re.match(r"WALL ([\d.]+) s PEAK (\d+) kB", line)) and current:
            lines.append(
                f"| {' | '.join(current)} | {float(m[1]) / 60:.1f} | {int(m[2]) / 2**20:.2f} |"
            )
            current = None
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, default=Path("runs/published"))
    parser.add_argument("--out", type=Path, default=Path("docs/baselines"))
    parser.add_argument("--published", type=Path, default=Path("docs/baselines/published.json"))
    parser.add_argument("--cost-log", type=Path)
    parser.add_argument("--recorded", type=Path, help="an earlier runs.csv (runs whose folders are gone)")
    parser.add_argument("--data-root")
    args = parser.parse_args()
    on_disk = finished_runs(args.runs) if args.runs.exists() else []
    recorded = recorded_runs(args.recorded) if args.recorded else []
    rows = merged(recorded, on_disk)
    n_recorded = sum(r["log_dir"].startswith("recorded") for r in rows)
    published = json.loads(args.published.read_text())
    draws = {task: random_draws(task, args.data_root) for task in {r["task"] for r in rows}}
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "runs.csv", "w", newline="") as f:
        fields = [k for k in rows[0] if k != "log_dir"] if rows else []
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    text = [
        "# Table C: the field's baselines in this harness, as their authors ran them",
        "",
        "Generated by `python benchmarks/table_c.py --runs runs/published --out docs/baselines"
        + (f" --cost-log {args.cost_log}" if args.cost_log else "")
        + (f" --recorded {args.recorded}" if args.recorded else "")
        + "` from the runs' `results.json`"
        + (
            f" ({len(rows) - n_recorded} runs) and, for {n_recorded} earlier runs whose folders"
            f" are gone, their rows of the runs.csv generated from them then ({args.recorded});"
            if args.recorded
            else ";"
        ),
        "each run: `matchopt grid --tasks published/<method>/<task> --methods "
        "published/as-published",
        "--seeds <s> --root runs/published/<method> --workers 1 --threads 1`",
        "(`benchmarks/table_c_runs.sh`; configs/published/*/ name every setting and its source).",
        "Published: LTR (Tan et al., ICLR 2025), 8 seeds; ours: the seeds listed, sample std.",
        "Verdict: within when |ours - published| <= 2 x max(published std, our std, 0.01).",
        "Beats random: the share of 2,000 draws of 128 uniformly random designs whose 100th",
        "(50th) percentile a run exceeds, averaged over its seeds (token tasks only).",
        "",
        table(rows, published, draws),
        "",
    ]
    if args.cost_log and args.cost_log.exists():
        text += [
            "## Cost of one run on this 2-core CPU (shared with other jobs, load 2 to 9: an upper bound)",
            "",
            cost_table(args.cost_log),
            "",
        ]
    (args.out / "table_c.md").write_text("\n".join(text))
    print((args.out / "table_c.md").read_text())


if __name__ == "__main__":
    main()
