"""The network's kernel view and the derivatives of the loss, compiled.

``f(x) = c * sum_r a_r sigma(w_r . x + b_r) + b0``. With ``z = W x + b``,
``s_k = sigma^(k)(z)`` and ``ca = c * a`` (``docs/derivatives.md`` derives each):

* ``grad L = l' W^T (ca s1)``
* ``hess L = l'' g g^T + l' W^T diag(ca s2) W`` with ``g = grad f``
* ``hess L v = W^T [ca (l'' (g . v) s1 + l' s2 (W v))]``
* ``D3 L[u, v, .] = W^T [ca ((l''' f_u f_v + l'' f_uv) s1 + l'' s2 (f_u W v + f_v W u)
  + l' s3 (W u)(W v))]``
* parameter gradients ``dL/da_r = l' c s0_r``, ``dL/db_r = l' c a_r s1_r``,
  ``dL/dw_r = (dL/db_r) x``, ``dL/db0 = l'``.

Every kernel takes the network as one :class:`NetView` (built once and cached by
:attr:`fopa.TwoLayerNet.kernel_view`), so a new network attribute is added in
one place. Batches go through BLAS matrix products (``X W^T`` and ``Q W``), so a
gradient or a Hessian-vector product costs O(md) per point and a Hessian
O(m d^2); no d x d temporary is formed except the Hessian itself. The products
run on BLAS's threads; the elementwise work runs on one thread (numba's thread
pool competing with BLAS's for the same cores made a batched gradient at (n, d,
m) = (64, 100, 512) 15 times slower).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .activation import all_derivatives, values_and_slopes
from .jit import jit
from .linalg import dot, product_into
from .loss import loss_derivatives

#: What every kernel knows of a network. ``W`` (m, d) and ``WT`` = W^T (d, m), both
#: C-contiguous; ``a``, ``b`` (m,); ``c`` the output scale; ``b0`` the output bias
#: (it enters only the output f, never a derivative of f); ``act`` the activation
#: code; ``critical`` the (4, 4) table of critical points of sigma^(k) (padded with
#: inf); ``abs_ca`` = |c a| and ``row_norms`` = ||w_r|| (m,), for the ball bounds.
NetView = namedtuple("NetView", "W WT a b c b0 act critical abs_ca row_norms")


@jit
def preactivations(net, X):
    """Z = X W^T + b, shape (n, m)."""
    Z = np.dot(X, net.W.T)
    b = net.b
    for i in range(Z.shape[0]):
        for r in range(Z.shape[1]):
            Z[i, r] += b[r]
    return Z


@jit
def row_coefficients(net, loss, y, z, q, s0):
    """Gradient coefficients of one row: q = l' c a s1 at pre-activations z.

    Returns the loss and l'; s0 holds sigma(z) afterwards.

    The activation loop has no reduction and no division check, so LLVM vectorises
    it; the output f = c a.s0 + b0 is summed afterwards (s0 is scratch, shape (m,)).
    """
    a, c = net.a, net.c
    m = a.shape[0]
    values_and_slopes(net.act, z, s0, q)
    f = dot(a, s0)
    lv, l1, _, _ = loss_derivatives(loss, c * f + net.b0, y)
    scale = c * l1
    for r in range(m):
        q[r] *= scale * a[r]
    return lv, l1


@jit
def predict(net, X):
    """Network outputs f, shape (n,)."""
    Z = preactivations(net, X)
    m = net.W.shape[0]
    s0 = np.empty(m)
    s1 = np.empty(m)
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        values_and_slopes(net.act, Z[i], s0, s1)
        out[i] = net.c * dot(net.a, s0) + net.b0
    return out


@jit
def loss_values(net, loss, X, Y):
    """Loss values, shape (n,)."""
    f = predict(net, X)
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        out[i] = loss_derivatives(loss, f[i], Y[i])[0]
    return out


@jit
def gradient_coefficients(net, loss, X, Y):
    """Per point: Q[i] = l1 ca s1 (so grad L = Q W), plus the weights of grad f.

    Returns
    -------
    Q : (n, m) coefficients of grad L; S1 : (n, m) weights ca s1 of grad f;
    S2 : (n, m) values ca s2; L1, L2 : (n,) first and second loss derivatives.
    """
    a, c = net.a, net.c
    Z = preactivations(net, X)
    n, m = Z.shape
    Q = np.empty((n, m))
    S1 = np.empty((n, m))
    S2 = np.empty((n, m))
    L1 = np.empty(n)
    L2 = np.empty(n)
    s0 = np.empty(m)
    s3 = np.empty(m)
    for i in range(n):
        all_derivatives(net.act, Z[i], s0, S1[i], S2[i], s3)
        f = dot(a, s0)
        for r in range(m):
            S1[i, r] *= c * a[r]
            S2[i, r] *= c * a[r]
        _, l1, l2, _ = loss_derivatives(loss, c * f + net.b0, Y[i])
        L1[i] = l1
        L2[i] = l2
        for r in range(m):
            Q[i, r] = l1 * S1[i, r]
    return Q, S1, S2, L1, L2


@jit
def input_gradient(net, loss, X, Y):
    """grad L at every row of X, shape (n, d)."""
    Z = preactivations(net, X)
    n, m = Z.shape
    Q = np.empty((n, m))
    s0 = np.empty(m)
    for i in range(n):
        row_coefficients(net, loss, Y[i], Z[i], Q[i], s0)
    return np.dot(Q, net.W)


@jit
def point_coefficients(net, loss, p, y):
    """What the input Hessian at one point p is built from, in one pass over the units.

    Returns ``(value, l1, l2, h, grad_f)``: ``L(p)``, ``l'`` and ``l''`` at ``f(p)``,
    the weights ``h = l' c a sigma''(z)`` (shape (m,)) and ``grad f(p)`` (shape (d,)),
    so that ``hess L = W^T diag(h) W + l'' g_f g_f^T`` and ``grad L = l' g_f``.
    """
    W, WT, a, b, c = net.W, net.WT, net.a, net.b, net.c
    m, d = W.shape
    z = np.empty(m)
    product_into(p.reshape(1, d), WT, z.reshape(1, m))  # z = W p + b
    for r in range(m):
        z[r] += b[r]
    s0, s1, s2, s3 = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    all_derivatives(net.act, z, s0, s1, s2, s3)
    value, l1, l2, _ = loss_derivatives(loss, c * dot(a, s0) + net.b0, y)
    h = np.empty(m)
    for r in range(m):
        ca = c * a[r]
        s1[r] *= ca  # the weights of grad f
        h[r] = l1 * ca * s2[r]
    grad_f = np.empty(d)
    product_into(s1.reshape(1, m), W, grad_f.reshape(1, d))
    return value, l1, l2, h, grad_f


@jit
def point_derivatives(net, loss, p, y):
    """(grad L, hess L, L) at one point p, from one pass over the hidden units.

    ``hess L = W^T diag(l' c a s2) W + l'' g_f g_f^T``, formed with one product and
    made exactly symmetric.
    """
    W, WT = net.W, net.WT
    m, d = W.shape
    value, l1, l2, h, grad_f = point_coefficients(net, loss, p, y)
    V = np.empty((m, d))
    for r in range(m):
        for j in range(d):
            V[r, j] = h[r] * W[r, j]
    H = np.dot(WT, V)
    for j in range(d):
        for k in range(j + 1):
            v = 0.5 * (H[j, k] + H[k, j]) + l2 * grad_f[j] * grad_f[k]
            H[j, k] = v
            H[k, j] = v
    return l1 * grad_f, H, value


@jit
def input_hessian(net, loss, X, Y):
    """hess L at every row of X, shape (n, d, d)."""
    n, d = X.shape
    out = np.empty((n, d, d))
    for i in range(n):
        out[i] = point_derivatives(net, loss, X[i], Y[i])[1]
    return out


@jit
def hessian_vector_product(net, loss, X, Y, V):
    """hess L v at every row, shape (n, d)."""
    W = net.W
    _, S1, S2, L1, L2 = gradient_coefficients(net, loss, X, Y)
    WV = np.dot(V, W.T)  # (n, m)
    n, m = WV.shape
    Q = np.empty((n, m))
    for i in range(n):
        fv = 0.0
        for r in range(m):
            fv += S1[i, r] * WV[i, r]
        for r in range(m):
            Q[i, r] = L2[i] * fv * S1[i, r] + L1[i] * S2[i, r] * WV[i, r]
    return np.dot(Q, W)


@jit
def third_derivative(net, loss, X, Y, U, V):
    """D3 L[u, v, .] at every row, shape (n, d)."""
    W, a, c = net.W, net.a, net.c
    Z = preactivations(net, X)
    WU = np.dot(U, W.T)
    WV = np.dot(V, W.T)
    n, m = Z.shape
    Q = np.empty((n, m))
    S0 = np.empty((n, m))
    S1 = np.empty((n, m))
    S2 = np.empty((n, m))
    S3 = np.empty((n, m))
    for i in range(n):
        all_derivatives(net.act, Z[i], S0[i], S1[i], S2[i], S3[i])
        f = 0.0
        fu = 0.0
        fv = 0.0
        fuv = 0.0
        for r in range(m):
            ca = c * a[r]
            f += ca * S0[i, r]
            S1[i, r] *= ca
            S2[i, r] *= ca
            S3[i, r] *= ca
            fu += S1[i, r] * WU[i, r]
            fv += S1[i, r] * WV[i, r]
            fuv += S2[i, r] * WU[i, r] * WV[i, r]
        _, l1, l2, l3 = loss_derivatives(loss, f + net.b0, Y[i])
        k1 = l3 * fu * fv + l2 * fuv
        for r in range(m):
            Q[i, r] = (
                k1 * S1[i, r]
                + l2 * S2[i, r] * (fu * WV[i, r] + fv * WU[i, r])
                + l1 * S3[i, r] * WU[i, r] * WV[i, r]
            )
    return np.dot(Q, W)


@jit
def parameter_coefficients(net, loss, X, Y):
    """Per point: A[i] = dL/da, B[i] = dL/db (so dL/dW[i] = outer(B[i], X[i])) and
    L1[i] = l' = dL/db0."""
    Z = preactivations(net, X)
    n, m = Z.shape
    A = np.empty((n, m))
    B = np.empty((n, m))
    L1 = np.empty(n)
    for i in range(n):
        l1 = row_coefficients(net, loss, Y[i], Z[i], B[i], A[i])[1]  # A[i] = sigma
        L1[i] = l1
        for r in range(m):
            A[i, r] *= l1 * net.c
    return A, B, L1
