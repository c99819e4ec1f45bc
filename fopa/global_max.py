"""The global maximum of the loss over the ball, where it can be known.

Two routes (``docs/global.md`` derives both):

* the quadratic activation: ``f(x + delta)`` is exactly a quadratic in delta, so
  the extreme outputs over the ball are two trust-region subproblems, and the
  loss, a function of f that is convex (quadratic loss) or monotone (logistic),
  is largest at one of them;
* any activation, small d: a branch and bound over boxes that cover the ball,
  each bounded above by the rigorous ``loss_max`` of the ball around its center
  that contains it (``fopa.ball_constants``, tight form) and below by the loss at
  feasible points, with a budget on regions. Its upper bound is a certificate of
  global adversarial optimality: no perturbation in the ball does better.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from ._inputs import one_point
from ._kernels.linalg import row_norms
from ._pga_runs import choice
from ._validate import as_int, as_nonnegative_scalar, as_positive_scalar
from .bounds import ball_constant_arrays
from .derivatives import loss as loss_values
from .derivatives import predict
from .trust_region import maximize_quadratic_on_ball

__all__ = ["GlobalBound", "global_maximum"]

METHODS = ("auto", "trust_region", "branch_and_bound")


@dataclass(frozen=True)
class GlobalBound:
    """Certified bounds on ``max L(x + delta)`` over ``||delta|| <= eps``.

    Attributes
    ----------
    lower : float
        The loss at ``point`` (a feasible perturbation): the maximum is at least this.
    upper : float
        No perturbation in the ball has a larger loss (rigorous: the bounds of
        ``docs/derivatives.md`` with their rounding margins, or the exact
        trust-region solution up to its bisection's rounding).
    point : ndarray, shape (d,)
        The best perturbation found.
    method : str
        ``"trust_region"`` or ``"branch_and_bound"``.
    regions : int
        Boxes bounded (0 for the trust region).
    status : str
        ``"converged"`` (``upper - lower <= tol * max(1, |lower|)``) or ``"budget"``.
    message : str
    """

    lower: float
    upper: float
    point: np.ndarray
    method: str
    regions: int
    status: str
    message: str

    @property
    def gap(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower


def _trust_region(net, x, y, eps, loss):
    """Exact for the quadratic activation: ``f(x + h) = f(x) + g_f.h + h^T H_f h / 2``."""
    f0 = predict(net, x)
    ca = net.output_scale * net.a
    z = net.W @ x + net.b
    g = net.W.T @ (2.0 * ca * z)  # grad f = W^T (c a sigma'(z)), sigma'(z) = 2 z
    H = 2.0 * (net.W.T * ca) @ net.W  # hess f = W^T diag(c a sigma'') W, sigma'' = 2
    H = 0.5 * (H + H.T)
    up = maximize_quadratic_on_ball(g, H, eps)
    down = maximize_quadratic_on_ball(-g, -H, eps)
    candidates = [up.point, down.point]
    values = [float(loss_values(net, x + p, y, loss=loss)) for p in candidates]
    k = int(np.argmax(values))
    best = values[k]
    # the two solutions are exact to rounding; the upper bound allows the loss's
    # rounding at the extreme outputs (a few ulp of the largest |f| and of the loss)
    f_ext = max(abs(f0) + abs(up.value), abs(f0) + abs(down.value), 1.0)
    slack = 64 * np.finfo(float).eps * (abs(best) + f_ext * (abs(best) + abs(y) + f_ext))
    return GlobalBound(
        best, float(best + slack), candidates[k], "trust_region", 0, "converged",
        "exact: the loss is largest where f is largest or smallest, two trust-region "
        "subproblems",
    )  # fmt: skip


def _distance_to_box(lo, hi):
    """Distance from the origin to the box [lo, hi] (per box, arrays (k, d))."""
    return row_norms(np.ascontiguousarray(np.maximum(np.maximum(lo, 0.0), -hi)))


def _feasible(points, eps):
    """The points pulled onto the ball where they lie outside it (norms scale-safe,
    so a radius near 1e-160 still pulls them in)."""
    norms = row_norms(np.ascontiguousarray(points))
    scale = np.minimum(1.0, eps / np.maximum(norms, 1e-300))
    return points * scale[:, None]


def _branch_and_bound(net, x, y, eps, loss, code, max_regions, tol, seeds):
    d = x.shape[0]
    best_val, best_pt = -math.inf, np.zeros(d)

    def observe(points):
        nonlocal best_val, best_pt
        pts = _feasible(points, eps)
        vals = loss_values(net, x + pts, y, loss=loss)
        k = int(np.argmax(vals))
        if vals[k] > best_val:
            best_val, best_pt = float(vals[k]), pts[k].copy()

    if seeds is not None:
        observe(seeds)
    heap = []  # (-upper, id, lo, hi)
    counter = 0
    regions = 0

    def bound(lo, hi):
        """Upper bounds of the boxes rows (lo, hi), grouped by size (one radius each)."""
        nonlocal regions, counter
        keep = _distance_to_box(lo, hi) <= eps
        lo, hi = lo[keep], hi[keep]
        if lo.shape[0] == 0:
            return
        centers = 0.5 * (lo + hi)
        observe(centers)
        radius = 0.5 * row_norms(np.ascontiguousarray(hi - lo))
        for r in np.unique(radius):
            rows = np.nonzero(radius == r)[0]
            Y = np.full(rows.size, y)
            ub = ball_constant_arrays(net, x + centers[rows], Y, float(r), code)["loss_max"]
            for k, row in enumerate(rows):
                heapq.heappush(heap, (-float(ub[k]), counter, lo[row], hi[row]))
                counter += 1
        regions += lo.shape[0]

    bound(np.full((1, d), -eps), np.full((1, d), eps))
    status = "budget"
    upper = math.inf
    while heap:
        upper = -heap[0][0]
        if upper - best_val <= tol * max(1.0, abs(best_val)):
            status = "converged"
            break
        if regions >= max_regions:
            break
        # split the most promising boxes along their longest edge, a batch at a time
        batch = [heapq.heappop(heap) for _ in range(min(len(heap), 64))]
        los, his = [], []
        for _, _, lo, hi in batch:
            j = int(np.argmax(hi - lo))
            mid = 0.5 * (lo[j] + hi[j])
            left_hi, right_lo = hi.copy(), lo.copy()
            left_hi[j], right_lo[j] = mid, mid
            los += [lo, right_lo]
            his += [left_hi, hi]
        bound(np.array(los), np.array(his))
    else:
        upper = best_val  # every box was discarded: none can beat the best point
        status = "converged"
    upper = max(upper, best_val)
    message = f"{regions} regions; upper - lower = {upper - best_val:.3g}" + (
        "" if status == "converged" else f" after the budget of {max_regions} regions"
    )
    return GlobalBound(
        float(best_val), float(upper), best_pt, "branch_and_bound", regions, status, message
    )


def global_maximum(
    net, x, y, eps, *, method="auto", max_regions=20_000, tol=1e-6, starts=None,
    loss="quadratic",
) -> GlobalBound:  # fmt: skip
    """Certified lower and upper bounds on the largest loss over the ball.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    eps : float
    method : "auto", "trust_region" or "branch_and_bound"
        ``"trust_region"`` (exact) needs the quadratic activation; ``"auto"`` takes
        it for that activation and the branch and bound otherwise.
    max_regions : int
        Budget of boxes the branch and bound may bound (its cost grows like
        ``(eps / resolution)^d``: meant for d up to about 6).
    tol : float
        Stop when ``upper - lower <= tol * max(1, |lower|)``.
    starts : array_like, shape (k, d), optional
        Perturbations to evaluate first (say the ends of attacks): they raise the
        lower bound and so prune boxes early.
    loss : "quadratic" or "logistic"

    Returns
    -------
    GlobalBound
    """
    code, x, y, _ = one_point(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    method = choice("method", method, METHODS)
    max_regions = as_int("max_regions", max_regions, minimum=1)
    tol = as_nonnegative_scalar("tol", tol)
    if method == "auto":
        method = "trust_region" if net.activation == "quadratic" else "branch_and_bound"
    if method == "trust_region":
        if net.activation != "quadratic":
            raise ValueError(
                "method='trust_region' is exact only for the quadratic activation (f is "
                f"then a quadratic in delta); this network's is {net.activation!r}: use "
                "'branch_and_bound'"
            )
        return _trust_region(net, x, y, eps, loss)
    seeds = None
    if starts is not None:
        seeds = np.asarray(starts, dtype=float).reshape(-1, x.shape[0])
    return _branch_and_bound(net, x, y, eps, loss, code, max_regions, tol, seeds)
