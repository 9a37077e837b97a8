"""The bars a search must clear, and the oracle's scores of the searched designs (pure: a Task and arrays).

D(best), the normalized score of the best offline design, and what as many random designs score
(drawn by the task's ``random_designs``, whose law results.json records: uniform tokens, or an Ehrlich function's own generator;
on TF-Bind-8 the best of 128 random sequences already scores about 0.94).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lightning_matchopt.tasks import Task


def best_offline_score(task: Task) -> float:
    """Normalized score of the best offline design, D(best): the bar a search must clear."""
    return float(task.normalize_score(np.max(task.data.y)))


def random_draws(task: Task, n_designs: int) -> dict[str, np.ndarray] | None:
    """The 100th and 50th percentile score of each of the task's reference draws of ``n_designs`` random designs.

    ``task.random_reference_draws`` draws (seed 0: a property of the task, the same in every run);
    None where the task has no law to draw designs from or no cheap oracle.
    """
    draws = task.random_reference_draws
    if not draws or not task.has_oracle:
        return None
    designs = task.random_designs(draws * n_designs, np.random.default_rng(0))
    if designs is None:
        return None
    scores = task.normalize_score(task.oracle(designs)).reshape(draws, n_designs)
    return {"score_100th": np.nanmax(scores, axis=1), "score_50th": np.nanmedian(scores, axis=1)}


def random_designs_reference(task: Task, n_designs: int, run: dict | None = None) -> dict[str, Any] | None:
    """What ``n_designs`` random designs (``task.random_designs``) score: mean and std over :func:`random_draws`.

    With ``run`` (a summary holding ``score_100th`` and ``score_50th``), also how often the run
    beats them: ``beats_100th`` (``beats_50th``), the share of draws whose 100th (50th)
    percentile the run's exceeds. None where the task has no such reference.
    """
    scores = random_draws(task, n_designs)
    if scores is None:
        return None
    best, median = scores["score_100th"], scores["score_50th"]
    reference = {
        "draws": len(best),
        "n_designs": n_designs,
        "law": task.random_designs_law,
        "score_100th": float(best.mean()),
        "score_100th_std": float(best.std()),
        "score_50th": float(median.mean()),
        "score_50th_std": float(median.std()),
    }
    if run is not None:
        reference.update(beats_random(run, scores))
    return reference


def beats_random(run: dict, draws: dict[str, np.ndarray]) -> dict[str, float]:
    """The share of random draws whose 100th (50th) percentile the run's exceeds (a NaN score beats none)."""
    return {f"beats_{p}": float((run[f"score_{p}"] > draws[f"score_{p}"]).mean()) for p in ("100th", "50th")}


def oracle_scores(
    task: Task, features: torch.Tensor, path: list[torch.Tensor] | None, timeout: float | None = None
) -> dict[str, torch.Tensor | None]:
    """Oracle ``scores`` and ``normalized`` scores of the designs (features), and of their traced ``path``.

    ``path``: the designs' features at the traced steps before the last, or None (not traced); the
    last traced step is the final designs, scored once. The returned ``path`` holds the
    ``(designs, steps)`` normalized scores, or None.
    """
    ask = lambda f: task.oracle(task.from_features(f.numpy()), timeout=timeout)  # noqa: E731
    scores = ask(features)
    normalized = task.normalize_score(scores)
    scored = {"scores": torch.as_tensor(scores), "normalized": torch.as_tensor(normalized), "path": None}
    if path is not None:
        columns = [task.normalize_score(ask(step)) for step in path]
        scored["path"] = torch.as_tensor(np.stack([*columns, normalized], axis=1))
    return scored


def ask_oracle(
    task: Task, features: torch.Tensor, path: list[torch.Tensor] | None, timeout: float | None = None
) -> tuple[dict[str, torch.Tensor | None] | None, str | None]:
    """:func:`oracle_scores`, or None and the error it raised, in one line.

    The oracle is a user's simulator or lab pipeline: any failure is its own, and the search
    decides what a failure means (training goes on, or the final search ends the run).
    """
    try:
        return oracle_scores(task, features, path, timeout), None
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
