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
from lightning_matchopt.models import (
    Conservative,
    EnsembleMLP,
    GaussianLikelihood,
    GaussianMLP,
    GradientMatching,
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
    assert math.isclose(float(ListNet()(net, x, y)), expected, rel_tol=1e-10)


def test_rankcosine_is_one_minus_pearson_within_each_list():
    net = MLPSurrogate(4, (8,)).double()
    x, y = groups(k=1)
    expected = np.mean(
        [1 - np.corrcoef(net(lst).detach().numpy(), t.numpy())[0, 1] for lst, t in zip(x[0], y[0], strict=True)]
    )
    assert math.isclose(float(RankCosine()(net, x, y)), expected, rel_tol=1e-6)
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
