"""The Gram iteration of projected gradient ascent, compiled (``method="gram"``).

``delta = gamma * delta0 + A W`` stays in the row space of ``W``
(``docs/solver.md``, "The Gram iteration"): per iteration one product ``Q K`` with
the Gram matrix ``K = W W^T``, of size rows x m x m instead of two rows x d x m in
:func:`fopa._kernels.pga.pga_plain`, whose interface (stopping rule, per-row
outputs) it shares.
"""

from __future__ import annotations

import math

import numpy as np

from .ball import SPHERE, is_kkt, kkt_terms, on_sphere, project_l2
from .jit import jit
from .linalg import dot, product_into, times
from .network import row_coefficients
from .pga import (
    F_GMAP,
    F_INITIAL,
    F_LOSS,
    I_FIRST_GMAP,
    I_FIRST_STAT,
    I_ITERS,
    I_STATUS,
    MAX_ITER,
    TOL,
    _compact,
    _gradient_step,
    _row_outputs,
    kkt_rows,
)
from .tolerances import GRAM_NOISE


@jit
def _next_norm2(Ai, AKi, q, qk, Zsi, h, two_g, start):
    """``B.(BK + 2 g Zs)`` with ``B = A + h q``, ``BK = AK + h qk``: the Gram part of
    ``||delta + h grad L||^2``. Four running sums, as :func:`fopa._kernels.linalg.dot`;
    a zero start (``start`` False) has no Zs term and skips it."""
    m = Ai.shape[0]
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    if start:
        for r in range(0, m4, 4):
            s0 += (Ai[r] + h * q[r]) * ((AKi[r] + h * qk[r]) + two_g * Zsi[r])
            s1 += (Ai[r + 1] + h * q[r + 1]) * ((AKi[r + 1] + h * qk[r + 1]) + two_g * Zsi[r + 1])
            s2 += (Ai[r + 2] + h * q[r + 2]) * ((AKi[r + 2] + h * qk[r + 2]) + two_g * Zsi[r + 2])
            s3 += (Ai[r + 3] + h * q[r + 3]) * ((AKi[r + 3] + h * qk[r + 3]) + two_g * Zsi[r + 3])
        for r in range(m4, m):
            s0 += (Ai[r] + h * q[r]) * ((AKi[r] + h * qk[r]) + two_g * Zsi[r])
    else:
        for r in range(0, m4, 4):
            s0 += (Ai[r] + h * q[r]) * (AKi[r] + h * qk[r])
            s1 += (Ai[r + 1] + h * q[r + 1]) * (AKi[r + 1] + h * qk[r + 1])
            s2 += (Ai[r + 2] + h * q[r + 2]) * (AKi[r + 2] + h * qk[r + 2])
            s3 += (Ai[r + 3] + h * q[r + 3]) * (AKi[r + 3] + h * qk[r + 3])
        for r in range(m4, m):
            s0 += (Ai[r] + h * q[r]) * (AKi[r] + h * qk[r])
    return (s0 + s1) + (s2 + s3)


@jit
def _take_step(Ai, AKi, q, qk, Zsi, h, s, two_dg, start, old):
    """Move row i to ``s (A + h q)`` (and AK alike), keep the old rows in ``old[0]``
    and ``old[1]`` (``old`` has shape (3, m); row 2 is scratch), and return
    ``u.v`` for the change ``u = (s - 1) A + s h q`` and ``v = (s - 1) AK +
    s h qk + 2 dg Zs``, the Gram part of ``||moved||^2``.

    The terms of ``u.v`` go to four running sums by ``r mod 4`` (as
    :func:`fopa._kernels.linalg.dot`); the moves are plain stores.
    """
    m = Ai.shape[0]
    sm1 = s - 1.0
    sh = s * h
    p = old[2]  # the terms of u.v, summed below
    for r in range(m):
        a0 = Ai[r]
        ak0 = AKi[r]
        old[0, r] = a0
        old[1, r] = ak0
        p[r] = (sm1 * a0 + sh * q[r]) * (sm1 * ak0 + sh * qk[r])
        Ai[r] = s * (a0 + h * q[r])
        AKi[r] = s * (ak0 + h * qk[r])
    if start:
        for r in range(m):
            p[r] += (sm1 * old[0, r] + sh * q[r]) * (two_dg * Zsi[r])
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    for r in range(0, m4, 4):
        s0 += p[r]
        s1 += p[r + 1]
        s2 += p[r + 2]
        s3 += p[r + 3]
    for r in range(m4, m):
        s0 += p[r]
    return (s0 + s1) + (s2 + s3)


@jit
def _gram_stationary(i, k, eps, tolerance, constraint, n0, Zs, A, Q, QK, gamma, dnorm2, W,
                     D0, point, grad):  # fmt: skip
    """Whether row i's current point passes the KKT test (:func:`fopa._kernels.ball.is_kkt`
    with an absolute ``tolerance``).

    A cheap screen in Gram coordinates first: ``||g||^2 = q.(q K)`` and
    ``delta.g = gamma Zs.q + A.(q K)``, so the squared tangent gradient is ``||g||^2
    - (delta.g)^2 / ||delta||^2``. That difference of nearly equal terms has lost
    its digits exactly where the test matters (a converged point on the sphere),
    so only a row whose screen is within ``GRAM_NOISE ||g||^2`` of the tolerance is
    measured in R^d (``O(md)``, that row only) with the test the plain iteration
    uses. The screen cannot miss a passing row: its error is below that noise.
    """
    m = A.shape[1]
    g2 = dot(Q[k], QK[k])
    dg = dot(A[i], QK[k])
    if n0[i] > 0.0:
        dg += gamma[i] * dot(Zs[i], Q[k])
    n2 = dnorm2[i]
    tangent2 = g2
    if (constraint == SPHERE or on_sphere(math.sqrt(n2), eps)) and n2 > 0.0:
        tangent2 = g2 - dg * dg / n2
    if tangent2 > tolerance * tolerance + GRAM_NOISE * g2:
        return False
    d = W.shape[1]
    product_into(Q[k].reshape(1, m), W, grad.reshape(1, d))
    product_into(A[i].reshape(1, m), W, point.reshape(1, d))
    for j in range(d):
        point[j] += gamma[i] * D0[i, j]
    _, _, radial, residual = kkt_terms(point, grad, eps, constraint)
    return is_kkt(residual, radial, tolerance)


@jit
def _gram_step(i, k, eps, eta, tolerance, constraint, n0, Zs, A, AK, gamma, Q, QK, work,
               dnorm2, W, D0, moved):  # fmt: skip
    """One projected step of row i in Gram coordinates; returns the gradient-mapping
    norm ``||moved|| / h`` of the point it leaves.

    The new point is ``s (gamma D0 + B W)`` with ``B = A + h q``; its norm comes
    from the Gram matrix, ``||gamma D0 + B W||^2 = gamma^2 n0 + B.(2 gamma Zs + B K)``,
    and ``s`` is the projection's factor. ``work`` is scratch of shape (3, m),
    ``moved`` of shape (d,).

    The step's length comes from the Gram matrix too, ``||moved||^2 = u.(K u)`` for
    the change ``u`` of the coordinates A. Near a fixed point that quadratic form is
    a difference of nearly equal terms and loses about half the digits (seen: 0
    where the true gradient-mapping norm was 3e-9). So the change is computed as
    ``(s - 1) A + s h q`` (its two terms are smaller than A by the factor ``h mu``),
    and whenever the estimate is near ``tolerance`` (or within the quadratic form's
    rounding noise) the step is formed in R^d, ``moved = u W + (s - 1) gamma D0``,
    and measured there, as the plain iteration does.
    """
    m = A.shape[1]
    h = eta[i]
    g = gamma[i]
    start = n0[i] > 0.0  # a zero start has no D0 term: its loops skip Zs
    norm2 = g * g * n0[i] + _next_norm2(A[i], AK[i], Q[k], QK[k], Zs[i], h, 2.0 * g, start)
    s = project_l2(math.sqrt(max(norm2, 0.0)), eps, constraint)
    dg = (s - 1.0) * g  # moved = (s g - g) D0 + (s B - A) W
    uv = _take_step(A[i], AK[i], Q[k], QK[k], Zs[i], h, s, 2.0 * dg, start, work)
    moved2 = dg * dg * n0[i] + uv
    if tolerance > 0.0 and moved2 <= max(4.0 * (tolerance * h) ** 2, GRAM_NOISE * s * s * norm2):
        u = work[2]  # (scratch of _take_step, free again); work[0] holds the old A
        for r in range(m):
            u[r] = (s - 1.0) * work[0, r] + (s * h) * Q[k, r]
        product_into(u.reshape(1, m), W, moved.reshape(1, W.shape[1]))
        for j in range(W.shape[1]):
            moved[j] += dg * D0[i, j]
        moved2 = dot(moved, moved)
    gamma[i] = s * g
    dnorm2[i] = s * s * norm2
    return math.sqrt(max(moved2, 0.0)) / h


@jit
def gram_start(net, X, D0):
    """What the row-space iterations need of their start ``delta = D0``:
    ``Z0 = X W^T + b`` (n, m), ``n0 = ||D0||^2`` (n,) and ``Zs = D0 W^T`` (n, m;
    zeros, without the product, when every start is zero)."""
    n = X.shape[0]
    m = net.W.shape[0]
    Z0 = np.empty((n, m))
    product_into(X, net.WT, Z0)
    for i in range(n):
        for r in range(m):
            Z0[i, r] += net.b[r]
    n0 = np.zeros(n)
    for i in range(n):
        n0[i] = dot(D0[i], D0[i])
    Zs = np.zeros((n, m))
    if np.any(n0 > 0.0):  # a zero start adds nothing: skip its product
        product_into(D0, net.WT, Zs)
    return Z0, n0, Zs


@jit
def pga_gram(net, K, loss, X, Y, eps, eta, D0, max_iter, tol, scale, constraint):
    """Projected gradient ascent in the row space of W (ball or sphere, no noise).

    delta = gamma * D0 + A W. With K = W W^T, Zs = D0 W^T and n0 = ||D0||^2 the
    pre-activations are Z0 + gamma Zs + A K and ||delta||^2 =
    gamma^2 n0 + 2 gamma A.Zs + A.(A K); one product (rows x m) @ K per iteration
    except the last (t = max_iter), whose point only needs its gradient and its
    KKT test, both measured in R^d at the end. ``K`` is the (m, m) Gram matrix;
    ``scale`` and the stopping rule are those of :func:`pga_plain`.

    Returns
    -------
    D, grads, fstats, istats (as :func:`pga_plain`)
    """
    W = net.W
    N, d = X.shape
    m = W.shape[0]
    Z0, n0, Zs = gram_start(net, X, D0)
    A = np.zeros((N, m))
    AK = np.zeros((N, m))
    gamma = np.ones(N)
    Qlast = np.zeros((N, m))
    fstats, istats = _row_outputs(N)
    values, initial, gnorm = fstats[:, F_LOSS], fstats[:, F_INITIAL], fstats[:, F_GMAP]
    iters, status, first_stat = istats[:, I_ITERS], istats[:, I_STATUS], istats[:, I_FIRST_STAT]
    first_gmap = istats[:, I_FIRST_GMAP]
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    S0 = np.empty(m)
    Qbuf = np.empty((N, m))
    QKbuf = np.empty((N, m))
    work = np.empty((3, m))
    moved = np.empty(d)
    point = np.empty(d)
    dnorm2 = n0.copy()
    at_end = np.zeros(N, np.bool_)  # rows still running at t = max_iter
    na = N
    for t in range(max_iter + 1):
        if na == 0:
            break
        Q, QK = Qbuf[:na], QKbuf[:na]
        for k in range(na):
            i = active[k]
            z = QK[k]  # scratch until the product below overwrites it
            g = gamma[i]
            if n0[i] > 0.0:
                for r in range(m):
                    z[r] = Z0[i, r] + g * Zs[i, r] + AK[i, r]
            else:
                for r in range(m):
                    z[r] = Z0[i, r] + AK[i, r]
            values[i] = row_coefficients(net, loss, Y[i], z, Q[k], S0)[0]
            if t == 0:
                initial[i] = values[i]
        if t == max_iter:  # the last point is measured in R^d below: no product
            for k in range(na):
                i = active[k]
                Qlast[i, :] = Q[k, :]
                iters[i] = t
                status[i] = MAX_ITER
                at_end[i] = True
            break
        product_into(Q, K, QK)
        for k in range(na):
            i = active[k]
            iters[i] = t
            done[k] = False
            if tol > 0.0 and _gram_stationary(
                i, k, eps, tol * scale[i], constraint, n0, Zs, A, Q, QK, gamma, dnorm2, W,
                D0, point, moved,
            ):  # fmt: skip
                first_stat[i] = t
                status[i] = TOL
                done[k] = True
                Qlast[i, :] = Q[k, :]
                continue
            gmap = _gram_step(
                i, k, eps, eta, tol * scale[i], constraint, n0, Zs, A, AK, gamma, Q, QK, work,
                dnorm2, W, D0, moved,
            )  # fmt: skip
            if gmap <= tol * scale[i] and first_gmap[i] < 0:
                first_gmap[i] = t
        na = _compact(active, na, done)
    D = times(A, W)
    for i in range(N):
        for j in range(d):
            D[i, j] += gamma[i] * D0[i, j]
    grads = times(Qlast, W)
    # the reported gradient-mapping norm of the returned point, measured in R^d
    step = np.empty(d)
    for i in range(N):
        gnorm[i], _ = _gradient_step(D[i], grads[i], eta[i], eps, constraint, step, moved)
        if gnorm[i] <= tol * scale[i] and first_gmap[i] < 0 and (at_end[i] or status[i] == TOL):
            first_gmap[i] = iters[i]
        if at_end[i]:  # the stopping test of the last iteration, in R^d
            _, _, radial, residual = kkt_terms(D[i], grads[i], eps, constraint)
            if is_kkt(residual, radial, tol * scale[i]):
                if first_stat[i] < 0:
                    first_stat[i] = max_iter
                if tol > 0.0:
                    status[i] = TOL
    kkt_rows(grads, D, eps, constraint, fstats)
    return D, grads, fstats, istats
