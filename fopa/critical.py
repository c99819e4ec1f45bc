"""Every kind of critical point of one adversarial problem, found by Newton's method.

PGA from random starts finds maxima; to study how it behaves near a saddle one
needs the saddles themselves. ``critical_points`` runs Newton's method on the
first-order conditions from many random starts: on the sphere ``||delta|| = eps``
the Riemannian Newton step for the tangent gradient ``P grad L = 0``, inside the
ball the Newton step for ``grad L = 0``. Newton's method is attracted by every
nondegenerate critical point, whatever its index, so its ends are maxima,
saddles and minima alike; :func:`fopa.certify` classifies each distinct end
(``docs/landscape.md``, "Critical points by Newton's method").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import one_point
from ._validate import as_int, as_nonnegative_scalar, as_positive_scalar, as_rng
from .bounds import ball_constants
from .certify import DEFAULT_TOL, Certificate, certify
from .derivatives import input_gradient, input_hessian
from .losses import loss_code

__all__ = ["CriticalPoints", "critical_points"]

#: Newton runs until the relative KKT residual is this fraction of ``tol``.
NEWTON_MARGIN = 1e-3
#: The largest Newton step, as a fraction of eps (a damped Newton method).
STEP_CAP = 0.25
#: Eigenvalues of the Newton matrix below this fraction of its largest are not inverted.
PINV_FLOOR = 1e-12


@dataclass(frozen=True)
class CriticalPoints:
    """The distinct critical points Newton's method reached, largest loss first.

    Attributes
    ----------
    points : ndarray, shape (k, d)
        The distinct converged ends (ends closer than ``merge_distance`` are one).
    loss : ndarray, shape (k,)
    kind : ndarray of str, shape (k,)
        The certificate kind of each (:func:`fopa.certify`): ``"strict_local_max"``,
        ``"saddle"``, ``"local_min"``, ``"degenerate"``, or ``"not_critical"`` for a
        critical point of L on the sphere whose multiplier is negative (L grows
        toward the interior there: not a KKT point of the ball problem).
    hits : ndarray of int, shape (k,)
        Starts whose Newton run ended at each point.
    certificates : Certificate
        Their certificates (arrays over the k points).
    n_starts : int
        Starts on the sphere plus starts inside the ball.
    n_converged : int
        Starts whose end has relative KKT residual at most ``tol``; the others
        (``n_starts - n_converged``) did not converge within ``max_iter`` steps.

    Notes
    -----
    Degenerate critical points can form manifolds (for the quadratic loss, the set
    ``f(x + delta) = y`` where L = 0 meets the sphere), so their count is of the points
    found, not of components.
    """

    points: np.ndarray
    loss: np.ndarray
    kind: np.ndarray
    hits: np.ndarray
    certificates: Certificate
    n_starts: int
    n_converged: int

    def of_kind(self, kind) -> np.ndarray:
        """Indices (into ``points``) of the points of this certificate kind."""
        return np.flatnonzero(self.kind == kind)


def _no_certificates():
    text = {"kind", "reason", "method"}
    return Certificate(**{
        name: np.zeros(0, dtype=str if name in text else bool if name == "on_boundary" else float)
        for name in Certificate.__dataclass_fields__
    })  # fmt: skip


def _pinv_solve(A, rhs):
    """``A^+ rhs`` for a batch of symmetric matrices through their eigendecompositions,
    leaving out the eigenvalues below :data:`PINV_FLOOR` of the largest."""
    w, V = np.linalg.eigh(A)
    floor = PINV_FLOOR * np.abs(w).max(axis=1, keepdims=True)
    inv = np.where(np.abs(w) > floor, 1.0 / np.where(w == 0, 1.0, w), 0.0)
    return np.einsum("nij,nj->ni", V, inv * np.einsum("nji,nj->ni", V, rhs))


def _newton_steps(net, x, y, eps, D, loss, scale):
    """One damped Newton step for every row of ``D``: on the sphere (rows with norm
    eps) the Riemannian step, inside the step for ``grad L = 0``; returns the new
    points and the relative KKT residual of the old ones."""
    n, d = D.shape
    X = x + D
    Y = np.full(n, y)
    g = input_gradient(net, X, Y, loss=loss)
    H = input_hessian(net, X, Y, loss=loss)
    norms = np.linalg.norm(D, axis=1)
    sphere = norms >= eps * (1.0 - 1e-12)
    U = np.where(sphere[:, None], D / np.where(norms > 0, norms, 1.0)[:, None], 0.0)
    ug = np.einsum("ij,ij->i", U, g)
    tangent = g - ug[:, None] * U  # the gradient itself inside (U = 0)
    residual = np.linalg.norm(tangent, axis=1) / scale
    # On the sphere: [[H - mu I, u], [u^T, 0]] [v; s] = [-P g; 0] (v tangent); inside
    # the same system with u = 0 and mu = 0, whose last row and column only pin s = 0.
    mu = np.where(sphere, ug / eps, 0.0)
    A = np.zeros((n, d + 1, d + 1))
    A[:, :d, :d] = H - mu[:, None, None] * np.eye(d)
    A[:, :d, d] = U
    A[:, d, :d] = U
    A[:, d, d] = np.where(sphere, 0.0, 1.0)
    step = _pinv_solve(A, np.concatenate([-tangent, np.zeros((n, 1))], axis=1))[:, :d]
    length = np.linalg.norm(step, axis=1)
    step *= np.minimum(1.0, STEP_CAP * eps / np.where(length > 0, length, 1.0))[:, None]
    new = D + step
    new_norms = np.linalg.norm(new, axis=1)
    # Retract to the sphere the sphere rows and the interior rows whose step left the
    # ball (those continue on the sphere).
    out = sphere | (new_norms > eps)
    new[out] *= (eps / new_norms[out])[:, None]
    return new, residual


def critical_points(
    net, x, y, eps, *, n_starts=64, interior_starts=None, rng=None, tol=DEFAULT_TOL,
    max_iter=100, merge_distance=None, loss="quadratic",
) -> CriticalPoints:  # fmt: skip
    """Critical points of ``L(x + delta)`` over ``||delta|| <= eps``, every kind.

    Damped Newton's method on the first-order conditions from ``n_starts`` points
    uniform on the sphere (the Riemannian Newton step for ``P grad L = 0``, with
    ``P`` the projection on the tangent space and the Hessian ``P (hess L - mu I)
    P``, ``mu = u.grad L / eps``) and ``interior_starts`` points uniform in the ball
    (the Newton step for ``grad L = 0``; a step that leaves the ball is retracted to
    the sphere and the run continues there). Each step is at most ``eps / 4`` long
    and inverts only the eigenvalues of the Newton matrix above 1e-12 of its
    largest. A run stops when its relative KKT residual (the certificate's and the
    solver's: the tangent gradient over the ball's gradient scale) is below ``tol /
    1000``, or after ``max_iter`` steps; ends with residual at most ``tol`` are
    merged (closer than ``merge_distance``: one point) and certified.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    eps : float
    n_starts : int
        Starts uniform on the sphere, >= 0.
    interior_starts : int, optional
        Starts uniform in the ball, >= 0 (default ``n_starts // 4``).
    rng : None, int or numpy.random.Generator
        Draws the sphere starts, then the interior starts.
    tol : float
        Relative KKT residual of a converged end, and the certificate's ``tol``.
    max_iter : int
        Newton steps per start.
    merge_distance : float, optional
        Default ``1e-4 * eps``, as :func:`fopa.local_maxima`.
    loss : "quadratic" or "logistic"

    Returns
    -------
    CriticalPoints
    """
    _, x, y, _ = one_point(net, x, y, loss)
    loss_code(loss)
    eps = as_positive_scalar("eps", eps)
    n_sphere = as_int("n_starts", n_starts, minimum=0)
    n_inner = n_sphere // 4 if interior_starts is None else as_int(
        "interior_starts", interior_starts, minimum=0
    )  # fmt: skip
    if n_sphere + n_inner == 0:
        raise ValueError("n_starts + interior_starts must be >= 1")
    tol = as_positive_scalar("tol", tol)
    max_iter = as_int("max_iter", max_iter, minimum=0)
    merge = 1e-4 * eps if merge_distance is None else as_nonnegative_scalar(
        "merge_distance", merge_distance
    )  # fmt: skip
    gen = as_rng(rng)
    d = x.size
    sphere = gen.standard_normal((n_sphere, d))
    sphere *= (eps / np.linalg.norm(sphere, axis=1))[:, None]
    inner = gen.standard_normal((n_inner, d))
    inner *= (eps * gen.random(n_inner) ** (1.0 / d) / np.linalg.norm(inner, axis=1))[:, None]
    D = np.concatenate([sphere, inner])
    scale = float(ball_constants(net, x, y, eps, loss=loss, method="fast").gradient_bound)
    scale = scale if scale > 0 else 1.0
    residual = np.full(D.shape[0], np.inf)
    running = np.arange(D.shape[0])
    for _ in range(max_iter + 1):
        new, residual[running] = _newton_steps(net, x, y, eps, D[running], loss, scale)
        still = residual[running] > NEWTON_MARGIN * tol
        if _ == max_iter:
            break
        D[running[still]] = new[still]
        running = running[still]
        if running.size == 0:
            break
    converged = np.flatnonzero(residual <= tol)
    ends = D[converged]
    centres, hits = [], []
    for i in range(ends.shape[0]):
        dist = [np.linalg.norm(ends[i] - ends[c]) for c in centres]
        if dist and min(dist) <= merge:
            hits[int(np.argmin(dist))] += 1
        else:
            centres.append(i)
            hits.append(1)
    points = ends[centres].reshape(len(centres), d)
    if not centres:  # nothing converged: an empty batch of certificates
        return CriticalPoints(
            points=points, loss=np.zeros(0), kind=np.zeros(0, dtype=str),
            hits=np.zeros(0, np.int64), certificates=_no_certificates(),
            n_starts=n_sphere + n_inner, n_converged=0,
        )  # fmt: skip
    certs = certify(net, np.tile(x, (len(centres), 1)), np.full(len(centres), y), points, eps,
                    tol=tol, loss=loss)  # fmt: skip
    order = np.argsort(-np.asarray(certs.loss, dtype=float), kind="stable")
    certs = Certificate(**{k: np.asarray(v)[order] for k, v in vars(certs).items()})
    return CriticalPoints(
        points=points[order], loss=np.asarray(certs.loss, dtype=float), kind=np.asarray(certs.kind),
        hits=np.asarray(hits, dtype=np.int64)[order], certificates=certs,
        n_starts=n_sphere + n_inner, n_converged=int(converged.size),
    )  # fmt: skip
