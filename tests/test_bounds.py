"""The closed-form bounds over the ball dominate values sampled inside it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa.testing import loss_problems as problems

from . import reference as ref


def _ball_samples(gen, x, eps, k):
    """k points in the ball: half uniform inside, half on the sphere."""
    d = x.size
    h = gen.standard_normal((k, d))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    radius = eps * np.concatenate([gen.uniform(size=k // 2) ** (1 / d), np.ones(k - k // 2)])
    return x + radius[:, None] * h


def _norms(rows):
    """Row norms without underflow: squares of entries below 1e-154 are subnormal."""
    scale = np.max(np.abs(rows), axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    return scale * np.linalg.norm(rows / safe[:, None], axis=1)


@given(problems(max_d=12, max_m=24), st.floats(1e-3, 10.0))
def test_bounds_dominate_sampled_values(problem, eps):
    net, x, y, lossname = problem
    c = fopa.ball_constants(net, x, y, eps, loss=lossname)
    gen = np.random.default_rng(0)
    P = _ball_samples(gen, x, eps, 64)
    Y = np.full(len(P), y)
    values = fopa.loss(net, P, Y, loss=lossname)
    grads = fopa.input_gradient(net, P, Y, loss=lossname)
    hess = fopa.input_hessian(net, P, Y, loss=lossname)
    assert np.all(values <= c.loss_max)
    assert np.all(_norms(grads) <= c.gradient_bound)
    assert np.all(np.linalg.norm(hess, 2, axis=(1, 2)) <= c.beta)
    # Hessian Lipschitz: difference quotients between pairs of sampled points
    diffs = np.linalg.norm(hess[::2] - hess[1::2], 2, axis=(1, 2))
    dist = np.linalg.norm(P[::2] - P[1::2], axis=1)
    assert np.all(diffs <= c.rho * dist * (1 + 1e-9) + 1e-12 * c.beta)
    f = np.array([ref.predict(net, p) for p in P[:8]])
    assert np.all(np.abs(f) <= c.output_bound * (1 + 1e-12))


@given(problems(max_d=8, max_m=16), st.floats(1e-2, 3.0))
def test_rho_dominates_the_third_derivative(problem, eps):
    net, x, y, lossname = problem
    c = fopa.ball_constants(net, x, y, eps, loss=lossname)
    gen = np.random.default_rng(1)
    for p in _ball_samples(gen, x, eps, 6):
        u, v = gen.standard_normal((2, x.size))
        u /= np.linalg.norm(u)
        v /= np.linalg.norm(v)
        t = fopa.third_derivative(net, p, y, u, v, loss=lossname)
        assert np.linalg.norm(t) <= c.rho * (1 + 1e-9) + 1e-300


def test_bounds_do_not_underflow_in_an_activation_tail():
    # found by hypothesis: |gelu'| ~ 1e-169 over the ball made G^2 underflow to 0
    net = fopa.TwoLayerNet(np.array([[-0.66996795]]), np.array([1.0]), np.array([-0.02157202]),
                           "gelu")  # fmt: skip
    x, y, eps = np.array([42.60978906]), -0.3451349359097739, 1.0
    c = fopa.ball_constants(net, x, y, eps)
    grads = fopa.input_gradient(net, x + np.linspace(-eps, eps, 21)[:, None], y)
    assert np.max(np.abs(grads)) > 0
    assert np.all(np.abs(grads[:, 0]) <= c.gradient_bound)
    assert c.network_gradient_bound > 0 and c.beta > 0 and c.rho > 0


def test_batched_constants_equal_single_ones():
    net = fopa.TwoLayerNet.random(5, 8, rng=0)
    X = np.random.default_rng(0).standard_normal((3, 5))
    batch = fopa.ball_constants(net, X, [0.1, 0.2, 0.3], 0.5)
    for i in range(3):
        one = fopa.ball_constants(net, X[i], [0.1, 0.2, 0.3][i], 0.5)
        assert one.beta == pytest.approx(batch.beta[i], rel=1e-14)
        assert one.rho == pytest.approx(batch.rho[i], rel=1e-14)
        assert isinstance(one.loss_max, float)


def test_linear_network_constants_are_exact():
    # f(x) = c a.(W x): gradient constant, no curvature of f
    net = fopa.TwoLayerNet.random(4, 6, activation="linear", rng=2)
    x = np.ones(4)
    c = fopa.ball_constants(net, x, 0.0, 1.0)
    assert c.network_hessian_bound == 0.0 and c.network_third_bound == 0.0
    g = ref.network_gradient(net, x)
    assert c.network_gradient_bound >= np.linalg.norm(g)
    # for the quadratic loss beta = G^2 and rho = 0
    assert c.rho == 0.0
    assert c.beta == pytest.approx(c.network_gradient_bound**2, rel=1e-9)


@pytest.mark.parametrize("eps", [0.0, -1.0, np.nan, np.inf])
def test_bad_radius(eps):
    net = fopa.TwoLayerNet.random(3, 3, rng=0)
    with pytest.raises(ValueError, match="eps"):
        fopa.ball_constants(net, np.zeros(3), 0.0, eps)


def test_bad_radius_type():
    net = fopa.TwoLayerNet.random(3, 3, rng=0)
    with pytest.raises(TypeError, match="eps"):
        fopa.ball_constants(net, np.zeros(3), 0.0, "1")


@given(
    problems(max_d=10, max_m=40, min_scale=1.0, max_scale=1.0),
    st.sampled_from((0.01, 0.1, 1.0)),
    st.sampled_from((0.01, 0.1, 0.5, 1.0)),
    st.sampled_from(("tight", "fast", "row_sum")),
)
@settings(max_examples=30)
def test_bounds_dominate_adversarially_maximized_values(problem, tau, ratio, method):
    from fopa.audit import audit_ball_constants

    net, x, y, lossname = problem
    x = tau * np.sqrt(net.d) * x / np.linalg.norm(x)
    eps = ratio * np.linalg.norm(x)
    audit = audit_ball_constants(net, x, y, eps, loss=lossname, method=method, n_samples=16,
                                 n_steps=15, rng=0)  # fmt: skip
    assert audit.passed, (audit.violations, audit.found, audit.bounds)
    if method != "row_sum":  # tight <= fast <= row-sum, bound by bound
        looser = "fast" if method == "tight" else "row_sum"
        for other in {looser, "row_sum"}:
            old = fopa.ball_constants(net, x, y, eps, loss=lossname, method=other)
            for name in ("gradient_bound", "beta", "rho", "loss_max", "output_bound"):
                assert getattr(audit.bounds, name) <= getattr(old, name) * (1 + 1e-12), name


def test_the_tight_smoothness_bound_does_not_grow_with_the_width():
    # the row-sum beta grows like m while the Hessian over a small ball stays of
    # order one; the tight bound follows the Hessian (docs/derivatives.md)
    from fopa.audit import audit_ball_constants

    for m in (16, 256, 2048):
        gen = np.random.default_rng(m)
        net = fopa.TwoLayerNet.random(16, m, rng=gen)
        x = gen.standard_normal(16)
        x *= 0.1 * 4.0 / np.linalg.norm(x)
        audit = audit_ball_constants(net, x, 0.5, 0.1 * np.linalg.norm(x), rng=0)
        assert audit.passed
        assert audit.looseness["beta"] < 1.5 and audit.looseness["gradient_bound"] < 1.5
        old = fopa.ball_constants(net, x, 0.5, 0.1 * np.linalg.norm(x), method="row_sum")
        if m == 2048:
            assert old.beta > 50 * audit.bounds.beta


def test_audit_reports_a_bound_below_a_found_value(monkeypatch):
    import dataclasses

    import fopa.audit

    net = fopa.TwoLayerNet.random(3, 5, rng=0)
    honest = fopa.audit.audit_ball_constants(net, np.ones(3), 0.2, 0.5, rng=0)
    assert honest.passed

    def too_small(*args, **kwargs):  # a smoothness bound below the true Hessian norm
        c = fopa.ball_constants(*args, **kwargs)
        return dataclasses.replace(c, beta=0.5 * honest.found["beta"])

    monkeypatch.setattr(fopa.audit, "ball_constants", too_small)
    audit = fopa.audit.audit_ball_constants(net, np.ones(3), 0.2, 0.5, rng=0)
    assert not audit.passed and audit.violations == ("beta",)
    assert audit.looseness["beta"] < 1


def test_unknown_bound_method():
    net = fopa.TwoLayerNet.random(3, 3, rng=0)
    with pytest.raises(ValueError, match="method"):
        fopa.ball_constants(net, np.zeros(3), 0.0, 1.0, method="loose")
