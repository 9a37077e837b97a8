"""Where a search starts: the best offline designs, random ones, or N(0, I) (pure)."""

from __future__ import annotations

import torch

from lightning_matchopt.errors import ConfigError

START_KINDS = ("top", "random_data", "random")


def search_start(x: torch.Tensor, y: torch.Tensor, n_designs: int, start: str, seed: int) -> torch.Tensor:
    """z-scored starting points of the search, from the training rows ``x``, ``y`` (z-scored).

    ``top``: the best training designs; ``random_data``: random ones; ``random``: N(0, I) draws.
    Only ``top`` and ``random_data`` are bounded by the number of training rows.
    """
    if start in ("top", "random_data") and n_designs > len(x):
        raise ConfigError(
            f"search.n_designs={n_designs} exceeds the {len(x)} offline designs trained on; "
            "lower search.n_designs or use search.start random"
        )
    generator = torch.Generator().manual_seed(seed)
    if start == "top":
        return x[torch.topk(y, n_designs).indices]
    if start == "random_data":
        return x[torch.randperm(len(x), generator=generator)[:n_designs]]
    if start == "random":
        return torch.randn(n_designs, x.shape[1], generator=generator)
    raise ConfigError(f"unknown search start {start!r}; use 'top', 'random_data' or 'random'")
