"""Compiled loops of projected gradient ascent (see :mod:`fopa.ascent`).

Two fused loops share one interface:

* :func:`_pga_plain` iterates on ``delta`` directly: per iteration one product
  ``(X + D) W^T`` and one ``Q W`` over the rows still running.
* :func:`_pga_gram` keeps ``delta = gamma * delta0 + A W`` in the row space of
  ``W`` (MATH.md section 7): per iteration one product ``Q K`` with the Gram
  matrix ``K = W W^T``, of size rows x m x m instead of two rows x d x m.

Rows are independent ascents (one per input and restart). Rows that stop are
dropped from the products (the running rows are gathered into a compact block
every iteration), so a batch costs what its running rows cost. The matrix
products run on BLAS's own threads; the per-row work runs on one thread, in
loops that LLVM vectorises. (Running it on numba's threads as well made the two
thread pools compete for the same cores: at (n, d, m) = (64, 100, 512) an
iteration took 15 times longer.) Noise for the perturbed variant comes from a
SplitMix64 stream seeded per row, so it does not depend on scheduling.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel, scalar_kernel
from .derivatives import _row_coefficients

BALL, SPHERE, LINF = 0, 1, 2
ON_BOUNDARY = 1e-9  # relative distance to the boundary that counts as on it
RUNNING, MAX_ITER, TOL, NO_ESCAPE = -1, 0, 1, 2


@scalar_kernel
def _splitmix(state):
    """One SplitMix64 step: (new state, uniform float in [0, 1))."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@scalar_kernel
def _ball_noise(state, out):
    """Fill out (d,) with a point uniform in the unit ball; return the new state."""
    d = out.shape[0]
    norm2 = 0.0
    for j in range(d):
        state, u1 = _splitmix(state)
        state, u2 = _splitmix(state)
        out[j] = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
        norm2 += out[j] * out[j]
    state, u = _splitmix(state)
    scale = u ** (1.0 / d) / max(math.sqrt(norm2), 1e-300)
    for j in range(d):
        out[j] *= scale
    return state


@scalar_kernel
def _compact(active, na, done):
    """Drop the rows flagged in done[:na] from active[:na], in place; return the new count."""
    j = 0
    for k in range(na):
        if not done[k]:
            active[j] = active[k]
            j += 1
    return j


_SMALL_PRODUCT = 20_000  # below this many multiply-adds a loop beats a BLAS call


@scalar_kernel
def _times_transpose(P, W, WT):
    """P @ W.T for P (n, d), W (m, d); ``WT`` is W.T as a C-contiguous (d, m) array.

    Tiny products run as plain loops over WT's contiguous rows: no reduction in
    the inner loop, so it vectorises (a dot-product loop would be a chain of
    dependent additions, as no ``reassoc`` is allowed).
    """
    n, d = P.shape
    m = W.shape[0]
    if n * m * d > _SMALL_PRODUCT:
        return np.dot(P, W.T)
    out = np.zeros((n, m))
    for k in range(n):
        for j in range(d):
            p = P[k, j]
            for r in range(m):
                out[k, r] += p * WT[j, r]
    return out


@scalar_kernel
def _times(Q, W):
    """Q @ W for Q (n, m), W (m, d); plain loops for tiny products."""
    n, m = Q.shape
    d = W.shape[1]
    if n * m * d > _SMALL_PRODUCT:
        return np.dot(Q, W)
    out = np.zeros((n, d))
    for k in range(n):
        for r in range(m):
            q = Q[k, r]
            for j in range(d):
                out[k, j] += q * W[r, j]
    return out


@scalar_kernel
def _project(v, eps, constraint):
    """Project v onto the feasible set in place: the l2 ball or sphere, or the box."""
    if constraint == LINF:
        for j in range(v.shape[0]):
            v[j] = min(max(v[j], -eps), eps)
        return
    norm2 = 0.0
    for j in range(v.shape[0]):
        norm2 += v[j] * v[j]
    s = _project_l2(math.sqrt(norm2), eps, constraint)
    for j in range(v.shape[0]):
        v[j] *= s


@scalar_kernel
def _project_l2(norm, eps, constraint):
    """Factor that maps a vector of norm ``norm`` onto the ball or the sphere."""
    if constraint == SPHERE:
        return eps / max(norm, 1e-300)
    return eps / max(norm, eps)


def _pga_plain(
    W, a, b, c, act, loss, X, Y, eps, eta, D0, max_iter, tol, constraint,
    pert, seeds, record, target, store_iterates,
):  # fmt: skip
    """Projected gradient ascent on delta.

    Parameters
    ----------
    X, D0 : (N, d) inputs and starts; Y, eta : (N,) targets and step sizes.
    eps, tol : floats; max_iter, constraint : ints.
    pert : (5,) radius, threshold, interval, min_gain, max_count (radius 0: off).
    seeds : (N,) uint64 noise seeds. record : 1 to record history.
    target : (N, d) point to measure distances to (record only).
    store_iterates : 1 to keep every iterate (record only).

    Returns
    -------
    D, values, initial, grads, gnorm, iters, status, first_stat, n_pert,
    hist (3, N, T+1), iterates. ``grads`` is grad L at the returned points.
    """
    N, d = X.shape
    m = W.shape[0]
    D = D0.copy()
    values = np.zeros(N)
    initial = np.zeros(N)
    grads = np.zeros((N, d))
    gnorm = np.zeros(N)
    iters = np.zeros(N, np.int64)
    status = np.full(N, RUNNING, np.int64)
    first_stat = np.full(N, -1, np.int64)
    n_pert = np.zeros(N, np.int64)
    T = max_iter + 1 if record else 0
    hist = np.zeros((3, N, T))
    iterates = np.zeros((N if store_iterates else 0, T if store_iterates else 0, d))
    radius, threshold, interval, min_gain, max_count = pert[0], pert[1], pert[2], pert[3], pert[4]
    state = seeds.copy()
    saved = np.zeros((N if radius > 0 else 0, d))
    saved_value = np.zeros(N)
    saved_gmap = np.zeros(N)
    saved_grad = np.zeros((N if radius > 0 else 0, d))
    pert_iter = np.full(N, -1, np.int64)
    noise = np.zeros((N if radius > 0 else 0, d))
    S0 = np.empty(m)
    step = np.empty(d)
    WT = np.ascontiguousarray(W.T)
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    na = N
    for t in range(max_iter + 1):
        if na == 0:
            break
        P = np.empty((na, d))
        for k in range(na):
            i = active[k]
            for j in range(d):
                P[k, j] = X[i, j] + D[i, j]
        Z = _times_transpose(P, W, WT)
        Q = np.empty((na, m))
        vals = np.empty(na)
        for k in range(na):
            i = active[k]
            for r in range(m):
                Z[k, r] += b[r]
            vals[k] = _row_coefficients(act, loss, a, c, Y[i], Z[k], Q[k], S0)[0]
        G = _times(Q, W)
        for k in range(na):
            done[k] = False
            i = active[k]
            h = eta[i]
            for j in range(d):
                g = G[k, j]
                if constraint == LINF:
                    g = 1.0 if g > 0.0 else (-1.0 if g < 0.0 else 0.0)
                step[j] = D[i, j] + h * g
            _project(step, eps, constraint)
            moved2 = 0.0
            for j in range(d):
                moved2 += (step[j] - D[i, j]) ** 2
            gmap = math.sqrt(moved2) / h
            if record:
                hist[0, i, t] = vals[k]
                hist[1, i, t] = gmap
                dist2 = 0.0
                for j in range(d):
                    dist2 += (D[i, j] - target[i, j]) ** 2
                hist[2, i, t] = math.sqrt(dist2)
                if store_iterates:
                    iterates[i, t, :] = D[i, :]
            if gmap <= tol and first_stat[i] < 0:
                first_stat[i] = t
            if t == 0:
                initial[i] = vals[k]
            values[i] = vals[k]
            gnorm[i] = gmap
            iters[i] = t
            grads[i, :] = G[k, :]
            if radius > 0.0:
                if pert_iter[i] >= 0 and t - pert_iter[i] >= interval:
                    if vals[k] - saved_value[i] < min_gain:  # the perturbation did not escape
                        D[i, :] = saved[i, :]
                        values[i] = saved_value[i]
                        gnorm[i] = saved_gmap[i]
                        grads[i, :] = saved_grad[i, :]
                        status[i] = NO_ESCAPE
                        done[k] = True
                        continue
                    pert_iter[i] = -1
                if pert_iter[i] < 0 and gmap <= threshold:
                    if n_pert[i] >= max_count:
                        if gmap <= tol:
                            status[i] = TOL
                            done[k] = True
                            continue
                    else:
                        saved[i, :] = D[i, :]
                        saved_value[i] = vals[k]
                        saved_gmap[i] = gmap
                        saved_grad[i, :] = G[k, :]
                        pert_iter[i] = t
                        n_pert[i] += 1
                        state[i] = _ball_noise(state[i], noise[i])
                        for j in range(d):
                            step[j] = D[i, j] + radius * noise[i, j]
                        _project(step, eps, constraint)
            elif gmap <= tol:
                status[i] = TOL
                done[k] = True
                continue
            if t == max_iter:
                status[i] = MAX_ITER
                done[k] = True
                continue
            D[i, :] = step
        na = _compact(active, na, done)
    return D, values, initial, grads, gnorm, iters, status, first_stat, n_pert, hist, iterates


@scalar_kernel
def _gram_step(i, k, t, eps, eta, max_iter, tol, constraint, n0, Zs, A, AK, gamma, Q, QK,
               gnorm, iters, status, first_stat):  # fmt: skip
    """One projected step of row i in Gram coordinates; return True when it stops."""
    m = A.shape[1]
    h = eta[i]
    g = gamma[i]
    # v = g D0 + B W with B = A + h q; ||v||^2 from the Gram matrix
    norm2 = g * g * n0[i]
    for r in range(m):
        norm2 += (A[i, r] + h * Q[k, r]) * (2.0 * g * Zs[i, r] + AK[i, r] + h * QK[k, r])
    s = _project_l2(math.sqrt(max(norm2, 0.0)), eps, constraint)
    # moved = (s g - g) D0 + (s B - A) W
    dg = (s - 1.0) * g
    moved2 = dg * dg * n0[i]
    for r in range(m):
        da = s * (A[i, r] + h * Q[k, r]) - A[i, r]
        dak = s * (AK[i, r] + h * QK[k, r]) - AK[i, r]
        moved2 += da * (2.0 * dg * Zs[i, r] + dak)
    gmap = math.sqrt(max(moved2, 0.0)) / h
    if gmap <= tol and first_stat[i] < 0:
        first_stat[i] = t
    gnorm[i] = gmap
    iters[i] = t
    if gmap <= tol:
        status[i] = TOL
        return True
    if t == max_iter:
        status[i] = MAX_ITER
        return True
    for r in range(m):
        A[i, r] = s * (A[i, r] + h * Q[k, r])
        AK[i, r] = s * (AK[i, r] + h * QK[k, r])
    gamma[i] = s * g
    return False


def _pga_gram(W, a, b, c, act, loss, X, Y, eps, eta, D0, max_iter, tol, constraint):
    """Projected gradient ascent in the row space of W (ball or sphere, no noise).

    delta = gamma * D0 + A W. With K = W W^T, Zs = D0 W^T and n0 = ||D0||^2 the
    pre-activations are Z0 + gamma Zs + A K and ||delta||^2 =
    gamma^2 n0 + 2 gamma A.Zs + A.(A K); one product (rows x m) @ K per iteration.

    Returns
    -------
    D, values, initial, grads, gnorm, iters, status, first_stat (as :func:`_pga_plain`)
    """
    N, d = X.shape
    m = W.shape[0]
    WT = np.ascontiguousarray(W.T)
    K = _times_transpose(W, W, WT)
    Z0 = _times_transpose(X, W, WT)
    Zs = _times_transpose(D0, W, WT)
    n0 = np.zeros(N)
    for i in range(N):
        for j in range(d):
            n0[i] += D0[i, j] * D0[i, j]
    A = np.zeros((N, m))
    AK = np.zeros((N, m))
    gamma = np.ones(N)
    values = np.zeros(N)
    initial = np.zeros(N)
    Qlast = np.zeros((N, m))
    gnorm = np.zeros(N)
    iters = np.zeros(N, np.int64)
    status = np.full(N, RUNNING, np.int64)
    first_stat = np.full(N, -1, np.int64)
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    z = np.empty(m)
    S0 = np.empty(m)
    na = N
    for t in range(max_iter + 1):
        if na == 0:
            break
        Q = np.empty((na, m))
        for k in range(na):
            i = active[k]
            for r in range(m):
                z[r] = Z0[i, r] + b[r] + gamma[i] * Zs[i, r] + AK[i, r]
            values[i] = _row_coefficients(act, loss, a, c, Y[i], z, Q[k], S0)[0]
            if t == 0:
                initial[i] = values[i]
            Qlast[i, :] = Q[k, :]
        QK = _times(Q, K)
        for k in range(na):
            done[k] = _gram_step(
                active[k], k, t, eps, eta, max_iter, tol, constraint, n0, Zs, A, AK, gamma,
                Q, QK, gnorm, iters, status, first_stat,
            )  # fmt: skip
        na = _compact(active, na, done)
    D = _times(A, W)
    for i in range(N):
        for j in range(d):
            D[i, j] += gamma[i] * D0[i, j]
    return D, values, initial, _times(Qlast, W), gnorm, iters, status, first_stat


_pga_plain = kernel(_pga_plain)
_pga_gram = kernel(_pga_gram)


@kernel
def _kkt_residuals(G, D, eps, constraint):
    """KKT residual and multiplier at each row's point, shape (N,) each.

    l2 (ball/sphere): on the sphere (``||delta|| >= eps (1 - 1e-9)``, or always for
    the sphere constraint) with ``u = delta / ||delta||`` the tangent gradient
    ``g - (u.g) u`` and ``mu = u.g / eps``; inside ``||g||`` and 0. linf: the
    gradient over free coordinates and the smallest ``sign(delta_j) g_j`` over
    coordinates at the bound (0 if none).
    """
    N, d = G.shape
    residual = np.zeros(N)
    multiplier = np.zeros(N)
    for i in range(N):
        if constraint == LINF:
            free2 = 0.0
            mult = np.inf
            for j in range(d):
                if abs(D[i, j]) >= eps * (1.0 - ON_BOUNDARY):
                    mult = min(mult, (1.0 if D[i, j] > 0 else -1.0) * G[i, j])
                else:
                    free2 += G[i, j] * G[i, j]
            residual[i] = math.sqrt(free2)
            multiplier[i] = mult if mult < np.inf else 0.0
            continue
        norm2 = 0.0
        g2 = 0.0
        ug = 0.0
        for j in range(d):
            norm2 += D[i, j] * D[i, j]
            g2 += G[i, j] * G[i, j]
            ug += D[i, j] * G[i, j]
        norm = math.sqrt(norm2)
        if constraint == SPHERE or norm >= eps * (1.0 - ON_BOUNDARY):
            radial = ug / max(norm, 1e-300)
            tangent2 = 0.0
            for j in range(d):
                t = G[i, j] - radial * D[i, j] / max(norm, 1e-300)
                tangent2 += t * t
            residual[i] = math.sqrt(tangent2)
            multiplier[i] = radial / eps
        else:
            residual[i] = math.sqrt(g2)
    return residual, multiplier
