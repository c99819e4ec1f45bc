import warnings

import numpy as np
import pytest

import fopa
from fopa._kernels.activation import CRITICAL_POINTS as _CRITICAL_POINTS

from . import reference as ref

Z = np.linspace(-6, 6, 241)


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_against_reference_formulas(name):
    got = fopa.activation_derivatives(name, Z)
    want = np.array(ref.activation(name, Z))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_each_derivative_is_the_finite_difference_of_the_previous(name):
    h = 1e-5
    up = fopa.activation_derivatives(name, Z + h)
    down = fopa.activation_derivatives(name, Z - h)
    mid = fopa.activation_derivatives(name, Z)
    for k in range(3):
        fd = (up[k] - down[k]) / (2 * h)
        np.testing.assert_allclose(fd, mid[k + 1], rtol=1e-7, atol=1e-8)


HUGE = 1e300


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_extremes_are_finite_where_the_truth_is(name):
    z = np.array([-HUGE, -800.0, -50.0, 50.0, 800.0, HUGE])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fopa.activation_derivatives(name, z)
    if name == "quadratic":  # z^2 overflows at 1e300: the true value is not a float
        assert np.all(np.isfinite(out[:, 1:-1]))
        return
    assert np.all(np.isfinite(out)), out


def test_named_extreme_values():
    s = {name: fopa.activation_derivatives(name, [-HUGE, HUGE]) for name in fopa.ACTIVATIONS}
    np.testing.assert_array_equal(s["tanh"][0], [-1.0, 1.0])
    np.testing.assert_array_equal(s["sigmoid"][0], [0.0, 1.0])
    assert s["softplus"][0][1] == HUGE
    assert s["softplus"][0][0] == 0.0
    assert s["gelu"][0][0] == 0.0 and s["gelu"][0][1] == HUGE
    assert s["silu"][0][0] == 0.0 and s["silu"][0][1] == HUGE
    for name in ("tanh", "sigmoid", "gelu", "silu", "softplus"):
        assert np.all(s[name][2:] == 0.0)


def test_tanh_derivative_keeps_relative_accuracy_in_the_tail():
    # sech^2(20) = 4 e^-40 / (1 + e^-40)^2; the naive 1 - tanh^2 would give 0
    got = fopa.activation_derivatives("tanh", [20.0])[1, 0]
    assert got == pytest.approx(4 * np.exp(-40.0), rel=1e-14)


def _next_derivative(name, k, z, h=1e-6):
    """sigma^(k+1) at z; for k = 3 a central difference of the third derivative."""
    if k < 3:
        return fopa.activation_derivatives(name, z)[k + 1]
    up = fopa.activation_derivatives(name, z + h)[3]
    down = fopa.activation_derivatives(name, z - h)[3]
    return (up - down) / (2 * h)


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_critical_points_are_zeros_of_the_next_derivative(name):
    for k, points in enumerate(_CRITICAL_POINTS[name]):
        if points:
            vals = _next_derivative(name, k, np.array(points))
            np.testing.assert_allclose(vals, 0.0, atol=1e-14 if k < 3 else 1e-9)


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_no_critical_point_is_missing(name):
    # sign changes of sigma^(k+1) on a fine grid are exactly the listed points
    grid = np.linspace(-12, 12, 48000)  # even count: 0 is not a grid point
    for k in range(4):
        nxt = _next_derivative(name, k, grid)
        nxt = np.where(np.abs(nxt) < (1e-13 if k < 3 else 1e-8), 0.0, nxt)
        keep = nxt != 0.0
        sign, points = np.sign(nxt[keep]), grid[keep]
        changes = points[np.flatnonzero(sign[:-1] * sign[1:] < 0)]
        listed = np.array(_CRITICAL_POINTS[name][k])
        listed = listed[np.abs(listed) < 12]
        assert len(changes) == len(listed), (k, changes, listed)
        np.testing.assert_allclose(np.sort(changes), np.sort(listed), atol=1e-3)


@pytest.mark.parametrize("name", fopa.ACTIVATIONS)
def test_sup_over_intervals_matches_dense_sampling(name, rng):
    lo = rng.uniform(-6, 6, size=40)
    hi = lo + rng.exponential(2.0, size=40)
    sup = fopa.sup_abs_derivatives(name, lo, hi)
    for i in range(lo.size):
        samples = np.abs(fopa.activation_derivatives(name, np.linspace(lo[i], hi[i], 4001)))
        best = samples.max(axis=1)
        assert np.all(sup[:, i] >= best * (1 - 1e-14) - 1e-300)
        assert np.all(sup[:, i] <= best * (1 + 1e-5) + 1e-12)


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match="tanh, sigmoid, softplus"):
        fopa.activation_derivatives("relu", [0.0])
    with pytest.raises(TypeError, match="activation"):
        fopa.TwoLayerNet(np.ones((2, 2)), np.ones(2), activation=3)


def test_sup_rejects_reversed_interval():
    with pytest.raises(ValueError, match="lo must be <= hi"):
        fopa.sup_abs_derivatives("tanh", [1.0], [0.0])
    with pytest.raises(ValueError, match="same shape"):
        fopa.sup_abs_derivatives("tanh", [1.0], [2.0, 3.0])


def test_own_exponential_is_accurate_to_a_few_ulps():
    from fopa._kernels.activation import exp_nonpositive as _exp_nonpositive
    from fopa._kernels.jit import jit as kernel

    @kernel
    def table(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = _exp_nonpositive(x[i])
        return out

    x = -np.concatenate([np.linspace(0, 708, 200001), np.geomspace(1e-300, 1.0, 1001)])
    got = table(x)
    want = np.exp(x)
    assert np.max(np.abs(got - want) / want) < 4 * np.finfo(float).eps
    np.testing.assert_array_equal(table(np.array([-709.0, -1e300, -np.inf])), 0.0)
    assert table(np.array([0.0]))[0] == 1.0


def test_tanh_and_sigmoid_keep_every_digit_near_zero():
    # found by hostile testing: tanh(1e-12) had a relative error of 2.2e-5, tanh(1e-18)
    # of 100 % (1 - exp(-2|z|) cancelled), and sigmoid'' cancelled the same way
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    z = np.concatenate([-np.geomspace(1e-300, 0.3, 60), np.geomspace(1e-300, 0.3, 60)])

    def tanh_derivs(v):
        t = mpmath.tanh(v)
        s1 = 1 - t**2
        return t, s1, -2 * t * s1, s1 * (6 * t**2 - 2)

    def sigmoid_derivs(v):
        # in t = tanh(v / 2), which mpmath keeps exact near 0 (1 - 2 s would cancel):
        # s = (1 + t)/2, s (1 - s) = (1 - t^2)/4, 1 - 2 s = -t, 1 - 6 s (1 - s)
        t = mpmath.tanh(v / 2)
        d1 = (1 - t**2) / 4
        return (1 + t) / 2, d1, -t * d1, d1 * (1 - 6 * d1)

    for name, exact in (("tanh", tanh_derivs), ("sigmoid", sigmoid_derivs)):
        got = fopa.activation_derivatives(name, z)
        for i, v in enumerate(z):
            want = exact(mpmath.mpf(float(v)))
            for k in range(4):
                w = float(want[k])
                if w == 0.0:
                    continue
                err = abs(got[k, i] - w) / abs(w)
                assert err < 4e-15, (name, k, v, got[k, i], w, err)


def test_a_tanh_network_with_tiny_weights_predicts_to_full_precision():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    gen = np.random.default_rng(0)
    W = 1e-12 * gen.standard_normal((8, 3))
    a = gen.choice([-1.0, 1.0], 8)
    net = fopa.TwoLayerNet(W, a, None, "tanh", 1.0)
    x = gen.standard_normal(3)
    z = W @ x  # the pre-activations as floats: what tanh gets, whatever computes them
    terms = [mpmath.mpf(float(a[r])) * mpmath.tanh(mpmath.mpf(float(z[r]))) for r in range(8)]
    want, size = float(mpmath.fsum(terms)), float(mpmath.fsum(abs(t) for t in terms))
    # the sum of +-tanh cancels: its rounding is relative to the sum of magnitudes
    assert abs(fopa.predict(net, x) - want) <= 1e-14 * size
