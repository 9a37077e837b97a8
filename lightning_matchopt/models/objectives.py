"""Loss terms, one class each, chosen in YAML by ``class_path`` (``model.objectives``).

Every term sees the same batch: ``x`` of shape ``(K, G, m, d)`` and ``y`` of ``(K, G, m)``, member
``k``'s own ``G`` groups of ``m`` rows (monotone trajectories, or lists of offline rows). Each
returns the sum over members of that member's mean loss, computed on this process's share of
the batch and scaled so that DDP's average of the gradients equals the one-process gradient of
the whole batch (``share`` and ``world``). The module adds ``weight * loss`` in list order.
The math lives in ``losses.py`` as plain functions; these classes only cut the batch.
"""

from __future__ import annotations

import math

import torch

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.models.losses import (
    QUADRATURES,
    conservative_penalty,
    endpoint_matching_loss,
    gaussian_nll_loss,
    gradient_matching_loss,
    lagrangian_conservative,
    listnet_loss,
    rankcosine_loss,
    regression_loss,
)


def share(n: int, rank: int, world: int) -> slice:
    """This rank's contiguous share of ``n`` items (shares differ by at most one)."""
    return slice(n * rank // world, n * (rank + 1) // world)


def points(
    x: torch.Tensor, y: torch.Tensor, rank: int, world: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """This rank's share of every member's rows, member-major ``(K * n, d)``, and rows a member."""
    k, d = x.shape[0], x.shape[-1]
    n_points = x.shape[1] * x.shape[2]
    rows = share(n_points, rank, world)
    return (
        x.reshape(k, -1, d)[:, rows].reshape(-1, d),
        y.reshape(k, -1)[:, rows].reshape(-1),
        n_points,
    )


class Objective:
    """A loss term with its weight; ``name`` is its TensorBoard tag (``train/loss_<name>``)."""

    name = "objective"

    def __init__(self, weight: float = 1.0) -> None:
        if weight < 0:
            raise ConfigError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = weight

    def __call__(
        self, surrogate, x: torch.Tensor, y: torch.Tensor, rank: int = 0, world: int = 1
    ) -> torch.Tensor:
        """This term on this rank's share of the (member-major) batch; the mean over ranks is the whole batch's loss."""
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        """Parameters of the term itself, as optimizer groups (the module registers and optimizes them); none here."""
        return []

    def statistics(self) -> dict[str, torch.Tensor]:
        """Values the module logs once an epoch as ``train/<name>`` (a tuned multiplier); none here."""
        return {}


class GradientMatching(Objective):
    """MATCH-OPT's gradient matching (Eq. 13) over consecutive rows of each group.

    Args:
        weight: the term's weight.
        integration_steps: kappa, quadrature points per pair (paper: 5).
        quadrature: ``left`` (paper), ``midpoint``, ``trapezoid`` or ``exact`` (``g(v) - g(u)``).
    """

    name = "gm"

    def __init__(
        self, weight: float = 1.0, integration_steps: int = 5, quadrature: str = "left"
    ) -> None:
        super().__init__(weight)
        if integration_steps < 1:
            raise ConfigError(
                f"GradientMatching: integration_steps must be >= 1, got {integration_steps}"
            )
        if quadrature not in (*QUADRATURES, "exact"):
            raise ConfigError(
                f"GradientMatching: unknown quadrature {quadrature!r}; "
                f"use one of {', '.join(QUADRATURES)}, exact"
            )
        self.integration_steps, self.quadrature = integration_steps, quadrature

    def matching_sum(self, surrogate, x_u, x_v, y_u, y_v) -> torch.Tensor:
        """Sum over pairs of the squared error of the predicted differences."""
        if self.quadrature == "exact":
            return endpoint_matching_loss(surrogate, x_u, x_v, y_u, y_v, reduction="sum")
        return gradient_matching_loss(
            surrogate, x_u, x_v, y_u, y_v, self.integration_steps, self.quadrature, "sum"
        )

    def __call__(self, surrogate, x, y, rank=0, world=1):
        """Gradient matching on this rank's share of the trajectories' consecutive pairs."""
        k, d = x.shape[0], x.shape[-1]
        x_u, x_v = x[:, :, :-1].reshape(k, -1, d), x[:, :, 1:].reshape(k, -1, d)
        y_u, y_v = y[:, :, :-1].reshape(k, -1), y[:, :, 1:].reshape(k, -1)
        n_pairs = x_u.shape[1]
        pairs = share(n_pairs, rank, world)
        parts = (part[:, pairs].reshape(-1, *part.shape[2:]) for part in (x_u, x_v, y_u, y_v))
        return self.matching_sum(surrogate, *parts) * world / n_pairs


class Regression(Objective):
    """Squared error of ``g(x)`` against ``y`` on every row (MATCH-OPT's Eq. 14; an MSE fit)."""

    name = "reg"

    def __call__(self, surrogate, x, y, rank=0, world=1):
        """Squared error on this rank's share of the points."""
        x_points, y_points, n_points = points(x, y, rank, world)
        return regression_loss(surrogate, x_points, y_points, "sum") * world / n_points


class GaussianLikelihood(Objective):
    """Negative log-likelihood of every row under the surrogate's Gaussian (``distribution(x)``).

    design-baselines' ``MaximumLikelihood`` (Grad., Grad. Mean, Grad. Min); needs a surrogate with
    ``distribution``, such as ``GaussianMLP``.
    """

    name = "nll"

    def __call__(self, surrogate, x, y, rank=0, world=1):
        """Gaussian negative log-likelihood on this rank's share of the points."""
        if not callable(getattr(surrogate, "distribution", None)):
            raise ConfigError(
                "GaussianLikelihood needs a surrogate that predicts a distribution, "
                f"not {type(surrogate).__name__}: "
                "use model.surrogate: lightning_matchopt.models.GaussianMLP"
            )
        x_points, y_points, n_points = points(x, y, rank, world)
        mean, std = surrogate.distribution(x_points)
        return gaussian_nll_loss(mean, std, y_points, "sum") * world / n_points


class _RankingObjective(Objective):
    """A listwise loss over each group (a list of offline rows); lists are split across ranks.

    Under DDP every rank needs a list of its own (``data.lists.lists_per_batch`` >= processes):
    a rank without one would leave every parameter without a gradient.
    """

    def list_losses(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, surrogate, x, y, rank=0, world=1):
        k, n_lists, m, d = x.shape
        lists = share(n_lists, rank, world)
        x_lists, y_lists = x[:, lists], y[:, lists]
        scores = surrogate(x_lists.reshape(-1, d)).reshape(
            -1, m
        )  # member-major rows keep each list in its member
        return self.list_losses(scores, y_lists.reshape(-1, m)) * world / n_lists


class ListNet(_RankingObjective):
    """RaM's ListNet: cross-entropy of the lists' top-one probabilities (``listnet_loss``)."""

    name = "listnet"

    def list_losses(self, scores, y):
        """ListNet's cross-entropy, summed over the lists."""
        return listnet_loss(scores, y, "sum")


class RankCosine(_RankingObjective):
    """RaM's RankCosine: ``1 - Pearson`` of scores and ``y`` within each list."""

    name = "rankcosine"

    def list_losses(self, scores, y):
        """RankCosine's ``1 - Pearson``, summed over the lists."""
        return rankcosine_loss(scores, y, "sum")


class Conservative(Objective):
    """COMs' conservative term: ``g(x_adv) - g(x)``, ``x_adv`` where the surrogate's ascent leads.

    Args:
        weight: the term's weight, fixed (their code tunes it by a Lagrangian: ``LagrangianConservative``).
        steps: plain gradient-ascent steps that find ``x_adv`` (COMs: 50).
        step_size: their step, in z-scored design units (COMs: 0.05).
    """

    name = "cons"

    def __init__(self, weight: float = 1.0, steps: int = 50, step_size: float = 0.05) -> None:
        super().__init__(weight)
        if steps < 0 or not step_size > 0:
            raise ConfigError(
                f"Conservative: steps must be >= 0 and step_size > 0, got {steps}, {step_size}"
            )
        self.steps, self.step_size = steps, step_size

    def __call__(self, surrogate, x, y, rank=0, world=1):
        """The conservative penalty on this rank's share of the points."""
        x_points, _, n_points = points(x, y, rank, world)
        return (
            conservative_penalty(surrogate, x_points, self.steps, self.step_size, "sum")
            * world
            / n_points
        )


class LagrangianConservative(Conservative):
    """COMs' conservative term as their code trains it: the weight alpha tuned by dual ascent.

    The term is ``alpha * (g(x_adv) - g(x))`` (``lagrangian_conservative``); ``log alpha`` is a
    parameter of its own, stepped by the module's Adam at ``alpha_lr`` towards the point where
    the penalty equals ``target`` (COMs' ``log_alpha``, ``alpha_opt``, ``overestimation_limit``).

    Args:
        weight: a fixed factor on the whole term (COMs: 1).
        steps: plain gradient-ascent steps that find ``x_adv`` (``particle_train_gradient_steps``).
        step_size: their step in the surrogate's input units (``particle_lr`` times sqrt(d)).
        initial_alpha: alpha before training (``forward_model_alpha``).
        alpha_lr: Adam's learning rate on ``log alpha`` (``forward_model_alpha_lr``).
        target: tau, the penalty alpha tunes towards (``forward_model_overestimation_limit``).
    """

    name = "lagrangian_cons"

    def __init__(
        self,
        weight: float = 1.0,
        steps: int = 50,
        step_size: float = 0.05,
        initial_alpha: float = 0.1,
        alpha_lr: float = 0.01,
        target: float = 0.5,
    ) -> None:
        super().__init__(weight, steps, step_size)
        if not initial_alpha > 0 or not alpha_lr > 0:
            raise ConfigError(
                f"LagrangianConservative: initial_alpha and alpha_lr must be > 0, got {initial_alpha}, {alpha_lr}"
            )
        self.initial_alpha, self.alpha_lr, self.target = initial_alpha, alpha_lr, target
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(initial_alpha)))

    def parameter_groups(self):
        """``log alpha`` at its own learning rate, without weight decay."""
        return [{"params": [self.log_alpha], "lr": self.alpha_lr, "weight_decay": 0.0}]

    def statistics(self):
        """The multiplier alpha (``train/alpha``)."""
        return {"alpha": self.log_alpha.detach().exp()}

    def __call__(self, surrogate, x, y, rank=0, world=1):
        """``alpha`` times the conservative penalty on this rank's share, with the dual gradient in ``log alpha``."""
        if x.shape[0] != 1:
            raise ConfigError(
                f"LagrangianConservative tunes one alpha for one surrogate, got an ensemble of {x.shape[0]}: "
                "use model.surrogate.ensemble_size 1 or Conservative"
            )
        return lagrangian_conservative(super().__call__(surrogate, x, y, rank, world), self.log_alpha, self.target)


__all__ = [
    "Conservative",
    "GaussianLikelihood",
    "GradientMatching",
    "LagrangianConservative",
    "ListNet",
    "Objective",
    "RankCosine",
    "Regression",
]
