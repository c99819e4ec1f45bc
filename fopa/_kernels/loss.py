"""Losses l(f, y) of the network output f, with derivatives in f up to order three.

* ``"quadratic"``: ``l = (f - y)^2 / 2``, so ``l' = f - y``, ``l'' = 1``, ``l''' = 0``.
* ``"logistic"``: ``l = log(1 + exp(-y f))`` for labels ``y in {-1, +1}``. With
  ``u = y f`` and the logistic function ``s``: ``l' = -y s(-u)``,
  ``l'' = s(u) s(-u)`` and ``l''' = y s(u) s(-u) (s(-u) - s(u))``.
"""

from __future__ import annotations

import math

from .activation import exp_nonpositive, logistic_pair
from .jit import jit

#: Names of the supported losses, in the order of their integer codes.
LOSSES = ("quadratic", "logistic")
QUADRATIC_LOSS, LOGISTIC_LOSS = range(len(LOSSES))

# sup over u of |s''(u)| for the logistic function s: 1 / (6 sqrt(3))
_LOGISTIC_L3_MAX = 1.0 / (6.0 * math.sqrt(3.0))


@jit
def loss_derivatives(code, f, y):
    """Return (l, l', l'', l''') at output f and target y for loss ``code``."""
    if code == QUADRATIC_LOSS:
        r = f - y
        return 0.5 * r * r, r, 1.0, 0.0
    u = y * f
    p, q = logistic_pair(u)  # s(u), s(-u)
    value = max(-u, 0.0) + math.log1p(exp_nonpositive(-abs(u)))
    d2 = p * q
    return value, -y * q, d2, y * d2 * (q - p)


@jit
def loss_bounds(code, f_bound, y):
    """Upper bounds of ``l`` and of the absolute first three derivatives of l in f,
    over all outputs with ``|f| <= f_bound``."""
    if code == QUADRATIC_LOSS:
        residual = abs(y) + f_bound
        return 0.5 * residual * residual, residual, 1.0, 0.0
    # -y f <= f_bound; l and |l_1| increase with -y f
    value = f_bound + math.log1p(math.exp(-f_bound))
    slope = 1.0 / (1.0 + math.exp(-f_bound))
    return value, slope, 0.25, _LOGISTIC_L3_MAX


@jit
def loss_range_bounds(code, f_lo, f_hi, y):
    """Upper bounds of ``l`` and of ``|l'|, |l''|, |l'''|`` over outputs ``f_lo <= f <= f_hi``.

    Quadratic: ``|l'| = |f - y|`` and ``l`` are largest at an end of the range.
    Logistic, with ``u = y f``: ``l`` and ``|l'| = s(-u)`` grow as u falls, so they
    are largest at the smallest u; ``l'' = s(u) s(-u)`` is largest at the u of the
    range nearest 0 (1/4 when the range contains 0); ``|l'''|`` keeps its global
    bound ``1 / (6 sqrt(3))``.
    """
    if code == QUADRATIC_LOSS:
        residual = max(abs(f_lo - y), abs(f_hi - y))
        return 0.5 * residual * residual, residual, 1.0, 0.0
    u_lo = min(y * f_lo, y * f_hi)
    u_hi = max(y * f_lo, y * f_hi)
    value = max(-u_lo, 0.0) + math.log1p(exp_nonpositive(-abs(u_lo)))
    p, q = logistic_pair(u_lo)  # s(u_lo), s(-u_lo)
    nearest = 0.0 if u_lo <= 0.0 <= u_hi else (u_lo if u_lo > 0.0 else u_hi)
    s_plus, s_minus = logistic_pair(nearest)
    return value, q, s_plus * s_minus, _LOGISTIC_L3_MAX
