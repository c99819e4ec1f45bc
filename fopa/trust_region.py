"""Global maximum of a quadratic over a ball: the trust-region subproblem.

``maximize q(h) = g.h + h^T H h / 2  subject to  ||h|| <= eps``.

The global maximizer is characterised (More and Sorensen 1983) by
``(mu I - H) h = g`` with ``mu >= max(lambda_max(H), 0)``, ``mu (eps - ||h||) = 0``.
In the eigenbasis of H, ``h(mu)_i = g_i / (mu - lambda_i)``, whose norm falls
from infinity to 0 as mu grows past ``lambda_max``; mu solves ``||h(mu)|| = eps``
(bisection to machine precision). In the *hard case* (g has no component along
the top eigenvector and ``||h(lambda_max)|| < eps``) ``mu = lambda_max`` and the
missing length is added along that eigenvector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ._kernels.linalg import norm2
from ._validate import as_float_array, as_positive_scalar

__all__ = ["TrustRegionSolution", "maximize_quadratic_on_ball"]


@dataclass(frozen=True)
class TrustRegionSolution:
    """Global maximizer of a quadratic over a ball.

    Attributes
    ----------
    point : ndarray, shape (d,)
    value : float
        ``q(point)``.
    multiplier : float
        ``mu`` (0 for an interior maximizer).
    hard_case : bool
    """

    point: np.ndarray
    value: float
    multiplier: float
    hard_case: bool


def maximize_quadratic_on_ball(g, H, eps) -> TrustRegionSolution:
    """Exact global maximizer of ``g.h + h^T H h / 2`` over ``||h|| <= eps``.

    Parameters
    ----------
    g : array_like, shape (d,)
    H : array_like, shape (d, d), symmetric
    eps : float, > 0

    Returns
    -------
    TrustRegionSolution
    """
    g = as_float_array("g", g, ndim=1)
    if g.size == 0:
        raise ValueError("g must have at least one entry (d >= 1); got shape (0,)")
    H = as_float_array("H", H, ndim=2)
    eps = as_positive_scalar("eps", eps)
    d = g.size
    if H.shape != (d, d):
        raise ValueError(f"H must have shape ({d}, {d}) to match g; got {H.shape}")
    # scale-free form: h = eps u with ||u|| <= 1 and the objective divided by its
    # largest coefficient, so that no square below over- or underflows (a problem
    # such as H = 1e200 I is otherwise solved in overflowed arithmetic)
    g_size = _norm(g)
    h_size = float(np.max(np.abs(H)))
    if h_size == 0.0 and g_size == 0.0:
        return _solution(np.zeros(d), g, H, 0.0, False)
    # the ratio of the quadratic term's scale to the linear term's, h_size eps / g_size,
    # and the objective's largest coefficient c, both as logarithms
    if g_size == 0.0:
        log_ratio = math.inf
    elif h_size == 0.0:
        log_ratio = -math.inf
    else:
        log_ratio = math.log(h_size) + math.log(eps) - math.log(g_size)
    if log_ratio >= 0.0:
        # c = h_size eps^2: (g / (h_size eps)) . u + u^T (H / h_size) u / 2
        log_c = math.log(h_size) + 2.0 * math.log(eps)
        g_unit = (g / g_size) * math.exp(-log_ratio) if g_size else np.zeros(d)
        H_unit = H / h_size
    else:
        # c = g_size eps: (g / g_size) . u + ratio u^T (H / h_size) u / 2
        log_c = math.log(g_size) + math.log(eps)
        g_unit = g / g_size
        H_unit = (H / h_size) * math.exp(log_ratio) if h_size else np.zeros((d, d))
    if log_c > math.log(np.finfo(float).max):
        raise ValueError(
            "the maximum of the quadratic overflows float64 (||g|| eps or ||H|| eps^2 beyond "
            "about 1e308); rescale g, H or eps"
        )
    u, mu, hard = _unit_ball(g_unit, H_unit)
    # the multiplier of the original problem: the unit one times c / eps^2
    mu = mu * math.exp(log_c - 2.0 * math.log(eps))
    return _solution(eps * u, g, H, mu, hard)


def _norm(v):
    """||v||, scale-safe (the plain NumPy norm underflows below about 1e-154)."""
    return float(norm2(np.ascontiguousarray(v, dtype=np.float64)))


def _unit_ball(g, H):
    """``(u, mu, hard)``: the maximizer of ``g.u + u^T H u / 2`` over ``||u|| <= 1``
    (entries of g and H at most 1 in size), its multiplier and the hard-case flag."""
    lam, V = scipy.linalg.eigh(0.5 * (H + H.T))
    gh = V.T @ g
    top = lam[-1]
    scale = max(np.max(np.abs(lam)), _norm(g), 1e-300)
    tiny = 1e-12 * scale

    def point(mu):
        return gh / (mu - lam)

    if top < -tiny:  # concave: the unconstrained maximizer may be inside
        inner = point(0.0)
        if _norm(inner) <= 1.0:
            return V @ inner, 0.0, False
    low = max(top, 0.0)
    on_top = np.abs(lam - top) <= tiny
    gh_rest = np.where(on_top, 0.0, gh)
    if np.all(np.abs(gh[on_top]) <= 1e-12 * max(_norm(g), 1e-300)) and top >= 0:
        rest = np.where(on_top, 0.0, gh_rest / np.where(on_top, 1.0, top - lam))
        length = _norm(rest)
        if length <= 1.0:  # hard case: fill up along the top eigenvector
            h = rest.copy()
            h[np.flatnonzero(on_top)[0]] = np.sqrt(max(1.0 - length**2, 0.0))
            return V @ h, top, True
    hi = low + _norm(g) + tiny
    lo = low
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _norm(point(mid)) > 1.0:
            lo = mid
        else:
            hi = mid
    h = point(hi)
    h *= 1.0 / max(_norm(h), 1e-300)
    return V @ h, hi, False


def _solution(h, g, H, mu, hard):
    return TrustRegionSolution(
        point=h, value=float(g @ h + 0.5 * h @ H @ h), multiplier=float(mu), hard_case=hard
    )
