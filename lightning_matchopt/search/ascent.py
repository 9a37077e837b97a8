"""Gradient-ascent search on a surrogate (a pure function of tensors and a callable)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import torch

from lightning_matchopt.errors import ConfigError

OBJECTIVES = ("mean", "lcb", "min")
OPTIMIZERS = ("adam", "gradient")
STEP_RULES = ("constant", "sqrt_dim")


def search_objective(surrogate, objective: str = "mean", beta: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the search climbs on a surrogate with ``members(x) -> (K, B)``.

    ``mean``: the members' mean (Grad. Mean's objective). ``lcb``: mean minus ``beta`` times the
    members' (population) std, a pessimistic objective that does not chase one member's
    over-estimate. ``min``: the members' minimum (Grad. Min's; design-baselines' ``'mean'``
    aggregation computes it too). A single surrogate is its own objective either way.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown search objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if getattr(surrogate, "ensemble_size", 1) == 1:
        return surrogate
    if objective == "mean":
        return lambda x: surrogate.members(x).mean(0)
    if objective == "min":
        return lambda x: surrogate.members(x).min(0).values

    def lower_confidence_bound(x: torch.Tensor) -> torch.Tensor:
        members = surrogate.members(x)
        return members.mean(0) - beta * members.std(0, unbiased=False)

    return lower_confidence_bound


def step_size(lr: float, rule: str, input_dim: int) -> float:
    """The search's step: ``lr`` itself (``constant``), or ``lr * sqrt(d)`` (``sqrt_dim``).

    design-baselines scales its ``solver_lr`` by the square root of the flattened design width
    (``config['solver_lr'] *= np.sqrt(np.prod(x.shape[1:]))``), so one step moves a z-scored
    design about as far whatever its width.
    """
    if rule not in STEP_RULES:
        raise ConfigError(f"unknown search.step_rule {rule!r}; use one of {', '.join(STEP_RULES)}")
    return lr * math.sqrt(input_dim) if rule == "sqrt_dim" else lr


def standardized(objective: Callable[[torch.Tensor], torch.Tensor], offline_x: torch.Tensor, chunk: int = 4096):
    """RaM's output adaptation: ``(f(x) - mean) / std`` with the mean and std of ``f`` on the offline designs.

    A ranking loss fixes the surrogate's scores only up to a shift and a scale; standardizing
    them on the offline data gives the search's steps a fixed scale (RaM's ``score_fn``; the std
    is the sample std, ``torch.std``'s default, as theirs).
    """
    with torch.no_grad():
        values = torch.cat([objective(part) for part in offline_x.split(chunk)])
    mean, std = values.mean(), values.std()
    return lambda x: (objective(x) - mean) / std


def gradient_ascent(
    surrogate: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int = 150,
    lr: float = 1e-3,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    observe: Callable[[int, torch.Tensor], None] | None = None,
    optimizer: str = "adam",
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Move each design uphill on ``surrogate`` with Adam or plain gradient steps; returns the final designs.

    ``optimizer="adam"``: Adam on ``-surrogate(x)`` (MATCH-OPT's and RaM's search);
    ``"gradient"``: ``x <- x + lr * grad surrogate(x)`` (design-baselines' Grad. search).

    Gradients are taken with respect to the designs only (``torch.autograd.grad``), so no
    ``.grad`` is written into the surrogate's parameters. Each design's update depends only on
    its own gradient (Adam is elementwise), so searching a subset of designs gives exactly the
    same result for them: designs can be split across processes.

    ``observe(step, designs)``, if given, sees a detached copy of the designs before the first
    step (``step=0``) and after every step (to score the search's path, not only its end).
    ``project(designs)``, if given, maps the designs into a trust region after every step
    (``search/trust_region.py``), before anyone sees them: every intermediate design and the final
    ones lie inside it. Adam's moments go on from the projected designs.
    """
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown search.optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    x = x0.detach().clone().requires_grad_(True)
    adam = torch.optim.Adam([x], lr=lr) if optimizer == "adam" else None
    if observe is not None:
        observe(0, x.detach().clone())
    with torch.enable_grad():
        for step in progress(range(1, steps + 1)):
            (gradient,) = torch.autograd.grad(surrogate(x).sum(), x)
            if adam is None:
                with torch.no_grad():
                    x.add_(gradient, alpha=lr)
            else:
                x.grad = -gradient
                adam.step()
            if project is not None:
                with torch.no_grad():
                    x.copy_(project(x.detach()))
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
    optimizer: str = "adam",
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[int], dict[int, torch.Tensor]]:
    """:func:`gradient_ascent`, keeping the designs every ``trace_every`` steps (0: none) and at the end.

    Returns the final designs, the traced steps (empty when not traced) and the designs at each.
    """
    traced = sorted({*range(0, steps + 1, trace_every), steps}) if trace_every else []
    snapshots: dict[int, torch.Tensor] = {}
    observe = (lambda step, x: snapshots.update({step: x}) if step in traced else None) if traced else None  # noqa: E731
    return gradient_ascent(climb, x0, steps, lr, progress, observe, optimizer, project), traced, snapshots


def climb(
    surrogate,
    x0: torch.Tensor,
    steps: int,
    lr: float,
    objective: str = "mean",
    beta: float = 1.0,
    offline_x: torch.Tensor | None = None,
    trace_every: int = 0,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    optimizer: str = "adam",
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[int], dict[int, torch.Tensor], torch.Tensor]:
    """One search on a frozen copy of ``surrogate`` (training's own is left as it is).

    Climbs ``objective`` (:func:`search_objective`), standardized on ``offline_x`` if given
    (:func:`standardized`), with :func:`traced_ascent` (``project``: its trust region, or None).
    Returns its designs, traced steps and snapshots, and the members' predictions of the final
    designs, ``(K, designs)`` in float64.
    """
    surrogate = copy.deepcopy(surrogate).requires_grad_(False).eval()
    climbed = search_objective(surrogate, objective, beta)
    if offline_x is not None:
        climbed = standardized(climbed, offline_x)
    x, traced, snapshots = traced_ascent(climbed, x0, steps, lr, trace_every, progress, optimizer, project)
    with torch.no_grad():
        members = surrogate.members(x).double()
    return x, traced, snapshots, members
