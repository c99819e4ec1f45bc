"""The landscape of one adversarial problem: its certified local maxima.

``local_maxima`` runs many ascents from random starts on the sphere, certifies
where each ended, and merges the certified ends that are the same maximum.
``taylor_model_maximum`` solves the second-order Taylor model of the loss at x
over the ball exactly (a trust-region subproblem): as the input scale shrinks
the true landscape approaches this model (``docs/landscape.md``, "The Taylor model
as the scale shrinks").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import one_point
from ._validate import as_int, as_positive_scalar
from .ascent import projected_gradient_ascent
from .certify import Certificate, certify
from .derivatives import input_gradient, input_hessian
from .derivatives import loss as loss_values
from .trust_region import TrustRegionSolution, maximize_quadratic_on_ball

__all__ = ["Landscape", "LocalMaximum", "local_maxima", "taylor_model_maximum"]


@dataclass(frozen=True)
class LocalMaximum:
    """One certified local maximum.

    Attributes
    ----------
    point : ndarray, shape (d,)
        The best end (by loss) among the starts that reached it.
    loss : float
    basin_fraction : float
        Share of all starts that ended at it.
    certificate : Certificate
    """

    point: np.ndarray
    loss: float
    basin_fraction: float
    certificate: Certificate


@dataclass(frozen=True)
class Landscape:
    """Distinct certified maxima from many starts, best first.

    Attributes
    ----------
    maxima : tuple of LocalMaximum
        Sorted by loss, largest first.
    n_starts : int
    ends : ndarray, shape (n_starts, d)
        Where every start ended.
    kinds : ndarray of str, shape (n_starts,)
        The certificate kind of every end (``"strict_local_max"`` for those
        merged into ``maxima``; saddles, degenerate or not converged ends otherwise).
    labels : ndarray of int, shape (n_starts,)
        Index into ``maxima`` of each end, -1 for ends that are not certified.
    """

    maxima: tuple
    n_starts: int
    ends: np.ndarray
    kinds: np.ndarray
    labels: np.ndarray

    @property
    def best(self) -> LocalMaximum | None:
        """The certified maximum with the largest loss (None if there is none)."""
        return self.maxima[0] if self.maxima else None


def local_maxima(
    net,
    x,
    y,
    eps,
    *,
    n_starts=64,
    rng=None,
    step_size="lipschitz",
    tol=1e-10,
    max_iter=100_000,
    merge_distance=None,
    loss="quadratic",
    progress=False,
) -> Landscape:
    """Certified local maxima of ``L(x + delta)`` over ``||delta|| <= eps``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    eps : float
    n_starts : int
        Starts drawn uniformly on the sphere of radius eps.
    rng : None, int or numpy.random.Generator
    step_size, tol, max_iter
        Passed to :func:`fopa.projected_gradient_ascent`.
    merge_distance : float, optional
        Certified ends closer than this are one maximum (default ``1e-4 * eps``).
    loss : "quadratic" or "logistic"
    progress : bool or str
        Show a progress bar of the starts' ascent (tqdm, on stderr; a string: its
        label); the results do not depend on it.

    Returns
    -------
    Landscape
    """
    _, x, y, _ = one_point(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    n_starts = as_int("n_starts", n_starts, minimum=1)
    merge = (
        1e-4 * eps
        if merge_distance is None
        else as_positive_scalar("merge_distance", merge_distance)
    )
    res = projected_gradient_ascent(
        net, x, y, eps, step_size=step_size, tol=tol, max_iter=max_iter, init="sphere",
        n_restarts=n_starts, rng=rng, loss=loss,
        progress=f"local_maxima: {n_starts} starts" if progress is True else progress,
    )  # fmt: skip
    ends = res.restarts.end
    certs = certify(net, np.tile(x, (n_starts, 1)), y, ends, eps, loss=loss)
    kinds = np.asarray(certs.kind)
    labels = np.full(n_starts, -1, np.int64)
    order = [
        i for i in np.argsort(-res.restarts.loss, kind="stable") if kinds[i] == "strict_local_max"
    ]
    centers = []
    for i in order:
        dist = [np.linalg.norm(ends[i] - ends[c]) for c in centers]
        if dist and min(dist) < merge:
            labels[i] = int(np.argmin(dist))
        else:
            labels[i] = len(centers)
            centers.append(i)
    maxima = tuple(
        LocalMaximum(
            point=ends[c].copy(),
            loss=float(res.restarts.loss[c]),
            basin_fraction=float(np.mean(labels == k)),
            certificate=Certificate(**{k: v[c].item() for k, v in vars(certs).items()}),
        )
        for k, c in enumerate(centers)
    )
    return Landscape(maxima=maxima, n_starts=n_starts, ends=ends, kinds=kinds, labels=labels)


def taylor_model_maximum(net, x, y, eps, *, loss="quadratic") -> TrustRegionSolution:
    """Global maximizer of the second-order Taylor model of L at x over the ball.

    ``maximize L(x) + g.h + h^T H h / 2`` over ``||h|| <= eps`` with ``g, H`` the
    input gradient and Hessian at x: a trust-region subproblem, solved exactly
    (hard case included) by :func:`fopa.maximize_quadratic_on_ball`.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    eps : float
    loss : "quadratic" or "logistic"

    Returns
    -------
    TrustRegionSolution
        ``point`` is the maximizing h; ``value`` the model's value
        ``L(x) + g.h + h^T H h / 2`` there.
    """
    _, x, y, _ = one_point(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    g = input_gradient(net, x, y, loss=loss)
    H = input_hessian(net, x, y, loss=loss)
    sol = maximize_quadratic_on_ball(g, H, eps)
    base = loss_values(net, x, y, loss=loss)
    return TrustRegionSolution(
        point=sol.point, value=base + sol.value, multiplier=sol.multiplier, hard_case=sol.hard_case
    )
