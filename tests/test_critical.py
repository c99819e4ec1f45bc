"""critical_points: Newton's ends are critical points of every kind, checked against a
dense search on the circle (d = 2) and against brute-force sampling around each saddle
(d = 3)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa.experiments.common import random_instance


def _circle_critical_angles(net, x, y, eps, loss, n=20_000):
    """Angles where dL/dtheta changes sign on the circle of radius eps (d = 2), with
    the kind of the restriction's extremum (max or min)."""
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    pts = eps * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    vals = fopa.loss(net, x + pts, np.full(n, y), loss=loss)
    prev, nxt = np.roll(vals, 1), np.roll(vals, -1)
    maxima = theta[(vals > prev) & (vals > nxt)]
    minima = theta[(vals < prev) & (vals < nxt)]
    return maxima, minima


def _angle(p):
    return np.arctan2(p[1], p[0]) % (2 * np.pi)


def _near(angle, angles, tol):
    if angles.size == 0:
        return False
    gap = np.abs((angles - angle + np.pi) % (2 * np.pi) - np.pi)
    return gap.min() < tol


@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
@pytest.mark.parametrize("seed", range(6))
def test_on_the_circle_every_end_is_a_critical_point_of_the_right_kind(seed, loss):
    gen = np.random.default_rng(seed)
    net, x_hat, y = random_instance(2, 12, "tanh", gen)
    x = 3.0 * x_hat
    eps = 0.5 * float(np.linalg.norm(x))
    cp = fopa.critical_points(net, x, y, eps, n_starts=48, interior_starts=0, rng=seed,
                              loss=loss)  # fmt: skip
    maxima, minima = _circle_critical_angles(net, x, y, eps, loss)
    step = 2 * np.pi / 20_000
    assert cp.n_converged > 0
    assert np.all(np.asarray(cp.certificates.kkt_residual) <= 1e-7)
    for p, kind, mu in zip(cp.points, cp.kind, cp.certificates.multiplier, strict=True):
        assert np.linalg.norm(p) == pytest.approx(eps, rel=1e-12)
        a = _angle(p)
        if kind == "strict_local_max":  # a maximum of the restriction, L grows outward
            assert _near(a, maxima, 3 * step) and mu > 0
        elif kind == "local_min":
            assert _near(a, minima, 3 * step)
        elif kind == "not_critical":  # a critical point of the restriction with mu < 0
            assert _near(a, np.concatenate([maxima, minima]), 3 * step) and mu < 0
        else:
            assert kind == "degenerate"
    # the best maximum on the circle is found and is the first point
    best = maxima[np.argmax(fopa.loss(net, x + eps * np.stack([np.cos(maxima), np.sin(maxima)],
                                                             axis=1), np.full(maxima.size, y),
                                      loss=loss))]  # fmt: skip
    first_is_best = _near(_angle(cp.points[0]), np.array([best]), 3 * step)
    assert first_is_best or cp.kind[0] != "strict_local_max"
    assert cp.loss[0] == pytest.approx(cp.loss.max())


def test_saddles_on_the_sphere_are_saddles_by_sampling():
    """d = 3: around each reported saddle, feasible points with a larger and with a smaller
    loss within a small distance (on the sphere for the saddles there; the ball's
    saddles inside it too)."""
    found = inside_saddles = 0
    for seed in range(12):
        gen = np.random.default_rng(seed)
        net, x_hat, y = random_instance(3, 16, "tanh", gen)
        x = 4.0 * x_hat
        eps = 0.5 * float(np.linalg.norm(x))
        cp = fopa.critical_points(net, x, y, eps, n_starts=64, rng=seed)
        for k in cp.of_kind("saddle"):
            found += 1
            s = cp.points[k]
            cert = fopa.certify(net, x, y, s, eps)
            assert cert.kind == "saddle" and cert.multiplier >= 0
            # sample the sphere near s
            z = gen.standard_normal((4000, 3))
            if cert.on_boundary:  # tangent steps, retracted to the sphere
                z -= np.outer(z @ s, s) / eps**2
            z *= (1e-3 * eps / np.linalg.norm(z, axis=1))[:, None]
            near = s + z
            if cert.on_boundary:
                near *= (eps / np.linalg.norm(near, axis=1))[:, None]
            else:
                inside_saddles += 1
            vals = fopa.loss(net, x + near, np.full(4000, y))
            assert vals.max() > cp.loss[k] > vals.min()
    assert found >= 3 and inside_saddles >= 1  # the test saw saddles, inside too


def test_interior_starts_find_interior_points_and_the_kinds_are_the_certificates():
    gen = np.random.default_rng(3)
    net, x_hat, y = random_instance(4, 10, "tanh", gen)
    x = 3.0 * x_hat
    eps = 0.5 * float(np.linalg.norm(x))
    cp = fopa.critical_points(net, x, y, eps, n_starts=8, interior_starts=32, rng=1)
    assert cp.n_starts == 40 and cp.hits.sum() == cp.n_converged
    again = fopa.certify(net, np.tile(x, (len(cp.kind), 1)), y, cp.points, eps)
    assert list(again.kind) == list(cp.kind)
    assert np.all(np.linalg.norm(cp.points, axis=1) <= eps * (1 + 1e-12))
    inside = np.linalg.norm(cp.points, axis=1) < eps * (1 - 1e-6)
    if inside.any():  # interior ends: a vanishing gradient
        g = fopa.input_gradient(net, x + cp.points[inside], np.full(inside.sum(), y))
        assert np.all(np.asarray(cp.certificates.kkt_residual)[inside] <= 1e-7)
        assert np.all(np.isfinite(g))
    # distinct: no two points closer than the merge distance
    for i in range(len(cp.kind)):
        for j in range(i):
            assert np.linalg.norm(cp.points[i] - cp.points[j]) > 1e-4 * eps


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(2, 6), m=st.integers(2, 24),
    activation=st.sampled_from(fopa.ACTIVATIONS), loss=st.sampled_from(fopa.LOSSES),
    log_tau=st.floats(-3, 1.5), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_every_end_is_certified_critical_for_any_problem(d, m, activation, loss, log_tau, seed):
    gen = np.random.default_rng(seed)
    net, x_hat, y = random_instance(d, m, activation, gen)
    x = 10.0**log_tau * x_hat
    eps = 0.5 * float(np.linalg.norm(x))
    cp = fopa.critical_points(net, x, y, eps, n_starts=12, interior_starts=4, rng=seed,
                              loss=loss, max_iter=60)  # fmt: skip
    assert cp.hits.sum() == cp.n_converged <= cp.n_starts == 16
    assert np.all(np.asarray(cp.certificates.kkt_residual) <= 1e-7)
    assert np.all(np.isfinite(cp.loss)) and np.all(np.diff(cp.loss) <= 0)
    assert set(cp.kind) <= set(fopa.certify.__globals__["KINDS"])
    for k in cp.of_kind("saddle"):
        c = cp.certificates
        assert c.max_tangent_eigenvalue[k] > 0 > c.min_tangent_eigenvalue[k]


def test_same_seed_same_bits_and_clear_errors():
    gen = np.random.default_rng(0)
    net, x_hat, y = random_instance(3, 8, "tanh", gen)
    a = fopa.critical_points(net, 3 * x_hat, y, 2.0, n_starts=16, rng=5)
    b = fopa.critical_points(net, 3 * x_hat, y, 2.0, n_starts=16, rng=5)
    assert np.array_equal(a.points, b.points) and list(a.kind) == list(b.kind)
    with pytest.raises(ValueError, match="n_starts"):
        fopa.critical_points(net, x_hat, y, 1.0, n_starts=0, interior_starts=0)
    with pytest.raises(ValueError, match="tol"):
        fopa.critical_points(net, x_hat, y, 1.0, tol=-1.0)
    with pytest.raises(ValueError, match="eps"):
        fopa.critical_points(net, x_hat, y, 0.0)
    with pytest.raises(ValueError, match="max_iter"):
        fopa.critical_points(net, x_hat, y, 1.0, max_iter=-1)
    none = fopa.critical_points(net, x_hat, y, 1.0, n_starts=4, max_iter=0)
    assert none.n_starts == 5 and none.points.shape[1] == 3  # ends not converged: dropped
