"""Closed-form input derivatives of the loss ``L(x) = l(f(x), y)``.

With ``z = W x + b``, ``s_k = sigma^(k)(z)`` and ``ca = c * a`` (see
``docs/derivatives.md`` for the derivation):

* ``grad L = l' W^T (ca s1)``
* ``hess L = l'' g g^T + l' W^T diag(ca s2) W`` with ``g = grad f``
* ``hess L v = W^T [ca (l'' (g . v) s1 + l' s2 (W v))]``
* ``D3 L[u, v, .] = W^T [ca ((l''' f_u f_v + l'' f_uv) s1 + l'' s2 (f_u W v + f_v W u)
  + l' s3 (W u)(W v))]``

Every public function validates its input and calls a compiled kernel ``_name``
that takes only arrays and scalars. Batches go through BLAS matrix products
(``X W^T`` and ``Q W``), so a gradient or a Hessian-vector product costs O(md)
per point and a Hessian O(m d^2); no d x d temporary is formed except the
Hessian itself. The products run on BLAS's threads; the elementwise work runs on
one thread (numba's thread pool competing with BLAS's for the same cores made a
batched gradient at (n, d, m) = (64, 100, 512) 15 times slower).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, scalar_kernel
from ._validate import points_and_targets
from .activations import _all_derivatives, _values_and_slopes
from .losses import _loss_derivatives, check_targets, loss_code

__all__ = [
    "predict",
    "loss",
    "input_gradient",
    "input_hessian",
    "hessian_vector_product",
    "third_derivative",
]


@kernel
def _preactivations(W, b, X):
    """Z = X W^T + b, shape (n, m)."""
    Z = np.dot(X, W.T)
    for i in range(Z.shape[0]):
        for r in range(Z.shape[1]):
            Z[i, r] += b[r]
    return Z


_SMALL_PRODUCT = 20_000  # below this many multiply-adds a loop beats a BLAS call


@scalar_kernel
def _product_into(P, B, out):
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


@scalar_kernel
def _dot(x, y):
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


@scalar_kernel
def _row_coefficients(act, loss, a, c, y, z, q, s0):
    """Gradient coefficients of one row: q = l' c a s1 at pre-activations z.

    Returns the loss and l'; s0 holds sigma(z) afterwards.

    The activation loop has no reduction and no division check, so LLVM vectorises
    it; the output f = c a.s0 is summed afterwards (s0 is scratch, shape (m,)).
    """
    m = a.shape[0]
    _values_and_slopes(act, z, s0, q)
    f = _dot(a, s0)
    lv, l1, _, _ = _loss_derivatives(loss, c * f, y)
    scale = c * l1
    for r in range(m):
        q[r] *= scale * a[r]
    return lv, l1


@kernel
def _predict(W, a, b, c, act, X):
    """Kernel: network outputs f, shape (n,)."""
    Z = _preactivations(W, b, X)
    m = W.shape[0]
    s0 = np.empty(m)
    s1 = np.empty(m)
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        _values_and_slopes(act, Z[i], s0, s1)
        out[i] = c * _dot(a, s0)
    return out


@kernel
def _loss(W, a, b, c, act, loss, X, Y):
    """Kernel: loss values, shape (n,)."""
    f = _predict(W, a, b, c, act, X)
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        out[i] = _loss_derivatives(loss, f[i], Y[i])[0]
    return out


@kernel
def _gradient_coefficients(W, a, b, c, act, loss, X, Y):
    """Per point: Q[i] = l1 ca s1 (so grad L = Q W), plus the weights of grad f.

    Returns
    -------
    Q : (n, m) coefficients of grad L; S1 : (n, m) weights ca s1 of grad f;
    S2 : (n, m) values ca s2; L1, L2 : (n,) first and second loss derivatives.
    """
    Z = _preactivations(W, b, X)
    n, m = Z.shape
    Q = np.empty((n, m))
    S1 = np.empty((n, m))
    S2 = np.empty((n, m))
    L1 = np.empty(n)
    L2 = np.empty(n)
    s0 = np.empty(m)
    s3 = np.empty(m)
    for i in range(n):
        _all_derivatives(act, Z[i], s0, S1[i], S2[i], s3)
        f = _dot(a, s0)
        for r in range(m):
            S1[i, r] *= c * a[r]
            S2[i, r] *= c * a[r]
        _, l1, l2, _ = _loss_derivatives(loss, c * f, Y[i])
        L1[i] = l1
        L2[i] = l2
        for r in range(m):
            Q[i, r] = l1 * S1[i, r]
    return Q, S1, S2, L1, L2


@kernel
def _input_gradient(W, a, b, c, act, loss, X, Y):
    """Kernel: grad L at every row of X, shape (n, d)."""
    Z = _preactivations(W, b, X)
    n, m = Z.shape
    Q = np.empty((n, m))
    s0 = np.empty(m)
    for i in range(n):
        _row_coefficients(act, loss, a, c, Y[i], Z[i], Q[i], s0)
    return np.dot(Q, W)


@scalar_kernel
def _point_derivatives(W, WT, a, b, c, act, loss, p, y):
    """(grad L, hess L, L) at one point p, from one pass over the hidden units.

    ``hess L = W^T diag(l' c a s2) W + l'' g_f g_f^T``, formed with one product and
    made exactly symmetric.
    """
    m, d = W.shape
    z = np.empty(m)
    _product_into(p.reshape(1, d), WT, z.reshape(1, m))  # z = W p + b
    for r in range(m):
        z[r] += b[r]
    s0, s1, s2, s3 = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    _all_derivatives(act, z, s0, s1, s2, s3)
    value, l1, l2, _ = _loss_derivatives(loss, c * _dot(a, s0), y)
    V = np.empty((m, d))
    for r in range(m):
        ca = c * a[r]
        s1[r] *= ca  # the weights of grad f
        h = l1 * ca * s2[r]
        for j in range(d):
            V[r, j] = h * W[r, j]
    grad_f = np.empty(d)
    _product_into(s1.reshape(1, m), W, grad_f.reshape(1, d))
    H = np.dot(WT, V)
    for j in range(d):
        for k in range(j + 1):
            v = 0.5 * (H[j, k] + H[k, j]) + l2 * grad_f[j] * grad_f[k]
            H[j, k] = v
            H[k, j] = v
    return l1 * grad_f, H, value


@kernel
def _input_hessian(W, WT, a, b, c, act, loss, X, Y):
    """Kernel: hess L at every row of X, shape (n, d, d); ``WT`` is W^T, C-contiguous."""
    n, d = X.shape
    out = np.empty((n, d, d))
    for i in range(n):
        out[i] = _point_derivatives(W, WT, a, b, c, act, loss, X[i], Y[i])[1]
    return out


@kernel
def _hessian_vector_product(W, a, b, c, act, loss, X, Y, V):
    """Kernel: hess L v at every row, shape (n, d)."""
    _, S1, S2, L1, L2 = _gradient_coefficients(W, a, b, c, act, loss, X, Y)
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


@kernel
def _third_derivative(W, a, b, c, act, loss, X, Y, U, V):
    """Kernel: D3 L[u, v, .] at every row, shape (n, d)."""
    Z = _preactivations(W, b, X)
    WU = np.dot(U, W.T)
    WV = np.dot(V, W.T)
    n, m = Z.shape
    Q = np.empty((n, m))
    S0 = np.empty((n, m))
    S1 = np.empty((n, m))
    S2 = np.empty((n, m))
    S3 = np.empty((n, m))
    for i in range(n):
        _all_derivatives(act, Z[i], S0[i], S1[i], S2[i], S3[i])
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
        _, l1, l2, l3 = _loss_derivatives(loss, f, Y[i])
        k1 = l3 * fu * fv + l2 * fuv
        for r in range(m):
            Q[i, r] = (
                k1 * S1[i, r]
                + l2 * S2[i, r] * (fu * WV[i, r] + fv * WU[i, r])
                + l1 * S3[i, r] * WU[i, r] * WV[i, r]
            )
    return np.dot(Q, W)


def _problem(net, x, y, loss, extra=()):
    """Validate a network, point(s), targets for ``loss`` and arrays shaped like x.

    Returns
    -------
    code, X (n, d), Y (n,), extras (list of (n, d)), single (bool)
    """
    code = loss_code(loss)
    X, Y, extras, single = points_and_targets(net, x, y, extra=extra)
    check_targets(code, Y)
    return code, X, Y, extras, single


def _one_point(net, x, y, loss, extra=()):
    """As :func:`_problem` for exactly one point: (code, x (d,), y float, extras (d,))."""
    code, X, Y, extras, single = _problem(net, x, y, loss, extra)
    if not single:
        raise ValueError(f"x must be one point of shape ({net.d},); got shape {X.shape}")
    return code, X[0], float(Y[0]), [e[0] for e in extras]


def _prepare(net, x, y, loss, extra=()):
    code, X, Y, extras, single = _problem(net, x, y, loss, extra)
    args = (net.W, net.a, net.b, net.output_scale, net.activation_code)
    return args, code, X, Y, extras, single


def _unstack(out, single):
    return out[0] if single else out


def predict(net, x):
    """Network output ``f(x)``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)

    Returns
    -------
    float or ndarray, shape (n,)
    """
    args, _, X, _, _, single = _prepare(net, x, 0.0, "quadratic")
    out = _predict(*args, X)
    return float(out[0]) if single else out


def loss(net, x, y, *, loss="quadratic"):
    """Loss ``L(x) = l(f(x), y)``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
        Targets (labels in {-1, +1} for the logistic loss).
    loss : {"quadratic", "logistic"}

    Returns
    -------
    float or ndarray, shape (n,)
    """
    args, code, X, Y, _, single = _prepare(net, x, y, loss)
    out = _loss(*args, code, X, Y)
    return float(out[0]) if single else out


def input_gradient(net, x, y, *, loss="quadratic"):
    """Gradient of the loss with respect to the input.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    loss : {"quadratic", "logistic"}

    Returns
    -------
    ndarray, shape (d,) or (n, d)
    """
    args, code, X, Y, _, single = _prepare(net, x, y, loss)
    return _unstack(_input_gradient(*args, code, X, Y), single)


def input_hessian(net, x, y, *, loss="quadratic"):
    """Hessian of the loss with respect to the input (exactly symmetric).

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    loss : {"quadratic", "logistic"}

    Returns
    -------
    ndarray, shape (d, d) or (n, d, d)
    """
    args, code, X, Y, _, single = _prepare(net, x, y, loss)
    return _unstack(_input_hessian(net.W, net.weights_transposed, *args[1:], code, X, Y), single)


def hessian_vector_product(net, x, y, v, *, loss="quadratic"):
    """Product of the input Hessian with ``v``, without forming the Hessian.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    v : array_like, shape like x
    loss : {"quadratic", "logistic"}

    Returns
    -------
    ndarray, shape like x
    """
    args, code, X, Y, (V,), single = _prepare(net, x, y, loss, extra=[("v", v)])
    return _unstack(_hessian_vector_product(*args, code, X, Y, V), single)


def third_derivative(net, x, y, u, v, *, loss="quadratic"):
    """Third input derivative contracted twice, ``D3 L(x)[u, v, .]``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    u, v : array_like, shape like x
    loss : {"quadratic", "logistic"}

    Returns
    -------
    ndarray, shape like x
        The vector ``w -> D3 L[u, v, w]``, symmetric in ``u`` and ``v``.
    """
    args, code, X, Y, (U, V), single = _prepare(net, x, y, loss, extra=[("u", u), ("v", v)])
    return _unstack(_third_derivative(*args, code, X, Y, U, V), single)
