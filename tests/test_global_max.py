"""The global maximum: branch and bound against dense search, the trust-region route."""

import numpy as np
import pytest

import fopa
from fopa.global_max import global_maximum


def _dense(net, x, y, eps, loss, k):
    """The largest loss on a grid of the ball, and the grid's covering radius."""
    d = x.shape[0]
    axis = np.linspace(-eps, eps, k)
    grid = np.stack(np.meshgrid(*[axis] * d), -1).reshape(-1, d)
    grid = grid[np.linalg.norm(grid, axis=1) <= eps]
    return float(np.max(fopa.loss(net, x + grid, y, loss=loss))), np.sqrt(d) * eps / (k - 1)


@pytest.mark.parametrize("d,act,lossname", [(2, "tanh", "quadratic"), (2, "gelu", "logistic"),
                                            (3, "sigmoid", "quadratic")])  # fmt: skip
def test_branch_and_bound_brackets_dense_search(d, act, lossname):
    gen = np.random.default_rng(d)
    base = fopa.TwoLayerNet.random(d, 12, activation=act, rng=gen)
    net = fopa.TwoLayerNet(base.W * 2, base.a, 0.3 * gen.standard_normal(12), act, 1.0, 0.2)
    x = gen.standard_normal(d)
    y = 1.0 if lossname == "logistic" else 0.4
    eps = 0.8
    res = global_maximum(net, x, y, eps, max_regions=60_000, tol=1e-7, loss=lossname)
    dense, h = _dense(net, x, y, eps, lossname, 301 if d == 2 else 61)
    assert res.lower <= res.upper
    assert dense <= res.upper  # nothing on the grid beats the certified upper bound
    assert np.linalg.norm(res.point) <= eps * (1 + 1e-12)
    assert res.lower == pytest.approx(float(fopa.loss(net, x + res.point, y, loss=lossname)))
    # the best point is at least as good as the grid, up to the grid's resolution
    G = fopa.ball_constants(net, x, y, eps, loss=lossname).gradient_bound
    assert res.lower >= dense - G * h
    if d == 2:
        assert res.status == "converged"


@pytest.mark.parametrize("lossname", ["quadratic", "logistic"])
def test_trust_region_route_is_exact_and_inside_the_bracket(lossname):
    gen = np.random.default_rng(7)
    net = fopa.TwoLayerNet.random(2, 9, activation="quadratic", rng=gen)
    x = gen.standard_normal(2)
    y = -1.0 if lossname == "logistic" else 0.3
    exact = global_maximum(net, x, y, 1.2, loss=lossname)
    assert exact.method == "trust_region"
    assert exact.upper - exact.lower <= 1e-12 * max(1.0, abs(exact.lower))
    box = global_maximum(
        net, x, y, 1.2, method="branch_and_bound", max_regions=60_000, tol=1e-8, loss=lossname
    )
    assert box.lower <= exact.upper + 1e-12 and exact.lower <= box.upper + 1e-12
    dense, _ = _dense(net, x, y, 1.2, lossname, 401)
    assert dense <= exact.upper


def test_budget_and_bad_arguments():
    gen = np.random.default_rng(1)
    net = fopa.TwoLayerNet.random(4, 10, rng=gen)
    x = gen.standard_normal(4)
    res = global_maximum(net, x, 0.0, 1.0, max_regions=50, tol=0.0)
    assert res.status == "budget" and "budget of 50 regions" in res.message
    assert res.upper >= res.lower
    end = fopa.projected_gradient_ascent(net, x, 0.0, 1.0, init="sphere", rng=0).delta
    seeded = global_maximum(net, x, 0.0, 1.0, max_regions=50, tol=0.0, starts=end[None])
    assert seeded.lower >= float(fopa.loss(net, x + end, 0.0)) - 1e-15
    with pytest.raises(ValueError, match="quadratic activation"):
        global_maximum(net, x, 0.0, 1.0, method="trust_region")
    with pytest.raises(ValueError, match="method"):
        global_maximum(net, x, 0.0, 1.0, method="grid")
    with pytest.raises(ValueError, match="max_regions"):
        global_maximum(net, x, 0.0, 1.0, max_regions=0)


def test_the_best_point_is_feasible_at_a_tiny_radius():
    # box centers outside the ball are pulled onto it; the norms must not underflow
    from fopa._kernels.linalg import norm2

    gen = np.random.default_rng(3)
    net = fopa.TwoLayerNet.random(2, 5, rng=gen)
    x = gen.standard_normal(2)
    res = global_maximum(net, x, 0.4, 1e-160, max_regions=200)
    assert norm2(res.point) <= 1e-160 * (1 + 1e-12)
    assert res.lower <= res.upper
