"""Closed-form upper bounds of the loss and its derivatives over a ball.

Over the ball ``||delta|| <= eps`` around ``x`` the pre-activation of unit r stays
in ``I_r = [w_r . x + b_r - eps ||w_r||, w_r . x + b_r + eps ||w_r||]``. With
``S_k,r = sup over I_r of |sigma^(k)|``:

* ``||grad f|| <= ||W||_2 ||c a S_1||_2 = G``
* ``||hess f|| <= sum_r |c a_r| S_2,r ||w_r||^2 = H``
* ``|D3 f| <= sum_r |c a_r| S_3,r ||w_r||^3 = T``
* ``|f| <= sum_r |c a_r| S_0,r = F``

and with bounds ``l_k`` of ``|l^(k)|`` over ``|f| <= F`` (for the quadratic loss
``l_1 = |y| + F``, ``l_2 = 1``, ``l_3 = 0``):

* gradient bound ``l_1 G``
* smoothness ``beta = l_2 G^2 + l_1 H``
* Hessian Lipschitz constant ``rho = l_3 G^3 + 3 l_2 G H + l_1 T``
* ``loss_max = sup l`` (``(|y| + F)^2 / 2`` for the quadratic loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import as_positive_scalar
from .activations import CRITICAL_TABLES, _sup_abs_table
from .derivatives import _problem
from .losses import loss_derivative_bounds

__all__ = ["BallConstants", "ball_constants"]

#: Relative margin added to every bound so that rounding in its evaluation can't
#: put it below a value computed in floating point.
SAFETY_MARGIN = 1e-10


@dataclass(frozen=True)
class BallConstants:
    """Upper bounds over the ball of radius ``eps`` around ``x``.

    Scalars for one input, arrays of shape (n,) for a batch.

    Attributes
    ----------
    eps : float
        Radius of the ball.
    gradient_bound : float or ndarray
        Bound on ``||grad L||``.
    beta : float or ndarray
        Bound on ``||hess L||_2`` (smoothness; ``1/beta`` is a safe ascent step).
    rho : float or ndarray
        Bound on the Lipschitz constant of ``hess L``.
    loss_max : float or ndarray
        Bound on ``L``.
    output_bound : float or ndarray
        ``F``, bound on ``|f|``.
    network_gradient_bound, network_hessian_bound, network_third_bound : float or ndarray
        ``G``, ``H`` and ``T``, the network's own bounds.
    """

    eps: float
    gradient_bound: float | np.ndarray
    beta: float | np.ndarray
    rho: float | np.ndarray
    loss_max: float | np.ndarray
    output_bound: float | np.ndarray
    network_gradient_bound: float | np.ndarray
    network_hessian_bound: float | np.ndarray
    network_third_bound: float | np.ndarray


def _ball_constant_arrays(net, X, Y, eps, code):
    """All bounds as arrays of shape (n,)."""
    n = X.shape[0]
    center = X @ net.W.T + net.b
    radius = eps * net.row_norms
    lo = (center - radius).reshape(-1)
    hi = (center + radius).reshape(-1)
    S = _sup_abs_table(net.activation_code, CRITICAL_TABLES[net.activation], lo, hi)
    S = S.reshape(4, n, net.m)
    weight = np.abs(net.output_scale * net.a)
    F = S[0] @ weight
    G = net.weight_norm * np.linalg.norm(S[1] * weight, axis=1)
    H = S[2] @ (weight * net.row_norms**2)
    T = S[3] @ (weight * net.row_norms**3)
    lmax, l1, l2, l3 = loss_derivative_bounds(code, F, Y)
    grow = 1.0 + SAFETY_MARGIN
    return dict(
        gradient_bound=grow * l1 * G,
        beta=grow * (l2 * G**2 + l1 * H),
        rho=grow * (l3 * G**3 + 3.0 * l2 * G * H + l1 * T),
        loss_max=grow * lmax,
        output_bound=grow * F,
        network_gradient_bound=grow * G,
        network_hessian_bound=grow * H,
        network_third_bound=grow * T,
    )


def ball_constants(net, x, y, eps, *, loss="quadratic") -> BallConstants:
    """Closed-form upper bounds over the ball of radius ``eps`` around ``x``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    eps : float
        Radius, > 0.
    loss : {"quadratic", "logistic"}

    Returns
    -------
    BallConstants
        Bounds valid at every ``x + delta`` with ``||delta|| <= eps``.
    """
    code, X, Y, _, single = _problem(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    values = _ball_constant_arrays(net, X, Y, eps, code)
    if single:
        values = {k: float(v[0]) for k, v in values.items()}
    return BallConstants(eps=eps, **values)
