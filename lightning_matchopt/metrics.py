"""torchmetrics for search results: gathered across ranks, summarized as percentile scores."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def infeasible_floor(normalized: torch.Tensor) -> float:
    """The score an infeasible design (-inf) counts at: the worst score the task or the search knows.

    The lower of normalized 0 (the task's normalizer floor: the worst offline design on
    Design-Bench) and the worst feasible design among ``normalized``: an infeasible design never
    counts above a feasible one, and the mean and std stay finite.
    """
    feasible = normalized[torch.isfinite(normalized)]
    return min(0.0, float(feasible.min())) if feasible.numel() else 0.0


def percentile_scores(normalized: torch.Tensor) -> dict[str, float]:
    """Design-Bench's summary of candidate scores: NaN (the oracle failed) left out, -inf (infeasible) at the floor.

    An infeasible design counts as :func:`infeasible_floor` in every percentile, the mean and the
    std, so proposing infeasible designs costs a method what proposing the worst design would.
    """
    normalized = normalized.double()
    scored = normalized[~torch.isnan(normalized)]
    if scored.numel() == 0:
        nan = float("nan")
        return {"score_100th": nan, "score_50th": nan, "score_mean": nan, "score_std": nan}
    infeasible = torch.isneginf(scored)
    if infeasible.any():
        scored = torch.where(infeasible, torch.full_like(scored, infeasible_floor(scored)), scored)
    return {
        "score_100th": float(scored.max()),
        "score_50th": float(torch.quantile(scored, 0.5)),
        "score_mean": float(scored.mean()),
        "score_std": float(scored.std(unbiased=False)),
    }


class SearchResults(Metric):
    """Collects each rank's searched designs, their oracle scores and the surrogate's predictions.

    ``compute()`` is a collective under DDP: every rank must call it. It returns the gathered
    tensors in rank order (the order of the designs before they were split).
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in self.NAMES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    NAMES = ("features", "scores", "normalized", "predictions", "prediction_std", "path")

    def update(
        self,
        features: torch.Tensor,
        scores: torch.Tensor,
        normalized: torch.Tensor,
        predictions: torch.Tensor,
        prediction_std: torch.Tensor,
        path: torch.Tensor | None = None,
    ) -> None:
        """Add this rank's candidates.

        ``prediction_std``: the ensemble members' spread (zeros for one surrogate); ``path``:
        ``(designs, snapshots)`` normalized scores along the search (empty: not traced).
        """
        self.features.append(features)
        self.scores.append(scores)
        self.normalized.append(normalized)
        self.predictions.append(predictions)
        self.prediction_std.append(prediction_std)
        self.path.append(path if path is not None else normalized.new_empty(len(normalized), 0))

    def compute(self) -> dict[str, torch.Tensor]:
        """Every rank's tensors, concatenated in rank order (a collective under DDP)."""
        return {name: dim_zero_cat(getattr(self, name)) for name in self.NAMES}


class PairedValues(Metric):
    """Pairs of values (a prediction and its target, an index and its prediction) gathered across ranks.

    ``compute()`` is a collective under DDP (every rank must call it); it returns both
    gathered ``(N,)`` tensors, paired in the same order.
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("first", default=[], dist_reduce_fx="cat")
        self.add_state("second", default=[], dist_reduce_fx="cat")

    def update(self, first: torch.Tensor, second: torch.Tensor) -> None:
        """Add a batch of pairs, flattened to float64."""
        self.first.append(first.detach().reshape(-1).double())
        self.second.append(second.detach().reshape(-1).double())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's pairs, concatenated in rank order (a collective under DDP)."""
        return dim_zero_cat(self.first), dim_zero_cat(self.second)


def gradient_errors(predicted: torch.Tensor, true: torch.Tensor, eps: float = 1e-12) -> dict[str, float]:
    """How well a surrogate's gradient field matches the true one, over ``(N, d)`` gradients.

    Returns the mean cosine distance ``1 - cos(predicted, true)`` (0: same direction, 1:
    orthogonal, 2: opposite) and the mean relative L2 error ``|predicted - true| / |true|``.
    """
    predicted, true = predicted.double().flatten(1), true.double().flatten(1)
    cosine = torch.nn.functional.cosine_similarity(predicted, true, dim=1, eps=eps)
    relative = (predicted - true).norm(dim=1) / true.norm(dim=1).clamp_min(eps)
    return {"cosine_distance": float((1 - cosine).mean()), "relative_l2": float(relative.mean())}
