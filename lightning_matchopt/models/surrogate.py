"""Surrogates: plain ``nn.Module`` s (no Lightning), buffer-free so DDP has nothing to broadcast.

The surrogate interface (what the losses, the module and the search use):

- ``ensemble_size``: the number of members ``K`` (1 for a single network).
- ``forward(x)``: member-major ``(K * B, d) -> (K * B,)``, row block ``k`` through member ``k``
  (for ``K = 1`` simply ``(B, d) -> (B,)``): the predicted score, a Gaussian's mean.
- ``members(x)``: every member on the same ``(B, d)`` rows, ``(K, B)``.
- optional ``line_derivatives(x_u, delta, t)``: the exact directional derivatives of a
  piecewise-linear network, ``(len(t), K * P)``; any other surrogate gets a generic JVP.
- optional ``distribution(x)``: member-major ``(mean, std)``, for a likelihood objective.

Built from a YAML ``class_path`` with the task's input width given by the module
(``model.surrogate``), so a network's width and activation are settings of its own class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lightning_matchopt.errors import ConfigError

Layer = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def through_activation(
    tangent: torch.Tensor, hidden: torch.Tensor, negative_slope: float
) -> torch.Tensor:
    """LeakyReLU's JVP: the tangent times the slope, read off the sign of the activation.

    Positive slope: the activation has the sign of its input. This ATen kernel is several times
    faster than building a slope mask, and autograd differentiates it in ``tangent``.
    """
    return torch.ops.aten.leaky_relu_backward(tangent, hidden, negative_slope, False)


def tangent_through_layers(
    tangent: torch.Tensor, hidden: torch.Tensor, layers: Sequence[Layer], negative_slope: float
) -> torch.Tensor:
    """The chain rule of a LeakyReLU network past its first activation, for one or many members.

    ``hidden`` is the first activation's output (no autograd: it only gives the slopes),
    ``tangent`` the first layer's tangent through that activation's input; each of ``layers`` is
    an ``(affine, linear)`` pair, the layer with and without its bias. Only the tangent pass is
    recorded: a piecewise-linear network's second derivative is zero, as autograd also has it.
    """
    tangent = through_activation(tangent, hidden, negative_slope)
    for affine, linear in layers:
        with torch.no_grad():
            hidden = F.leaky_relu_(affine(hidden), negative_slope)
        tangent = through_activation(linear(tangent), hidden, negative_slope)
    return tangent


class MLPSurrogate(nn.Module):
    """MLP ``d -> 512 -> 128 -> 32 -> 1`` with LeakyReLU(0.3), the paper's surrogate.

    Maps ``(B, input_dim)`` to ``(B,)``. ``negative_slope=0`` is a ReLU network (RaM's, COMs').
    ``initialization="glorot"`` draws weights as Keras' ``Dense`` does (Glorot uniform, zero
    biases: COMs' ``ForwardModel``), ``"torch"`` as ``nn.Linear``.
    """

    ensemble_size = 1

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 128, 32),
        negative_slope: float = 0.3,
        initialization: str = "torch",
    ):
        super().__init__()
        if initialization not in ("glorot", "torch"):
            raise ConfigError(f"unknown model.surrogate.initialization {initialization!r}; use 'glorot' or 'torch'")
        self.negative_slope, self.initialization = negative_slope, initialization
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(negative_slope)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        if initialization == "glorot":
            for layer in self.net[::2]:
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted scores ``(B,)`` of ``(B, d)`` designs."""
        return self.net(x).squeeze(-1)

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, B)``: the one-member view shared with ``EnsembleMLP.members`` (for the search)."""
        return self(x).unsqueeze(0)

    def line_derivatives(
        self, x_u: torch.Tensor, delta: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Directional derivatives ``delta_p . grad g(x_u[p] + t_i delta_p)``, ``(len(t), P)``.

        Exact and cheaper than a generic JVP: the primal pass runs without autograd (it only
        gives the activation slopes) and the first layer's products with ``x_u`` and ``delta``
        are computed once for all nodes ``t`` (``tangent_through_layers`` does the rest).
        """
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        first = linears[0]
        if len(linears) == 1:  # no hidden layer (hidden_dims=[]): a linear function, one slope everywhere
            return F.linear(delta, first.weight).squeeze(-1).expand(len(t), -1)
        tangent = F.linear(
            delta, first.weight
        )  # (P, h): the same for every node t before the slopes
        with torch.no_grad():
            pre = torch.addcmul(
                F.linear(x_u, first.weight, first.bias), t[:, None, None], tangent.detach()
            )
            hidden = F.leaky_relu_(
                pre, self.negative_slope
            )  # same sign as pre: it gives the slopes
        layers = [
            (partial(F.linear, weight=m.weight, bias=m.bias), partial(F.linear, weight=m.weight))
            for m in linears[1:-1]
        ]
        tangent = tangent_through_layers(
            tangent.unsqueeze(0).expand_as(hidden), hidden, layers, self.negative_slope
        )
        return F.linear(tangent, linears[-1].weight).squeeze(-1)


class GaussianMLP(nn.Module):
    """design-baselines' ``ForwardModel``: a LeakyReLU MLP predicting a Gaussian's mean and std.

    ``d -> 2048 -> 2048 -> 2`` (mean, log std); the log std is bounded softly between a learned
    lower and upper bound (initially ``log(initial_min_std)`` and ``log(initial_max_std)``), as
    their ``get_params`` does. ``ensemble_size`` members are stacked like ``EnsembleMLP`` (one
    ``bmm``); ``initialization="glorot"`` draws weights as Keras' ``Dense`` does (Glorot
    uniform, zero biases), ``"torch"`` as ``nn.Linear``. Trained by ``GaussianLikelihood``; the
    search climbs the mean.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (2048, 2048),
        negative_slope: float = 0.3,
        ensemble_size: int = 1,
        initial_max_std: float = 0.2,
        initial_min_std: float = 0.1,
        initialization: str = "glorot",
    ):
        super().__init__()
        from lightning_matchopt.models.ensemble import EnsembleMLP

        if initialization not in ("glorot", "torch"):
            raise ConfigError(
                f"unknown model.surrogate.initialization {initialization!r}; "
                "use 'glorot' or 'torch'"
            )
        if not 0 < initial_min_std < initial_max_std:
            raise ConfigError(
                "model.surrogate needs 0 < initial_min_std < initial_max_std, "
                f"got {initial_min_std} and {initial_max_std}"
            )
        self.ensemble_size = ensemble_size
        self.trunk = EnsembleMLP(
            input_dim, hidden_dims, negative_slope, ensemble_size, out_features=2
        )
        if initialization == "glorot":
            for weight, bias in zip(self.trunk.weights, self.trunk.biases, strict=True):
                with torch.no_grad():
                    for (
                        member
                    ) in weight:  # (in, out): Glorot's bound is symmetric in fan in and out
                        nn.init.xavier_uniform_(member)
                    bias.zero_()
        self.max_logstd = nn.Parameter(torch.full((ensemble_size, 1), math.log(initial_max_std)))
        self.min_logstd = nn.Parameter(torch.full((ensemble_size, 1), math.log(initial_min_std)))

    def _gaussian(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logstd = outputs.unbind(-1)  # (K, B) each
        logstd = self.max_logstd - F.softplus(self.max_logstd - logstd)
        logstd = self.min_logstd + F.softplus(logstd - self.min_logstd)
        return mean, torch.exp(logstd)

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Member-major ``(K * B, d)`` -> the Gaussians' ``(mean, std)``, ``(K * B,)`` each."""
        mean, std = self._gaussian(self.trunk._hidden(self.trunk._split(x)))
        return mean.reshape(-1), std.reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted mean ``(B,)``: the search and the metrics use the mean."""
        return self.distribution(x)[0]

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's mean on the same ``(B, d)`` rows -> ``(K, B)``."""
        return self._gaussian(self.trunk.member_outputs(x))[0]
