"""Proved bounds on the extreme eigenvalues of a formed symmetric matrix, compiled.

A certificate needs two facts about a symmetric ``M``: an upper bound of
``lambda_max`` (a strict maximum is the proof that it is negative) and a lower
bound of ``lambda_min`` (for ``||M||_2``). A full eigendecomposition gives every
eigenvalue in about ``4 n^3 / 3`` flops; here a short Lanczos run estimates both
ends and one Cholesky factorization (``n^3 / 3``) of each shifted matrix proves
them (``docs/certify.md``, "Proofs by factorization"):

* :func:`weighted_gram` forms ``Z^T diag(s) Z`` with half the multiply-adds of a
  full product (the lower triangle in blocks, then mirrored);
* :func:`lanczos_ends` estimates ``lambda_min`` and ``lambda_max`` (Ritz values:
  Rayleigh quotients of actual vectors, so ``theta_min >= lambda_min`` and
  ``theta_max <= lambda_max`` up to rounding);
* :func:`factor_bound` proves ``lambda_max(M) <= sigma + e`` (or ``lambda_min(M) >=
  sigma - e``) from a Cholesky factorization of ``sigma I - M`` (of ``M - sigma I``)
  that runs to completion, with ``e`` its rounding allowance;
* :func:`eigen_bounds` puts them together, widening the shift when a factorization
  fails and falling back to the eigendecomposition as a last resort.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit
from .linalg import dot
from .tolerances import LANCZOS_TOL

#: Unit roundoff of float64.
UNIT = 2.0**-53
#: Rows of the diagonal blocks that :func:`weighted_gram` forms with one full product.
GRAM_BLOCK = 128
#: Below this order the eigendecomposition is cheaper than Lanczos plus two
#: factorizations (measured here: eigvalsh of order 64 takes about 40 us).
SMALL_ORDER = 64
#: Lanczos steps at most (with full reorthogonalization); a run that has not
#: converged by then is confirmed with a wider shift or by the eigendecomposition.
LANCZOS_STEPS = 160
#: Shifts tried per end before the eigendecomposition is used instead.
SHIFT_TRIES = 3


@jit
def weighted_gram(ZT, s, out):
    """out[:] = ZT diag(s) ZT^T for ZT (n, k) C-contiguous, s (k,), out (n, n).

    With ``S = ZT diag(s)`` the lower triangle is formed by halving: the block
    below the diagonal of a range of rows is one BLAS product ``S[b:c] ZT[a:b]^T``
    and the two diagonal blocks are halved again, down to :data:`GRAM_BLOCK` rows
    (one full product). That is about ``n^2 k / 2`` multiply-adds in large products
    (a full product takes ``n^2 k``); the upper triangle is then mirrored, so
    ``out`` is exactly symmetric.
    """
    n, k = ZT.shape
    S = np.empty((n, k))
    for i in range(n):
        for r in range(k):
            S[i, r] = ZT[i, r] * s[r]
    starts = [0]
    sizes = [n]
    while len(starts) > 0:
        a = starts.pop()
        size = sizes.pop()
        if size <= GRAM_BLOCK:
            out[a : a + size, a : a + size] = np.dot(S[a : a + size], ZT[a : a + size].T)
            continue
        h = size // 2
        out[a + h : a + size, a : a + h] = np.dot(S[a + h : a + size], ZT[a : a + h].T)
        starts.append(a)
        sizes.append(h)
        starts.append(a + h)
        sizes.append(size - h)
    for i in range(n):
        for j in range(i):
            out[j, i] = out[i, j]


@jit
def _tridiagonal_count_below(diag, off, k, x):
    """Eigenvalues of the k x k tridiagonal (diag, off) below x (Sturm count)."""
    count = 0
    q = 1.0
    for i in range(k):
        b2 = off[i - 1] * off[i - 1] if i > 0 else 0.0
        q = diag[i] - x - (b2 / q if i > 0 else 0.0)
        if q == 0.0:
            q = -1e-300
        if q < 0.0:
            count += 1
    return count


@jit
def _tridiagonal_end(diag, off, k, upper, start):
    """The largest (``upper``) or smallest eigenvalue of the k x k tridiagonal, by
    Newton's method on its characteristic polynomial from ``start``, a point beyond
    that end: the polynomial has real roots only, so the iterates move
    monotonically toward the end (quadratically once near). ``f'/f = sum_i
    q_i'/q_i`` comes from the recurrence of the pivots ``q_i`` of ``T - x I``."""
    x = start
    for _ in range(200):
        q = diag[0] - x
        dq = -1.0
        if q == 0.0:
            return x
        ratio = dq / q
        for i in range(1, k):
            b2 = off[i - 1] * off[i - 1]
            q_next = diag[i] - x - b2 / q
            dq = -1.0 + b2 * dq / (q * q)
            q = q_next
            if q == 0.0:
                return x
            ratio += dq / q
        step = 1.0 / ratio
        x_next = x - step
        if (upper and not x_next < x) or (not upper and not x_next > x):
            break
        x = x_next
        if abs(step) <= 4.0 * UNIT * abs(x):
            break
    return x


@jit
def _beyond(diag, off, k, upper, near, far):
    """A point beyond the tridiagonal's end: ``near`` (the last step's end) pushed out
    by a growing margin until a Sturm count confirms it, or ``far`` (Gershgorin)."""
    width = 1e-6 * max(abs(far - near), 1e-300)
    for _ in range(4):
        x = near + width if upper else near - width
        if (upper and x >= far) or (not upper and x <= far):
            break
        below = _tridiagonal_count_below(diag, off, k, x)
        if (upper and below == k) or (not upper and below == 0):
            return x
        width *= 100.0
    return far


@jit
def lanczos_ends(M, max_steps, rel_tol):
    """Extreme Ritz values of symmetric M (n, n) by Lanczos with full
    reorthogonalization from a fixed generic start (``cos(1), ..., cos(n)``).

    Returns ``(theta_min, theta_max, change, steps)``: the Ritz values (Rayleigh
    quotients of vectors of the Krylov space, so inside the spectrum up to
    rounding), the largest change of either over the last four steps, and the
    number of products with M. The extreme eigenvalues of the tridiagonal are found
    every fourth step by Newton's method from just beyond the previous values (they
    move outward, by interlacing; a Sturm count confirms the start). The run stops when
    neither end moved by more than ``rel_tol`` times ``max |theta|`` over four
    steps, when the Krylov space is invariant (change 0), or after ``max_steps``.
    """
    n = M.shape[0]
    k_max = min(n, max_steps)
    Q = np.empty((k_max + 1, n))
    for j in range(n):
        Q[0, j] = math.cos(j + 1.0)
    q_norm = math.sqrt(dot(Q[0], Q[0]))
    for j in range(n):
        Q[0, j] /= q_norm
    diag = np.zeros(k_max)
    off = np.zeros(k_max)
    w = np.empty(n)
    c = np.empty(k_max)
    lo = hi = 0.0
    lo_old = hi_old = 0.0
    change = math.inf
    steps = 0
    for j in range(k_max):
        np.dot(M, Q[j], w)
        steps += 1
        diag[j] = dot(w, Q[j])
        before = math.sqrt(dot(w, w))
        for _ in range(2):  # full reorthogonalization; a second pass when it cancelled
            np.dot(Q[: j + 1], w, c[: j + 1])
            for i in range(j + 1):
                ci = c[i]
                qi = Q[i]
                for t in range(n):
                    w[t] -= ci * qi[t]
            b = math.sqrt(dot(w, w))
            if b > 0.7071 * before:  # (the criterion of Daniel, Gragg, Kaufman, Stewart)
                break
            before = b
        off[j] = b
        k = j + 1
        invariant = b <= 4.0 * n * UNIT * max(abs(lo), abs(hi), abs(diag[j])) or k == n
        if k % 4 != 0 and not invariant and k < k_max:
            for t in range(n):
                Q[k, t] = w[t] / b
            continue
        # the ends of the tridiagonal: Newton from just beyond the last ones (they move out)
        g_lo, g_hi = math.inf, -math.inf
        for i in range(k):
            r = (abs(off[i - 1]) if i > 0 else 0.0) + (abs(off[i]) if i + 1 < k else 0.0)
            g_lo = min(g_lo, diag[i] - r)
            g_hi = max(g_hi, diag[i] + r)
        if k == 1:
            lo = hi = diag[0]
        elif k <= 4:
            lo = _tridiagonal_end(diag, off, k, False, g_lo)
            hi = _tridiagonal_end(diag, off, k, True, g_hi)
        else:
            lo = _tridiagonal_end(diag, off, k, False, _beyond(diag, off, k, False, lo, g_lo))
            hi = _tridiagonal_end(diag, off, k, True, _beyond(diag, off, k, True, hi, g_hi))
        spread = max(abs(lo), abs(hi))
        if invariant:  # invariant subspace: the Ritz values are exact
            change = 0.0
            break
        if k > 4:
            change = max(lo_old - lo, hi - hi_old)
            if change <= rel_tol * spread:
                break
        lo_old, hi_old = lo, hi
        if k < k_max:
            for t in range(n):
                Q[k, t] = w[t] / b
    return lo, hi, change, steps


@jit
def factor_bound(M, sigma, upper):
    """Prove an eigenvalue bound of symmetric M by one Cholesky factorization.

    ``upper``: factor ``A = sigma I - M``; else ``A = M - sigma I``. If the
    factorization runs to completion, the computed factor R satisfies
    ``R^T R = A + E`` with ``|E| <= g |R^T| |R|``, ``g = (n+1) u / (1 - (n+1) u)``,
    so ``||E||_2 <= g ||R||_F^2`` and ``A`` (as formed, within ``u |A_ii|`` of the
    exact shift on its diagonal) has no eigenvalue below ``-e``, with
    ``e = 2 g ||R||_F^2 + 2 u max_i |A_ii|`` (a factor 2 of margin for blocked
    orderings). Returns ``(True, sigma + e)`` (an upper bound of ``lambda_max``),
    ``(True, sigma - e)`` (a lower bound of ``lambda_min``), or ``(False, nan)``
    when the factorization breaks down: then M has an eigenvalue beyond
    ``sigma`` (up to the same allowance).
    """
    n = M.shape[0]
    A = np.empty((n, n))
    sign = -1.0 if upper else 1.0
    diag_max = 0.0
    for i in range(n):
        for j in range(n):
            A[i, j] = sign * M[i, j]
        A[i, i] -= sign * sigma
        diag_max = max(diag_max, abs(A[i, i]))
    try:
        R = np.linalg.cholesky(A)
    except Exception:  # noqa: BLE001 - numba raises LinAlgError: not positive definite
        return False, math.nan
    frob = 0.0
    for i in range(n):
        for j in range(i + 1):
            frob += R[i, j] * R[i, j]
    if not math.isfinite(frob):
        return False, math.nan
    g = (n + 1) * UNIT / (1.0 - (n + 1) * UNIT)
    e = 2.0 * g * frob + 2.0 * UNIT * diag_max
    return True, (sigma + e) if upper else (sigma - e)


@jit
def _eigvalsh_bounds(M):
    """Both ends from the eigendecomposition, with its backward-error allowance."""
    eig = np.linalg.eigvalsh(M)
    lo, hi = eig[0], eig[-1]
    slack = 4.0 * M.shape[0] * UNIT * max(abs(lo), abs(hi))
    return lo, hi, lo - slack, hi + slack


@jit
def factor_ends(M):
    """Lanczos estimates of both ends of symmetric M, each proved by a factorization.

    Returns ``(est_min, est_max, lower_min, upper_max, factorizations)`` as
    :func:`eigen_bounds`. The shift at each end starts at ten times the Lanczos
    values' last change (at least :data:`LANCZOS_TOL` times ``max |theta|`` and
    eight ``n u`` of it) and widens a hundredfold after a failed factorization;
    after :data:`SHIFT_TRIES` failures at one end the eigendecomposition decides
    (``factorizations`` = -1).
    """
    n = M.shape[0]
    lo, hi, change, _ = lanczos_ends(M, LANCZOS_STEPS, LANCZOS_TOL)
    spread = max(abs(lo), abs(hi))
    if spread == 0.0 or not math.isfinite(spread):
        lo, hi, lo_b, hi_b = _eigvalsh_bounds(M)
        return lo, hi, lo_b, hi_b, -1
    floor = 8.0 * n * UNIT * spread
    tries = 0
    bounds = np.empty(2)
    for end in range(2):
        upper = end == 1
        theta = hi if upper else lo
        width = max(LANCZOS_TOL * spread, 10.0 * change, floor)
        ok = False
        for _ in range(SHIFT_TRIES):
            sigma = theta + width if upper else theta - width
            tries += 1
            ok, bound = factor_bound(M, sigma, upper)
            if ok:
                bounds[end] = bound
                break
            width *= 100.0
        if not ok:
            lo, hi, lo_b, hi_b = _eigvalsh_bounds(M)
            return lo, hi, lo_b, hi_b, -1
    return lo, hi, bounds[0], bounds[1], tries


@jit
def eigen_bounds(M):
    """Estimates and proved bounds of both ends of the spectrum of symmetric M.

    Returns ``(est_min, est_max, lower_min, upper_max, factorizations)``:
    ``lower_min <= lambda_min <= est_min`` and ``est_max <= lambda_max <=
    upper_max`` for the matrix as formed (up to rounding in the estimates, which
    are Rayleigh quotients). Orders up to :data:`SMALL_ORDER` use the
    eigendecomposition (with its backward-error allowance; ``factorizations`` =
    0); larger ones :func:`factor_ends`.
    """
    if M.shape[0] <= SMALL_ORDER:
        lo, hi, lo_b, hi_b = _eigvalsh_bounds(M)
        return lo, hi, lo_b, hi_b, 0
    return factor_ends(M)
