"""K surrogates of the paper's shape in one module: stacked weights, one batched pass (``bmm``).

Rows are *member-major*: a ``(K * B, d)`` input holds member 0's ``B`` rows, then member 1's,
and so on, and the output ``(K * B,)`` keeps that order. The losses in ``losses.py`` therefore
work unchanged on an ensemble, each member seeing only its own rows (its own trajectory draws),
and their sum over members trains every member on its own loss in one optimizer step.
``members(x)`` evaluates every member on the same ``(B, d)`` rows, for the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.models.surrogate import tangent_through_layers


class EnsembleMLP(nn.Module):
    """``ensemble_size`` MLPs ``d -> 512 -> 128 -> 32 -> 1`` with LeakyReLU, each from its own initialization.

    Each member is initialized exactly as ``nn.Linear`` initializes a layer (independent draws),
    so member ``k`` starts like a lone ``MLPSurrogate`` would from the generator's next draws.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 128, 32),
        negative_slope: float = 0.3,
        ensemble_size: int = 5,
        out_features: int = 1,
    ):
        super().__init__()
        if ensemble_size < 1:
            raise ConfigError(f"model.surrogate.ensemble_size must be >= 1, got {ensemble_size}")
        self.negative_slope, self.ensemble_size = negative_slope, ensemble_size
        widths = [input_dim, *hidden_dims, out_features]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers = [nn.Linear(fan_in, fan_out) for _ in range(ensemble_size)]
            self.weights.append(nn.Parameter(torch.stack([layer.weight.detach().T for layer in layers])))  # (K, in, out)
            self.biases.append(nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1)))  # (K, 1, out)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) % self.ensemble_size:
            raise ValueError(f"{len(x)} rows cannot be split member-major over {self.ensemble_size} members")
        return x.reshape(self.ensemble_size, -1, x.shape[-1])

    def _hidden(self, h: torch.Tensor) -> torch.Tensor:
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = F.leaky_relu(torch.baddbmm(bias, h, weight), self.negative_slope)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Member-major ``(K * B, d)`` -> ``(K * B,)``: row block ``k`` through member ``k``."""
        return self._hidden(self._split(x)).reshape(-1)

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same ``(B, d)`` rows -> ``(K, B)``."""
        return self.member_outputs(x).squeeze(-1)

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same ``(B, d)`` rows -> ``(K, B, out_features)``."""
        return self._hidden(x.unsqueeze(0).expand(self.ensemble_size, *x.shape))

    def line_derivatives(self, x_u: torch.Tensor, delta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``MLPSurrogate.line_derivatives`` for every member at once: ``(len(t), K * P)``, member-major.

        The same exact piecewise-linear path: the primal pass runs without autograd (it only
        gives the activation slopes), the tangent pass is recorded, and the first layer's products
        with ``x_u`` and ``delta`` are computed once for all nodes ``t``.
        """
        x_u, delta = self._split(x_u), self._split(delta)  # (K, P, d)
        if self.weights[-1].shape[-1] != 1:
            raise ConfigError("line_derivatives needs one output per member (out_features=1)")
        k, p, n = self.ensemble_size, x_u.shape[1], len(t)
        first_weight, first_bias = self.weights[0], self.biases[0]
        tangent = torch.bmm(delta, first_weight)  # (K, P, h): the same for every node before the slopes
        if len(self.weights) == 1:  # no hidden layer: each member is linear, one slope everywhere
            return tangent.reshape(1, k * p).expand(n, -1)
        with torch.no_grad():
            start = torch.baddbmm(first_bias, x_u, first_weight)
            pre = torch.addcmul(start.unsqueeze(1), t[None, :, None, None], tangent.detach().unsqueeze(1))
            hidden = F.leaky_relu_(pre, self.negative_slope).reshape(k, n * p, -1)  # (K, nodes * P, h)
        layers = [
            (partial(_affine, weight, bias), partial(_affine, weight, None))
            for weight, bias in zip(self.weights[1:-1], self.biases[1:-1], strict=True)
        ]
        tangent = tangent_through_layers(tangent.repeat(1, n, 1), hidden, layers, self.negative_slope)
        out = torch.bmm(tangent, self.weights[-1]).reshape(k, n, p)
        return out.transpose(0, 1).reshape(n, k * p)


def _affine(weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """Every member's layer on its own rows: ``(K, rows, in) -> (K, rows, out)``."""
    return torch.bmm(h, weight) if bias is None else torch.baddbmm(bias, h, weight)
