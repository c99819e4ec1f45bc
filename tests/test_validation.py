"""Every public derivative function rejects bad input with a clear error."""

import numpy as np
import pytest

import fopa

NET = fopa.TwoLayerNet.random(3, 4, rng=0)
X = np.ones(3)
V = np.ones(3)


def _calls():
    """(name, callable taking (x, y, v)) for each public function of the module."""
    return {
        "predict": lambda x, y, v, **k: fopa.predict(NET, x),
        "loss": lambda x, y, v, **k: fopa.loss(NET, x, y, **k),
        "input_gradient": lambda x, y, v, **k: fopa.input_gradient(NET, x, y, **k),
        "input_hessian": lambda x, y, v, **k: fopa.input_hessian(NET, x, y, **k),
        "hessian_vector_product": lambda x, y, v, **k: fopa.hessian_vector_product(
            NET, x, y, v, **k
        ),
        "third_derivative": lambda x, y, v, **k: fopa.third_derivative(NET, x, y, v, v, **k),
        "ball_constants": lambda x, y, v, **k: fopa.ball_constants(NET, x, y, 0.5, **k),
    }


CALLS = _calls()
TAKES_Y = [n for n in CALLS if n != "predict"]


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize(
    "x, match",
    [
        (np.ones(4), "x must have 3 features"),
        (np.ones((2, 2, 3)), "x must be 1-D or 2-D"),
        (np.array([1.0, np.nan, 0.0]), "x must be finite"),
        (np.array([1.0, np.inf, 0.0]), "x must be finite"),
        ([[1, 2, 3], [4, 5]], "x must be an array"),
    ],
)
def test_bad_points(name, x, match):
    with pytest.raises(ValueError, match=match):
        CALLS[name](x, 0.0, V)


@pytest.mark.parametrize("name", CALLS)
def test_complex_and_string_points_are_type_errors(name):
    with pytest.raises(TypeError, match="x must hold real numbers"):
        CALLS[name](X * 1j, 0.0, V)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        CALLS[name](np.array(["a", "b", "c"]), 0.0, V)


@pytest.mark.parametrize("name", TAKES_Y)
def test_bad_targets(name):
    with pytest.raises(ValueError, match="y must be a scalar"):
        CALLS[name](X, np.ones(2), V)
    with pytest.raises(ValueError, match=r"y must be a scalar or shape \(2,\)"):
        CALLS[name](np.ones((2, 3)), np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="y must be 0-D or 1-D"):
        CALLS[name](np.ones((2, 3)), np.ones((2, 1)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="y must be finite"):
        CALLS[name](X, np.nan, V)
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        CALLS[name](X, 0.5, V, loss="logistic")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        CALLS[name](X, 1.0, V, loss="hinge")


@pytest.mark.parametrize("name", ["hessian_vector_product", "third_derivative"])
def test_bad_directions(name):
    with pytest.raises(ValueError, match="must have shape"):
        CALLS[name](X, 0.0, np.ones(2))
    with pytest.raises(ValueError, match="must have shape"):
        CALLS[name](X, 0.0, np.ones((1, 3)))
    with pytest.raises(ValueError, match="finite"):
        CALLS[name](X, 0.0, np.array([np.nan, 0, 0]))


def test_net_must_be_a_network():
    with pytest.raises(TypeError, match="net must be a fopa.TwoLayerNet"):
        fopa.input_gradient("net", X, 0.0)


def test_read_only_and_integer_inputs_work():
    x = np.ones(3)
    x.flags.writeable = False
    a = fopa.input_gradient(NET, x, 0.0)
    b = fopa.input_gradient(NET, np.ones(3, dtype=np.int32), 0)
    np.testing.assert_array_equal(a, b)


def test_misuse_found_by_hostile_testing_gets_clear_errors():
    # each raised an internal error (or returned inf/NaN) before
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    with pytest.raises(ValueError, match="x must hold at least one point"):
        fopa.certify(net, np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), 0.5)
    with pytest.raises(ValueError, match="x must hold at least one point"):
        fopa.parameter_gradient(net, np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="max_iter must be <="):
        fopa.projected_gradient_ascent(net, np.ones(3), 0.0, 0.5, max_iter=10**20)
    with pytest.raises(ValueError, match="rng must be a non-negative"):
        fopa.projected_gradient_ascent(net, np.ones(3), 0.0, 0.5, init="sphere", rng=-1)
    with pytest.raises(ValueError, match="g must have at least one entry"):
        fopa.maximize_quadratic_on_ball(np.zeros(0), np.zeros((0, 0)), 1.0)
    with pytest.raises(ValueError, match="loss overflows"):
        fopa.loss(net, np.ones(3), 1e300)
    with pytest.raises(ValueError, match="overflow"):
        fopa.iteration_bound(net, np.ones(3), 1e300, 0.5, "lipschitz", 1e-8)
    big = fopa.TwoLayerNet(1e200 * np.ones((2, 2)), np.array([1.0, -1.0]), None, "quadratic")
    with pytest.raises(ValueError, match="bounds over the ball overflow"):
        fopa.projected_gradient_ascent(big, np.ones(2), 0.0, 0.5)


def test_results_do_not_alias_the_callers_start():
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    start = np.array([0.1, 0.0, 0.0])
    res = fopa.projected_gradient_ascent(net, np.ones(3), 0.0, 0.5, init=start, max_iter=3)
    assert not np.shares_memory(res.restarts.start, start)
