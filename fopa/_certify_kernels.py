"""Compiled parts of :mod:`fopa.certify`: the dense certificate of one point and the radius.

``_dense_point`` does in one call what the dense method needs (gradient,
multiplier, Hessian, Householder tangent block, its eigenvalues, the alpha
bound and the loss), so a small certificate costs one dispatch instead of a
dozen NumPy calls. ``_radius`` finds the certified annulus by bisection.
"""

from __future__ import annotations

import math

import numpy as np

from ._ascent_kernels import ON_BOUNDARY
from ._jit import kernel, scalar_kernel
from .constants import _ball_bounds
from .derivatives import _dot, _point_derivatives

RADIUS_MARGIN = 1e-6  # relative safety margin on the certified radii


@kernel
def _largest_row_norm(D):
    """max_i ||D[i]||_2 for D (n, d)."""
    out = 0.0
    for i in range(D.shape[0]):
        out = max(out, math.sqrt(_dot(D[i], D[i])))
    return out


@kernel
def _eigvalsh(M):
    """Eigenvalues of a symmetric matrix, ascending.

    Compiled so that LAPACK is the one numba links (scipy's), the library the
    other kernels' BLAS calls use: alternating between numpy's and scipy's
    OpenBLAS thread pools made both several times slower here.
    """
    return np.linalg.eigvalsh(M)


@kernel
def _householder_complement(u, A):
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


@kernel
def _dense_point(W, WT, a, b, c, act, loss, x, y, delta, eps, weight, row_norms, weight_norm,
                 critical):  # fmt: skip
    """Everything the dense certificate needs at ``p = x + delta`` (one point).

    ``weight, row_norms, weight_norm, critical`` are what :func:`fopa.constants._ball_bounds`
    needs for the Hessian-Lipschitz bound ``rho`` over the ball around x.

    Returns
    -------
    stats : ndarray, shape (8,)
        ``rho`` (the Hessian-Lipschitz bound), ``on_boundary`` (1 or 0), ``mu`` and
        ``gamma`` (multiplier and tangent-gradient norm; 0 and ``||grad L||``
        inside), ``alpha`` (upper bound of ``||hess L - mu I||_2``, exact inside),
        the loss ``L(p)``, and the certified annulus ``inner, outer`` (MATH.md
        section 3) if the largest eigenvalue is negative, else 0, 0: meaningful
        when the point is a strict local maximum. One array: a tuple of eight
        scalars cost a microsecond more to hand back to Python.
    eig : ndarray
        Eigenvalues of the tangent Hessian (of ``hess L`` inside), ascending.
    """
    d = x.shape[0]
    bounds = _ball_bounds(
        WT, b, weight, row_norms, weight_norm, act, critical, loss,
        x.reshape(1, d), np.full(1, y), eps,
    )  # fmt: skip
    rho = bounds[2, 0]
    grad, H, value = _point_derivatives(W, WT, a, b, c, act, loss, x + delta, y)
    norm = math.sqrt(_dot(delta, delta))
    if norm < eps * (1.0 - ON_BOUNDARY):
        eig = _eigvalsh(H)
        gamma = math.sqrt(_dot(grad, grad))
        alpha = max(abs(eig[0]), abs(eig[-1]))
        inner, outer = _radius(False, gamma, eps, 0.0, max(-eig[-1], 0.0), alpha, rho)
        return np.array([rho, 0.0, 0.0, gamma, alpha, value, inner, outer]), eig
    u = delta / norm
    radial = _dot(u, grad)
    tangent = grad - radial * u
    mu = radial / eps
    gamma = math.sqrt(_dot(tangent, tangent))
    for i in range(d):
        H[i, i] -= mu
    if d == 1:  # no tangent directions
        return np.array([rho, 1.0, mu, gamma, abs(H[0, 0]), value, 0.0, 0.0]), np.empty(0)
    inner, corner, coupling = _householder_complement(u, H)
    eig = _eigvalsh(inner)
    alpha = max(abs(corner), abs(eig[0]), abs(eig[-1])) + coupling
    kappa = max(-eig[-1], 0.0)
    lo, hi = _radius(True, gamma, eps, mu, kappa, alpha, rho) if mu > 0.0 else (0.0, 0.0)
    return np.array([rho, 1.0, mu, gamma, alpha, value, lo, hi]), eig


@scalar_kernel
def _cubic(c3, c2, c1, c0, s):
    return ((c3 * s + c2) * s + c1) * s + c0


@scalar_kernel
def _crossing(c3, c2, c1, c0, inside, outside):
    """Bisection between a point where the cubic is negative and one where it is not.

    Stops at a relative width of 1e-12 (the radii get a 1e-6 safety margin anyway);
    the returned point is always one where the cubic is negative (or ``inside``).
    """
    for _ in range(200):
        mid = 0.5 * (inside + outside)
        if abs(outside - inside) <= 1e-12 * max(abs(inside), abs(outside)):
            break
        if _cubic(c3, c2, c1, c0, mid) < 0:
            inside = mid
        else:
            outside = mid
    return inside


@scalar_kernel
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


@kernel
def _radius(on_boundary, gamma, eps, mu, kappa, alpha, rho):
    """(inner, outer) radius of the certified annulus (MATH.md section 3)."""
    if not on_boundary:
        lo, hi = _annulus(0.0, rho / 6.0, -kappa / 2.0, gamma)
    else:
        # b = s: mu eps > gamma + s (mu/2 + 3 alpha/2) + rho s^2 / 6
        lo1, hi1 = _annulus(0.0, rho / 6.0, mu / 2.0 + 1.5 * alpha, gamma - mu * eps)
        # b = s^2/(2 eps), times s: (kappa+alpha) s^3/(8 eps^2) + (alpha/(2 eps) + rho/6) s^2
        #                           - kappa s / 2 + gamma < 0
        c3 = (kappa + alpha) / (8.0 * eps * eps)
        lo2, hi2 = _annulus(c3, alpha / (2.0 * eps) + rho / 6.0, -kappa / 2.0, gamma)
        lo, hi = max(lo1, lo2), min(hi1, hi2)
        hi = min(hi, 2.0 * eps)
    lo, hi = lo * (1.0 + RADIUS_MARGIN), hi * (1.0 - RADIUS_MARGIN)
    if hi > lo:
        return lo, hi
    return 0.0, 0.0
