"""Products, dot products and small eigenproblems shared by every kernel.

Sums are formed in a fixed order (four running sums, no ``reassoc``), so results
are reproducible bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit

_SMALL_PRODUCT = 20_000  # below this many multiply-adds a loop beats a BLAS call


@jit
def product_into(P, B, out):
    """out[:] = P @ B for C-contiguous P (n, k), B (k, p) and out (n, p).

    Larger products call BLAS. Tiny ones run as loops over B's contiguous rows,
    four rows per pass: no reduction in the inner loop, so it vectorises (a
    dot-product loop would be a chain of dependent additions, as no ``reassoc`` is
    allowed), and each pass loads and stores ``out`` once for four rows of B
    (one row per pass was bound by the store-to-load chain through ``out``).
    """
    n, k = P.shape
    p = B.shape[1]
    if n * k * p > _SMALL_PRODUCT:
        np.dot(P, B, out)
        return
    k4 = k - k % 4
    for i in range(n):
        o = out[i]
        o[:] = 0.0
        for j in range(0, k4, 4):
            v0, v1, v2, v3 = P[i, j], P[i, j + 1], P[i, j + 2], P[i, j + 3]
            b0, b1, b2, b3 = B[j], B[j + 1], B[j + 2], B[j + 3]
            for r in range(p):
                o[r] += (v0 * b0[r] + v1 * b1[r]) + (v2 * b2[r] + v3 * b3[r])
        for j in range(k4, k):
            v0, b0 = P[i, j], B[j]
            for r in range(p):
                o[r] += v0 * b0[r]


#: Sums of squares inside [_SQ_LO, _SQ_HI] lost nothing to overflow or underflow.
_SQ_LO, _SQ_HI = 1e-290, 1e290
_UP, _DOWN = 2.0**600, 2.0**-600


@jit
def norm2(v):
    """||v||_2 over the whole float range (as LAPACK's ``dnrm2``).

    The plain ``sqrt(v . v)`` when the sum of squares is in ``[1e-290, 1e290]``
    (the same bits as before; no square can have overflowed, and squares that
    underflowed are below 1e-290 / n of the sum, invisible in it); otherwise the
    vector is scaled by a power of two first (2^600 or 2^-600, by its largest
    entry), so that ``||v||`` near 1e-160 or 1e160 (whose squares under- or
    overflow) is exact to rounding. inf and NaN
    entries give inf and NaN.
    """
    s = dot(v, v)
    if _SQ_LO <= s <= _SQ_HI:
        return math.sqrt(s)
    big = 0.0
    for j in range(v.shape[0]):
        a = abs(v[j])
        if a > big or a != a:
            big = a
    if big == 0.0 or not big < math.inf:
        return big
    # scale by a power of two (exact, also for subnormal entries, where dividing by
    # the largest entry would overflow its reciprocal)
    f = _UP if big < 1.0 else _DOWN
    acc = 0.0
    for j in range(v.shape[0]):
        t = v[j] * f
        acc += t * t
    return math.sqrt(acc) * (1.0 / f)


@jit
def row_norms(A):
    """||A[i]||_2 for every row of a 2-D array, scale-safe (:func:`norm2`)."""
    out = np.empty(A.shape[0])
    for i in range(A.shape[0]):
        out[i] = norm2(A[i])
    return out


@jit
def times(Q, W):
    """Q @ W for Q (n, m), W (m, d), as a new array."""
    out = np.empty((Q.shape[0], W.shape[1]))
    product_into(np.ascontiguousarray(Q), W, out)
    return out


@jit
def dot(x, y):
    """x . y for 1-D arrays of equal length, with four running sums.

    A plain loop is one chain of dependent additions (no ``reassoc`` is allowed,
    so LLVM keeps it): four independent sums are about 3.5 times faster at
    m = 512. The order is fixed, so results are reproducible bit for bit.
    """
    n = x.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n4 = n - n % 4
    for r in range(0, n4, 4):
        s0 += x[r] * y[r]
        s1 += x[r + 1] * y[r + 1]
        s2 += x[r + 2] * y[r + 2]
        s3 += x[r + 3] * y[r + 3]
    for r in range(n4, n):
        s0 += x[r] * y[r]
    return (s0 + s1) + (s2 + s3)


@jit
def all_finite(flat):
    """True when every entry of the 1-D array is finite (a compiled loop: no temporary)."""
    for v in flat:
        if not math.isfinite(v):
            return False
    return True


@jit
def largest_row_norm(D):
    """max_i ||D[i]||_2 for D (n, d)."""
    out = 0.0
    for i in range(D.shape[0]):
        out = max(out, norm2(D[i]))
    return out


@jit
def eigvalsh(M):
    """Eigenvalues of a symmetric matrix, ascending.

    Compiled so that LAPACK is the one numba links (scipy's), the library the
    other kernels' BLAS calls use: alternating between numpy's and scipy's
    OpenBLAS thread pools made both several times slower here.
    """
    return np.linalg.eigvalsh(M)


@jit
def gram_matrix(W, WT):
    """K = W W^T, shape (m, m), exactly symmetric; ``WT`` is W^T, C-contiguous."""
    m = W.shape[0]
    K = np.empty((m, m))
    product_into(W, WT, K)
    for r in range(m):
        for s in range(r):
            K[r, s] = K[s, r]
    return K
