"""MATCH-OPT's losses as plain functions of a surrogate callable (no Lightning).

``surrogate`` maps ``(B, d)`` to ``(B,)`` or ``(B, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
from torch.func import jvp

from lightning_matchopt.errors import ConfigError

Surrogate = Callable[[torch.Tensor], torch.Tensor]
QUADRATURES = ("left", "midpoint", "trapezoid")


def quadrature_nodes(integration_steps: int, rule: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes ``t`` in [0, 1] and weights (summing to 1) of the line-integral quadrature.

    ``left`` is the paper's left Riemann sum ``t_i = i / kappa``, ``i = 0..kappa-1`` (Eq. 13).
    """
    if integration_steps < 1:
        raise ConfigError(f"integration_steps must be >= 1, got {integration_steps}")
    k = integration_steps
    if rule == "left":
        return torch.arange(k, dtype=torch.float64) / k, torch.full((k,), 1.0 / k, dtype=torch.float64)
    if rule == "midpoint":
        return (torch.arange(k, dtype=torch.float64) + 0.5) / k, torch.full((k,), 1.0 / k, dtype=torch.float64)
    if rule == "trapezoid":
        t = torch.linspace(0, 1, k + 1, dtype=torch.float64)
        w = torch.full((k + 1,), 1.0 / k, dtype=torch.float64)
        w[0] = w[-1] = 0.5 / k
        return t, w
    raise ConfigError(f"unknown quadrature {rule!r}; use one of {', '.join(QUADRATURES)}")


@lru_cache(maxsize=32)
def _nodes_on(integration_steps: int, rule: str, dtype: torch.dtype, device: torch.device):
    # Built once per (kappa, rule, dtype, device): a training step would otherwise spend a
    # handful of tiny allocations and copies on the same constants. Callers never modify them.
    t, w = quadrature_nodes(integration_steps, rule)
    return t.to(dtype=dtype, device=device), w.to(dtype=dtype, device=device)


def _flat(surrogate: Surrogate) -> Surrogate:
    return lambda z: surrogate(z).reshape(-1)


def predicted_differences(
    surrogate: Surrogate, x_u: torch.Tensor, x_v: torch.Tensor, integration_steps: int = 5, rule: str = "left"
) -> torch.Tensor:
    """``(v - u)^T sum_i w_i grad g(u + t_i (v - u))`` for every pair, ``(P,)``.

    Each term is a directional derivative along ``v - u``: all ``kappa x P`` of them come from
    one pass, never from a per-sample Jacobian. A surrogate with a ``line_derivatives(x_u, delta,
    t)`` method (``MLPSurrogate``) computes them itself; any other callable gets one forward-mode
    JVP over the stacked points.
    """
    t, w = _nodes_on(integration_steps, rule, x_u.dtype, x_u.device)
    delta = x_v - x_u
    line_derivatives = getattr(surrogate, "line_derivatives", None)
    if callable(line_derivatives):
        return (w[:, None] * line_derivatives(x_u, delta, t)).sum(0)
    points = (x_u.unsqueeze(0) + t[:, None, None] * delta.unsqueeze(0)).reshape(-1, x_u.shape[-1])
    tangents = delta.expand(len(t), *delta.shape).reshape(-1, x_u.shape[-1])
    _, derivatives = jvp(_flat(surrogate), (points,), (tangents,))
    return (w[:, None] * derivatives.view(len(t), -1)).sum(0)


def gradient_matching_loss(
    surrogate: Surrogate,
    x_u: torch.Tensor,
    x_v: torch.Tensor,
    y_u: torch.Tensor,
    y_v: torch.Tensor,
    integration_steps: int = 5,
    rule: str = "left",
    reduction: str = "mean",
) -> torch.Tensor:
    """Gradient matching (Eq. 13): squared error between ``y_v - y_u`` and the predicted difference.

    Args:
        surrogate: the differentiable model ``g``.
        x_u: ``(P, d)`` the pairs' first endpoints (u before v on a trajectory).
        x_v: ``(P, d)`` their second endpoints.
        y_u: ``(P,)`` the scores of ``x_u``.
        y_v: ``(P,)`` the scores of ``x_v``.
        integration_steps: kappa, the quadrature points per pair.
        rule: ``left`` (paper), ``midpoint`` or ``trapezoid``.
        reduction: ``mean`` over pairs, or ``sum`` (the module uses it to split pairs over ranks).
    """
    predicted = predicted_differences(surrogate, x_u, x_v, integration_steps, rule)
    return _reduce((y_v.reshape(-1) - y_u.reshape(-1) - predicted) ** 2, reduction)


def endpoint_matching_loss(
    surrogate: Surrogate,
    x_u: torch.Tensor,
    x_v: torch.Tensor,
    y_u: torch.Tensor,
    y_v: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """The exact line integral, ``g(v) - g(u)`` (fundamental theorem): no input gradient needed."""
    predicted = _flat(surrogate)(x_v) - _flat(surrogate)(x_u)
    return _reduce((y_v.reshape(-1) - y_u.reshape(-1) - predicted) ** 2, reduction)


def regression_loss(surrogate: Surrogate, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Regression regularizer (Eq. 14): squared error of ``g(x)`` against ``y``."""
    return _reduce((_flat(surrogate)(x) - y.reshape(-1)) ** 2, reduction)


def conservative_penalty(
    surrogate: Surrogate, x: torch.Tensor, steps: int = 50, step_size: float = 0.05, reduction: str = "mean"
) -> torch.Tensor:
    """COMs' conservative term (Trabucco et al., 2021): ``g(x_adv) - g(x)``.

    ``x_adv`` is reached from ``x`` by ``steps`` plain gradient-ascent steps on ``g`` (treated as
    a constant: no gradient flows through the ascent). Minimizing the term pushes the surrogate
    down where its own ascent would lead, so the search cannot exploit over-estimates.
    """
    x_adv = x.detach()
    for _ in range(steps):  # sequential by nature: each step starts where the last ended
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(_flat(surrogate)(x_adv).sum(), x_adv)
        x_adv = (x_adv + step_size * gradient).detach()
    return _reduce(_flat(surrogate)(x_adv) - _flat(surrogate)(x), reduction)


def lagrangian_conservative(penalty: torch.Tensor, log_alpha: torch.Tensor, target: float) -> torch.Tensor:
    """COMs' Lagrangian (Trabucco et al., 2021, their ``ConservativeObjectiveModel.train_step``) in one term.

    Its value is ``alpha * penalty`` with ``alpha = exp(log_alpha)``. Its gradient in the
    surrogate is ``alpha * grad(penalty)``, alpha held fixed (their ``mse + alpha * overestimation``),
    and in ``log_alpha`` that of ``alpha * (target - penalty)``, the penalty held fixed (their
    ``alpha_loss``): descending it raises alpha while the penalty exceeds ``target`` (dual ascent).
    So one backward pass and one optimizer step make both of their updates.
    """
    alpha = log_alpha.exp()
    dual = alpha * (target - penalty.detach())
    return alpha.detach() * penalty + (dual - dual.detach())  # the second part is zero, with the dual gradient


def gaussian_nll_loss(
    mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Negative log-likelihood of ``y`` under ``N(mean, std^2)``: design-baselines' ``MaximumLikelihood``."""
    y = y.reshape(-1)
    nll = 0.5 * math.log(2 * math.pi) + torch.log(std) + 0.5 * ((y - mean) / std) ** 2
    return _reduce(nll, reduction)


def listnet_loss(scores: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """ListNet (top-one probabilities, temperature 1) over the last axis, one value per list.

    ``-sum_j softmax(y)_j log softmax(scores)_j``, the cross-entropy between the lists' true and
    predicted top-one distributions (RaM's ``ListNetLossFunction``; it adds 1e-10 inside the log
    of a softmax, ``log_softmax`` here, the same up to that constant).
    """
    per_list = -(torch.softmax(y, dim=-1) * torch.log_softmax(scores, dim=-1)).sum(-1)
    return _reduce(per_list, reduction)


def rankcosine_loss(scores: torch.Tensor, y: torch.Tensor, reduction: str = "mean", eps: float = 1e-8) -> torch.Tensor:
    """RankCosine as RaM's code computes it: ``1 - Pearson(scores, y)`` over the last axis, per list.

    Both are centred within the list before the cosine (the paper writes an uncentred cosine;
    RaM's ``RankCosineLossFunction`` centres, and ``eps`` is its guard in the denominator).
    """
    scores, y = scores - scores.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    cosine = (scores * y).sum(-1) / (scores.norm(dim=-1) * y.norm(dim=-1) + eps)
    return _reduce(1 - cosine, reduction)


def _reduce(errors: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return errors.mean()
    if reduction == "sum":
        return errors.sum()
    raise ConfigError(f"unknown reduction {reduction!r}; use 'mean' or 'sum'")


__all__ = [
    "QUADRATURES",
    "conservative_penalty",
    "endpoint_matching_loss",
    "gaussian_nll_loss",
    "gradient_matching_loss",
    "lagrangian_conservative",
    "listnet_loss",
    "predicted_differences",
    "quadrature_nodes",
    "rankcosine_loss",
    "regression_loss",
]
