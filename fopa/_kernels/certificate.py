"""The dense certificate of one point and the certified radius, compiled.

:func:`dense_point` does in one call what the dense method of :func:`fopa.certify`
needs (gradient, multiplier, Hessian, Householder tangent block, its eigenvalues,
the alpha bound and the loss), so a small certificate costs one dispatch instead
of a dozen NumPy calls. :func:`factor_rows` is the factorization route for a batch
(``docs/certify.md``, "Proofs by factorization"): the tangent block formed
directly with half the multiply-adds, its extreme eigenvalues estimated by Lanczos
and proved by Cholesky factorizations of shifted matrices. :func:`radius` finds
the certified annulus by bisection.
"""

from __future__ import annotations

import math

import numpy as np

from .activation import all_derivatives
from .ball import MODE_FAST, MODE_RHO, MODE_TIGHT, ball_bounds, householder_complement, sphere_kkt
from .jit import jit
from .linalg import all_finite, dot, eigvalsh, norm2, product_into
from .loss import loss_derivatives
from .network import point_coefficients, point_derivatives
from .spectral import eigen_bounds, weighted_gram
from .tolerances import NORM_TEST_SLACK, RADIUS_BISECTION, RADIUS_MARGIN, TINY


@jit
def dense_point(net, weight_norm, FT, loss, x, y, delta, eps):
    """Everything the dense certificate needs at ``p = x + delta`` (one point).

    ``weight_norm`` (``||W||_2``) and ``FT`` (the row-space factor) are what
    :func:`fopa._kernels.ball.ball_bounds` needs besides the network for the tight
    Hessian-Lipschitz bound ``rho`` over the ball around x.

    Returns
    -------
    stats : ndarray, shape (10,)
        ``rho`` (the Hessian-Lipschitz bound), ``on_boundary`` (1 or 0), ``mu`` and
        ``gamma`` (multiplier and tangent-gradient norm; 0 and ``||grad L||``
        inside), ``alpha`` (upper bound of ``||hess L - mu I||_2``, exact inside),
        the loss ``L(p)``, the certified annulus ``inner, outer``
        (``docs/certify.md``, "The certified radius") if the largest eigenvalue is
        negative, else 0, 0 (meaningful when the point is a strict local maximum),
        and the gradient and Hessian scales of the ball (its fast bounds
        ``gradient_bound``, floored at 1e-300, and ``beta``) that make the
        tolerances relative. One
        array: a tuple of scalars costs a microsecond more to hand back to Python.
    eig : ndarray
        Eigenvalues of the tangent Hessian (of ``hess L`` inside), ascending.
    """
    d = x.shape[0]
    X, Y = x.reshape(1, d), np.full(1, y)
    rho = ball_bounds(net, weight_norm, FT, loss, X, Y, eps, MODE_TIGHT)[2, 0]
    fast = ball_bounds(net, weight_norm, FT, loss, X, Y, eps, MODE_FAST)  # the tolerance's units
    scale, curvature = max(fast[0, 0], TINY), fast[1, 0]
    grad, H, value = point_derivatives(net, loss, x + delta, y)
    on_boundary, u, mu, gamma = sphere_kkt(delta, grad, eps)
    norm = norm2(delta)
    if not on_boundary:
        eig = eigvalsh(H)
        alpha = max(abs(eig[0]), abs(eig[-1]))
        inner, outer = radius(False, gamma, eps, 0.0, max(-eig[-1], 0.0), alpha, rho, norm)
        stats = np.array([rho, 0.0, 0.0, gamma, alpha, value, inner, outer, scale, curvature])
        return stats, eig
    for i in range(d):
        H[i, i] -= mu
    if d == 1:  # no tangent directions
        stats = np.array([rho, 1.0, mu, gamma, abs(H[0, 0]), value, 0.0, 0.0, scale, curvature])
        return stats, np.empty(0)
    inner, corner, coupling = householder_complement(u, H)
    eig = eigvalsh(inner)
    alpha = max(abs(corner), abs(eig[0]), abs(eig[-1])) + coupling
    kappa = max(-eig[-1], 0.0)
    lo, hi = radius(True, gamma, eps, mu, kappa, alpha, rho, norm) if mu > 0.0 else (0.0, 0.0)
    return np.array([rho, 1.0, mu, gamma, alpha, value, lo, hi, scale, curvature]), eig


#: Columns of :func:`factor_rows`'s output, in order.
FACTOR_STATS = (
    "rho", "on_boundary", "mu", "gamma", "alpha", "loss", "inner", "outer",
    "gradient_scale", "curvature_scale", "max_estimate", "min_estimate", "max_bound",
    "min_bound", "factorizations",
)  # fmt: skip


@jit
def _tangent_block(net, loss, p, y, delta, eps):
    """The KKT terms at ``p = x + delta`` and the matrix whose spectrum decides.

    On the sphere, with the Householder reflection ``Q = I - 2 v v^T / v.v`` that
    maps u to a multiple of ``e_0`` and B its last d - 1 columns, the tangent block
    ``B^T (hess L - mu I) B = Z^T diag(l' c a s2) Z + l'' (B^T g_f)(B^T g_f)^T - mu I``
    with ``Z = W B``: ``Z^T`` is rows 1..d-1 of ``Q W^T = W^T - v (2 W v / v.v)^T``,
    formed in O(md), so the block is formed directly (never the Hessian). Also the
    corner ``u^T A u`` and the coupling ``||B^T A u||`` of ``A = hess L - mu I``,
    from one Hessian-vector product. Inside, the Hessian itself.

    Returns ``(M, on_boundary, mu, gamma, value, corner, coupling)``.
    """
    W, WT = net.W, net.WT
    m, d = W.shape
    # hess L = W^T diag(h) W + l2 grad_f grad_f^T
    value, l1, l2, h, grad_f = point_coefficients(net, loss, p, y)
    grad = l1 * grad_f
    on_boundary, u, mu, gamma = sphere_kkt(delta, grad, eps)
    if not on_boundary or d == 1:
        M = np.empty((d, d))
        weighted_gram(WT, h, M)
        for j in range(d):
            for k in range(d):
                M[j, k] += l2 * grad_f[j] * grad_f[k]
        return M, on_boundary, mu, gamma, value, 0.0, 0.0
    v = u.copy()
    v[0] += 1.0 if u[0] >= 0 else -1.0
    vv = dot(v, v)
    Wv = np.empty(m)
    product_into(v.reshape(1, d), WT, Wv.reshape(1, m))
    ZT = np.empty((d - 1, m))
    for j in range(1, d):
        f = 2.0 * v[j] / vv
        for r in range(m):
            ZT[j - 1, r] = WT[j, r] - f * Wv[r]
    gB = np.empty(d - 1)
    gv = 2.0 * dot(v, grad_f) / vv
    for j in range(1, d):
        gB[j - 1] = grad_f[j] - gv * v[j]
    M = np.empty((d - 1, d - 1))
    weighted_gram(ZT, h, M)
    for j in range(d - 1):
        for k in range(d - 1):
            M[j, k] += l2 * gB[j] * gB[k]
        M[j, j] -= mu
    # A u = W^T (h * W u) + l2 (g_f . u) g_f - mu u
    Wu = np.empty(m)
    product_into(u.reshape(1, d), WT, Wu.reshape(1, m))
    for r in range(m):
        Wu[r] *= h[r]
    Au = np.empty(d)
    product_into(Wu.reshape(1, m), W, Au.reshape(1, d))
    gu = l2 * dot(grad_f, u)
    for j in range(d):
        Au[j] += gu * grad_f[j] - mu * u[j]
    corner = dot(u, Au)
    av = 2.0 * dot(v, Au) / vv
    coupling = 0.0
    for j in range(1, d):
        e = Au[j] - av * v[j]
        coupling += e * e
    return M, on_boundary, mu, gamma, value, corner, math.sqrt(coupling)


@jit
def factor_rows(net, loss, X, Y, D, eps, bounds):
    """The factorization route of the certificate for every row, shape (n, 15).

    ``bounds`` (3, n) holds each row's ``rho``, gradient scale and curvature scale
    (computed by the caller once per distinct center). Columns: :data:`FACTOR_STATS`:
    the KKT terms, ``alpha`` (an upper bound of ``||hess L - mu I||_2`` from the
    proved ends of the tangent block plus its corner and coupling, as in
    :func:`dense_point`), the loss, the certified annulus from the proved
    ``kappa = -max_bound`` (0, 0 unless that is positive), the two Lanczos
    estimates and the two proved bounds of the ends of the spectrum
    (``min_bound <= lambda_min <= min_estimate``, ``max_estimate <= lambda_max <=
    max_bound``), and the number of factorizations (-1: the eigendecomposition
    decided; 0: a small order, decided by it from the start).
    """
    n, d = X.shape
    out = np.empty((n, 15))
    for i in range(n):
        rho = bounds[0, i]
        delta = D[i]
        M, on_boundary, mu, gamma, value, corner, coupling = _tangent_block(
            net, loss, X[i] + delta, Y[i], delta, eps
        )
        norm = norm2(delta)
        if on_boundary and d == 1:  # no tangent directions
            est_min = est_max = -math.inf
            low = high = -math.inf
            nf = 0
            alpha = abs(M[0, 0] - mu)
            inner = outer = 0.0
        else:
            est_min, est_max, low, high, nf = eigen_bounds(M)
            kappa = max(-high, 0.0)
            if on_boundary:
                alpha = max(abs(corner), abs(low), abs(high)) + coupling
                inner, outer = (
                    radius(True, gamma, eps, mu, kappa, alpha, rho, norm)
                    if mu > 0.0
                    else (0.0, 0.0)
                )
            else:
                alpha = max(abs(low), abs(high))
                inner, outer = radius(False, gamma, eps, 0.0, kappa, alpha, rho, norm)
        row = out[i]
        row[0], row[1], row[2], row[3], row[4] = rho, 1.0 if on_boundary else 0.0, mu, gamma, alpha
        row[5], row[6], row[7], row[8], row[9] = value, inner, outer, bounds[1, i], bounds[2, i]
        row[10], row[11], row[12], row[13], row[14] = est_max, est_min, high, low, nf
    return out


@jit
def _positive_curvature(h, Wu, row_norms, wn2):
    """An upper bound of ``sum_r max(h_r, 0) (w_r.t)^2`` over unit t orthogonal to u.

    For any threshold ``theta >= 0``, ``max(h_r, 0) = min(h_r^+, theta) + (h_r^+ -
    theta)^+``; the first part gives at most ``theta ||W t||^2 <= theta ||W||_2^2``
    and the second at most ``sum_r (h_r^+ - theta)^+ ||P w_r||^2`` (``(w_r.t)^2 <=
    ||P w_r||^2 = ||w_r||^2 - (w_r.u)^2``). The smallest over theta in {0} and the
    positive h_r (the function is piecewise linear in theta with its kinks there):
    ``theta = max h`` is ``max(h, 0) ||W||_2^2``, ``theta = 0`` the trace bound.
    ``Wu`` holds ``W u``."""
    m = h.shape[0]
    order = np.argsort(-h)
    best = math.inf
    # above: sum over the units above theta of (h_r - theta) ||P w_r||^2, kept as a
    # sum of nonnegative terms as theta falls (no cancellation); weight: their q_r
    above = 0.0
    weight = 0.0
    previous = 0.0
    for k in range(m + 1):
        theta = max(h[order[k]], 0.0) if k < m else 0.0
        above += (previous - theta) * weight
        best = min(best, theta * wn2 + above)
        if theta == 0.0:
            break
        r = order[k]
        weight += max(row_norms[r] * row_norms[r] - Wu[r] * Wu[r], 0.0)
        previous = theta
    return best


@jit
def norm_test_rows(net, loss, X, Y, D, eps, weight_norm):
    """The KKT terms and a bound of the tangent block's largest eigenvalue from norms
    alone, O(md) per row (``docs/certify.md``, "Inside the ascent: a norm test first").

    For a unit tangent vector t at a point on the sphere,
    ``t^T (hess L - mu I) t = sum_r h_r (w_r.t)^2 + l'' (g_f.t)^2 - mu``
    ``<= c_+ + max(l'', 0) ||P g_f||^2 - mu``, with P the projection on the tangent
    space and ``c_+`` the bound of the positive curvature of
    :func:`_positive_curvature` (at most ``max(h, 0) ||W||_2^2``), so that number
    bounds ``lambda_max`` of the tangent block (``h = l' c a sigma''(z)``, ``l''``,
    ``g_f`` and ``mu`` by the formulas of :func:`factor_rows`, the products of all
    rows at once). It gains :data:`~fopa._kernels.tolerances.NORM_TEST_SLACK` times
    the scale of the terms for rounding. Returns shape (n, 4): ``on_boundary`` (1
    or 0), ``mu``, ``gamma`` and the bound (``inf`` inside the ball, with no
    tangent direction, or when it is not finite).
    """
    W, a, b, c = net.W, net.a, net.b, net.c
    n, d = X.shape
    m = W.shape[0]
    wn2 = weight_norm * weight_norm
    Z = np.empty((n, m))
    product_into(X + D, net.WT, Z)  # z = W (x + delta) + b, for every row
    S1 = np.empty((n, m))  # the weights of grad f
    H = np.empty((n, m))
    l1s, l2s = np.empty(n), np.empty(n)
    s0, s2, s3 = np.empty(m), np.empty(m), np.empty(m)
    for i in range(n):
        z, s1 = Z[i], S1[i]
        for r in range(m):
            z[r] += b[r]
        all_derivatives(net.act, z, s0, s1, s2, s3)
        _, l1, l2, _ = loss_derivatives(loss, c * dot(a, s0) + net.b0, Y[i])
        for r in range(m):
            ca = c * a[r]
            s1[r] *= ca
            H[i, r] = l1 * ca * s2[r]
        l1s[i], l2s[i] = l1, l2
    GF = np.empty((n, d))
    product_into(S1, W, GF)  # grad f, every row
    U = np.zeros((n, d))
    out = np.empty((n, 4))
    for i in range(n):
        grad_f = GF[i]
        on_boundary, u, mu, gamma = sphere_kkt(D[i], l1s[i] * grad_f, eps)
        U[i] = u
        out[i, 0], out[i, 1] = 1.0 if on_boundary else 0.0, mu
        out[i, 2], out[i, 3] = gamma, math.inf
    if d == 1:
        return out
    WU = np.empty((n, m))
    product_into(U, net.WT, WU)  # W u, every row
    for i in range(n):
        if out[i, 0] == 0.0:
            continue
        h, grad_f, u, l2, mu = H[i], GF[i], U[i], l2s[i], out[i, 1]
        h_abs = 0.0
        for r in range(m):
            h_abs = max(h_abs, abs(h[r]))
        gu = dot(grad_f, u)
        tangent2 = 0.0
        for j in range(d):
            e = grad_f[j] - gu * u[j]
            tangent2 += e * e
        g2 = dot(grad_f, grad_f)
        slack = NORM_TEST_SLACK * (h_abs * wn2 + abs(l2) * g2 + abs(mu))
        bound = _positive_curvature(h, WU[i], net.row_norms, wn2)
        bound += max(l2, 0.0) * tangent2 - mu + slack
        if math.isfinite(bound) and math.isfinite(slack):
            out[i, 3] = bound
    return out


@jit
def certify_rows(net, weight_norm, FT, loss, X, Y, D, eps):
    """:func:`factor_rows` with each row's bounds computed in the same call (no
    sharing of centers; for one point, one dispatch): ``rho`` from
    :func:`fopa._kernels.ball.ball_bounds` mode 3, the tolerance scales from mode 2.
    If any bound overflows (as :func:`fopa.bounds.ball_constant_arrays` refuses),
    every entry is NaN and nothing is factored."""
    n = X.shape[0]
    tight = ball_bounds(net, weight_norm, FT, loss, X, Y, eps, MODE_RHO)
    fast = ball_bounds(net, weight_norm, FT, loss, X, Y, eps, MODE_FAST)
    if not (all_finite(tight.ravel()) and all_finite(fast.ravel())):
        return np.full((n, 15), np.nan)  # the bounds overflow: the caller says so
    bounds = np.empty((3, n))
    for i in range(n):
        bounds[0, i] = tight[2, i]
        bounds[1, i] = max(fast[0, i], TINY)
        bounds[2, i] = fast[1, i]
    return factor_rows(net, loss, X, Y, D, eps, bounds)


@jit
def _cubic(c3, c2, c1, c0, s):
    return ((c3 * s + c2) * s + c1) * s + c0


@jit
def _crossing(c3, c2, c1, c0, inside, outside):
    """Bisection between a point where the cubic is negative and one where it is not.

    Stops at a relative width of 1e-12 (the radii get a 1e-6 safety margin anyway);
    the returned point is always one where the cubic is negative (or ``inside``).
    """
    for _ in range(200):
        mid = 0.5 * (inside + outside)
        if abs(outside - inside) <= RADIUS_BISECTION * max(abs(inside), abs(outside)):
            break
        if _cubic(c3, c2, c1, c0, mid) < 0:
            inside = mid
        else:
            outside = mid
    return inside


@jit
def _annulus(c3, c2, c1, c0):
    """Interval of s > 0 where ``p(s) = c3 s^3 + c2 s^2 + c1 s + c0 < 0``.

    Every polynomial here has ``c3, c2 >= 0``, so p is convex on s >= 0 and the
    set is one interval (possibly empty), found around p's minimizer by bisection.
    """
    if c3 > 0:
        disc = c2 * c2 - 3.0 * c3 * c1
        s_min = max((-c2 + math.sqrt(disc)) / (3.0 * c3), 0.0) if disc >= 0 else 0.0
    elif c2 > 0:
        s_min = max(-c1 / (2.0 * c2), 0.0)
    else:  # linear
        if c1 < 0:
            return max(0.0, -c0 / c1), math.inf
        return (0.0, math.inf) if c0 < 0 else (0.0, 0.0)
    if not _cubic(c3, c2, c1, c0, s_min) < 0:
        return 0.0, 0.0
    lo = 0.0 if _cubic(c3, c2, c1, c0, 0.0) < 0 else _crossing(c3, c2, c1, c0, s_min, 0.0)
    far = max(2.0 * s_min, 1.0)
    while _cubic(c3, c2, c1, c0, far) < 0:
        far *= 2.0
    return lo, _crossing(c3, c2, c1, c0, s_min, far)


@jit
def radius(on_boundary, gamma, eps, mu, kappa, alpha, rho, norm):
    """(inner, outer) radius of the certified annulus; ``norm`` is ``||delta||``.

    ``docs/certify.md``, "The certified radius", derives the two polynomial
    inequalities solved here, including the gap ``eps - ||delta||`` of a point that
    counts as on the sphere while lying just inside it.
    """
    if not on_boundary:
        lo, hi = _annulus(0.0, rho / 6.0, -kappa / 2.0, gamma)
    else:
        n = min(norm, eps)
        e2 = max((eps - n) * (eps + n), 0.0)  # eps^2 - ||delta||^2: room to move outward
        radial = mu * eps
        # b = s: mu eps > gamma + s (mu/2 + 3 alpha/2) + rho s^2 / 6
        lo1, hi1 = _annulus(0.0, rho / 6.0, mu / 2.0 + 1.5 * alpha, gamma - radial)
        # b = (s^2 - e2)/(2 n), times s: (kappa+alpha) s^3/(8 n^2) + (alpha/(2 n) + rho/6) s^2
        #                                 - kappa s / 2 + gamma + radial sqrt(e2)/(2 n) < 0
        c3 = (kappa + alpha) / (8.0 * n * n)
        c0 = gamma + radial * math.sqrt(e2) / (2.0 * n)
        lo2, hi2 = _annulus(c3, alpha / (2.0 * n) + rho / 6.0, -kappa / 2.0, c0)
        lo, hi = max(lo1, lo2, math.sqrt(e2)), min(hi1, hi2)
        hi = min(hi, 2.0 * eps)
    lo, hi = lo * (1.0 + RADIUS_MARGIN), hi * (1.0 - RADIUS_MARGIN)
    if hi > lo:
        return lo, hi
    return 0.0, 0.0
