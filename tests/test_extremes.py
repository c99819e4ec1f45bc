"""Extreme values over the whole float range: scale-safe norms, the ascent at
eps and steps near 1e+-160, the trust-region solver at any scale, overflow errors."""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa._kernels.linalg import norm2, row_norms


def _exact_norm(v):
    mpmath.mp.dps = 40
    return float(mpmath.sqrt(mpmath.fsum(mpmath.mpf(float(t)) ** 2 for t in v)))


@given(st.integers(-300, 300), st.integers(1, 40), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_norm2_is_exact_to_rounding_over_the_float_range(exponent, d, seed):
    v = np.random.default_rng(seed).standard_normal(d) * 10.0**exponent
    want = _exact_norm(v)
    assert norm2(v) == pytest.approx(want, rel=4e-16 * d)
    assert row_norms(v[None, :])[0] == norm2(v)


def test_norm2_special_values():
    assert norm2(np.zeros(3)) == 0.0
    assert norm2(np.array([np.inf, 1.0])) == np.inf
    assert np.isnan(norm2(np.array([np.nan, 1e200])))
    assert norm2(np.array([1e-320, 0.0])) == pytest.approx(1e-320, rel=1e-3)  # subnormal


@pytest.mark.parametrize("eps", [1e-160, 1e160])
def test_ascent_stays_on_the_sphere_at_extreme_radii(eps):
    net = fopa.TwoLayerNet.random(5, 8, rng=0)
    x = np.full(5, 0.3)
    res = fopa.projected_gradient_ascent(net, x, 0.5, eps, init="sphere", rng=0, max_iter=2000)
    ratio = norm2(res.delta) / eps
    assert ratio == pytest.approx(1.0, abs=1e-12) and ratio <= 1.0 + 1e-12


def test_a_huge_step_projects_instead_of_collapsing():
    # found by hostile testing: step_size=1e160 returned delta = 0 as if converged
    net = fopa.TwoLayerNet.random(5, 8, rng=0)
    x = np.full(5, 0.3)
    res = fopa.projected_gradient_ascent(net, x, 0.5, 1.0, step_size=1e160, max_iter=50)
    assert norm2(res.delta) == pytest.approx(1.0, rel=1e-12)
    assert res.loss > fopa.loss(net, x, 0.5)


def test_the_gram_iteration_is_not_run_where_its_squares_overflow():
    net = fopa.TwoLayerNet.random(50, 8, rng=0)  # m < 2d: auto would pick gram
    x = np.ones(50)
    with pytest.raises(ValueError, match="method='plain'"):
        fopa.projected_gradient_ascent(net, x, 0.5, 1.0, step_size=1e300, method="gram")
    res = fopa.projected_gradient_ascent(net, x, 0.5, 1.0, step_size=1e300, max_iter=20)
    assert norm2(res.delta) == pytest.approx(1.0, rel=1e-12)  # auto ran the plain iteration


@given(st.integers(-170, 150), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_trust_region_solution_is_scale_invariant(exponent, seed):
    gen = np.random.default_rng(seed)
    g = gen.standard_normal(4)
    A = gen.standard_normal((4, 4))
    H, eps = A + A.T, float(gen.uniform(0.1, 3.0))
    base = fopa.maximize_quadratic_on_ball(g, H, eps)
    scaled = fopa.maximize_quadratic_on_ball(g * 10.0**exponent, H * 10.0**exponent, eps)
    np.testing.assert_allclose(scaled.point, base.point, rtol=0, atol=1e-9 * eps)
    assert scaled.value == pytest.approx(base.value * 10.0**exponent, rel=1e-9)


def test_trust_region_extreme_cases():
    # found by hostile testing: this returned a point of norm 1e116
    sol = fopa.maximize_quadratic_on_ball(np.ones(3), 1e200 * np.eye(3), 1.0)
    assert norm2(sol.point) == pytest.approx(1.0, rel=1e-12)
    assert sol.value == pytest.approx(0.5e200, rel=1e-12) and sol.multiplier > 0
    tiny = fopa.maximize_quadratic_on_ball(np.ones(3) * 1e-200, -np.eye(3), 1e-150)
    np.testing.assert_allclose(tiny.point, np.full(3, 1e-200), rtol=1e-12)
    with pytest.raises(ValueError, match="overflows float64"):
        fopa.maximize_quadratic_on_ball(np.array([1.0, 0.0]), np.diag([1.0, 2.0]), 1e160)


def test_outputs_that_overflow_get_a_clear_error():
    # a quadratic-activation net with W = 1e200 and mixed-sign a: the output was NaN
    net = fopa.TwoLayerNet(np.full((2, 2), 1e200), np.array([1.0, -1.0]), activation="quadratic")
    for call in (
        lambda: fopa.predict(net, np.ones(2)),
        lambda: fopa.input_gradient(net, np.ones(2), 0.0),
        lambda: fopa.input_hessian(net, np.ones(2), 0.0),
    ):
        with pytest.raises(ValueError, match="overflows float64"):
            call()


def _scaled(act, w_scale, bias_scale, seed):
    base = fopa.TwoLayerNet.random(6, 8, activation=act, rng=seed)  # m < 2d: gram in reach
    return fopa.TwoLayerNet(base.W * w_scale, base.a, base.b * bias_scale, act, 1.0)


@pytest.mark.parametrize("act, w_scale", [("quadratic", 1e-120), ("softplus", 1e-160)])
def test_tiny_weights_keep_the_ascent_in_the_ball(act, w_scale):
    # found by hostile testing: with weights of 1e-120 the row-space iteration
    # (chosen by "auto") returned points 21 % outside the ball (Q K underflowed)
    net = _scaled(act, w_scale, 1.0, seed=1)
    X = np.random.default_rng(0).standard_normal((4, 6))
    eps = 0.3 * float(np.linalg.norm(X, axis=1).mean())
    res = fopa.projected_gradient_ascent(net, X, np.zeros(4), eps, init="sphere", rng=0,
                                         max_iter=200)  # fmt: skip
    assert np.all(np.linalg.norm(res.delta, axis=1) <= eps * (1 + 1e-12))
    with pytest.raises(ValueError, match="method='gram' squares"):
        fopa.projected_gradient_ascent(net, X, np.zeros(4), eps, method="gram")
    # weights of 1e-100 with inputs of 1e100: lengths and gradients in range, the
    # weights' squares (in K = W W^T) not
    net = _scaled("tanh", 1e-100, 1.0, seed=1)
    X = 1e100 * np.random.default_rng(0).standard_normal((4, 6))
    with pytest.raises(ValueError, match="squares the weights"):
        fopa.projected_gradient_ascent(net, X, np.zeros(4), 1e99, method="gram")


def test_huge_gradients_do_not_turn_the_ascent_into_nan():
    # found by hostile testing: W = 1e50 and x = 1e20 (quadratic activation, gradients
    # of 1e263): "auto" picked the row-space iteration and returned NaN points
    net = _scaled("quadratic", 1e50, 1e70, seed=53)
    X = 1e20 * np.random.default_rng(0).standard_normal((4, 6))
    eps = 0.5 * float(np.linalg.norm(X, axis=1).mean())
    res = fopa.projected_gradient_ascent(net, X, np.zeros(4), eps, init="sphere", rng=0,
                                         max_iter=50)  # fmt: skip
    assert np.isfinite(res.delta).all() and np.isfinite(res.loss).all()
    assert np.all(np.linalg.norm(res.delta, axis=1) <= eps * (1 + 1e-12))
    with pytest.raises(ValueError, match="gradient scale"):
        fopa.projected_gradient_ascent(net, X, np.zeros(4), eps, method="gram")


def test_tight_bounds_that_overflow_inside_an_eigenproblem_get_the_clear_error():
    # found by hostile testing: W = 1e100 with x = 1e-150 raised numba's LinAlgError
    # ("Array must not contain infs or NaNs") from the tight bounds' eigenproblem
    net = _scaled("tanh", 1e100, 1.0, seed=1)
    X = 1e-150 * np.random.default_rng(0).standard_normal((4, 6))
    with pytest.raises(ValueError, match="overflow float64"):
        fopa.projected_gradient_ascent(net, X, np.zeros(4), 1e-150, init="sphere", rng=0)


@pytest.mark.parametrize("method", ["auto", "dense"])
def test_a_certificate_whose_bounds_overflow_gets_the_clear_error(method):
    # found by hostile testing: W = 1e150 gave "Array must not contain infs or NaNs."
    net = _scaled("tanh", 1e150, 1.0, seed=1)
    x = np.random.default_rng(0).standard_normal(6)
    with pytest.raises(ValueError, match="overflow float64"):
        fopa.certify(net, x, 0.0, np.full(6, 0.04), 0.2, method=method)
