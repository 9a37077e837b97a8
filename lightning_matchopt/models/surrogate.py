"""The surrogate network: a plain ``nn.Module`` (no Lightning), buffer-free so DDP has nothing to broadcast."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MLPSurrogate(nn.Module):
    """MLP ``d -> 512 -> 128 -> 32 -> 1`` with LeakyReLU(0.3), the paper's surrogate.

    Maps ``(B, input_dim)`` to ``(B,)``.
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int] = (512, 128, 32), negative_slope: float = 0.3):
        super().__init__()
        self.negative_slope = negative_slope
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(negative_slope)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, B)``: the one-member view shared with ``EnsembleMLP.members`` (the search uses it)."""
        return self(x).unsqueeze(0)

    def line_derivatives(self, x_u: torch.Tensor, delta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Directional derivatives ``delta_p . grad g(x_u[p] + t_i delta_p)``, shape ``(len(t), P)``.

        Exact and cheaper than a generic JVP because the network is piecewise linear: the
        derivative is a product of weights and activation slopes, and the slopes carry no
        gradient (LeakyReLU's second derivative is zero, as autograd also has it). So the
        primal pass runs without autograd, only the tangent pass is recorded, and the first
        layer's products with ``x_u`` and ``delta`` are computed once for all ``t``.
        """
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        first = linears[0]
        tangent = F.linear(delta, first.weight)  # (P, h): the same for every node t before the slopes
        with torch.no_grad():
            pre = torch.addcmul(F.linear(x_u, first.weight, first.bias), t[:, None, None], tangent.detach())
            hidden = F.leaky_relu_(pre, self.negative_slope)  # same sign as pre: it gives the slopes
        tangent = self._through_activation(tangent.unsqueeze(0).expand_as(hidden), hidden)  # (K, P, h)
        for linear in linears[1:-1]:
            with torch.no_grad():
                hidden = F.leaky_relu_(F.linear(hidden, linear.weight, linear.bias), self.negative_slope)
            tangent = self._through_activation(F.linear(tangent, linear.weight), hidden)
        return F.linear(tangent, linears[-1].weight).squeeze(-1)

    def _through_activation(self, tangent: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        # LeakyReLU's JVP: the tangent times the slope, read off the sign of the activation
        # (positive slope: same sign as its input). This ATen kernel is several times faster
        # than building a slope mask, and autograd differentiates it in ``tangent``.
        return torch.ops.aten.leaky_relu_backward(tangent, hidden, self.negative_slope, False)
