"""Gradient-ascent search on a surrogate (a pure function of tensors and a callable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from lightning_matchopt.errors import ConfigError

OBJECTIVES = ("mean", "lcb")


def search_objective(surrogate, objective: str = "mean", beta: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the search climbs on a surrogate with ``members(x) -> (K, B)``.

    ``mean``: the members' mean (Grad. Mean's objective). ``lcb``: mean minus ``beta`` times the
    members' (population) std, a pessimistic objective that does not chase one member's
    over-estimate. A single surrogate is its own objective either way (its std is zero).
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown search objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if getattr(surrogate, "ensemble_size", 1) == 1:
        return surrogate
    if objective == "mean":
        return lambda x: surrogate.members(x).mean(0)

    def lower_confidence_bound(x: torch.Tensor) -> torch.Tensor:
        members = surrogate.members(x)
        return members.mean(0) - beta * members.std(0, unbiased=False)

    return lower_confidence_bound


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


def traced_ascent(
    climb: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    lr: float,
    trace_every: int = 0,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
) -> tuple[torch.Tensor, list[int], dict[int, torch.Tensor]]:
    """:func:`gradient_ascent`, keeping the designs every ``trace_every`` steps (0: none) and at the end.

    Returns the final designs, the traced steps (empty when not traced) and the designs at each.
    """
    traced = sorted({*range(0, steps + 1, trace_every), steps}) if trace_every else []
    snapshots: dict[int, torch.Tensor] = {}
    observe = (lambda step, x: snapshots.update({step: x}) if step in traced else None) if traced else None  # noqa: E731
    return gradient_ascent(climb, x0, steps, lr, progress, observe), traced, snapshots
