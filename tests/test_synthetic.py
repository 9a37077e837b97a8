"""The synthetic tasks are the standard functions, checked against BoTorch's implementations.

BoTorch minimizes; our tasks maximize, so they must equal BoTorch's functions with ``negate=True``
(called: ``evaluate_true`` ignores ``negate``), whose ``optimal_value`` is then the maximum.
BoTorch's default boxes are wider than ours (Ackley [-32.768, 32.768], Rosenbrock [-5, 10]), so
every point we draw lies inside them.
"""

import numpy as np
import pytest
import torch

from lightning_matchopt.tasks.synthetic import Ackley, Rosenbrock, Shekel

test_functions = pytest.importorskip("botorch.test_functions.synthetic")

CASES = [
    (Shekel(), lambda: test_functions.Shekel(negate=True)),
    (Ackley(dim=8), lambda: test_functions.Ackley(dim=8, negate=True)),
    (Rosenbrock(dim=16), lambda: test_functions.Rosenbrock(dim=16, negate=True)),
    (Rosenbrock(dim=2), lambda: test_functions.Rosenbrock(dim=2, negate=True)),
]
IDS = ["shekel", "ackley8", "rosenbrock16", "rosenbrock2"]


@pytest.mark.parametrize(("task", "reference"), CASES, ids=IDS)
def test_values_equal_botorch_at_random_points_of_the_box(task, reference):
    x = torch.rand(256, task.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = task.low + (task.high - task.low) * x
    expected = reference()(x)
    # Ackley's 1e-12 under the square root (a finite gradient at the origin) moves it by < 1e-5
    torch.testing.assert_close(task.value(x), expected, rtol=1e-10, atol=1e-5)
    torch.testing.assert_close(
        torch.as_tensor(task.oracle(x.numpy())), expected, rtol=1e-10, atol=1e-5
    )


@pytest.mark.parametrize(("task", "reference"), CASES, ids=IDS)
def test_offline_scores_are_botorch_values_of_the_offline_designs(task, reference):
    small = type(task)(dim=task.dim, n_samples=200)
    x = torch.as_tensor(small.data.x, dtype=torch.float64)  # the stored float32 designs
    np.testing.assert_allclose(small.data.y, reference()(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("task", "reference"), CASES, ids=IDS)
def test_known_optimum_is_botorch_optimum(task, reference):
    function = reference()
    optimizer = torch.tensor(function.optimizers[0:1].tolist(), dtype=torch.float64)
    assert task.optimum_value == pytest.approx(function.optimal_value, abs=1e-5)
    assert task.data.y_max == pytest.approx(function.optimal_value, abs=1e-5)  # normalizes to 1.0
    assert float(task.value(optimizer)[0]) == pytest.approx(function.optimal_value, abs=1e-5)
    assert task.gradient(optimizer).abs().max() < 1e-3  # a stationary point, not a point near one
    # and a maximum: no random point of the box is higher
    x = task.low + (task.high - task.low) * torch.rand(4096, task.dim, dtype=torch.float64)
    assert float(task.value(x).max()) < function.optimal_value


def test_shekel_seventh_centre_is_the_standard_one():
    # The standard table (and BoTorch) has (5, 3, 5, 3); an earlier version had (5, 5, 3, 3).
    x = torch.tensor([[5.0, 3.0, 5.0, 3.0], [5.0, 5.0, 3.0, 3.0]], dtype=torch.float64)
    value = Shekel().value(x)
    assert value[0] > 1 / 0.3  # the seventh term alone is 1 / beta_7 at its own centre
    assert value[1] < 1 / 0.3
