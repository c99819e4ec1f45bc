"""Certificates against constructed truths, grid searches, sampling and the theory."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import fopa

from . import reference as ref


def _ascend(net, x, y, eps, **kw):
    kw = {"tol": 1e-11, "max_iter": 200_000, **kw}
    return fopa.projected_gradient_ascent(net, x, y, eps, **kw)


def _random_case(d=6, m=12, act="tanh", seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    return net, gen.standard_normal(d), float(gen.standard_normal())


@pytest.mark.parametrize("d,m", [(6, 12), (20, 4), (9, 3)])
@pytest.mark.parametrize("act", ["tanh", "gelu", "softplus"])
def test_methods_agree_and_match_a_reference_tangent_hessian(d, m, act):
    net, x, y = _random_case(d, m, act, seed=d + m)
    res = _ascend(net, x, y, 0.6, init="sphere", rng=1)
    certs = {
        k: fopa.certify(net, x, y, res.delta, 0.6, method=k)
        for k in ("factor", "dense", "lowrank", "lanczos")
    }
    u = res.delta / np.linalg.norm(res.delta)
    g = ref.gradient(net, x + res.delta, y)
    mu = u @ g / 0.6
    B = scipy.linalg.null_space(u[None, :])
    want = scipy.linalg.eigvalsh(B.T @ (ref.hessian(net, x + res.delta, y) - mu * np.eye(d)) @ B)
    got = fopa.tangent_spectrum(net, x, y, res.delta, 0.6)
    np.testing.assert_allclose(got, want, atol=1e-10)
    for cert in certs.values():
        assert cert.kind == certs["dense"].kind
        assert cert.multiplier == pytest.approx(mu, rel=1e-10)
        assert cert.max_tangent_eigenvalue == pytest.approx(want[-1], abs=1e-8)
        assert cert.min_tangent_eigenvalue == pytest.approx(want[0], abs=1e-8)
        # alpha is exact for the low-rank method and an upper bound for the others
        exact_alpha = np.max(
            np.abs(np.linalg.eigvalsh(ref.hessian(net, x + res.delta, y) - mu * np.eye(d)))
        )
        assert cert.alpha >= exact_alpha * (1 - 1e-9)
        if cert.method == "lowrank":
            assert cert.alpha == pytest.approx(exact_alpha, rel=1e-9)
        assert 0 < cert.radius


def test_linear_activation_has_the_closed_form_maximizer():
    net = fopa.TwoLayerNet.random(5, 7, activation="linear", rng=3)
    x, y, eps = np.ones(5), -0.2, 0.8
    g = ref.network_gradient(net, x)
    r0 = ref.predict(net, x) - y
    best = np.sign(r0) * eps * g / np.linalg.norm(g)
    res = _ascend(net, x, y, eps)
    np.testing.assert_allclose(res.delta, best, atol=1e-8)
    cert = fopa.certify(net, x, y, res.delta, eps)
    assert cert.kind == "strict_local_max" and cert.radius > 0
    # at the antipode grad L = r g with r = f - y there, H_T = -mu I: a strict local
    # maximum exactly when mu > 0, i.e. eps ||g|| > |f(x) - y|; else mu < 0
    other = fopa.certify(net, x, y, -best, eps)
    if eps * np.linalg.norm(g) > abs(r0):
        assert other.kind == "strict_local_max"
        assert other.max_tangent_eigenvalue == pytest.approx(-other.multiplier)
    else:
        assert other.kind == "not_critical" and other.multiplier < 0
    assert fopa.certify(net, x, y, 0.5 * best, eps).kind == "not_critical"


def test_saddle_max_and_min_placed_by_symmetry():
    # f = d1^2 + 0.5 d2^2 + 0.25 d3^2 at x = 0; with y = -10, L grows with f: on the
    # sphere e1 maximizes the form, e2 is a saddle and e3 minimizes it (with mu > 0
    # everywhere, so all three are KKT points of the ball problem)
    net = fopa.TwoLayerNet(np.eye(3), [1.0, 0.5, 0.25], activation="quadratic")
    eps = 0.5
    kinds = [fopa.certify(net, np.zeros(3), -10.0, eps * e, eps).kind for e in np.eye(3)]
    assert kinds == ["strict_local_max", "saddle", "local_min"]
    cert = fopa.certify(net, np.zeros(3), -10.0, eps * np.eye(3)[1], eps)
    assert cert.max_tangent_eigenvalue > 0 > cert.min_tangent_eigenvalue
    assert cert.radius == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_activation_matches_the_trust_region_solution(seed):
    # f is quadratic in delta, so max L = max(q_max, -q_min)^2 / 2 with q = f - y,
    # each a trust-region subproblem solved exactly
    gen = np.random.default_rng(seed)
    d, m, eps = 4, 6, 0.7
    net = fopa.TwoLayerNet.random(d, m, activation="quadratic", rng=gen)
    x, y = gen.standard_normal(d) * 0.5, 0.3
    g = ref.network_gradient(net, x)
    H = ref.network_hessian(net, x)
    q0 = ref.predict(net, x) - y
    up = fopa.maximize_quadratic_on_ball(g, H, eps)
    down = fopa.maximize_quadratic_on_ball(-g, -H, eps)
    best = max(q0 + up.value, -(q0 - down.value)) ** 2 / 2
    res = _ascend(net, x, y, eps, init="sphere", n_restarts=24, rng=seed)
    cert = fopa.certify(net, x, y, res.delta, eps)
    assert cert.kind == "strict_local_max"
    assert res.loss == pytest.approx(best, rel=1e-9)
    # no restart's end beats the exact global value
    assert np.all(res.restarts.loss <= best * (1 + 1e-9))


def test_trust_region_solver_against_brute_force():
    gen = np.random.default_rng(0)
    theta = np.linspace(0, 2 * np.pi, 20001)
    for trial in range(60):
        g = gen.standard_normal(2) * gen.choice([0.0, 1e-3, 1.0])
        A = gen.standard_normal((2, 2))
        H = A + A.T if trial % 4 else np.diag([1.0, -1.0])
        eps = gen.uniform(0.1, 2.0)
        sol = fopa.maximize_quadratic_on_ball(g, H, eps)
        assert np.linalg.norm(sol.point) <= eps * (1 + 1e-12)
        circle = eps * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        vals = circle @ g + 0.5 * np.einsum("ij,jk,ik->i", circle, H, circle)
        assert sol.value >= vals.max() - 1e-12
        # inside: the concave case's stationary point, if feasible
        if np.all(np.linalg.eigvalsh(H) < 0):
            inner = -np.linalg.solve(H, g)
            if np.linalg.norm(inner) <= eps:
                assert sol.value == pytest.approx(g @ inner + 0.5 * inner @ H @ inner, abs=1e-12)
        assert sol.value <= max(vals.max(), 0.0) + 1e-6 * (1 + abs(vals.max())) or not np.all(
            np.linalg.eigvalsh(H) < 0
        )


def _circle_maxima(net, x, y, eps, n=20000):
    """Local maxima of the ball problem on the circle ||delta|| = eps (grid, refinement)."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = eps * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    vals = fopa.loss(net, x + pts, np.full(n, y))
    peaks = np.flatnonzero((vals > np.roll(vals, 1)) & (vals > np.roll(vals, -1)))
    out = []
    for k in peaks:

        def neg(t):
            return -fopa.loss(net, x + eps * np.array([np.cos(t), np.sin(t)]), y)

        step = 2 * np.pi / n
        t = minimize_scalar(neg, bounds=(theta[k] - step, theta[k] + step), method="bounded",
                            options={"xatol": 1e-12}).x  # fmt: skip
        p = eps * np.array([np.cos(t), np.sin(t)])
        # a maximum along the circle is one of the ball problem only if the loss
        # does not grow toward the inside (multiplier > 0)
        if p @ fopa.input_gradient(net, x + p, y) > 0:
            out.append(p)
    return np.array(out)


@pytest.mark.parametrize("seed", range(4))
def test_certified_maxima_match_a_grid_search_on_the_circle(seed):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(2, 8, activation="tanh", rng=gen)
    x, y, eps = gen.standard_normal(2), float(gen.standard_normal()), 1.5
    truth = _circle_maxima(net, x, y, eps)
    res = _ascend(net, x, y, eps, init="sphere", n_restarts=64, rng=seed)
    ends = res.restarts.end
    certs = fopa.certify(net, np.tile(x, (64, 1)), y, ends, eps)
    strict = certs.kind == "strict_local_max"
    found = ends[strict & certs.on_boundary]
    # every certified boundary point is a grid maximum, and every grid maximum is found
    for p in found:
        assert np.min(np.linalg.norm(truth - p, axis=1)) < 1e-5
    for t in truth:
        assert np.min(np.linalg.norm(found - t, axis=1)) < 1e-5
    # an interior maximum of the quadratic loss needs grad f = 0 there (a theorem)
    for p in ends[strict & ~certs.on_boundary]:
        assert np.linalg.norm(ref.network_gradient(net, x + p)) < 1e-8


def test_certified_maxima_match_a_grid_search_on_the_sphere():
    gen = np.random.default_rng(7)
    net = fopa.TwoLayerNet.random(3, 10, activation="tanh", rng=gen)
    x, y, eps = gen.standard_normal(3), 0.4, 1.5
    th, ph = np.meshgrid(np.linspace(0, np.pi, 361), np.linspace(0, 2 * np.pi, 720, endpoint=False))
    pts = eps * np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1)
    vals = fopa.loss(net, x + pts.reshape(-1, 3), np.full(pts.size // 3, y)).reshape(th.shape)
    # grid local maxima (8 neighbours, periodic in phi), refined by PGA on the sphere
    nb = [np.roll(np.roll(vals, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j]
    peak = np.all([vals > v for v in nb], axis=0)
    peak[:, [0, -1]] = False
    seeds = pts[peak]
    refined = _ascend(net, np.tile(x, (len(seeds), 1)), y, eps, init=seeds, constraint="sphere",
                      step_size="lipschitz")  # fmt: skip
    truth = refined.delta[fopa.certify(net, np.tile(x, (len(seeds), 1)), y, refined.delta, eps).kind
                          == "strict_local_max"]  # fmt: skip
    res = _ascend(net, x, y, eps, init="sphere", n_restarts=96, rng=3)
    certs = fopa.certify(net, np.tile(x, (96, 1)), y, res.restarts.end, eps)
    found = res.restarts.end[certs.kind == "strict_local_max"]
    assert len(truth) >= 1
    for p in found:
        assert np.min(np.linalg.norm(truth - p, axis=1)) < 1e-5
    for t in truth:
        assert np.min(np.linalg.norm(found - t, axis=1)) < 1e-5


@pytest.mark.parametrize("act", ["tanh", "silu", "quadratic"])
@pytest.mark.parametrize("lossname", fopa.LOSSES)
@pytest.mark.parametrize("d,m", [(5, 9), (80, 120)])  # (80, 120): Lanczos and Cholesky
def test_sampling_never_beats_a_certified_point(act, lossname, d, m):
    gen = np.random.default_rng(11)
    eps = 0.8
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    X = gen.standard_normal((4, d))
    Y = gen.choice([-1.0, 1.0], 4) if lossname == "logistic" else gen.standard_normal(4)
    res = _ascend(net, X, Y, eps, init="sphere", rng=5, loss=lossname)
    certs = fopa.certify(net, X, Y, res.delta, eps, loss=lossname)
    assert np.all(certs.method == "factor")
    assert np.any(certs.kind == "strict_local_max")
    for i in np.flatnonzero(certs.kind == "strict_local_max"):
        assert certs.radius[i] > certs.inner_radius[i] >= 0
        h = gen.standard_normal((3000, d))
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        s = gen.uniform(certs.inner_radius[i], certs.radius[i], 3000)
        pts = res.delta[i] + s[:, None] * h
        norms = np.linalg.norm(pts, axis=1)
        half = np.arange(3000) % 2 == 0  # half pushed onto the sphere (where maxima live)
        pts[half] *= eps / norms[half, None]
        pts[~half] *= np.minimum(1.0, eps / norms[~half])[:, None]
        vals = fopa.loss(net, X[i] + pts, np.full(3000, Y[i]), loss=lossname)
        assert np.all(vals <= certs.loss[i] + 1e-13 * abs(certs.loss[i]))


def test_measured_tail_rate_matches_local_rate():
    net, x, y = _random_case(8, 16, "tanh", seed=4)
    eps = 0.9
    res = _ascend(net, x, y, eps, tol=1e-14, init="sphere", rng=2, step_size="lipschitz",
                  record_history=True)  # fmt: skip
    cert = fopa.certify(net, x, y, res.delta, eps)
    assert cert.kind == "strict_local_max"
    q = fopa.local_rate(cert, res.step_size)
    dist = res.history.distance_to_final
    window = np.flatnonzero((dist < 1e-4) & (dist > 1e-10))
    assert window.size > 10
    measured = (dist[window[-1]] / dist[window[0]]) ** (1.0 / (window[-1] - window[0]))
    assert measured == pytest.approx(q, rel=0.05)


def test_interior_points_and_not_critical_points():
    net, x, y = _random_case(4, 6, seed=9)
    cert = fopa.certify(net, x, y, np.zeros(4), 0.5)
    assert cert.kind == "not_critical" and not cert.on_boundary
    assert cert.tangent_gradient_norm == pytest.approx(np.linalg.norm(ref.gradient(net, x, y)))
    assert cert.multiplier == 0.0 and cert.radius == 0.0
    assert "gradient norm" in cert.reason


def test_certify_every_reports_the_first_certified_iteration():
    net, x, y = _random_case(5, 10, seed=6)
    res = _ascend(net, x, y, 0.7, tol=1e-10, certify_every=5)
    assert 0 <= res.first_certified_iteration <= res.iterations
    assert res.first_certified_iteration % 5 == 0 or res.first_certified_iteration == res.iterations
    assert res.history is None


def test_local_rate_inside_uses_the_hessian():
    cert = fopa.Certificate(
        kind="strict_local_max", on_boundary=False, multiplier=0.0, tangent_gradient_norm=0.0,
        max_tangent_eigenvalue=-1.0, min_tangent_eigenvalue=-3.0, radius=1.0, inner_radius=0.0,
        rho=1.0, alpha=3.0, loss=1.0, reason="", method="dense", kkt_residual=0.0,
        gradient_scale=1.0, curvature_scale=3.0,
    )  # fmt: skip
    assert fopa.local_rate(cert, 0.1) == pytest.approx(0.9)
    assert fopa.local_rate(cert, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(delta=np.full(4, 1.0)), ValueError, "must lie in the ball"),
        (dict(delta=np.array([np.nan, 0, 0, 0])), ValueError, "delta must be finite"),
        (dict(delta=np.zeros(3)), ValueError, "delta must have shape"),
        (dict(eps=0.0), ValueError, "eps must be > 0"),
        (dict(method="qr"), ValueError, "unknown method"),
        (dict(tol=-1.0), ValueError, "tol must be >= 0"),
        (dict(x=np.ones(3)), ValueError, "x must have 4 features"),
    ],
)
def test_bad_input(kwargs, error, match):
    net, x, y = _random_case(4, 6, seed=1)
    args = dict(x=x, delta=np.zeros(4), eps=0.5)
    args.update(kwargs)
    x, delta, eps = args.pop("x"), args.pop("delta"), args.pop("eps")
    with pytest.raises(error, match=match):
        fopa.certify(net, x, y, delta, eps, **args)


def test_tangent_hessian_needs_a_sphere_point():
    net, x, y = _random_case(4, 6, seed=1)
    with pytest.raises(ValueError, match="on the sphere"):
        fopa.tangent_hessian(net, x, y, np.zeros(4), 0.5)
    with pytest.raises(TypeError, match="Certificate"):
        fopa.local_rate("cert", 0.1)


def _drawn_case(d, m, act, lossname, scale, seed):
    """A network, an input of norm ~ scale, a label for the loss and eps = scale / 2."""
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    x = scale * gen.standard_normal(d) / np.sqrt(d)
    y = float(gen.choice([-1.0, 1.0])) if lossname == "logistic" else float(gen.standard_normal())
    return gen, net, x, y, 0.5 * scale


@given(
    d=st.integers(66, 130),
    m=st.integers(1, 300),
    act=st.sampled_from(["tanh", "gelu", "softplus", "sigmoid"]),
    lossname=st.sampled_from(["quadratic", "logistic"]),
    where=st.sampled_from(["ascent", "sphere", "inside"]),
    scale=st.floats(-3, 2).map(lambda t: 10.0**t),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=25, deadline=None)
def test_factor_route_agrees_with_the_eigendecomposition(d, m, act, lossname, where, scale, seed):
    gen, net, x, y, eps = _drawn_case(d, m, act, lossname, scale, seed)
    if where == "ascent":
        delta = _ascend(net, x, y, eps, tol=1e-10, max_iter=20_000, loss=lossname).delta
    else:
        delta = gen.standard_normal(d)
        delta *= eps * (1.0 if where == "sphere" else 0.5) / np.linalg.norm(delta)
    dense = fopa.certify(net, x, y, delta, eps, method="dense", loss=lossname)
    fact = fopa.certify(net, x, y, delta, eps, method="factor", loss=lossname)
    assert fact.method == "factor"
    top = max(abs(dense.max_tangent_eigenvalue), abs(dense.min_tangent_eigenvalue), 1e-300)
    width = 1e-8 * top
    # the proved bounds bracket the eigendecomposition's ends, within the bracket width
    assert dense.max_tangent_eigenvalue - width <= fact.max_eigenvalue_bound
    assert fact.max_eigenvalue_bound <= dense.max_tangent_eigenvalue + width
    assert fact.min_eigenvalue_bound <= dense.min_tangent_eigenvalue + width
    assert dense.min_tangent_eigenvalue - width <= fact.min_eigenvalue_bound
    assert fact.max_tangent_eigenvalue == pytest.approx(dense.max_tangent_eigenvalue, abs=width)
    assert fact.min_tangent_eigenvalue == pytest.approx(dense.min_tangent_eigenvalue, abs=width)
    assert fact.alpha == pytest.approx(dense.alpha, abs=width)
    assert fact.multiplier == pytest.approx(dense.multiplier, rel=1e-9, abs=1e-300)
    assert fact.rho >= dense.rho * (1 - 1e-12)
    assert fact.rho == pytest.approx(dense.rho, rel=1e-8)
    t_e = 1e-7 * dense.curvature_scale
    near = min(
        abs(abs(dense.max_tangent_eigenvalue) - t_e), abs(abs(dense.min_tangent_eigenvalue) - t_e)
    )
    if near > 10 * width:  # away from the class boundaries, the same class
        assert fact.kind == dense.kind, (fact.reason, dense.reason)
    if fact.kind == dense.kind == "strict_local_max":
        assert fact.radius == pytest.approx(dense.radius, rel=1e-6)
        assert fact.inner_radius == pytest.approx(dense.inner_radius, rel=1e-6, abs=1e-12 * eps)


def test_a_batch_with_shared_centers_gives_each_point_its_own_certificate():
    # rho and the tolerance scales are computed once per distinct (x, y) and spread
    # back: every row must get exactly what certifying it alone gives
    gen = np.random.default_rng(5)
    net = fopa.TwoLayerNet.random(70, 40, activation="tanh", rng=gen)
    centers, targets = gen.standard_normal((3, 70)), gen.standard_normal(3)
    pick = np.array([2, 0, 2, 1, 0, 2])
    X, Y = centers[pick], targets[pick]
    D = gen.standard_normal((6, 70))
    D *= 0.4 / np.linalg.norm(D, axis=1, keepdims=True)
    D[::2] *= 0.5  # some inside
    batch = fopa.certify(net, X, Y, D, 0.4)
    for i in range(6):
        alone = fopa.certify(net, X[i], Y[i], D[i], 0.4)
        assert batch.kind[i] == alone.kind
        for field in ("rho", "gradient_scale", "curvature_scale", "alpha", "multiplier",
                      "max_eigenvalue_bound", "min_eigenvalue_bound", "radius"):  # fmt: skip
            assert getattr(batch, field)[i] == getattr(alone, field), field


def test_a_batch_in_row_blocks_agrees_with_one_point_at_a_time():
    gen = np.random.default_rng(6)
    net = fopa.TwoLayerNet.random(100, 200, activation="tanh", rng=gen)
    X, Y = gen.standard_normal((48, 100)), gen.standard_normal(48)
    D = fopa.projected_gradient_ascent(net, X, Y, 0.5).delta
    batch = fopa.certify(net, X, Y, D, 0.5)
    assert np.all(batch.method == "factor")
    for i in (0, 17, 47):
        alone = fopa.certify(net, X[i], Y[i], D[i], 0.5)
        assert batch.kind[i] == alone.kind
        # the batch's centers X W^T come from one BLAS product, a single point's from
        # a loop, and BLAS runs single-threaded inside row blocks: the last bits of
        # rho, the bounds and the radius may differ
        bound = batch.max_eigenvalue_bound[i]
        assert bound == pytest.approx(alone.max_eigenvalue_bound, rel=1e-13)
        assert batch.rho[i] == pytest.approx(alone.rho, rel=1e-14)
        assert batch.radius[i] == pytest.approx(alone.radius, rel=1e-12)


def test_bounds_that_overflow_are_refused_alike_for_one_point_and_a_batch():
    # found in review: one point of a linear network with outputs near 1e160 failed
    # inside the eigensolver ("Array must not contain infs or NaNs") while a batch of
    # the same point got the clear error
    base = fopa.TwoLayerNet.random(3, 4, activation="linear", rng=0)
    net = fopa.TwoLayerNet(base.W, base.a * 1e160, base.b, "linear", base.output_scale)
    x, delta = np.ones(3), np.zeros(3)
    for X, D in ((x, delta), (np.tile(x, (2, 1)), np.tile(delta, (2, 1)))):
        with pytest.raises(ValueError, match="bounds over the ball overflow"):
            fopa.certify(net, X, 0.0, D, 1.0)


@given(
    d=st.integers(12, 90),
    m=st.integers(1, 5),
    act=st.sampled_from(["tanh", "gelu", "softplus", "quadratic"]),
    lossname=st.sampled_from(["quadratic", "logistic"]),
    where=st.sampled_from(["ascent", "sphere", "inside", "row_space", "orthogonal", "mixed"]),
    scale=st.floats(-3, 2).map(lambda t: 10.0**t),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_lowrank_route_agrees_with_the_eigendecomposition(d, m, act, lossname, where, scale, seed):
    # The row-space route (docs/certify.md): every tangent eigenvalue, including points
    # whose normal u lies in W's row space (s = 0), outside it (s = 1) or nearly in it.
    gen, net, x, y, eps = _drawn_case(d, m, act, lossname, scale, seed)
    basis = scipy.linalg.orth(net.W.T)  # (d, rank)
    if where == "ascent":
        delta = _ascend(net, x, y, eps, tol=1e-10, max_iter=20_000, loss=lossname).delta
    else:
        delta = gen.standard_normal(d)
        if where == "row_space":
            delta = basis @ (basis.T @ delta)
        elif where == "orthogonal":
            delta -= basis @ (basis.T @ delta)
        elif where == "mixed":  # almost in the row space
            delta = basis @ (basis.T @ delta) + 1e-9 * (delta - basis @ (basis.T @ delta))
        delta *= eps * (0.5 if where == "inside" else 1.0) / np.linalg.norm(delta)
    dense = fopa.certify(net, x, y, delta, eps, method="dense", loss=lossname)
    low = fopa.certify(net, x, y, delta, eps, method="lowrank", loss=lossname)
    assert low.method == "lowrank"
    want = (
        fopa.tangent_spectrum(net, x, y, delta, eps, loss=lossname)
        if dense.on_boundary
        else np.linalg.eigvalsh(ref.hessian(net, x + delta, y, lossname))
    )
    top = max(np.max(np.abs(want)), 1e-300)
    assert low.max_tangent_eigenvalue == pytest.approx(want[-1], abs=1e-10 * top)
    assert low.min_tangent_eigenvalue == pytest.approx(want[0], abs=1e-10 * top)
    # alpha = ||hess L - mu I||_2, exact here (the dense route's is an upper bound)
    hess = ref.hessian(net, x + delta, y, lossname)
    mu = dense.multiplier if dense.on_boundary else 0.0
    exact = np.max(np.abs(np.linalg.eigvalsh(hess - mu * np.eye(d))))
    assert low.alpha == pytest.approx(exact, abs=1e-10 * max(exact, 1e-300))
    assert low.on_boundary == dense.on_boundary
    # mu = u . grad L / eps: 0 up to rounding when u is orthogonal to the row space
    noise = 1e-12 * np.linalg.norm(ref.gradient(net, x + delta, y, lossname)) / eps
    assert low.multiplier == pytest.approx(dense.multiplier, rel=1e-9, abs=noise + 1e-300)
