"""Bounds that measured iteration counts can be held against (MATH.md section 5).

Sufficient ascent: for ``eta <= 1/beta`` every PGA step satisfies

    L(delta_{t+1}) >= L(delta_t) + ||delta_{t+1} - delta_t||^2 / (2 eta)
                    = L(delta_t) + eta ||G(delta_t)||^2 / 2,

so while ``||G|| > g`` the loss grows by more than ``eta g^2 / 2`` a step, and it
can't exceed ``loss_max``. Hence the first t with ``||G(delta_t)|| <= g`` is at
most ``ceil(2 (loss_max - L(delta_0)) / (eta g^2))``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, as_positive_scalar
from .constants import _ball_constant_arrays
from .derivatives import _problem

__all__ = ["iteration_bound"]


def iteration_bound(net, x, y, eps, step_size, g, *, initial_loss=None, loss="quadratic"):
    """Upper bound on the first iteration with gradient-mapping norm at most ``g``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    eps : float
        Ball radius, > 0.
    step_size : float or "lipschitz"
        The step ``eta``; must satisfy ``eta <= 1/beta`` (``"lipschitz"`` is ``1/beta``).
    g : float
        Gradient-mapping threshold (the solver's ``tol``), > 0.
    initial_loss : float or array_like (n,), optional
        ``L(x + delta_0)``; default ``L(x)`` (the zero start).
    loss : "quadratic" or "logistic"

    Returns
    -------
    float or ndarray of float, shape (n,)
        A whole number, as a float: the bound is a worst case and often exceeds
        the int64 range.

    Raises
    ------
    ValueError
        If ``step_size > 1/beta``: the bound then does not hold.
    """
    code, X, Y, _, single = _problem(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    g = as_positive_scalar("g", g)
    consts = _ball_constant_arrays(net, X, Y, eps, code)
    beta = consts["beta"]
    if isinstance(step_size, str):
        if step_size != "lipschitz":
            raise ValueError(f"step_size must be a float or 'lipschitz'; got {step_size!r}")
        eta = 1.0 / beta
    else:
        eta = np.full(X.shape[0], as_positive_scalar("step_size", step_size))
        if np.any(eta > 1.0 / beta):
            raise ValueError(
                f"step_size {step_size} exceeds 1/beta = {float(np.min(1.0 / beta)):.6g}: "
                "the sufficient-ascent bound needs eta <= 1/beta"
            )
    if initial_loss is None:
        from .derivatives import loss as loss_values

        start = loss_values(net, X, Y, loss=loss)
    else:
        start = as_float_array("initial_loss", initial_loss, ndim=(0, 1))
        if start.ndim == 1 and start.shape != (X.shape[0],):
            raise ValueError(f"initial_loss must be a scalar or shape ({X.shape[0]},)")
        start = np.broadcast_to(start, (X.shape[0],))
    gap = np.maximum(consts["loss_max"] - start, 0.0)
    bound = np.ceil(2.0 * gap / (eta * g * g))
    return float(bound[0]) if single else bound
