import pytest
import torch
from torch.autograd import functional as autof

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.models import MLPSurrogate, endpoint_matching_loss, gradient_matching_loss, regression_loss
from lightning_matchopt.models.losses import quadrature_nodes


def naive_gradient_matching(net, x_u, x_v, y_u, y_v, kappa):
    """The official code's computation: a full per-sample Jacobian at each of kappa points."""
    source = 0.0
    for i in range(kappa):
        t = i / kappa
        jac = autof.jacobian(lambda inp: net(inp).flatten(), x_u * (1 - t) + x_v * t, create_graph=True, vectorize=True)
        source = source + torch.einsum("aab->ab", jac) / kappa
    predicted = (source * (x_v - x_u)).sum(1)
    return ((y_v - y_u - predicted) ** 2).mean()


def random_case(d, n, seed, hidden=(512, 128, 32)):
    torch.manual_seed(seed)
    net = MLPSurrogate(d, hidden).double()
    x, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, dtype=torch.float64)
    return net, (x[:-1], x[1:], y[:-1], y[1:])


def grads(loss, net):
    return torch.autograd.grad(loss, list(net.parameters()), allow_unused=True, materialize_grads=True)


PAPER = (512, 128, 32)


@pytest.mark.parametrize("d,kappa,seed,hidden", [(24, 5, 0, PAPER), (7, 1, 1, PAPER), (60, 3, 2, PAPER), (5, 8, 3, PAPER),
                                                 (6, 4, 4, ())])  # (): a linear surrogate
def test_gradient_matching_equals_naive_jacobian(d, kappa, seed, hidden):
    net, pairs = random_case(d, 17, seed, hidden)
    reference = naive_gradient_matching(net, *pairs, kappa)
    fast = gradient_matching_loss(net, *pairs, integration_steps=kappa)  # MLPSurrogate.line_derivatives
    generic = gradient_matching_loss(lambda z: net(z).unsqueeze(-1), *pairs, integration_steps=kappa)  # torch.func.jvp
    assert torch.allclose(fast, reference, rtol=1e-5, atol=1e-7)
    assert torch.allclose(generic, reference, rtol=1e-5, atol=1e-7)
    reference_grads = grads(reference, net)
    for loss in (fast, generic):
        for g, r in zip(grads(loss, net), reference_grads, strict=True):
            assert torch.allclose(g, r, rtol=1e-5, atol=1e-7)


def test_gradient_matching_definition_on_linear_function():
    # g(x) = w.x has gradient w everywhere: predicted difference = w.(v - u), for any kappa and rule.
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x_u, x_v = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    y_u, y_v = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    expected = ((1.0 - (x_v - x_u) @ w) ** 2).mean()
    for rule in ("left", "midpoint", "trapezoid"):
        loss = gradient_matching_loss(lambda z: z @ w, x_u, x_v, y_u, y_v, integration_steps=3, rule=rule)
        assert torch.allclose(loss, expected)
    assert torch.allclose(endpoint_matching_loss(lambda z: z @ w, x_u, x_v, y_u, y_v), expected)


def test_quadratures_converge_to_the_exact_line_integral():
    net, pairs = random_case(6, 17, 4, hidden=(16, 8))
    exact = endpoint_matching_loss(net, *pairs)
    for rule in ("left", "midpoint", "trapezoid"):
        assert torch.allclose(gradient_matching_loss(net, *pairs, integration_steps=2000, rule=rule), exact, rtol=1e-3)
    t, w = quadrature_nodes(5, "left")
    assert torch.allclose(t, torch.tensor([0, 0.2, 0.4, 0.6, 0.8], dtype=torch.float64))
    assert torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_sum_reduction_and_regression_definition():
    net, (x_u, x_v, y_u, y_v) = random_case(4, 9, 5, hidden=(8,))
    mean = gradient_matching_loss(net, x_u, x_v, y_u, y_v)
    assert torch.allclose(gradient_matching_loss(net, x_u, x_v, y_u, y_v, reduction="sum"), mean * len(x_u))
    assert torch.allclose(regression_loss(net, x_u, y_u), ((net(x_u) - y_u) ** 2).mean())


def test_bad_arguments_are_named():
    net, pairs = random_case(4, 5, 6, hidden=(8,))
    with pytest.raises(ConfigError, match="integration_steps must be >= 1"):
        gradient_matching_loss(net, *pairs, integration_steps=0)
    with pytest.raises(ConfigError, match="unknown quadrature 'simpson'"):
        gradient_matching_loss(net, *pairs, rule="simpson")


def test_conservative_penalty_is_each_designs_own_ascent_by_an_explicit_loop():
    from lightning_matchopt.models.losses import conservative_penalty

    torch.manual_seed(0)
    net = MLPSurrogate(3, (16, 16), negative_slope=0.0).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    expected = []
    for row in x:  # one design at a time, its own gradient at every step (COMs' optimize, per particle)
        z = row.clone()
        for _ in range(4):
            z.requires_grad_(True)
            (grad,) = torch.autograd.grad(net(z[None])[0], z)
            z = (z + 0.3 * grad).detach()
        expected.append(net(z[None])[0] - net(row[None])[0])
    penalty = conservative_penalty(net, x, steps=4, step_size=0.3)
    assert torch.allclose(penalty, torch.stack(expected).mean(), rtol=1e-12)
    # and the gradient in the weights is that of g(x_adv) - g(x) with x_adv held fixed
    (ours,) = torch.autograd.grad(penalty, net.net[0].weight)
    (theirs,) = torch.autograd.grad(torch.stack(expected).mean(), net.net[0].weight)
    assert torch.allclose(ours, theirs, rtol=1e-10)


def test_lagrangian_conservative_is_alpha_times_the_penalty_with_the_dual_gradient():
    from lightning_matchopt.models.losses import lagrangian_conservative

    w = torch.tensor([0.5, -2.0], dtype=torch.float64, requires_grad=True)
    penalty = (w**2).sum()  # stands for g(x_adv) - g(x): 4.25
    log_alpha = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    term = lagrangian_conservative(penalty, log_alpha, target=2.0)
    alpha = torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    assert torch.allclose(term, alpha * 4.25, rtol=1e-15)  # its value: alpha * penalty
    grad_w, grad_log_alpha = torch.autograd.grad(term, [w, log_alpha])
    assert torch.allclose(grad_w, alpha * 2 * w.detach(), rtol=1e-15)  # alpha held fixed for the model
    # COMs' alpha_loss = alpha * tau - alpha * overestimation, differentiated in log alpha
    assert torch.allclose(grad_log_alpha, alpha * (2.0 - 4.25), rtol=1e-15)
    # an over-estimation above the target raises alpha when the dual loss is descended
    assert grad_log_alpha < 0


def test_conservative_penalty_definition():
    from lightning_matchopt.models.losses import conservative_penalty

    # g(x) = w.x: each ascent step moves x by step_size * w, so g rises by step_size * |w|^2 per step
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    penalty = conservative_penalty(lambda z: z @ w, x, steps=3, step_size=0.1)
    assert torch.isclose(penalty, torch.tensor(3 * 0.1 * 5.0, dtype=torch.float64))
    net = MLPSurrogate(2, (8,)).double()
    penalty = conservative_penalty(net, x, steps=4, step_size=0.05)
    (grad,) = torch.autograd.grad(penalty, net.net[0].weight)
    assert penalty > 0 and torch.isfinite(grad).all()  # ascent raises g; the penalty is differentiable
