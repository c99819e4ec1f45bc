"""The feasible set's geometry and the bounds over a ball, compiled.

One implementation, called by the ascent (stopping rule, KKT report) and by the
certificate, so the two cannot disagree:

* :func:`on_sphere`: the on-boundary rule (:data:`.tolerances.ON_BOUNDARY`);
* :func:`project` / :func:`project_l2`: the projection onto the ball, the sphere
  or the cube;
* :func:`sphere_kkt`: multiplier ``mu = u.g / eps`` and tangent gradient
  ``||g - (u.g) u||`` with ``u = delta / ||delta||`` (``docs/certify.md``, "First
  order");
* :func:`householder_complement`: ``B^T A B`` for an orthonormal basis of u's
  complement (``docs/certify.md``, "Second order");
* :func:`ball_bounds`: upper bounds of the loss and its derivatives over the
  ball around x (``docs/derivatives.md``, "Bounds over the ball").
"""

from __future__ import annotations

import math

import numpy as np

from .activation import sup_abs_intervals
from .jit import jit
from .linalg import dot, product_into
from .loss import loss_bounds
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
    s = project_l2(math.sqrt(dot(v, v)), eps, constraint)
    for j in range(v.shape[0]):
        v[j] *= s
    return s


@jit
def sphere_kkt(delta, grad, eps, force):
    """First-order quantities of the ball problem at ``delta`` with gradient ``grad``.

    Returns ``(on_boundary, u, mu, gamma)``: on the sphere (by :func:`on_sphere`,
    or always when ``force``) the unit normal ``u = delta / ||delta||``, the
    multiplier ``mu = u.g / eps`` and the tangent gradient norm ``gamma = ||g -
    (u.g) u||``; inside, ``u = 0``, ``mu = 0`` and ``gamma = ||g||``.
    """
    norm = math.sqrt(dot(delta, delta))
    if not (force or on_sphere(norm, eps)):
        return False, np.zeros_like(delta), 0.0, math.sqrt(dot(grad, grad))
    u = delta / max(norm, TINY)
    radial = dot(u, grad)
    tangent = grad - radial * u
    return True, u, radial / eps, math.sqrt(dot(tangent, tangent))


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
def ball_bounds(net, weight_norm, loss, X, Y, eps):
    """The bounds of :data:`BOUND_NAMES` (rows) for every point (columns), shape (8, n).

    ``weight_norm`` is ``||W||_2``; ``S_k,r`` are the sups of ``|sigma^(k)|`` over
    unit r's pre-activation interval ``w_r . x + b_r +- eps ||w_r||``
    (``docs/derivatives.md``, "Bounds over the ball").
    """
    WT, b, weight, row_norms = net.WT, net.b, net.abs_ca, net.row_norms
    n, m = X.shape[0], WT.shape[1]
    center = np.empty((n, m))
    product_into(X, WT, center)
    out = np.empty((8, n))
    lo = np.empty(m)
    hi = np.empty(m)
    sups = np.empty((4, m))
    grow = 1.0 + SAFETY_MARGIN
    for i in range(n):
        for r in range(m):
            rad = eps * row_norms[r]
            lo[r] = center[i, r] + b[r] - rad
            hi[r] = center[i, r] + b[r] + rad
        sup_abs_intervals(net.act, net.critical, lo, hi, sups)
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
        lmax, l1, l2, l3 = loss_bounds(loss, F, Y[i])
        out[0, i] = grow * product_up(l1, G)
        out[1, i] = grow * (product_up(l2, G, G) + product_up(l1, H))
        out[2, i] = grow * (
            product_up(l3, G, G, G) + 3.0 * product_up(l2, G, H) + product_up(l1, T)
        )
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
