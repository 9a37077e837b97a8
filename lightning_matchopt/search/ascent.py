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
    observe: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Move each design uphill on ``surrogate`` with Adam; returns the final designs.

    Gradients are taken with respect to the designs only (``torch.autograd.grad``), so no
    ``.grad`` is written into the surrogate's parameters. Each design's update depends only on
    its own gradient (Adam is elementwise), so searching a subset of designs gives exactly the
    same result for them: designs can be split across processes.

    ``observe(step, designs)``, if given, sees a detached copy of the designs before the first
    step (``step=0``) and after every step (to score the search's path, not only its end).
    """
    x = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    if observe is not None:
        observe(0, x.detach().clone())
    with torch.enable_grad():
        for step in progress(range(1, steps + 1)):
            (gradient,) = torch.autograd.grad(surrogate(x).sum(), x)
            x.grad = -gradient
            optimizer.step()
            if observe is not None:
                observe(step, x.detach().clone())
    return x.detach()
