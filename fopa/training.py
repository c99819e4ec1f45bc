"""Parameter gradients of the loss, for the outer minimization of adversarial training.

At an input point p (for adversarial training, ``p = x + delta``), with
``z = W p + b`` and ``l'`` the loss derivative at ``f(p)``:

    dL/da_r = l' c sigma(z_r)
    dL/db_r = l' c a_r sigma'(z_r)
    dL/dw_r = l' c a_r sigma'(z_r) p
    dL/db0  = l'

(``docs/derivatives.md``, "Parameter gradients"). The output scale c is not
trained; the output bias b0 is (``ParameterGradient.output_bias``). The
coefficients are compiled in :mod:`fopa._kernels.network`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import problem_arrays
from ._kernels.network import parameter_coefficients

__all__ = ["ParameterGradient", "parameter_gradient"]

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class ParameterGradient:
    """Gradient of the loss with respect to the network's trainable parameters.

    Attributes
    ----------
    W : ndarray, shape (m, d), or (n, m, d) with ``reduce="none"``
    a : ndarray, shape (m,) or (n, m)
    b : ndarray, shape (m,) or (n, m)
    output_bias : float, or ndarray of shape (n,)
        ``dL/db0 = l'``: the derivative of the loss in the output bias.
    """

    W: np.ndarray
    a: np.ndarray
    b: np.ndarray
    output_bias: float | np.ndarray = 0.0


def parameter_gradient(net, x, y, *, loss="quadratic", reduce="mean") -> ParameterGradient:
    """Gradient of the loss in W, a, b and the output bias at input point(s) x.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
        The (perturbed) inputs.
    y : float or array_like, shape (n,)
    loss : "quadratic" or "logistic"
    reduce : "mean", "sum" or "none"
        Average or sum over the batch, or keep one gradient per point.

    Returns
    -------
    ParameterGradient
    """
    if not isinstance(reduce, str) or reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduce {reduce!r}; expected one of {', '.join(REDUCTIONS)}")
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    A, B, L1 = parameter_coefficients(net.kernel_view, code, X, Y)
    if reduce == "none" and not single:
        return ParameterGradient(W=B[:, :, None] * X[:, None, :], a=A, b=B, output_bias=L1)
    if single or reduce == "sum":
        return ParameterGradient(
            W=B.T @ X, a=A.sum(axis=0), b=B.sum(axis=0), output_bias=float(L1.sum())
        )
    n = X.shape[0]
    return ParameterGradient(
        W=(B.T @ X) / n, a=A.mean(axis=0), b=B.mean(axis=0), output_bias=float(L1.mean())
    )
