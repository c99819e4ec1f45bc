"""Compiled phases of one epoch of PGD adversarial training, split over workers.

An epoch of minibatch training with the attack-library inner step
(:func:`fopa._kernels.training.pgd_gram`) and SGD or Adam runs as three phases per
batch, each split into ``P`` parts that share nothing they write
(``docs/adversarial-training.md``, "One epoch in compiled phases"):

1. :func:`gram_part`: a share of the lower-triangle blocks of ``K = W W^T`` (each
   mirrored, so ``K`` is exactly symmetric), for the row-space inner iteration;
2. :func:`pgd_part`: the inner maximization and the parameter-gradient sums of a
   contiguous share of the batch's rows;
3. :func:`update_part`: the optimizer step of a contiguous share of the hidden
   units, written to the other of two parameter buffers, with a flag that says
   whether everything it wrote (and the losses of its rows) is finite. It is
   compiled without ``fastmath`` (:func:`fopa._kernels.jit.jit_exact`), so a
   process that loads it from numba's cache computes the bits of the process that
   compiled it.

The caller (:mod:`fopa._training_epoch`) runs the parts of a phase on worker
threads (every kernel is ``nogil``; BLAS single-threaded inside) or one after
another, with a barrier between phases; the bits depend on ``P`` only, not on how
many threads run the parts. Every kernel takes arrays and scalars only.
"""

from __future__ import annotations

import math

import numpy as np

from .attacks import pgd_run
from .jit import jit, jit_exact
from .linalg import dot, product_into
from .network import NetView, preactivations, row_coefficients
from .training import pgd_gram

SGD, ADAM = 0, 1


@jit
def gram_part(W, K, blocks, edges):
    """``K[bi, bj] = W[bi] W[bj]^T`` and its mirror for each block ``(bi, bj)`` in
    ``blocks`` (k, 2) (``bi >= bj``; ``edges`` the row ranges of the blocks)."""
    for k in range(blocks.shape[0]):
        i0, i1 = edges[blocks[k, 0]], edges[blocks[k, 0] + 1]
        j0, j1 = edges[blocks[k, 1]], edges[blocks[k, 1] + 1]
        part = np.dot(W[i0:i1], W[j0:j1].T)
        for i in range(i1 - i0):
            for j in range(j1 - j0):
                K[i0 + i, j0 + j] = part[i, j]
                K[j0 + j, i0 + i] = part[i, j]


@jit
def pgd_part(W, a, b, c, b0, act, critical, K, loss, X, Y, order, i0, i1, D0, eps,
             alpha, steps, guard, gram, stop, values, F, gW, ga, gb, gb0):  # fmt: skip
    """The inner maximization of the points at positions ``i0:i1`` of ``order`` and
    their parameter-gradient sums.

    ``X`` (n, d), ``Y`` (n,) the training data; ``order`` (n,) the epoch's
    permutation; ``D0`` (n, d) the starts by position, or (0, d) for zero starts.
    Writes the losses and outputs at ``X + delta`` into ``values[i0:i1]`` and
    ``F[i0:i1]`` (by position) and the sums over these points of the gradients in
    W, a, b and b0 into ``gW`` (m, d), ``ga``, ``gb`` (m,) and ``gb0`` (1,).
    """
    rows = i1 - i0
    d = X.shape[1]
    m = W.shape[0]
    # W^T as a view (BLAS reads it transposed); the last two fields (for the ball
    # bounds) are not read by the inner step
    net = NetView(W, W.T, a, b, c, b0[0], act, critical, a, a)
    Xb = np.empty((rows, d))
    Yb = np.empty(rows)
    start = np.zeros((rows, d))
    for i in range(rows):
        Xb[i] = X[order[i0 + i]]
        Yb[i] = Y[order[i0 + i]]
        if D0.shape[0] > 0:
            start[i] = D0[i0 + i]
    if gram:
        C, gamma, Z, _ = pgd_gram(net, K, loss, Xb, Yb, start, eps, alpha, steps, guard, stop)
        P = np.empty((rows, d))
        product_into(C, W, P)  # delta = C W + gamma D0, then P = X + delta
        for i in range(rows):
            for j in range(d):
                P[i, j] = Xb[i, j] + (P[i, j] + gamma[i] * start[i, j])
    else:
        P = pgd_run(net, loss, Xb, Yb, Xb + start, eps, alpha, steps, guard, 0, False, 0.0,
                    0.0, stop)[0]  # fmt: skip
        Z = preactivations(net, P)
    BT = np.empty((m, rows))
    s0 = np.empty(m)
    s1 = np.empty(m)
    for r in range(m):
        ga[r] = 0.0
        gb[r] = 0.0
    gb0[0] = 0.0
    for i in range(rows):
        value, l1 = row_coefficients(net, loss, Yb[i], Z[i], s1, s0)
        values[i0 + i] = value
        F[i0 + i] = c * dot(a, s0) + b0[0]
        gb0[0] += l1
        for r in range(m):
            BT[r, i] = s1[r]
            ga[r] += l1 * c * s0[r]
            gb[r] += s1[r]
    product_into(BT, P, gW)


@jit_exact
def update_part(optimizer, W, a, b, b0, Wn, an, bn, b0n, gW, ga, gb, gb0, rows, r0, r1,
                rates, moments, adam, c1, c2, values, i0, i1):  # fmt: skip
    """The optimizer step of hidden units ``r0:r1`` (and of b0 when ``r0 == 0``),
    from the parameters ``W, a, b, b0`` into ``Wn, an, bn, b0n``.

    ``gW`` (P, m, d), ``ga``, ``gb`` (P, m), ``gb0`` (P, 1) are the parts' gradient
    sums, added in part order and divided by ``rows`` (the batch's size).
    ``optimizer``: :data:`SGD` (``theta - rate g``) or :data:`ADAM` (torch's update,
    ``moments`` the first and second moments of W, a, b, b0 as arrays of shape
    (2, m, d), (2, m), (2, m), (2, 1), updated in place; ``adam`` the constants
    ``(beta1, beta2, epsilon)``; ``c1, c2`` the bias corrections ``1 - beta^t`` of
    this step). ``rates`` (4,) for W, a, b, b0.
    Returns True when every parameter written and every loss ``values[i0:i1]`` is
    finite.
    """
    finite = True
    for i in range(i0, i1):
        if not math.isfinite(values[i]):
            finite = False
    parts = gW.shape[0]
    d = W.shape[1]
    mW, ma, mb, mb0 = moments
    g = np.empty(d)
    for r in range(r0, r1):
        for j in range(d):
            s = gW[0, r, j]
            for p in range(1, parts):
                s += gW[p, r, j]
            g[j] = s / rows
        finite &= _step_row(optimizer, W[r], Wn[r], g, rates[0], mW[0, r], mW[1, r], adam, c1, c2)
    for vec, new, grad, rate, mom in ((a, an, ga, rates[1], ma), (b, bn, gb, rates[2], mb)):
        for r in range(r0, r1):
            s = grad[0, r]
            for p in range(1, parts):
                s += grad[p, r]
            g[0] = s / rows
            finite &= _step_row(optimizer, vec[r : r + 1], new[r : r + 1], g[:1], rate,
                                mom[0, r : r + 1], mom[1, r : r + 1], adam, c1,
                                c2)  # fmt: skip
    if r0 == 0:
        s = gb0[0, 0]
        for p in range(1, parts):
            s += gb0[p, 0]
        g[0] = s / rows
        finite &= _step_row(optimizer, b0, b0n, g[:1], rates[3], mb0[0], mb0[1], adam, c1, c2)
    return finite


@jit_exact
def _step_row(optimizer, old, new, g, rate, m1, m2, adam, c1, c2):
    """``new = old - step(g)`` elementwise; returns whether ``new`` is finite."""
    b1, b2, epsilon = adam
    finite = True
    for j in range(old.shape[0]):
        if optimizer == SGD:
            v = old[j] - rate * g[j]
        else:
            m1[j] = b1 * m1[j] + (1.0 - b1) * g[j]
            m2[j] = b2 * m2[j] + (1.0 - b2) * g[j] ** 2
            v = old[j] - rate * (m1[j] / c1) / (math.sqrt(m2[j] / c2) + epsilon)
        new[j] = v
        if not math.isfinite(v):
            finite = False
    return finite
