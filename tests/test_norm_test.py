"""The norm test that settles most checkpoints of ``certify_every`` in O(md) per row,
against a dense reference tangent spectrum and against the full certificate."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
import fopa._pga_pieces as pieces
from fopa._kernels.certificate import norm_test_rows
from fopa.bounds import tolerance_scales
from fopa.losses import loss_code

from . import reference as ref

ACTIVATIONS = ["tanh", "sigmoid", "softplus", "gelu", "silu", "quadratic", "linear"]


def _gradient_and_hessian(net, p, y, loss):
    """grad L and hess L as in docs/derivatives.md, with the activation's derivatives
    from fopa.activation_derivatives (checked against mpmath in test_activations):
    the reference's ``1 - tanh^2`` cancels at the saturated pre-activations of the
    large scales drawn here."""
    z = net.W @ p + net.b
    _, s1, s2, _ = fopa.activation_derivatives(net.activation, z)
    ca = net.output_scale * net.a
    f = float(ca @ fopa.activation_derivatives(net.activation, z)[0]) + net.output_bias
    _, l1, l2, _ = ref.loss_derivs(loss, f, y)
    grad_f = net.W.T @ (ca * s1)
    hess = net.W.T @ ((l1 * ca * s2)[:, None] * net.W) + l2 * np.outer(grad_f, grad_f)
    return l1 * grad_f, hess


def _case(d, m, act, loss, tau, seed, n=3):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    X = tau * gen.standard_normal((n, d))
    Y = np.sign(gen.standard_normal(n)) if loss == "logistic" else gen.standard_normal(n)
    return net, X, Y, gen


def _problems(d_max, m_max, log_tau_max, ratios):
    """Hypothesis strategies of a random problem's shape, activation, loss, input
    scale tau = 10^log_tau (from 1e-3), radius eps / ||x|| and seed."""
    return dict(
        d=st.integers(2, d_max), m=st.integers(1, m_max), act=st.sampled_from(ACTIVATIONS),
        loss=st.sampled_from(["quadratic", "logistic"]), log_tau=st.floats(-3, log_tau_max),
        ratio=st.sampled_from(ratios), seed=st.integers(0, 2**31),
    )  # fmt: skip


@given(**_problems(24, 48, 2, [0.01, 0.1, 0.5, 1.0]))
@settings(max_examples=60, deadline=None)
def test_norm_bound_dominates_the_tangent_spectrum(d, m, act, loss, log_tau, ratio, seed):
    net, X, Y, gen = _case(d, m, act, loss, 10.0**log_tau, seed)
    eps = ratio * max(float(np.linalg.norm(X, axis=1).mean()), 1e-3)
    D = gen.standard_normal(X.shape)
    D *= eps / np.linalg.norm(D, axis=1, keepdims=True)
    D[2] *= 0.5  # inside the ball
    out = norm_test_rows(net.kernel_view, loss_code(loss), X, Y, D, eps, net.weight_norm)
    # the certificate's units (gradient and curvature scales of the ball): the
    # reference's own rounding (1 - tanh^2 at saturation, say) is small in them
    scales, curvatures = tolerance_scales(net, X, Y, eps, loss_code(loss))
    for i in range(2):
        p = X[i] + D[i]
        u = D[i] / np.linalg.norm(D[i])
        g, hess = _gradient_and_hessian(net, p, Y[i], loss)
        mu = u @ g / eps
        B = scipy.linalg.null_space(u[None, :])
        top = np.linalg.eigvalsh(B.T @ (hess - mu * np.eye(d)) @ B)[-1]
        grad_unit, curv_unit = 1e-12 * scales[i], 1e-12 * (curvatures[i] + scales[i] / eps)
        assert out[i, 0] == 1.0
        assert out[i, 1] == pytest.approx(mu, rel=1e-9, abs=grad_unit / eps)
        assert out[i, 2] == pytest.approx(np.linalg.norm(g - (u @ g) * u), rel=1e-6, abs=grad_unit)
        assert out[i, 3] >= top - curv_unit
    assert out[2, 0] == 0.0 and out[2, 3] == np.inf


def _converged_rows(d, m, act, loss, tau, ratio, seed, n=12):
    net, X, Y, _ = _case(d, m, act, loss, tau, seed, n)
    eps = ratio * float(np.linalg.norm(X, axis=1).mean())
    res = fopa.projected_gradient_ascent(net, X, Y, eps, tol=1e-10, max_iter=20_000,
                                         init="sphere", rng=seed, loss=loss)  # fmt: skip
    return net, X, Y, eps, res.delta


@given(**_problems(12, 40, 1.5, [0.05, 0.5, 1.0]))
@settings(max_examples=40, deadline=None)
def test_what_norms_show_the_full_certificate_confirms(d, m, act, loss, log_tau, ratio, seed):
    net, X, Y, eps, D = _converged_rows(d, m, act, loss, 10.0**log_tau, ratio, seed)
    # the ends of the ascent, and points off them by sizes over the certificate's
    # tolerance, so that some fall near it
    gen = np.random.default_rng(seed + 1)
    sizes = np.geomspace(1e-10, 1e-4, D.shape[0])[:, None]
    off = D + sizes * eps * gen.standard_normal(D.shape)
    off *= np.minimum(1.0, eps / np.linalg.norm(off, axis=1, keepdims=True))
    X2, Y2, D2 = np.vstack([X, X]), np.concatenate([Y, Y]), np.vstack([D, off])
    code = loss_code(loss)
    scales = tolerance_scales(net, X2, Y2, eps, code)
    strict, not_critical = pieces.strict_by_norms(net, code, X2, Y2, D2, eps, scales)
    assert not (strict & not_critical).any()
    for i in np.flatnonzero(strict | not_critical):
        kind = fopa.certify(net, X2[i], Y2[i], D2[i], eps, loss=loss).kind
        assert kind == ("strict_local_max" if strict[i] else "not_critical"), i


def test_norms_show_most_maxima_of_a_small_ball_and_the_runs_do_not_change(monkeypatch):
    # the regime of small input scales: every pre-activation moves by little over
    # the ball, the multiplier dominates the curvature
    net, X, Y, eps, D = _converged_rows(20, 64, "tanh", "quadratic", 0.1, 0.5, seed=3, n=40)
    code = loss_code("quadratic")
    scales = tolerance_scales(net, X, Y, eps, code)
    strict, not_critical = pieces.strict_by_norms(net, code, X, Y, D, eps, scales)
    assert strict.mean() >= 0.9 and not not_critical.any()
    # and it can say no: in a large ball (eps = ||x|| / 2) the units' positive
    # curvature is not dominated by the multiplier, and strict maxima that the full
    # certificate proves are left to it
    net_l, X_l, Y_l, eps_l, D_l = _converged_rows(20, 64, "tanh", "quadratic", 1.0, 0.5,
                                                  seed=3, n=8)  # fmt: skip
    scales = tolerance_scales(net_l, X_l, Y_l, eps_l, code)
    strict_l, _ = pieces.strict_by_norms(net_l, code, X_l, Y_l, D_l, eps_l, scales)
    left = np.flatnonzero(~strict_l)
    assert left.size > 0
    assert fopa.certify(net_l, X_l[left[0]], Y_l[left[0]], D_l[left[0]], eps_l).kind == (
        "strict_local_max"
    )
    # a run with certify_every gives the same first certified iterations with the
    # norm test as with the full certificate at every checkpoint
    real = pieces.strict_by_norms
    for act, loss, tau in [("tanh", "quadratic", 0.1), ("silu", "logistic", 0.3),
                           ("softplus", "quadratic", 1.0), ("sigmoid", "quadratic", 1.0),
                           ("linear", "quadratic", 1.0)]:  # fmt: skip
        net, X, Y, _ = _case(12, 48, act, loss, tau, seed=7, n=30)
        eps = 0.5 * float(np.linalg.norm(X, axis=1).mean())
        kw = dict(tol=1e-10, max_iter=5000, certify_every="auto", loss=loss)
        shown = []

        def counted(*args, real=real, shown=shown):
            strict, not_critical = real(*args)
            shown.append(int(strict.sum() + not_critical.sum()))
            return strict, not_critical

        monkeypatch.setattr(pieces, "strict_by_norms", counted)
        fast = fopa.projected_gradient_ascent(net, X, Y, eps, **kw)
        monkeypatch.setattr(pieces, "strict_by_norms",
                            lambda _n, _c, X, *a: (np.zeros(len(X), bool),) * 2)  # fmt: skip
        full = fopa.projected_gradient_ascent(net, X, Y, eps, **kw)
        assert sum(shown) > 0, act  # the norm test decided something here
        np.testing.assert_array_equal(fast.first_certified_iteration,
                                      full.first_certified_iteration)  # fmt: skip
        np.testing.assert_array_equal(fast.delta, full.delta)
