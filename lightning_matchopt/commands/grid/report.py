"""The grid's tables: ``runs.csv`` and ``results.md`` (mean ± std, mean normalized ranks, references)."""

from __future__ import annotations

import statistics
from pathlib import Path

from lightning_matchopt.search.metrics import SEARCH_METRICS
from lightning_matchopt.tables import write_csv

SCORES = ("score_100th", "score_50th")


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
    row = next((r for r in rows if r["task"] == task and r.get("random_designs")), None)
    if row is None:
        return "-"
    ref = row["random_designs"]
    n = ref.get("n_designs", row.get("n_designs", 128))  # as many random designs as the run's (the header: 128)
    draws = f"{ref['draws']:,} draws" + ("" if n == 128 else f" of {n:,} designs")
    return f"{ref['score_100th']:.3f} ± {ref['score_100th_std']:.3f} / {ref['score_50th']:.3f} ({draws})"


def _beats_cell(cell: list[dict]) -> str:
    """How often the cell's runs beat the random-designs reference (share of draws, mean over seeds)."""
    beats = [r["random_designs"] for r in cell if (r.get("random_designs") or {}).get("beats_100th") is not None]
    if not beats:
        return ""
    share = {p: statistics.fmean(b[f"beats_{p}"] for b in beats) for p in ("100th", "50th")}
    return f"beats random {share['100th']:.0%} / {share['50th']:.0%}"


def _infeasible_cell(cell: list[dict]) -> str:
    """The mean count of infeasible designs (-inf from the oracle) a run proposed, where any run proposed one."""
    counts = [r["n_infeasible"] for r in cell if r.get("n_infeasible") is not None]
    if not counts or not any(counts):
        return ""
    return f"{statistics.fmean(counts):.1f} infeasible"


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
            extra = "".join(f"; {part}" for part in (_beats_cell(cell), _infeasible_cell(cell)) if part)
            cells.append(" / ".join(_mean_std([r[s] for r in cell]) for s in SCORES) + f" (n={len(cell)}{marker}{extra})")
        d_best = next((r["d_best"] for r in rows if r["task"] == task), float("nan"))
        refs = [f"{d_best:.3f}", _random_cell(rows, task), *(_published_cell(c["tasks"].get(task)) for c in columns)]
        lines.append(f"| {task} | " + " | ".join(cells + refs) + " |")
    if len(methods) > 1:
        for score in SCORES:
            mnr = mean_normalized_ranks(rows, methods, tasks, score)
            lines.append(f"| MNR ({score}) | " + " | ".join(f"{mnr[m]:.2f}" for m in methods) + " |" + " |" * (2 + len(columns)))
    notes = "\n\nCells: score_100th / score_50th, mean ± std over seeds (n = seeds)."
    if any(_beats_cell([r]) for r in rows):
        notes += (" beats random: the share of the random-design draws whose 100th / 50th percentile a run's exceeds,"
                  " averaged over seeds.")
    if any(_infeasible_cell([r]) for r in rows):
        notes += " infeasible: designs the oracle says cannot exist (-inf), mean count a run; each counted as the worst score."
    notes += " D(best): the best offline design's normalized score."
    if any(r.get("random_designs") for r in rows):
        laws = reference_laws(rows)  # runs written before the law was recorded: Design-Bench's uniform one
        drawn = "; ".join(f"{law} for {', '.join(tasks)}" for law, tasks in laws.items()) or (
            "uniform over the design space for Design-Bench's sequence tasks")
        notes += (f" 128 random designs: 128 designs drawn by the task's reference law ({drawn}), scored by the exact"
                  " oracle, mean ± std of the 100th percentile / mean of the 50th over the draws.")
    for c in columns:
        if c.get("note"):
            notes += f" {c['label']}: {c['note']}"
    sources = sorted({r["source"] for r in rows if r.get("source")})
    if sources:
        notes += f" † runs read from an earlier grid's {', '.join(sources)} (their settings and code: that grid's)."
    return "\n".join(lines) + notes + "\n"


def reference_laws(rows: list[dict]) -> dict[str, list[str]]:
    """Each random-designs law the runs recorded (``results.json``), with the tasks drawn from it."""
    laws: dict[str, list[str]] = {}
    for r in rows:
        law = (r.get("random_designs") or {}).get("law")
        if law and r["task"] not in laws.setdefault(law, []):
            laws[law].append(r["task"])
    return laws


def write_runs(rows: list[dict], path: Path) -> None:
    """``runs.csv``: one row a finished run, its search metrics (``SEARCH_METRICS``) and references."""
    fields = ["task", "method", "seed", *SEARCH_METRICS, "d_best", "epoch", "source"]
    columns = {field: [row.get(field) for row in rows] for field in fields}
    for p in ("100th", "50th"):  # how often each run beats the random designs (empty where the task has none)
        columns[f"beats_random_{p}"] = [(row.get("random_designs") or {}).get(f"beats_{p}") for row in rows]
    write_csv(path, columns)