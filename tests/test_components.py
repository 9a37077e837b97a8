"""Methods as components: today's code is yesterday's bit for bit, old checkpoints load, each loss
term equals its definition."""

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG
from lightning_matchopt.cli import main
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.models import (
    Conservative,
    EnsembleMLP,
    GaussianLikelihood,
    GaussianMLP,
    GradientMatching,
    LagrangianConservative,
    ListNet,
    MatchOptModule,
    MLPSurrogate,
    RankCosine,
    Regression,
)
from lightning_matchopt.models.legacy import upgrade_hyperparameters

CHECKPOINTS = Path(__file__).parent / "checkpoints"
# Written by the code at commit 32b2eaf (before model.surrogate / model.objectives), from the
# tiny config on 4-D Ackley (Shekel's data changed since, with its fix):
# `matchopt fit --config tests/configs/tiny.yaml` plus `TASK` (and --model.ensemble_size 2).
TASK = ["--data.task=ackley", "--data.task_options={dim: 4, n_samples: 400, max_percentile: 50}"]
LEGACY = {
    "mlp": CHECKPOINTS / "legacy-mlp-32b2eaf.ckpt",
    "ensemble": CHECKPOINTS / "legacy-ensemble2-32b2eaf.ckpt",
}
# The same runs' search (designs.npz "features", sha256, first 16 hex digits) and, for COMs,
# (`--config configs/methods/coms.yaml --model.conservative_steps 3`) weights and designs.
LEGACY_DESIGNS = {
    "mlp": "cd393c71960982a4",
    "ensemble": "9408cc061fcb838e",
    "coms": "6f77c55f30ebb75d",
}
LEGACY_COMS_WEIGHTS = "057cc09bbdb18735"
ENSEMBLE = [
    "--model.surrogate=lightning_matchopt.models.EnsembleMLP",
    "--model.surrogate.ensemble_size=2",
]


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def weights_digest(state_dict) -> str:
    return digest(*(state_dict[k].detach().cpu().numpy() for k in sorted(state_dict)))


def fit(root, *args):
    main(["fit", "--config", str(TINY_CONFIG), *TASK, f"--trainer.default_root_dir={root}", *args])
    return root / "lightning_logs" / "version_0"


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
@pytest.mark.slow
def test_matchopt_is_bit_for_bit_the_code_before_components(tmp_path, kind):
    log_dir = fit(tmp_path, *(ENSEMBLE if kind == "ensemble" else []))
    new = torch.load(log_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    old = torch.load(LEGACY[kind], weights_only=True)["state_dict"]
    assert new.keys() == old.keys()
    assert all(torch.equal(new[k], old[k]) for k in old)  # weights after two epochs
    assert (
        digest(np.load(log_dir / "designs.npz")["features"]) == LEGACY_DESIGNS[kind]
    )  # the search


@pytest.mark.slow
def test_coms_is_bit_for_bit_the_code_before_components(tmp_path):
    overlay = tmp_path / "coms3.yaml"
    overlay.write_text(
        "model:\n  objectives:\n  - class_path: lightning_matchopt.models.Regression\n"
        "  - class_path: lightning_matchopt.models.Conservative\n    init_args: {steps: 3}\n"
    )
    log_dir = fit(tmp_path, "--config", str(overlay))
    assert (
        weights_digest(
            torch.load(log_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        )
        == LEGACY_COMS_WEIGHTS
    )
    assert digest(np.load(log_dir / "designs.npz")["features"]) == LEGACY_DESIGNS["coms"]


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
@pytest.mark.slow
def test_a_checkpoint_of_the_flat_keys_searches_as_it_did(tmp_path, kind):
    main(
        [
            "search",
            "--config",
            str(TINY_CONFIG),
            *TASK,
            f"--ckpt_path={LEGACY[kind]}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert (
        digest(np.load(tmp_path / "lightning_logs" / "version_0" / "designs.npz")["features"])
        == LEGACY_DESIGNS[kind]
    )
    module = MatchOptModule.load_from_checkpoint(LEGACY[kind])
    assert isinstance(module.surrogate, EnsembleMLP if kind == "ensemble" else MLPSurrogate)
    assert [type(term) for term in module.objectives] == [GradientMatching, Regression]


def test_upgrade_lists_the_old_terms_in_the_old_order():
    old = {
        "input_dim": 4,
        "hidden_dims": [8],
        "gm_weight": 0.0,
        "regression_weight": 2.0,
        "conservative_weight": 0.5,
        "conservative_steps": 3,
        "lr": 0.1,
    }
    new = upgrade_hyperparameters(old)
    assert new["surrogate"] == {
        "class_path": "lightning_matchopt.models.MLPSurrogate",
        "init_args": {"hidden_dims": [8], "negative_slope": 0.3},
    }
    assert [o["class_path"].rsplit(".", 1)[1] for o in new["objectives"]] == [
        "Regression",
        "Conservative",
    ]
    assert new["objectives"][1]["init_args"] == {"weight": 0.5, "steps": 3, "step_size": 0.05}
    assert new["lr"] == 0.1 and new["input_dim"] == 4 and "gm_weight" not in new
    assert upgrade_hyperparameters(new) is new


def groups(k=2, g=3, m=5, d=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(k, g, m, d, generator=generator, dtype=torch.float64)
    return x, torch.randn(k, g, m, generator=generator, dtype=torch.float64)


def test_gaussian_likelihood_is_the_normal_log_density():
    torch.manual_seed(0)
    net = GaussianMLP(4, (8, 8), ensemble_size=2).double()
    x, y = groups()
    mean, std = net.distribution(x.reshape(-1, 4))
    expected = (
        -torch.distributions.Normal(mean, std).log_prob(y.reshape(-1)).reshape(2, -1).mean(1).sum()
    )
    assert torch.allclose(GaussianLikelihood()(net, x, y), expected)
    # The bounds are soft: the std stays above the lower one, and the second softplus can lift it
    # past the upper one by at most the factor 1 + min / max (1.5 for 0.1 and 0.2).
    assert ((std > 0.1) & (std < 0.2 * 1.5)).all()
    assert torch.equal(net.members(x[0, 0]), net(x[0, 0].repeat(2, 1)).reshape(2, -1))


def test_listnet_is_the_cross_entropy_of_top_one_probabilities():
    net = MLPSurrogate(4, (8,)).double()
    x, y = groups(k=1)
    expected = 0.0
    for lst, target in zip(x[0], y[0], strict=True):
        p_true = np.exp(target.numpy()) / np.exp(target.numpy()).sum()
        s = net(lst).detach().numpy()
        expected += -(p_true * (s - np.log(np.exp(s).sum()))).sum() / len(x[0])
    assert math.isclose(float(ListNet()(net, x, y).detach()), expected, rel_tol=1e-10)


def test_rankcosine_is_one_minus_pearson_within_each_list():
    net = MLPSurrogate(4, (8,)).double()
    x, y = groups(k=1)
    expected = np.mean(
        [1 - np.corrcoef(net(lst).detach().numpy(), t.numpy())[0, 1] for lst, t in zip(x[0], y[0], strict=True)]
    )
    assert math.isclose(float(RankCosine()(net, x, y).detach()), expected, rel_tol=1e-6)
    # a surrogate that ranks (and correlates) perfectly has zero loss
    assert float(RankCosine()(lambda z: 3 * z[:, 0] + 1, x, x[..., 0])) == pytest.approx(
        0, abs=1e-8
    )  # eps=1e-8 in the denominator


@pytest.mark.parametrize(
    "term",
    [
        GradientMatching(),
        Regression(),
        GaussianLikelihood(),
        ListNet(),
        RankCosine(),
        Conservative(steps=2),
    ],
    ids=lambda t: type(t).__name__,
)
def test_shares_of_two_ranks_average_to_the_whole_batch_and_members_sum(term):
    torch.manual_seed(1)
    net = (
        GaussianMLP(4, (8,), ensemble_size=2)
        if isinstance(term, GaussianLikelihood)
        else EnsembleMLP(4, (8,), ensemble_size=2)
    ).double()
    x, y = groups(g=4)
    whole = term(net, x, y)
    assert torch.allclose((term(net, x, y, 0, 2) + term(net, x, y, 1, 2)) / 2, whole)
    # the sum over members of each member's own loss
    single = [term(_member(net, k), x[k : k + 1], y[k : k + 1]) for k in range(2)]
    assert torch.allclose(whole, sum(single))


def _member(net, k):
    """Member ``k`` of a stacked ensemble as a one-member callable of the same kind."""
    if isinstance(net, GaussianMLP):

        class One(torch.nn.Module):
            def distribution(self, z):
                mean, std = net._gaussian(net.trunk.member_outputs(z))
                return mean[k], std[k]

            def forward(self, z):
                return self.distribution(z)[0]

        return One()
    return lambda z: net.members(z)[k]


def test_one_coms_step_has_the_gradients_of_their_train_step():
    """COMs' train_step by hand (trainers.py): mse + alpha * (f(x_neg) - f(x)); alpha * (tau - overestimation) in log alpha."""
    import copy
    from functools import partial

    torch.manual_seed(0)
    tau, alpha, steps, step = 0.05, 0.1, 3, 0.2
    cons = LagrangianConservative(steps=steps, step_size=step, initial_alpha=alpha, alpha_lr=0.01, target=tau)
    surrogate = partial(MLPSurrogate, hidden_dims=[16, 16], negative_slope=0.0, initialization="glorot")
    module = MatchOptModule(3, surrogate, [Regression(), cons], lr=3e-4).double()
    x, y = torch.randn(1, 10, 3, dtype=torch.float64), torch.randn(1, 10, dtype=torch.float64)
    net = copy.deepcopy(module.surrogate)
    alpha = float(torch.tensor(math.log(alpha)).double().exp())  # log alpha is kept in float32, as COMs keeps it
    x_neg = x[0].clone()
    for _ in range(steps):  # optimize(): plain ascent on the summed scores, stop_gradient
        x_neg.requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x_neg).sum(), x_neg)
        x_neg = (x_neg + step * grad).detach()
    mse = ((net(x[0]) - y[0]) ** 2).mean()
    overestimation = (net(x_neg) - net(x[0])).mean()
    expected = torch.autograd.grad(mse + alpha * overestimation, list(net.parameters()))

    loss = module.training_step((x, y), 0)
    assert torch.allclose(loss, mse + alpha * overestimation, rtol=1e-12)
    loss.backward()
    for ours, theirs in zip(module.surrogate.parameters(), expected, strict=True):
        assert torch.allclose(ours.grad, theirs, rtol=1e-10, atol=1e-14)
    assert torch.allclose(cons.log_alpha.grad, alpha * (tau - overestimation.detach()), rtol=1e-10)
    optimizer = module.configure_optimizers()
    assert [g["lr"] for g in optimizer.param_groups] == [3e-4, 0.01]
    optimizer.step()  # Adam's first step moves log alpha by its lr, against the gradient's sign
    direction = -torch.sign(cons.log_alpha.grad)
    assert float(cons.log_alpha.detach()) == pytest.approx(math.log(alpha) + 0.01 * float(direction), rel=1e-6)
    assert module.state_dict()["objective_parameters.0"] is not None  # saved with the weights


def test_lagrangian_shares_of_two_ranks_average_to_the_whole_batch():
    torch.manual_seed(2)
    net = MLPSurrogate(4, (8,)).double()
    cons = LagrangianConservative(steps=2, step_size=0.1, target=0.3)
    cons.log_alpha.data = cons.log_alpha.data.double()
    x, y = groups(k=1, g=4)
    (whole,) = torch.autograd.grad(cons(net, x, y), cons.log_alpha)
    shares = [torch.autograd.grad(cons(net, x, y, rank, 2), cons.log_alpha)[0] for rank in (0, 1)]
    assert torch.allclose(sum(shares) / 2, whole)  # DDP's average of the dual gradient is the whole batch's
    assert torch.allclose((cons(net, x, y, 0, 2) + cons(net, x, y, 1, 2)) / 2, cons(net, x, y))


def test_lagrangian_conservative_refuses_ensembles_and_a_non_positive_alpha():
    x, y = groups(k=2)
    with pytest.raises(ConfigError, match="one alpha for one surrogate"):
        LagrangianConservative(steps=1)(EnsembleMLP(4, (8,), ensemble_size=2).double(), x, y)
    with pytest.raises(ConfigError, match="initial_alpha and alpha_lr must be > 0"):
        LagrangianConservative(initial_alpha=0.0)


def test_glorot_initialization_is_keras_dense():
    torch.manual_seed(0)
    glorot = MLPSurrogate(24, (2048, 2048), negative_slope=0.0, initialization="glorot").net
    torch.manual_seed(0)
    default = MLPSurrogate(24, (2048, 2048), negative_slope=0.0).net
    # Glorot uniform: U(+-sqrt(6 / (fan_in + fan_out))), std sqrt(2 / (fan_in + fan_out)); PyTorch: std 1 / sqrt(3 fan_in)
    with torch.no_grad():
        assert float(glorot[2].weight.std()) == pytest.approx(math.sqrt(2 / 4096), rel=0.01)
        assert float(default[2].weight.std()) == pytest.approx(1 / math.sqrt(3 * 2048), rel=0.01)
        assert float(glorot[0].weight.abs().max()) <= math.sqrt(6 / (24 + 2048))
        assert all(float(layer.bias.abs().max()) == 0 for layer in glorot[::2])
    with pytest.raises(ConfigError, match="initialization 'he'"):
        MLPSurrogate(2, initialization="he")
