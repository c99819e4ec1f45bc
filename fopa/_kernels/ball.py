"""The feasible set's geometry and the bounds over a ball, compiled.

One implementation, called by the ascent (stopping rule, KKT report) and by the
certificate, so the two cannot disagree:

* :func:`on_sphere`: the on-boundary rule (:data:`.tolerances.ON_BOUNDARY`);
* :func:`project` / :func:`project_l2`: the projection onto the ball, the sphere
  or the cube;
* :func:`kkt_terms` and :func:`is_kkt`: the KKT residual (tangent gradient on
  the sphere, the gradient inside, the free coordinates of the cube) and the
  radial gradient, and the test both the solver and the certificate apply
  (``docs/certify.md``, "First order"); :func:`sphere_kkt` adds the unit normal;
* :func:`householder_complement`: ``B^T A B`` for an orthonormal basis of u's
  complement (``docs/certify.md``, "Second order");
* :func:`ball_bounds`: upper bounds of the loss and its derivatives over the
  ball around x (``docs/derivatives.md``, "Bounds over the ball").
"""

from __future__ import annotations

import math

import numpy as np

from .activation import all_derivatives, sup_abs_intervals, values_and_slopes
from .jit import jit
from .linalg import dot, norm2, product_into
from .loss import loss_bounds, loss_derivatives, loss_range_bounds
from .spectral import SMALL_ORDER, UNIT, eigen_bounds, weighted_gram
from .tensor import TENSOR_MAX_RANK, center_third_norm, weighted_gram_norm
from .tolerances import ON_BOUNDARY, SAFETY_FLOOR, SAFETY_MARGIN, TINY

#: Constraint codes: the l2 ball, the sphere ||delta|| = eps, the l-infinity ball.
BALL, SPHERE, LINF = 0, 1, 2
CONSTRAINTS = ("ball", "sphere", "linf")


@jit
def on_sphere(norm, eps):
    """Whether a point of norm ``norm`` counts as on the sphere of radius eps."""
    return norm >= eps * (1.0 - ON_BOUNDARY)


@jit
def on_face(value, eps):
    """Whether a coordinate ``value`` counts as at the bound of the cube [-eps, eps]."""
    return abs(value) >= eps * (1.0 - ON_BOUNDARY)


@jit
def project_l2(norm, eps, constraint):
    """Factor that maps a vector of norm ``norm`` onto the ball or the sphere."""
    if constraint == SPHERE:
        return eps / max(norm, TINY)
    return eps / max(norm, eps)


@jit
def project(v, eps, constraint):
    """Project v onto the feasible set in place: the l2 ball or sphere, or the box.

    Returns the l2 projection's factor (1 when v was already in the ball; 1 for
    the box).
    """
    if constraint == LINF:
        for j in range(v.shape[0]):
            v[j] = min(max(v[j], -eps), eps)
        return 1.0
    s = project_l2(norm2(v), eps, constraint)
    for j in range(v.shape[0]):
        v[j] *= s
    return s


@jit
def kkt_terms(delta, grad, eps, constraint):
    """First-order quantities of the feasible set at ``delta`` with gradient ``grad``.

    Returns ``(on_boundary, norm, radial, residual)``:

    * l2 (``BALL``, ``SPHERE``): on the sphere (by :func:`on_sphere`, always for
      ``SPHERE``) ``radial = u.g`` and ``residual = ||g - (u.g) u||`` (the tangent
      gradient) with ``u = delta / ||delta||``; inside, ``radial = 0`` and
      ``residual = ||g||``. ``norm`` is ``||delta||``.
    * ``LINF``: ``radial`` is the smallest ``sign(delta_j) g_j`` over coordinates at
      a face (0 if none) and ``residual`` the norm of g over the free coordinates.

    A KKT point has ``residual = 0`` and ``radial >= 0`` (the multiplier is
    ``radial / eps`` on the l2 sphere). No array is allocated: the ascent calls it
    for every row and iteration.
    """
    d = delta.shape[0]
    if constraint == LINF:
        free2 = 0.0
        radial = np.inf
        at_face = False
        for j in range(d):
            if on_face(delta[j], eps):
                at_face = True
                radial = min(radial, (1.0 if delta[j] > 0 else -1.0) * grad[j])
            else:
                free2 += grad[j] * grad[j]
        return at_face, 0.0, radial if at_face else 0.0, math.sqrt(free2)
    norm = norm2(delta)
    if not (constraint == SPHERE or on_sphere(norm, eps)):
        return False, norm, 0.0, norm2(grad)
    scale = max(norm, TINY)
    d4 = d - d % 4
    s0 = s1 = s2 = s3 = 0.0
    for j in range(0, d4, 4):
        s0 += (delta[j] / scale) * grad[j]
        s1 += (delta[j + 1] / scale) * grad[j + 1]
        s2 += (delta[j + 2] / scale) * grad[j + 2]
        s3 += (delta[j + 3] / scale) * grad[j + 3]
    for j in range(d4, d):
        s0 += (delta[j] / scale) * grad[j]
    radial = (s0 + s1) + (s2 + s3)
    t0 = t1 = t2 = t3 = 0.0
    for j in range(0, d4, 4):
        e0 = grad[j] - radial * (delta[j] / scale)
        e1 = grad[j + 1] - radial * (delta[j + 1] / scale)
        e2 = grad[j + 2] - radial * (delta[j + 2] / scale)
        e3 = grad[j + 3] - radial * (delta[j + 3] / scale)
        t0 += e0 * e0
        t1 += e1 * e1
        t2 += e2 * e2
        t3 += e3 * e3
    for j in range(d4, d):
        e0 = grad[j] - radial * (delta[j] / scale)
        t0 += e0 * e0
    return True, norm, radial, math.sqrt((t0 + t1) + (t2 + t3))


@jit
def is_kkt(residual, radial, tolerance):
    """The stopping and criticality test: ``residual <= tolerance`` and
    ``radial >= -tolerance`` (an absolute tolerance: ``tol`` times the gradient
    scale, see :func:`fopa._kernels.ball.ball_bounds`)."""
    return residual <= tolerance and radial >= -tolerance


@jit
def sphere_kkt(delta, grad, eps):
    """:func:`kkt_terms` for the l2 ball with the unit normal, for the certificate.

    Returns ``(on_boundary, u, mu, gamma)``: on the sphere (by :func:`on_sphere`)
    the unit normal ``u = delta / ||delta||``, the multiplier ``mu = u.g / eps`` and
    the tangent gradient norm ``gamma``; inside, ``u = 0``, ``mu = 0`` and
    ``gamma = ||g||``.
    """
    on_boundary, norm, radial, gamma = kkt_terms(delta, grad, eps, BALL)
    if not on_boundary:
        return False, np.zeros_like(delta), 0.0, gamma
    return True, delta / max(norm, TINY), radial / eps, gamma


@jit
def householder_complement(u, A):
    """``B^T A B`` for an orthonormal basis B of u's complement, in O(d^2).

    Returns the (d-1)-square block (symmetrised), the corner ``u^T A u`` and the
    norm of the coupling ``B^T A u`` of the reflected matrix.

    With ``v = u + sign(u_0) e_0`` the reflection ``Q = I - 2 v v^T / v.v`` maps u
    to ``-sign(u_0) e_0``; its columns 1..d-1 span u's complement, and
    ``Q A Q = A - v w^T - w v^T`` with ``w = p - (v.p / v.v) v``, ``p = 2 A v / v.v``.
    """
    d = u.shape[0]
    v = u.copy()
    v[0] += 1.0 if u[0] >= 0 else -1.0
    vv = v @ v
    p = 2.0 * (A @ v) / vv
    w = p - (v @ p / vv) * v
    inner = np.empty((d - 1, d - 1))
    for i in range(1, d):
        for j in range(1, d):
            left = A[i, j] - v[i] * w[j] - w[i] * v[j]
            right = A[j, i] - v[j] * w[i] - w[j] * v[i]
            inner[i - 1, j - 1] = 0.5 * (left + right)
    corner = A[0, 0] - 2.0 * v[0] * w[0]
    coupling = 0.0
    for i in range(1, d):
        c = A[i, 0] - v[i] * w[0] - w[i] * v[0]
        coupling += c * c
    return inner, corner, math.sqrt(coupling)


#: Rows of :func:`ball_bounds`'s output, in order.
BOUND_NAMES = (
    "gradient_bound", "beta", "rho", "loss_max", "output_bound",
    "network_gradient_bound", "network_hessian_bound", "network_third_bound",
)  # fmt: skip


@jit
def _row_sum_bounds(sups, weight, row_norms, weight_norm):
    """The row-sum bounds of ``docs/derivatives.md`` ("Bounds over the ball: the
    row-sum form"): ``F, G, H, T`` from the sups ``S_k,r`` and ``|c a|``."""
    m = weight.shape[0]
    F = H = T = 0.0
    g_max = 0.0
    for r in range(m):
        F += sups[0, r] * weight[r]
        g_max = max(g_max, sups[1, r] * weight[r])
        H += sups[2, r] * weight[r] * row_norms[r] ** 2
        T += sups[3, r] * weight[r] * row_norms[r] ** 3
    # ||(|c a| S_1)||_2: squares are safe while the largest entry is moderate;
    # otherwise (tiny or huge entries, whose squares under- or overflow) hypot
    if 1e-150 < g_max < 1e150:
        G2 = 0.0
        for r in range(m):
            g = sups[1, r] * weight[r]
            G2 += g * g
        G = weight_norm * np.sqrt(G2)
    else:
        G = 0.0
        for r in range(m):
            G = math.hypot(G, sups[1, r] * weight[r])
        G = weight_norm * G
    return F, G, H, T


@jit
def _spectral_norm(M, rounding):
    """An upper bound of ``||M||_2`` for a symmetric M formed in floating point:
    the largest |eigenvalue| plus ``rounding`` (the formation's error bound) and
    the eigensolver's backward error."""
    eig = np.linalg.eigvalsh(M)
    top = max(abs(eig[0]), abs(eig[-1]))
    return top + rounding + 4.0 * M.shape[0] * UNIT * top


@jit
def _proved_norm(M, rounding):
    """An upper bound of ``||M||_2`` for a symmetric M formed in floating point: the
    larger proved end (:func:`fopa._kernels.spectral.eigen_bounds`) plus
    ``rounding`` (the formation's error bound)."""
    _, _, lower, upper, _ = eigen_bounds(M)
    return max(abs(lower), abs(upper)) + rounding


@jit
def _center_terms(net, FT, w2, loss, z0, y, s0, s1, s2, s3, P, spectral, g_norm):
    """Exact quantities at the ball's center x, for the tight bounds.

    Returns ``f(x)``, ``||grad f(x)||``, an upper bound of ``||hess f(x)||_2``,
    ``L(x)``, ``l'(f(x))``, an upper bound of ``||hess L(x)||_2``, and the
    absolute rounding bounds of ``f(x)`` and of ``||grad f(x)||``; ``w2`` is
    ``||W||_2^2``; ``g_norm`` is ``||grad f(x)||``, formed for the whole batch with
    one product beforehand. ``spectral`` 0: the two Hessian norms (the
    eigenproblems) are skipped and returned as inf; 1: both from symmetric
    eigendecompositions (up to order :data:`fopa._kernels.spectral.SMALL_ORDER`; above
    it proved by factorization on the matrix formed with half the multiply-adds, as
    in mode 3); 3: ``||hess f(x)||_2`` only (what ``rho`` needs), proved by
    factorization (:func:`fopa._kernels.spectral.eigen_bounds`) on the matrix
    formed with half the multiply-adds, and ``||hess L(x)||_2`` returned as inf.
    The Hessians are measured in the
    row space of W: with ``W = U S V^T`` and ``F = U S`` (``FT`` = F^T, r x m,
    r = min(m, d)), ``W^T D W = V (F^T D F) V^T`` has the spectrum of the r-square
    ``F^T D F`` plus zeros, and ``grad f = W^T q`` has the norm of ``F^T q``
    (``docs/derivatives.md``, "Bounds over the ball: the tight form").
    """
    a, c, W = net.a, net.c, net.W
    m, d = W.shape
    r_dim = FT.shape[0]
    all_derivatives(net.act, z0, s0, s1, s2, s3)
    f0 = c * dot(a, s0) + net.b0
    f_round = 0.0
    for r in range(m):
        f_round += abs(a[r] * s0[r])
    f_round *= 2.0 * m * UNIT * c
    if net.b0 != 0.0:  # the one rounding of adding the output bias
        f_round += 2.0 * UNIT * abs(f0)
    d_max = 0.0
    q_norm2 = 0.0
    for r in range(m):
        ca = c * a[r]
        s1[r] *= ca  # q: grad f = W^T q
        s2[r] *= ca  # D: hess f = W^T diag(D) W
        d_max = max(d_max, abs(s2[r]))
        q_norm2 += s1[r] * s1[r]
    q_norm = math.sqrt(q_norm2)
    # (the same allowance in every mode, so that the fast form is never below the tight)
    g_round = 8.0 * (m + min(m, d)) * UNIT * math.sqrt(w2) * q_norm
    value, l1, l2, _ = loss_derivatives(loss, f0, y)
    if spectral == 0:
        return f0, g_norm, np.inf, value, l1, np.inf, f_round, g_round
    # entries of F^T D F are sums of m products: error <= 2 m u ||F^T |D| F||; the
    # SVD's F is W's factor to a few ulp of ||W||: both below 8 (m + r) u max|D| ||W||^2
    h_round = 8.0 * (m + r_dim) * UNIT * d_max * w2
    # proofs by factorization for mode 3 and for large r; mode 1 keeps, up to
    # SMALL_ORDER, the eigendecomposition on its own product (the bits it always had)
    proved = spectral == 3 or r_dim > SMALL_ORDER
    if proved:
        M = np.empty((r_dim, r_dim))
        weighted_gram(FT, s2, M)  # F^T D F, half the multiply-adds
        h0 = _proved_norm(M, h_round)
        if spectral == 3:
            return f0, g_norm, h0, value, l1, np.inf, f_round, g_round
    else:
        for r in range(m):
            for k in range(r_dim):
                P[r, k] = FT[k, r] * s2[r]
        M = np.dot(FT, P)  # F^T D F
        for j in range(r_dim):
            for k in range(j):
                v = 0.5 * (M[j, k] + M[k, j])
                M[j, k] = v
                M[k, j] = v
        h0 = _spectral_norm(M, h_round)
    g_t = np.empty(r_dim)  # F^T q: grad f in the row-space basis
    product_into(FT, s1.reshape(m, 1), g_t.reshape(r_dim, 1))
    for j in range(r_dim):
        for k in range(r_dim):
            M[j, k] = l1 * M[j, k] + l2 * g_t[j] * g_t[k]
    hl_round = abs(l1) * h_round + abs(l2) * g_round * (2.0 * g_norm + g_round)
    hl0 = _proved_norm(M, hl_round) if proved else _spectral_norm(M, hl_round)
    return f0, g_norm, h0, value, l1, hl0, f_round, g_round


@jit
def _third_from_center(net, FT, sups, s3, osc):
    """``sup ||D^3 f||`` over the ball for a small row space (r <= TENSOR_MAX_RANK):
    the center tensor's norm (signs kept,
    :func:`fopa._kernels.tensor.center_third_norm`) plus the largest change of each
    row's third derivative over its interval, bounded without signs (the smaller of
    the weighted-Gram and the row-sum form), or the sign-less sup with each row
    weighted by its own ``|ca_r| S_3,r ||w_r||``, whichever is smaller
    (``docs/derivatives.md``, "The third derivative at the center"). ``s3`` holds
    sigma^(3) at the center's pre-activations; it is overwritten with the
    coefficients ``c a_r sigma^(3)``.
    """
    a, c, row_norms = net.a, net.c, net.row_norms
    m = a.shape[0]
    t_sum = 0.0
    for r in range(m):
        # sup of |sigma^(3)(z) - sigma^(3)(z_r)| over the interval (rows 4, 5 of sups:
        # the range of sigma^(3)), plus 8 ulp of the values for their rounding
        low, high, mid = sups[4, r], sups[5, r], s3[r]
        change = max(high - mid, mid - low, 0.0) + 8.0 * UNIT * sups[3, r]
        ca = c * a[r]
        s3[r] *= ca
        osc[r] = change * abs(ca) * row_norms[r]
        t_sum += osc[r] * row_norms[r] * row_norms[r]
    change = min(t_sum, weighted_gram_norm(FT, osc))
    centered = center_third_norm(FT, s3, row_norms) + change
    # the sign-less sup with the rows weighted one by one (not by the largest); its
    # Gram's trace / r is a lower bound of it: below that, the eigenproblem is skipped
    trace = 0.0
    for r in range(m):
        osc[r] = net.abs_ca[r] * sups[3, r] * row_norms[r]
        trace += osc[r] * row_norms[r] * row_norms[r]
    if centered <= trace / FT.shape[0]:
        return centered
    return min(centered, weighted_gram_norm(FT, osc))


@jit
def _center_gradient_norms(net, X, center):
    """``||grad f(x_i)||`` for every row, with one product ``Q W`` for the batch
    (``center`` holds ``X W^T``, without the bias)."""
    n, m = center.shape
    b, a, c = net.b, net.a, net.c
    Q = np.empty((n, m))
    z = np.empty(m)
    s0 = np.empty(m)
    for i in range(n):
        for r in range(m):
            z[r] = center[i, r] + b[r]
        values_and_slopes(net.act, z, s0, Q[i])
        for r in range(m):
            Q[i, r] *= c * a[r]
    G = np.empty((n, net.W.shape[1]))
    product_into(Q, net.W, G)
    out = np.empty(n)
    for i in range(n):
        out[i] = math.sqrt(dot(G[i], G[i]))
    return out


#: The modes of :func:`ball_bounds` as int64 scalars (for callers in compiled code: a
#: literal ``3`` there would compile a copy of ``ball_bounds`` specialized to it, as
#: numba types a constant argument as a literal, several seconds per copy).
MODE_ROW_SUM, MODE_TIGHT, MODE_FAST, MODE_RHO = (np.int64(k) for k in range(4))


@jit
def ball_bounds(net, weight_norm, FT, loss, X, Y, eps, mode):
    """The bounds of :data:`BOUND_NAMES` (rows) for every point (columns), shape (8, n).

    ``weight_norm`` is ``||W||_2``; ``S_k,r`` are the sups of ``|sigma^(k)|`` over
    unit r's pre-activation interval ``w_r . x + b_r +- eps ||w_r||``.
    ``mode`` 0: the row-sum bounds (``docs/derivatives.md``, "Bounds over the
    ball: the row-sum form"). ``mode`` 1: the exact values at the center plus
    mean-value remainders, spectral norms instead of row sums, each bound the
    smaller of its tight and its row-sum form ("the tight form"); ``FT`` is F^T
    for ``F = U S`` from the SVD ``W = U S V^T`` (r x m). ``mode`` 2: the tight form
    without the two eigenproblems at the center ("the fast form", O(md) per point;
    ``FT`` unused). ``mode`` 3: for the certificate's ``rho``: the tight form with
    ``||hess f(x)||_2`` proved by factorization and ``||hess L(x)||_2`` skipped, so
    only ``rho`` (and the rows it is built from) are tight; ``gradient_bound`` and
    ``beta`` are between the fast and the tight form's.
    """
    WT, b, weight, row_norms = net.WT, net.b, net.abs_ca, net.row_norms
    n, m = X.shape[0], WT.shape[1]
    center = np.empty((n, m))
    product_into(X, WT, center)
    g_norms = _center_gradient_norms(net, X, center) if mode != 0 else np.empty(0)
    out = np.empty((8, n))
    lo = np.empty(m)
    hi = np.empty(m)
    z0 = np.empty(m)
    with_tensor = (mode == 1 or mode == 3) and FT.shape[0] <= TENSOR_MAX_RANK
    sups = np.empty((6 if with_tensor else 4, m))
    s0, s1, s2, s3 = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    P = np.empty((m, FT.shape[0] if mode == 1 else 0))
    grow = 1.0 + SAFETY_MARGIN
    w2 = weight_norm * weight_norm
    osc = np.empty(m)
    for i in range(n):
        for r in range(m):
            rad = eps * row_norms[r]
            z0[r] = center[i, r] + b[r]
            lo[r] = z0[r] - rad
            hi[r] = z0[r] + rad
        sup_abs_intervals(net.act, net.critical, lo, hi, sups)
        F, G, H, T = _row_sum_bounds(sups, weight, row_norms, weight_norm)
        # F bounds |f - b0|: the output lies in [b0 - F, b0 + F]
        b0 = net.b0
        if mode == 0:
            if b0 == 0.0:
                lmax, l1, l2, l3 = loss_bounds(loss, F, Y[i])
            else:
                lmax, l1, l2, l3 = loss_range_bounds(loss, b0 - F, b0 + F, Y[i])
                F = abs(b0) + F
            gradient = product_up(l1, G)
            beta = product_up(l2, G, G) + product_up(l1, H)
            rho = product_up(l3, G, G, G) + 3.0 * product_up(l2, G, H) + product_up(l1, T)
        else:
            # spectral forms that keep no sign but use ||W||_2 instead of sums of rows
            h_max = 0.0
            t_max = 0.0
            for r in range(m):
                h_max = max(h_max, weight[r] * sups[2, r])
                t_max = max(t_max, weight[r] * sups[3, r] * row_norms[r])
            H = min(H, product_up(h_max, w2))
            T = min(T, product_up(t_max, w2))
            f0, g0, h0, value, l1c, hl0, f_round, g_round = _center_terms(
                net, FT, w2, loss, z0, Y[i], s0, s1, s2, s3, P, mode if mode != 2 else 0,
                g_norms[i],
            )  # fmt: skip
            if with_tensor:
                T = min(T, _third_from_center(net, FT, sups, s3, osc))
            # mean-value remainders from the center: each derivative moves by at most
            # eps times the bound of the next one
            H = min(H, h0 + eps * T)
            G = min(G, g0 + g_round + eps * H)
            spread = eps * G + f_round
            f_lo, f_hi = max(f0 - spread, b0 - F), min(f0 + spread, b0 + F)
            F = min(abs(b0) + F, abs(f0) + spread)
            lmax, l1, l2, l3 = loss_range_bounds(loss, f_lo, f_hi, Y[i])
            rho = product_up(l3, G, G, G) + 3.0 * product_up(l2, G, H) + product_up(l1, T)
            beta = min(product_up(l2, G, G) + product_up(l1, H), hl0 + eps * rho)
            gl0 = abs(l1c) * (g0 + g_round)
            gradient = min(product_up(l1, G), gl0 + eps * beta)
            lmax = min(lmax, value + eps * gl0 + 0.5 * eps * eps * beta)
        out[0, i] = grow * gradient
        out[1, i] = grow * beta
        out[2, i] = grow * rho
        out[3, i] = grow * lmax
        out[4, i] = grow * F
        out[5, i] = grow * G
        out[6, i] = grow * H
        out[7, i] = grow * T
    return out


@jit
def product_up(x, y, z=1.0, w=1.0):
    """x y z w, or SAFETY_FLOOR when the factors are positive and it underflows.

    Products of tiny positive factors lose all relative accuracy below the normal
    range (or become 0) while what they bound is still positive; an exact zero
    factor keeps the product exactly 0. Powers are passed as repeated factors
    (``G, G, G``): a precomputed ``G * G`` could underflow to an exact 0 first.
    """
    p = x * y * z * w
    if x > 0.0 and y > 0.0 and z > 0.0 and w > 0.0 and p < SAFETY_FLOOR:
        return SAFETY_FLOOR
    return p
