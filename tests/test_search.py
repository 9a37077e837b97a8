import torch

from lightning_matchopt.metrics import percentile_scores
from lightning_matchopt.models import MLPSurrogate
from lightning_matchopt.search import gradient_ascent


def test_search_improves_the_surrogate_and_leaves_parameters_alone():
    torch.manual_seed(0)
    net = MLPSurrogate(6, (32, 16))
    x0 = torch.randn(20, 6)
    x = gradient_ascent(net, x0, steps=50, lr=1e-2)
    assert (net(x) > net(x0)).all()
    assert all(p.grad is None for p in net.parameters())


def test_search_of_a_subset_equals_search_of_all():
    # Why designs can be split across DDP ranks: each design's path depends on itself only.
    torch.manual_seed(1)
    net = MLPSurrogate(5, (16,)).double()
    x0 = torch.randn(10, 5, dtype=torch.float64)
    full = gradient_ascent(net, x0, steps=30, lr=1e-2)
    halves = torch.cat([gradient_ascent(net, part, steps=30, lr=1e-2) for part in x0.tensor_split(2)])
    assert torch.allclose(full, halves, atol=1e-12)


def test_search_climbs_a_known_function():
    x = gradient_ascent(lambda z: -((z - 3.0) ** 2).sum(-1), torch.zeros(4, 2), steps=400, lr=0.05)
    assert torch.allclose(x, torch.full((4, 2), 3.0), atol=1e-2)


def test_percentile_scores_follow_design_bench_and_skip_failures():
    scores = torch.tensor([0.1, 0.2, float("nan"), 0.9, 0.4])
    out = percentile_scores(scores)
    assert out["score_100th"] == torch.tensor(0.9).item() and abs(out["score_50th"] - 0.3) < 1e-6
    assert abs(out["score_mean"] - 0.4) < 1e-6


def test_infeasible_designs_count_as_the_worst_in_every_score():
    # -inf (infeasible) takes the floor, min(0, worst feasible); NaN (failed) is left out.
    import numpy as np

    from lightning_matchopt.metrics import infeasible_floor

    inf, nan = float("inf"), float("nan")
    cases = [
        ([0.5, -inf, 0.9, nan, -inf, 0.2], 0.0),  # feasible all above 0: the floor is normalized 0
        ([0.5, -inf, -0.3, 0.7], -0.3),  # a feasible design below 0: the floor is that design
        ([-inf, -inf, nan], 0.0),  # nothing feasible: every scored design at 0
    ]
    for values, floor in cases:
        scores = torch.tensor(values, dtype=torch.float64)
        assert infeasible_floor(scores) == floor
        kept = np.array([floor if v == -inf else v for v in values if not np.isnan(v)])
        out = percentile_scores(scores)
        assert out["score_100th"] == kept.max() and abs(out["score_50th"] - np.percentile(kept, 50)) < 1e-12
        assert abs(out["score_mean"] - kept.mean()) < 1e-12 and abs(out["score_std"] - kept.std()) < 1e-12


def test_infeasible_designs_never_help_a_method():
    # The complaint: leaving infeasible designs out made a method that proposes them look better.
    feasible = torch.tensor([0.2, 0.4, 0.6, 0.8])
    with_infeasible = torch.cat([feasible, torch.full((4,), float("-inf"))])
    for name in ("score_50th", "score_mean"):
        assert percentile_scores(with_infeasible)[name] < percentile_scores(feasible)[name]
    assert percentile_scores(with_infeasible)["score_100th"] == percentile_scores(feasible)["score_100th"]


def test_the_oracle_keeps_minus_inf_and_fails_nan_and_plus_inf():
    import numpy as np

    from lightning_matchopt.tasks import make_task

    task = make_task("shekel", n_samples=50)
    designs = task.data.x[:4]  # loaded before the oracle is replaced: the data is drawn with it
    task._score = lambda designs: np.array([1.0, -np.inf, np.inf, np.nan])[: len(designs)]
    scores = task.oracle(designs)
    assert scores[0] == 1.0 and np.isneginf(scores[1]) and np.isnan(scores[2]) and np.isnan(scores[3])


def test_the_method_label_names_what_defines_the_method():
    from lightning_matchopt.models import GradientMatching, Regression
    from lightning_matchopt.models.objectives import Conservative
    from lightning_matchopt.search.report import method_label

    search = {"objective": "mean", "beta": 1.0, "optimizer": "adam", "step_rule": "constant", "standardize": False}
    assert method_label([GradientMatching(), Regression()], 1, search) == "gm + reg, adam"
    lcb = {**search, "objective": "lcb", "beta": 0.25}
    terms = [Regression(weight=0.0), GradientMatching(weight=2.0)]  # a zero weight is not part of the method
    assert method_label(terms, 4, lcb) == "2 gm, ensemble of 4 (lcb beta 0.25), adam"
    grad = {**search, "optimizer": "gradient", "step_rule": "sqrt_dim", "standardize": True}
    assert method_label([Regression(), Conservative()], 1, grad) == "reg + cons, gradient, sqrt_dim steps, standardized"
    assert method_label([GradientMatching()], 1, {**search, "max_edits": 2}) == "gm, adam, at most 2 edits"
    assert method_label([GradientMatching()], 1, {**grad, "max_distance": 0.5}) == (
        "gm, gradient, sqrt_dim steps, standardized, within 0.5 of the start"
    )
