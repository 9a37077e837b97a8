"""Synthetic functions with analytic values and gradients: data-free tasks with exact oracles.

The offline set is a uniform sample of the box, cut to its bottom ``max_percentile`` percent
(as Design-Bench cuts its tasks), so the optimum lies outside the data. Normalized scores use
the FULL sample's minimum and the function's known global maximum: 1.0 means the optimum.
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.tasks.base import OfflineData, Task, percentile_band


class SyntheticTask(Task):
    """A function to maximize on a box, sampled into an offline dataset.

    Args:
        dim: number of design dimensions.
        n_samples: size of the full uniform sample before the percentile cut.
        max_percentile: keep designs at or below this percentile of the score.
        sample_seed: seed of the offline sample (fixed per task, independent of the run's seed).
    """

    low: float
    high: float
    optimum_value: float

    def __init__(
        self, dim: int, n_samples: int = 5000, max_percentile: float = 50.0, sample_seed: int = 0
    ) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"{self.name}: dim must be >= 1, got {dim}")
        if n_samples < 2:
            raise ConfigError(f"{self.name}: n_samples must be >= 2, got {n_samples}")
        if not 0 < max_percentile <= 100:
            raise ConfigError(
                f"{self.name}: max_percentile must be in (0, 100], got {max_percentile}"
            )
        self.dim, self.n_samples = dim, n_samples
        self.max_percentile, self.sample_seed = max_percentile, sample_seed

    @property
    def design_shape(self) -> tuple[int, ...]:  # noqa: D102
        return (self.dim,)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """The function to maximize, ``(N, d) -> (N,)``; differentiable."""
        raise NotImplementedError

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """The exact gradient of ``value`` (autograd through the closed form)."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(self.value(x).sum(), x)[0]

    def _load(self) -> OfflineData:
        rng = np.random.default_rng(self.sample_seed)
        x = rng.uniform(self.low, self.high, size=(self.n_samples, self.dim))
        y = self._score(x)
        keep = percentile_band(y, 0.0, self.max_percentile)
        return OfflineData(
            x=x[keep].astype(np.float32), y=y[keep], y_min=float(y.min()), y_max=self.optimum_value
        )

    def _score(self, designs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(designs, dtype=np.float64)).reshape(len(designs), -1)
        return self.value(x).numpy()


class Shekel(SyntheticTask):
    """Shekel (m=10) on [0, 10]^4, negated to a maximization: max 10.5364 near x = (4, 4, 4, 4).

    The standard centres and widths (Shekel, 1971; as in BoTorch's ``Shekel`` and the usual
    test-function tables). The maximizer is not exactly (4, 4, 4, 4): the other centres pull it
    to ``OPTIMIZER`` (found by Newton's method on this closed form), where the gradient vanishes.
    """

    name = "shekel"
    low, high = 0.0, 10.0
    _beta = torch.tensor([1, 2, 2, 4, 4, 6, 3, 7, 5, 5], dtype=torch.float64) / 10
    _centers = torch.tensor(
        [
            [4, 4, 4, 4],
            [1, 1, 1, 1],
            [8, 8, 8, 8],
            [6, 6, 6, 6],
            [3, 7, 3, 7],
            [2, 9, 2, 9],
            [5, 3, 5, 3],
            [8, 1, 8, 1],
            [6, 2, 6, 2],
            [7, 3.6, 7, 3.6],
        ],
        dtype=torch.float64,
    )
    OPTIMIZER = (4.000746868269262, 3.999509480083261, 4.000746868269262, 3.999509480083261)

    def __init__(
        self,
        dim: int = 4,
        n_samples: int = 5000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ):
        if dim != 4:
            raise ConfigError(f"shekel is defined in 4 dimensions, got dim={dim}")
        super().__init__(dim, n_samples, max_percentile, sample_seed)
        self.optimum_value = float(
            self.value(torch.tensor([self.OPTIMIZER], dtype=torch.float64))[0]
        )

    def value(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (the class says what)
        centers, beta = self._centers.to(x), self._beta.to(x)
        sq = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
        return (1.0 / (sq + beta)).sum(-1)


class Ackley(SyntheticTask):
    """Ackley on [-5, 5]^d, negated: max 0 at the origin; many local optima."""

    name = "ackley"
    low, high = -5.0, 5.0
    optimum_value = 0.0

    def __init__(
        self,
        dim: int = 8,
        n_samples: int = 5000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ):
        super().__init__(dim, n_samples, max_percentile, sample_seed)

    def value(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (the class says what)
        rms = torch.sqrt((x**2).mean(-1) + 1e-12)
        ackley = (
            -20 * torch.exp(-0.2 * rms)
            - torch.exp(torch.cos(2 * torch.pi * x).mean(-1))
            + 20
            + torch.e
        )
        return -ackley


class Rosenbrock(SyntheticTask):
    """Rosenbrock on [-2.048, 2.048]^d, negated: max 0 at (1, ..., 1); a curved valley."""

    name = "rosenbrock"
    low, high = -2.048, 2.048
    optimum_value = 0.0

    def __init__(
        self,
        dim: int = 16,
        n_samples: int = 5000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ):
        if dim < 2:
            raise ConfigError(f"rosenbrock needs dim >= 2, got {dim}")
        super().__init__(dim, n_samples, max_percentile, sample_seed)

    def value(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (the class says what)
        return -(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(-1)


class Linear(SyntheticTask):
    """``w . x`` on [-1, 1]^d, ``w`` a fixed unit vector: a field the MLP can represent exactly.

    Not a benchmark: the exactness check of the pipeline (tests/test_exactness.py). Its gradient
    is the same everywhere, so a surrogate trained on the data must get it right far from the data.
    """

    name = "linear"
    low, high = -1.0, 1.0

    def __init__(
        self,
        dim: int = 8,
        n_samples: int = 2000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ):
        super().__init__(dim, n_samples, max_percentile, sample_seed)
        w = torch.as_tensor(np.random.default_rng(1000 + sample_seed).normal(size=dim))
        self.weights = w / w.norm()
        self.optimum_value = float(self.weights.abs().sum())  # at the corner sign(w)

    def value(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (the class says what)
        return x @ self.weights.to(x)


class Quadratic(SyntheticTask):
    """``-sum_i a_i (x_i - c_i)^2 / 2`` on [-1, 1]^d: its gradient ``-a * (x - c)`` turns with x.

    Not a benchmark: with the exactness check of ``Linear``, the simplest field that is not
    constant. The curvatures ``a`` run from 1 to 4 (the field is not radial), the maximum 0 sits
    at ``c = (0.5, ..., 0.5)``, inside the box but outside the offline data (its bottom half).
    """

    name = "quadratic"
    low, high = -1.0, 1.0
    optimum_value = 0.0

    def __init__(
        self,
        dim: int = 8,
        n_samples: int = 2000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ):
        super().__init__(dim, n_samples, max_percentile, sample_seed)
        self.curvatures = torch.linspace(1.0, 4.0, dim, dtype=torch.float64)
        self.center = torch.full((dim,), 0.5, dtype=torch.float64)

    def value(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (the class says what)
        return -0.5 * (self.curvatures.to(x) * (x - self.center.to(x)) ** 2).sum(-1)
