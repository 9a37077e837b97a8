"""Gradient-ascent search on a surrogate (a pure function of tensors and a callable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def gradient_ascent(
    surrogate: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int = 150,
    lr: float = 1e-3,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
) -> torch.Tensor:
    """Move each design uphill on ``surrogate`` with Adam; returns the final designs.

    Gradients are taken with respect to the designs only (``torch.autograd.grad``), so no
    ``.grad`` is written into the surrogate's parameters. Each design's update depends only on
    its own gradient (Adam is elementwise), so searching a subset of designs gives exactly the
    same result for them: designs can be split across processes.
    """
    x = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    with torch.enable_grad():
        for _ in progress(range(steps)):
            (gradient,) = torch.autograd.grad(surrogate(x).sum(), x)
            x.grad = -gradient
            optimizer.step()
    return x.detach()
