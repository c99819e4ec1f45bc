"""Compiled parts of adversarial training (see :mod:`fopa.adversarial`).

:func:`pgd_gram` runs the attack-library normalized PGD, ``delta <- Proj(delta +
alpha g / (||g|| + guard))``, on a batch in the row space of W
(``docs/adversarial-training.md``, "The inner maximization in Gram form"): from a
start ``D0``, every iterate is ``delta = gamma D0 + C W``, so with ``K = W W^T``,
``Zs = D0 W^T`` and ``n0 = ||D0||^2``

* the pre-activations are ``Z0 + gamma Zs + C K`` (``Z0 = X W^T + b``),
* ``||g||^2 = q . (q K)`` for the gradient ``g = q W``,
* ``||delta||^2 = gamma^2 n0 + 2 gamma C . Zs + C . (C K)``,

and a step costs one product ``Q K`` (rows x m x m) instead of the two products
``(X + D) W^T`` and ``Q W`` (rows x m x d each). :func:`outer_coefficients` gives
the parameter-gradient coefficients at the final pre-activations, which the Gram
loop already holds, so the outer step needs no further product with W^T.
"""

from __future__ import annotations

import math

import numpy as np

from .attacks import pgd_run
from .jit import jit
from .linalg import dot, product_into
from .network import preactivations, row_coefficients
from .pga_gram import gram_start


@jit
def pgd_gram(net, K, loss, X, Y, D0, eps, alpha, steps, guard, stop):
    """Normalized L2 PGD in Gram coordinates, ``steps`` updates from ``D0``.

    Parameters
    ----------
    net : NetView
    K : ndarray, shape (m, m)
        ``W W^T``.
    loss : int
        Loss code.
    X : ndarray, shape (n, d)
    Y : ndarray, shape (n,)
    D0 : ndarray, shape (n, d)
        Starting perturbations, inside the ball.
    eps, alpha, guard : float
        Radius, step length along the normalized gradient and the division guard
        (0: a zero gradient leaves the row where it is).
    steps : int
    stop : ndarray, shape (1,) of int64
        Nonzero: end early (Ctrl-C; the caller discards the outputs).

    Returns
    -------
    C : ndarray, shape (n, m)
        ``delta = gamma D0 + C W`` at the end.
    gamma : ndarray, shape (n,)
    Z : ndarray, shape (n, m)
        Pre-activations at the final points.
    first_loss : ndarray, shape (n,)
        The loss at the start.
    """
    n = X.shape[0]
    m = net.W.shape[0]
    Z0, n0, Zs = gram_start(net, X, D0)
    C = np.zeros((n, m))
    CK = np.zeros((n, m))
    gamma = np.ones(n)
    Z = np.empty((n, m))
    Q = np.empty((n, m))
    QK = np.empty((n, m))
    S0 = np.empty(m)
    first_loss = np.empty(n)
    for t in range(steps):
        if stop[0] != 0:
            break
        for i in range(n):
            for r in range(m):
                Z[i, r] = Z0[i, r] + gamma[i] * Zs[i, r] + CK[i, r]
            value = row_coefficients(net, loss, Y[i], Z[i], Q[i], S0)[0]
            if t == 0:
                first_loss[i] = value
        product_into(Q, K, QK)
        for i in range(n):
            g_norm = math.sqrt(max(dot(Q[i], QK[i]), 0.0))
            if g_norm == 0.0 and guard == 0.0:
                continue
            h = alpha / (g_norm + guard)
            for r in range(m):
                C[i, r] += h * Q[i, r]
                CK[i, r] += h * QK[i, r]
            norm2 = gamma[i] * gamma[i] * n0[i] + dot(C[i], CK[i])
            if n0[i] > 0.0:
                norm2 += 2.0 * gamma[i] * dot(C[i], Zs[i])
            norm = math.sqrt(max(norm2, 0.0))
            if norm > eps:
                s = eps / norm
                gamma[i] *= s
                for r in range(m):
                    C[i, r] *= s
                    CK[i, r] *= s
    for i in range(n):
        for r in range(m):
            Z[i, r] = Z0[i, r] + gamma[i] * Zs[i, r] + CK[i, r]
    if steps == 0:
        for i in range(n):
            first_loss[i] = row_coefficients(net, loss, Y[i], Z[i], Q[i], S0)[0]
    return C, gamma, Z, first_loss


@jit
def outer_coefficients(net, loss, Y, Z):
    """Loss and parameter-gradient coefficients at pre-activations ``Z`` (n, m).

    Returns ``values`` (n,), the outputs ``f`` (n,), ``A`` (n, m) = dL/da, ``B``
    (n, m) = dL/db (so ``dL/dW = B^T P`` summed over the points P) and ``L1`` (n,) =
    l' = dL/db0, as :func:`fopa._kernels.network.parameter_coefficients` at the
    points themselves.
    """
    n, m = Z.shape
    values = np.empty(n)
    F = np.empty(n)
    A = np.empty((n, m))
    B = np.empty((n, m))
    L1 = np.empty(n)
    for i in range(n):
        value, l1 = row_coefficients(net, loss, Y[i], Z[i], B[i], A[i])
        values[i] = value
        F[i] = net.c * dot(net.a, A[i]) + net.b0
        L1[i] = l1
        for r in range(m):
            A[i, r] *= l1 * net.c
    return values, F, A, B, L1


@jit
def batch_gradient_at(net, loss, Y, P, Z):
    """Losses, outputs and the batch-mean parameter gradient at the points ``P``
    (n, d) with pre-activations ``Z`` (n, m).

    Returns ``values, F`` (n,) and the gradient's sums over the points (the
    caller divides by the batch's size, so that row blocks of a batch add up):
    ``gW`` (1, m, d), ``ga, gb`` (1, m) and ``gb0`` (1,).
    """
    n, d = P.shape
    values, F, A, B, L1 = outer_coefficients(net, loss, Y, Z)
    m = net.W.shape[0]
    gW = np.empty((1, m, d))
    product_into(np.ascontiguousarray(B.T), P, gW[0])
    ga = np.zeros((1, m))
    gb = np.zeros((1, m))
    gb0 = np.zeros(1)
    for i in range(n):
        gb0[0] += L1[i]
        for r in range(m):
            ga[0, r] += A[i, r]
            gb[0, r] += B[i, r]
    return values, F, gW, ga, gb, gb0


@jit
def gradient_at(net, loss, X, Y, delta):
    """:func:`batch_gradient_at` at ``P = X + delta`` (its pre-activations computed)."""
    P = X + delta
    return batch_gradient_at(net, loss, Y, P, preactivations(net, P))


@jit
def pgd_batch_gradient(net, K, loss, X, Y, D0, eps, alpha, steps, guard, gram, stop):
    """One batch of PGD adversarial training up to the parameter gradient, every
    product on the same BLAS (numba's; NumPy's and SciPy's OpenBLAS are separate
    thread pools, and alternating between them made each product up to 20x slower
    here: each pool's threads spin after their work and take the cores from the
    other's).

    The inner maximization by :func:`pgd_gram` (``gram``) or by
    :func:`fopa._kernels.attacks.pgd_run`, then :func:`batch_gradient_at` at
    ``P = X + delta``. Returns ``delta`` (n, d) and the outputs of
    :func:`batch_gradient_at`.
    """
    n, d = X.shape
    if gram:
        C, gamma, Z, _ = pgd_gram(net, K, loss, X, Y, D0, eps, alpha, steps, guard, stop)
        delta = np.empty((n, d))
        product_into(C, net.W, delta)
        for i in range(n):
            for j in range(d):
                delta[i, j] += gamma[i] * D0[i, j]
        P = X + delta
    else:
        P = pgd_run(net, loss, X, Y, X + D0, eps, alpha, steps, guard, 0, False, 0.0, 0.0,
                    stop)[0]  # fmt: skip
        delta = P - X
        Z = preactivations(net, P)
    values, F, gW, ga, gb, gb0 = batch_gradient_at(net, loss, Y, P, Z)
    return delta, values, F, gW, ga, gb, gb0
