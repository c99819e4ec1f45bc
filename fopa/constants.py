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

import math
from dataclasses import dataclass

import numpy as np

from ._jit import kernel, scalar_kernel
from ._validate import as_positive_scalar
from .activations import CRITICAL_TABLES, _sup_abs_intervals
from .derivatives import _problem, _product_into
from .losses import _loss_bounds

__all__ = ["BallConstants", "ball_constants"]

#: Relative margin added to every bound so that rounding in its evaluation can't
#: put it below a value computed in floating point.
SAFETY_MARGIN = 1e-10
#: Floor of a product of positive factors in a bound: products of tiny factors
#: (``G^2``, ``G^3``) can underflow to 0 while what they bound is still positive.
SAFETY_FLOOR = 1e-290


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


_BOUND_NAMES = (
    "gradient_bound", "beta", "rho", "loss_max", "output_bound",
    "network_gradient_bound", "network_hessian_bound", "network_third_bound",
)  # fmt: skip


@kernel
def _ball_bounds(WT, b, weight, row_norms, weight_norm, act, critical, loss, X, Y, eps):
    """Kernel: the bounds of ``_BOUND_NAMES`` (rows) for every point (columns).

    ``WT = W^T`` (d, m) C-contiguous; ``weight = |c a|``; ``S_k,r`` are the sups of
    ``|sigma^(k)|`` over unit r's pre-activation interval (module docstring).
    """
    n, m = X.shape[0], WT.shape[1]
    center = np.empty((n, m))
    _product_into(X, WT, center)
    out = np.empty((8, n))
    lo = np.empty(m)
    hi = np.empty(m)
    sups = np.empty((4, m))
    grow = 1.0 + SAFETY_MARGIN
    for i in range(n):
        for r in range(m):
            rad = eps * row_norms[r]
            lo[r] = center[i, r] + b[r] - rad
            hi[r] = center[i, r] + b[r] + rad
        _sup_abs_intervals(act, critical, lo, hi, sups)
        F = H = T = 0.0
        g_max = 0.0
        for r in range(m):
            F += sups[0, r] * weight[r]
            g_max = max(g_max, sups[1, r] * weight[r])
            H += sups[2, r] * weight[r] * row_norms[r] ** 2
            T += sups[3, r] * weight[r] * row_norms[r] ** 3
        # ||(|c a| S_1)||_2: squares are safe while the largest entry is moderate;
        # otherwise (tiny or huge entries, whose squares under- or overflow) hypot
        if 1e-150 < g_max < 1e150:
            G2 = 0.0
            for r in range(m):
                g = sups[1, r] * weight[r]
                G2 += g * g
            G = weight_norm * np.sqrt(G2)
        else:
            G = 0.0
            for r in range(m):
                G = math.hypot(G, sups[1, r] * weight[r])
            G = weight_norm * G
        lmax, l1, l2, l3 = _loss_bounds(loss, F, Y[i])
        out[0, i] = grow * _product_up(l1, G)
        out[1, i] = grow * (_product_up(l2, G, G) + _product_up(l1, H))
        out[2, i] = grow * (
            _product_up(l3, G, G, G) + 3.0 * _product_up(l2, G, H) + _product_up(l1, T)
        )
        out[3, i] = grow * lmax
        out[4, i] = grow * F
        out[5, i] = grow * G
        out[6, i] = grow * H
        out[7, i] = grow * T
    return out


@scalar_kernel
def _product_up(x, y, z=1.0, w=1.0):
    """x y z w, or SAFETY_FLOOR when the factors are positive and it underflows.

    Products of tiny positive factors lose all relative accuracy below the normal
    range (or become 0) while what they bound is still positive; an exact zero
    factor keeps the product exactly 0. Powers are passed as repeated factors
    (``G, G, G``): a precomputed ``G * G`` could underflow to an exact 0 first.
    """
    p = x * y * z * w
    if x > 0.0 and y > 0.0 and z > 0.0 and w > 0.0 and p < SAFETY_FLOOR:
        return SAFETY_FLOOR
    return p


def _ball_constant_arrays(net, X, Y, eps, code):
    """All bounds as arrays of shape (n,), by name."""
    out = _ball_bounds(
        net.weights_transposed, net.b, net.abs_output_weights, net.row_norms, net.weight_norm,
        net.activation_code, CRITICAL_TABLES[net.activation], code, X, Y, float(eps),
    )  # fmt: skip
    return dict(zip(_BOUND_NAMES, out, strict=True))


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
