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

from dataclasses import dataclass

import numpy as np
import scipy.linalg

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
    lam, V = scipy.linalg.eigh(0.5 * (H + H.T))
    gh = V.T @ g
    top = lam[-1]
    scale = max(np.max(np.abs(lam)), np.linalg.norm(g) / eps, 1e-300)
    tiny = 1e-12 * scale

    def point(mu):
        return gh / (mu - lam)

    if top < -tiny:  # concave: the unconstrained maximizer may be inside
        inner = point(0.0)
        if np.linalg.norm(inner) <= eps:
            return _solution(V @ inner, g, H, 0.0, False)
    low = max(top, 0.0)
    on_top = np.abs(lam - top) <= tiny
    gh_rest = np.where(on_top, 0.0, gh)
    if np.all(np.abs(gh[on_top]) <= 1e-12 * max(np.linalg.norm(g), 1e-300)) and top >= 0:
        rest = np.where(on_top, 0.0, gh_rest / np.where(on_top, 1.0, top - lam))
        length = np.linalg.norm(rest)
        if length <= eps:  # hard case: fill up along the top eigenvector
            h = rest.copy()
            h[np.flatnonzero(on_top)[0]] = np.sqrt(max(eps**2 - length**2, 0.0))
            return _solution(V @ h, g, H, top, True)
    hi = low + np.linalg.norm(g) / eps + tiny
    lo = low
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if np.linalg.norm(point(mid)) > eps:
            lo = mid
        else:
            hi = mid
    h = point(hi)
    h *= eps / max(np.linalg.norm(h), 1e-300)
    return _solution(V @ h, g, H, hi, False)


def _solution(h, g, H, mu, hard):
    return TrustRegionSolution(
        point=h, value=float(g @ h + 0.5 * h @ H @ h), multiplier=float(mu), hard_case=hard
    )
