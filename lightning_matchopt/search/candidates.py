"""What a person needs to know about each candidate before using it (pure functions of arrays and a data module).

The searched designs and the surrogate's predictions go back from the search's z-scored space to
the task's units. The argmax of token logits often maps several searched designs to one sequence,
and a search can end on a design the data already holds; neither is worth a lab's time twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Rows = dict[str, torch.Tensor]  # one row per candidate: features, scores, normalized, predictions, ...

# Round-trip error of z-scoring a design and back (float32 features): below it, "the same design".
SAME_DESIGN_TOLERANCE = 1e-5


def nearest_distances(
    candidates: torch.Tensor, offline: torch.Tensor, p: float, chunk_elements: int = 2**22
) -> torch.Tensor:
    """Distance from each candidate row to its nearest offline row, in chunks that bound memory.

    ``p=0`` counts differing entries (Hamming distance on tokens), ``p=2`` is Euclidean.
    """
    if len(offline) == 0:
        return torch.full((len(candidates),), float("inf"), dtype=torch.float64)
    step = max(1, chunk_elements // len(offline))
    offline = offline.double()
    return torch.cat([torch.cdist(part.double(), offline, p=p).min(dim=1).values for part in candidates.split(step)])


def describe_candidates(
    designs: np.ndarray,
    offline_designs: np.ndarray,
    features: torch.Tensor,
    offline_features: torch.Tensor,
    discrete: bool,
) -> dict[str, np.ndarray]:
    """Per candidate: ``duplicate``, ``in_offline`` and ``nearest_offline_distance``.

    ``duplicate``: an identical candidate comes earlier in the list (the first copy is kept as
    the original). ``nearest_offline_distance``: for token designs the number of positions that
    differ from the closest offline sequence (0: it is in the data); for vectors the Euclidean
    distance in z-scored feature space (``features``, ``offline_features``: the space the search
    moves in, one unit = one standard deviation of the data), where a design within
    ``SAME_DESIGN_TOLERANCE`` counts as in the data.
    """
    flat = np.asarray(designs).reshape(len(designs), -1)
    _, first = np.unique(flat, axis=0, return_index=True)
    duplicate = np.ones(len(flat), dtype=bool)
    duplicate[first] = False
    if discrete:
        offline_flat = np.asarray(offline_designs).reshape(len(offline_designs), -1)
        distance = nearest_distances(torch.as_tensor(flat), torch.as_tensor(offline_flat), p=0)
        in_offline = distance == 0
    else:
        distance = nearest_distances(features, offline_features, p=2)
        in_offline = distance <= SAME_DESIGN_TOLERANCE
    return {
        "duplicate": duplicate,
        "in_offline": in_offline.numpy(),
        "nearest_offline_distance": distance.numpy(),
    }


def count_unique_and_novel(candidates: dict[str, np.ndarray]) -> dict[str, int]:
    """``n_unique`` distinct candidates, of which ``n_novel`` are not in the offline data."""
    unique = ~candidates["duplicate"]
    return {"n_unique": int(unique.sum()), "n_novel": int((unique & ~candidates["in_offline"]).sum())}


def kept(candidates: dict[str, np.ndarray], drop_duplicates: bool) -> np.ndarray:
    """Which candidates the written files and the scores keep: all, or the first of identical ones."""
    return ~candidates["duplicate"] if drop_duplicates else np.ones(len(candidates["duplicate"]), bool)


def kept_rows(rows: Rows, keep: np.ndarray) -> Rows:
    """The kept candidates' rows, in order."""
    return rows if keep.all() else {k: v[torch.from_numpy(keep)] for k, v in rows.items()}


def describe_search(datamodule: Any, features: torch.Tensor) -> dict[str, np.ndarray]:
    """:func:`describe_candidates` of searched ``features`` against all offline rows, held-out ones included."""
    task = datamodule.task
    designs, normalized = task.from_features(features.numpy()), datamodule.normalize_x(features.double())
    return describe_candidates(designs, task.data.x, normalized, datamodule.offline.x, task.is_discrete)


def unscored_rows(datamodule: Any, x: torch.Tensor, members: torch.Tensor) -> Rows:
    """The searched designs ``x`` (z-scored) and the members' predictions ``(K, designs)`` in the task's units.

    ``features``: raw features (float64, CPU); ``predictions``: the members' mean in score units;
    ``prediction_std``: their population std in score units (0 for one surrogate); ``scores`` and
    ``normalized``: NaN, until the oracle is asked.
    """
    features = datamodule.denormalize_x(x.double()).cpu()
    unscored = torch.full((len(features),), float("nan"), dtype=torch.float64)
    return {
        "features": features, "scores": unscored, "normalized": unscored,
        "predictions": datamodule.denormalize_y(members.mean(0)),
        "prediction_std": members.std(0, unbiased=False) * datamodule.y_std.to(members),
    }


def path_features(datamodule: Any, snapshots: dict[int, torch.Tensor], traced: list[int]) -> list[torch.Tensor] | None:
    """The raw features of the designs at each traced step but the last (the final designs), or None (not traced)."""
    return [datamodule.denormalize_x(snapshots[s].double()).cpu() for s in traced[:-1]] if traced else None


def screen_candidates(
    datamodule: Any, features: torch.Tensor, drop_duplicates: bool
) -> tuple[dict[str, np.ndarray], dict[str, int], np.ndarray]:
    """The kept candidates' descriptions, the counts of all (``n_unique``, ``n_novel``) and which are kept.

    ``features``: every searched design (raw); see :func:`describe_search` and :func:`kept`.
    """
    candidates = describe_search(datamodule, features)
    counts, keep = count_unique_and_novel(candidates), kept(candidates, drop_duplicates)
    return {k: v[keep] for k, v in candidates.items()}, counts, keep
