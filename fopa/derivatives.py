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
    out = _unstack(kernels.predict(net.kernel_view, X), False, "output")
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
    out = kernels.loss_values(net.kernel_view, code, X, Y)
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
    return _unstack(kernels.input_gradient(net.kernel_view, code, X, Y), single, "gradient")


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
    return _unstack(kernels.input_hessian(net.kernel_view, code, X, Y), single, "Hessian")


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
    return _unstack(kernels.hessian_vector_product(net.kernel_view, code, X, Y, V), single)


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
    return _unstack(kernels.third_derivative(net.kernel_view, code, X, Y, U, V), single)
