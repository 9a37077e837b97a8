"""``SEARCH_METRICS``: the one list of a search's metrics, which every reader of results uses.

Each metric is computed from the gathered candidates (``rows``: features, scores, normalized,
predictions, prediction_std) and goes into ``results.json``, the TensorBoard scalars
(``search/NAME``), the HPARAMS tab and ``matchopt grid``'s ``runs.csv``: adding one is one entry.
Light on purpose (no torch import): ``matchopt grid`` reads the names without Lightning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _score(name: str) -> Callable[[Any, dict], float]:
    """Design-Bench's summary of the normalized oracle scores (unscored left out, infeasible at the floor)."""

    def metric(task, rows: dict) -> float:
        from lightning_matchopt.metrics import percentile_scores

        return percentile_scores(rows["normalized"])[name]

    return metric


SEARCH_METRICS: dict[str, Callable[[Any, dict], float]] = {
    "score_100th": _score("score_100th"),
    "score_50th": _score("score_50th"),
    "score_mean": _score("score_mean"),
    "score_std": _score("score_std"),
    # what the surrogate predicted of them, in normalized-score units
    "predicted_mean": lambda task, rows: float(task.normalize_score(rows["predictions"].numpy()).mean()),
    # the ensemble members' spread in normalized-score units (0 for one surrogate)
    "predicted_std": lambda task, rows: float(rows["prediction_std"].mean() / (task.data.y_max - task.data.y_min)),
    # NaN: the oracle could not score the design (left out of the scores)
    "n_failed": lambda task, rows: int(rows["scores"].isnan().sum()),
    # -inf: the oracle says the design cannot exist (counted at the floor, metrics.infeasible_floor)
    "n_infeasible": lambda task, rows: int(rows["scores"].isneginf().sum()),
}


def measure(task, rows: dict) -> dict[str, float]:
    """Every search metric of the gathered candidates of one search."""
    return {name: metric(task, rows) for name, metric in SEARCH_METRICS.items()}
