"""Vectorized ensembles: the batched fast path equals per-member references, members learn on their
own, K = 1 is the single surrogate bit for bit, and the search climbs the chosen objective."""

import json

import pytest
import torch
from torch.func import jvp

from conftest import TINY_CONFIG
from lightning_matchopt.cli import main
from lightning_matchopt.models.ensemble import EnsembleMLP
from lightning_matchopt.models.losses import gradient_matching_loss, regression_loss
from lightning_matchopt.models.surrogate import MLPSurrogate
from lightning_matchopt.search.ascent import search_objective


def member(ensemble: EnsembleMLP, k: int) -> MLPSurrogate:
    """Member k as a lone MLPSurrogate with the same weights (the slow reference)."""
    widths = [ensemble.weights[0].shape[1], *(w.shape[2] for w in ensemble.weights[:-1])]
    single = MLPSurrogate(widths[0], widths[1:], ensemble.negative_slope).double()
    linears = [m for m in single.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, weight, bias in zip(linears, ensemble.weights, ensemble.biases, strict=True):
            linear.weight.copy_(weight[k].T)
            linear.bias.copy_(bias[k, 0])
    return single


@pytest.mark.parametrize("hidden", [(16, 8), ()], ids=["mlp", "linear"])
def test_batched_forward_and_line_derivatives_equal_each_member_alone(hidden):
    torch.manual_seed(0)
    ensemble = EnsembleMLP(7, hidden, 0.3, ensemble_size=3).double()
    x_u, x_v = torch.randn(3 * 5, 7, dtype=torch.float64), torch.randn(3 * 5, 7, dtype=torch.float64)
    t = torch.arange(4, dtype=torch.float64) / 4
    fast = ensemble.line_derivatives(x_u, x_v - x_u, t)  # (nodes, K * P), member-major
    assert fast.shape == (4, 15)
    for k in range(3):
        rows = slice(5 * k, 5 * (k + 1))
        single = member(ensemble, k)
        torch.testing.assert_close(ensemble(x_u)[rows], single(x_u[rows]))
        torch.testing.assert_close(ensemble.members(x_u)[k], single(x_u))
        points = x_u[rows].unsqueeze(0) + t[:, None, None] * (x_v - x_u)[rows].unsqueeze(0)  # the generic JVP path
        _, reference = jvp(single, (points.reshape(-1, 7),), ((x_v - x_u)[rows].expand(4, 5, 7).reshape(-1, 7),))
        torch.testing.assert_close(fast[:, rows], reference.view(4, 5))


def test_each_member_gets_exactly_its_own_gradient():
    torch.manual_seed(1)
    ensemble = EnsembleMLP(4, (8,), 0.3, ensemble_size=2).double()
    x_u, x_v = torch.randn(2 * 6, 4, dtype=torch.float64), torch.randn(2 * 6, 4, dtype=torch.float64)
    y_u, y_v = torch.randn(12, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    total = gradient_matching_loss(ensemble, x_u, x_v, y_u, y_v, 5, reduction="sum") + regression_loss(ensemble, x_u, y_u, "sum")
    total.backward()
    for k in range(2):
        single, rows = member(ensemble, k), slice(6 * k, 6 * (k + 1))
        alone = gradient_matching_loss(single, x_u[rows], x_v[rows], y_u[rows], y_v[rows], 5, reduction="sum")
        (alone + regression_loss(single, x_u[rows], y_u[rows], "sum")).backward()
        first = next(m for m in single.net if isinstance(m, torch.nn.Linear))
        torch.testing.assert_close(ensemble.weights[0].grad[k], first.weight.grad.T)


def test_objectives_mean_and_lower_confidence_bound():
    torch.manual_seed(2)
    ensemble = EnsembleMLP(3, (8,), 0.3, ensemble_size=4)
    x = torch.randn(10, 3)
    members = ensemble.members(x)
    torch.testing.assert_close(search_objective(ensemble, "mean")(x), members.mean(0))
    torch.testing.assert_close(search_objective(ensemble, "lcb", 2.0)(x), members.mean(0) - 2 * members.std(0, unbiased=False))
    single = MLPSurrogate(3, (8,))
    assert search_objective(single, "lcb", 2.0) is single  # one surrogate: nothing to be pessimistic about


def _fit(tmp_path, name, *extra):
    root = tmp_path / name
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false",
          *extra])
    results = json.loads(next(root.glob("lightning_logs/version_*/results.json")).read_text())
    import numpy as np

    designs = np.load(next(root.glob("lightning_logs/version_*/designs.npz")))
    return results, designs


@pytest.mark.slow  # two fits
def test_ensemble_runs_end_to_end_and_one_member_is_the_single_surrogate(tmp_path):
    single, single_designs = _fit(tmp_path, "single")
    one, one_designs = _fit(tmp_path, "one", "--search.objective=lcb")  # lcb of one surrogate: itself
    assert one["score_100th"] == single["score_100th"] and one["score_50th"] == single["score_50th"]
    assert (one_designs["features"] == single_designs["features"]).all() and (one_designs["prediction_std"] == 0).all()
    ensemble, designs = _fit(tmp_path, "ensemble", "--model.surrogate=lightning_matchopt.models.EnsembleMLP",
                             "--model.surrogate.ensemble_size=3", "--search.objective=lcb", "--search.beta=1")
    assert ensemble["predicted_std"] > 0 and (designs["prediction_std"] > 0).all()
    assert ensemble["search"]["objective"] == "lcb" and len(designs["predictions"]) == len(designs["scores"])
    from lightning_matchopt.models import MatchOptModule

    checkpoint = next((tmp_path / "ensemble").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    restored = MatchOptModule.load_from_checkpoint(checkpoint)  # the ensemble comes back whole
    assert restored.ensemble_size == 3 and isinstance(restored.surrogate, EnsembleMLP)
