"""The grid's plots (matplotlib): scores per task and method, against the epoch and the ascent step."""

from __future__ import annotations

import statistics
from pathlib import Path

from lightning_matchopt.extras import missing


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
    if why := missing("matplotlib", extra="plots"):
        print(f"no plots: the grid {why}")
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
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
    for ax, task in zip(axes[0], tasks, strict=True):
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
        for ax, task in zip(axes[0], tasks, strict=True):
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
