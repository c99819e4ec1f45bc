"""Taylor-remainder checks pass on the real derivatives and fail on wrong ones."""

import numpy as np
import pytest
from hypothesis import given, settings

import fopa
from fopa.testing import loss_problems as problems


@given(problems(max_d=16, max_m=32, max_scale=10.0))
@settings(max_examples=100)
def test_real_derivatives_pass(problem):
    net, x, y, lossname = problem
    g = fopa.check_gradient(net, x, y, loss=lossname, rng=0)
    h = fopa.check_hessian(net, x, y, loss=lossname, rng=0)
    # a check that can judge must pass; one that cannot (every direction drowned
    # in rounding, e.g. a saturated network) says so instead of passing
    assert g.passed or not g.conclusive.any(), g.slopes
    assert h.passed or not h.conclusive.any(), h.slopes
    assert np.all(g.slopes[g.conclusive] >= 1.9) and np.all(h.slopes[h.conclusive] >= 2.9)
    assert g.expected_slope == 2.0 and h.expected_slope == 3.0


@pytest.mark.parametrize("activation", ["tanh", "gelu", "silu", "softplus", "sigmoid"])
def test_slopes_are_about_two_and_three(activation):
    net = fopa.TwoLayerNet.random(8, 16, activation=activation, rng=4)
    x = np.random.default_rng(4).standard_normal(8)
    g = fopa.check_gradient(net, x, 0.5, rng=1)
    h = fopa.check_hessian(net, x, 0.5, rng=1)
    # a direction where the leading term is small shows a steeper slope: still right
    assert g.passed and h.passed
    assert g.conclusive.any() and h.conclusive.any()
    assert abs(np.median(g.slopes) - 2.0) < 0.1
    assert abs(np.median(h.slopes) - 3.0) < 0.15
    assert g.remainders.shape == (3, g.steps.size)


@pytest.mark.parametrize("activation", fopa.ACTIVATIONS)
def test_deliberately_wrong_derivatives_fail(activation):
    net = fopa.TwoLayerNet.random(6, 10, activation=activation, rng=5)
    x = np.random.default_rng(5).standard_normal(6)

    def wrong_gradient(p):
        return 1.02 * fopa.input_gradient(net, p, 0.3)

    def wrong_hessian(p):  # forgets the rank-one term l'' g g^T
        g = fopa.input_gradient(net, p, 0.3)
        r = fopa.predict(net, p) - 0.3
        return fopa.input_hessian(net, p, 0.3) - np.outer(g, g) / r**2

    bad_g = fopa.check_gradient(net, x, 0.3, rng=0, gradient=wrong_gradient)
    bad_h = fopa.check_hessian(net, x, 0.3, rng=0, hessian=wrong_hessian)
    assert not bad_g.passed and bad_g.conclusive.any()
    assert not bad_h.passed and bad_h.conclusive.any()


def test_check_returns_and_prints_nothing(capsys):
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    result = fopa.check_gradient(net, np.ones(3), 0.0, rng=0)
    assert isinstance(result, fopa.TaylorCheck)
    assert capsys.readouterr().out == ""


def test_check_rejects_batches_and_bad_callables():
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    with pytest.raises(ValueError, match="one point"):
        fopa.check_gradient(net, np.ones((2, 3)), 0.0)
    with pytest.raises(ValueError, match="gradient"):
        fopa.check_gradient(net, np.ones(3), 0.0, gradient=lambda p: np.ones(2))
    with pytest.raises(ValueError, match="hessian"):
        fopa.check_hessian(net, np.ones(3), 0.0, hessian=lambda p: np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_directions"):
        fopa.check_gradient(net, np.ones(3), 0.0, n_directions=0)
