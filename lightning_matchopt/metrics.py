"""torchmetrics for search results: gathered across ranks, summarized as percentile scores."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def percentile_scores(normalized: torch.Tensor) -> dict[str, float]:
    """Design-Bench's summary of candidate scores; designs the oracle could not score (NaN) are left out."""
    finite = normalized[torch.isfinite(normalized)].double()
    if finite.numel() == 0:
        nan = float("nan")
        return {"score_100th": nan, "score_50th": nan, "score_mean": nan, "score_std": nan}
    return {
        "score_100th": float(finite.max()),
        "score_50th": float(torch.quantile(finite, 0.5)),
        "score_mean": float(finite.mean()),
        "score_std": float(finite.std(unbiased=False)),
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
