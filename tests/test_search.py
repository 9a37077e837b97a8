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
