"""The third derivative of the network at the ball's center, as a tensor, compiled.

``D^3 f(x) = sum_r e_r w_r (x) w_r (x) w_r`` with ``e_r = c a_r sigma'''(w_r . x + b_r)``
keeps the signs of ``a_r``: over the random signs of an initial-phase network its
terms cancel, which a bound built from ``|e_r|`` cannot see. With ``W = F V^T``
(``F = U S`` from the SVD of W, r x m as ``FT``) the tensor is ``V`` applied to the
r-dimensional ``sum_r e_r f_r (x) f_r (x) f_r`` on every side, with the same norms.
:func:`center_third_norm` bounds its spectral norm by the unfolding norm
(``docs/derivatives.md``, "The third derivative at the center").
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit
from .spectral import UNIT

#: Largest row-space dimension r = min(m, d) for which the tight bounds form the
#: center tensor (``r^3 m / 6`` multiply-adds per input, against ``20 d m`` for ten
#: ascent iterations); above it the sign-less form alone is used.
TENSOR_MAX_RANK = 8


@jit
def center_third_norm(FT, e, row_norms):
    """An upper bound of the spectral norm of ``sum_r e_r f_r (x) f_r (x) f_r``.

    Parameters
    ----------
    FT : ndarray, shape (r, m)
        ``F^T``: column r of FT is the row ``w_r`` in the row-space basis.
    e : ndarray, shape (m,)
        The coefficients ``c a_r sigma'''(z_r)``.
    row_norms : ndarray, shape (m,)
        ``||w_r||`` (equal to ``||f_r||``), for the rounding allowance.

    Returns
    -------
    float
        ``sqrt(||sum_j A_j^2||_2)`` with ``A_j = T(e_j, ., .)`` the slices of the
        tensor, plus the allowances for the rounding of the tensor's entries and of
        the product; it is at least the tensor's spectral norm
        ``sup_{|u| = 1} ||sum_j u_j A_j||_2``.
    """
    r_dim, m = FT.shape
    T = np.zeros((r_dim, r_dim, r_dim))
    row_sum = 0.0
    for r in range(m):
        row_sum += abs(e[r]) * row_norms[r] ** 3
    # rows e f_j f_k (entrywise) for j <= k, then one product with F: entry (j, k, h)
    # of the tensor is row (j, k) times column h
    pairs = r_dim * (r_dim + 1) // 2
    U = np.empty((pairs, m))
    q = 0
    for j in range(r_dim):
        for k in range(j, r_dim):
            for r in range(m):
                U[q, r] = e[r] * FT[j, r] * FT[k, r]
            q += 1
    P = np.dot(U, FT.T)
    q = 0
    for j in range(r_dim):
        for k in range(j, r_dim):
            for h in range(k, r_dim):
                T[j, k, h] = P[q, h]
            q += 1
    # the entries j <= k <= h are formed; the others are their permutations
    for j in range(r_dim):
        for k in range(j, r_dim):
            for h in range(k, r_dim):
                v = T[j, k, h]
                T[j, h, k] = v
                T[k, j, h] = v
                T[k, h, j] = v
                T[h, j, k] = v
                T[h, k, j] = v
    B = np.zeros((r_dim, r_dim))
    fro2 = 0.0
    for j in range(r_dim):
        for k in range(r_dim):
            for h in range(r_dim):
                a = T[j, k, h]
                fro2 += a * a
                for p in range(r_dim):
                    B[k, p] += a * T[j, h, p]
    for k in range(r_dim):
        for p in range(k):
            v = 0.5 * (B[k, p] + B[p, k])
            B[k, p] = v
            B[p, k] = v
    # each entry is a sum of m products of four factors, and F is W's factor to a
    # few ulp: the tensor moves by at most 8 (m + r + 4) u sum_r |e_r| ||w_r||^3 in
    # norm; each entry of B is a sum of r^2 products: ||B - sum A_j^2||_F is at most
    # 2 (r^2 + 2) u ||T||_F^2
    t_round = 8.0 * (m + r_dim + 4) * UNIT * row_sum
    b_round = 2.0 * (r_dim * r_dim + 2) * UNIT * fro2
    eig = np.linalg.eigvalsh(B)
    top = max(abs(eig[0]), abs(eig[-1]))
    top += b_round + 4.0 * r_dim * UNIT * top
    return math.sqrt(top) + t_round


@jit
def weighted_gram_norm(FT, p):
    """An upper bound of ``||F^T diag(p) F||_2`` for weights ``p >= 0`` (shape (m,)).

    It bounds the spectral norm of every tensor ``sum_r t_r f_r (x) f_r (x) f_r``
    with ``|t_r| ||f_r|| <= p_r``: for unit u, v,
    ``|sum_r t_r (f_r.u)(f_r.v)^2| <= sum_r p_r (f_r.v)^2 <= ||F^T diag(p) F||``.
    The Gram is one product ``(F^T diag(p)) F`` (made exactly symmetric) with the rounding
    allowance of sums of m non-negative products, ``2 (m + 4) u`` of its trace.
    """
    r_dim, m = FT.shape
    S = np.empty((r_dim, m))
    for j in range(r_dim):
        for r in range(m):
            S[j, r] = p[r] * FT[j, r]
    M = np.dot(S, FT.T)
    for j in range(r_dim):
        for k in range(j):
            M[j, k] = 0.5 * (M[j, k] + M[k, j])
    trace = 0.0
    for j in range(r_dim):
        trace += M[j, j]
        for k in range(j):
            M[k, j] = M[j, k]
    eig = np.linalg.eigvalsh(M)
    top = max(abs(eig[0]), abs(eig[-1]))
    return top + 4.0 * r_dim * UNIT * top + 2.0 * (m + 4) * UNIT * trace
