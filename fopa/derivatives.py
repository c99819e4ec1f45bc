"""Closed-form input derivatives of the loss ``L(x) = l(f(x), y)``.

With ``z = W x + b``, ``s_k = sigma^(k)(z)`` and ``ca = c * a``
(``docs/derivatives.md`` derives each):

* ``grad L = l' W^T (ca s1)``
* ``hess L = l'' g g^T + l' W^T diag(ca s2) W`` with ``g = grad f``
* ``hess L v = W^T [ca (l'' (g . v) s1 + l' s2 (W v))]``
* ``D3 L[u, v, .] = W^T [ca ((l''' f_u f_v + l'' f_uv) s1 + l'' s2 (f_u W v + f_v W u)
  + l' s3 (W u)(W v))]``

Every public function validates its input (:mod:`fopa._inputs`) and calls a
compiled kernel of :mod:`fopa._kernels.network` that takes the network's
:attr:`~fopa.TwoLayerNet.kernel_view`, the loss code and arrays.
"""

from __future__ import annotations

import numpy as np

from ._inputs import problem_arrays
from ._interrupts import PIECE_WORK, deferred_sigint
from ._kernels import network as kernels
from ._kernels.linalg import all_finite

__all__ = [
    "predict",
    "loss",
    "input_gradient",
    "input_hessian",
    "hessian_vector_product",
    "third_derivative",
]


def _in_pieces(kernel, per_row, arrays, *args):
    """``kernel(*args, *arrays)`` over the rows of ``arrays`` (each (n, ...)), in pieces
    of about :data:`fopa._interrupts.PIECE_WORK` multiply-adds (``per_row`` per row)
    with Ctrl-C noticed between them (``docs/solver.md``, "Interrupts"). The pieces
    follow from the shapes alone, so a call gives the same bits every time; products
    of fewer rows round differently, so a split batch agrees with an unsplit one to
    rounding (pieces start above about 2e9 multiply-adds: 380 Hessians at d = 100,
    m = 512)."""
    n = arrays[0].shape[0]
    rows = max(1, int(PIECE_WORK / max(per_row, 1)))
    if rows >= n:
        return kernel(*args, *arrays)
    parts = []
    with deferred_sigint() as pending:
        for a in range(0, n, rows):
            if pending():
                break
            parts.append(kernel(*args, *(arr[a : a + rows] for arr in arrays)))
    return np.concatenate(parts, axis=0)


def _unstack(out, single, what="derivative"):
    """One point's result or the batch's, after checking it is finite: finite inputs
    whose result overflows float64 get a clear error, never inf or NaN."""
    if not all_finite(out.reshape(-1)):
        raise ValueError(
            f"the {what} overflows float64 at these inputs (the network's pre-activations, "
            "outputs or their derivatives beyond float64's range); rescale the network or "
            "the inputs"
        )
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
    _, X, _, _, single = problem_arrays(net, x, 0.0, "quadratic")
    work = net.m * net.d
    out = _unstack(_in_pieces(kernels.predict, work, (X,), net.kernel_view), False, "output")
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
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    out = _in_pieces(kernels.loss_values, net.m * net.d, (X, Y), net.kernel_view, code)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "the loss overflows float64 at these inputs (|f - y| or the output beyond "
            "about 1e154 for the quadratic loss); rescale y or the network"
        )
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
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    out = _in_pieces(kernels.input_gradient, 2 * net.m * net.d, (X, Y), net.kernel_view, code)
    return _unstack(out, single, "gradient")


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
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    work = net.m * net.d * (net.d + 2)
    out = _in_pieces(kernels.input_hessian, work, (X, Y), net.kernel_view, code)
    return _unstack(out, single, "Hessian")


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
    code, X, Y, (V,), single = problem_arrays(net, x, y, loss, extra=[("v", v)])
    work = 3 * net.m * net.d
    out = _in_pieces(kernels.hessian_vector_product, work, (X, Y, V), net.kernel_view, code)
    return _unstack(out, single)


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
    extra = [("u", u), ("v", v)]
    code, X, Y, (U, V), single = problem_arrays(net, x, y, loss, extra=extra)
    work = 4 * net.m * net.d
    out = _in_pieces(kernels.third_derivative, work, (X, Y, U, V), net.kernel_view, code)
    return _unstack(out, single)
