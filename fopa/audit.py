"""Audits of the ball bounds: the largest values found inside the ball, by sampling
and by adversarial maximization, held against :func:`fopa.ball_constants`.

A bound is rigorous when no value found exceeds it, and tight when the largest
value found is close to it. The values found are lower bounds of the true
suprema (every one is attained at a feasible point), so ``bound / found`` is an
upper bound of the bound's looseness.

* ``L``: sampled, then projected gradient ascent from the best samples.
* ``||grad L||``: sampled, then projected ascent on ``||grad L||^2 / 2`` (its
  gradient is ``hess L grad L``, a Hessian-vector product).
* ``||hess L||_2``: power iteration at each sample, then projected ascent over the
  point on ``v^T hess L v`` with v the current top eigenvector (its gradient is
  ``D3 L[v, v, .]``), alternating with power steps.
* ``||D3 L||`` (the Lipschitz constant of ``hess L`` over the ball, which
  ``rho`` bounds): tensor power iteration ``u <- D3 L[u, u, .] / ||.||`` at the
  samples and at the points of the Hessian ascent; ``||D3 L[u, u, .]||`` is a lower
  bound of the operator norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import one_point
from ._interrupts import deferred_sigint
from ._validate import as_int, as_positive_scalar, as_rng
from .ascent import projected_gradient_ascent
from .bounds import BallConstants, ball_constants
from .derivatives import hessian_vector_product, input_gradient, third_derivative
from .derivatives import loss as loss_values

__all__ = ["BoundAudit", "audit_ball_constants"]

#: The audited quantities: (name in BallConstants, what is maximized).
AUDITED = (
    ("loss_max", "loss"),
    ("gradient_bound", "gradient norm"),
    ("beta", "Hessian norm"),
    ("rho", "third-derivative norm"),
)


@dataclass(frozen=True)
class BoundAudit:
    """What :func:`audit_ball_constants` found.

    Attributes
    ----------
    bounds : BallConstants
        The bounds audited.
    found : dict
        ``{bound name: largest value found}`` for ``loss_max``, ``gradient_bound``,
        ``beta`` and ``rho``.
    looseness : dict
        ``{bound name: bound / found}`` (inf where nothing positive was found).
    violations : tuple of str
        The bounds that a found value exceeds (empty for rigorous bounds).
    """

    bounds: BallConstants
    found: dict
    looseness: dict
    violations: tuple

    @property
    def passed(self) -> bool:
        """No found value exceeds its bound."""
        return not self.violations


def _ball_points(gen, x, eps, k):
    """x and k points of the ball: half uniform inside, half on the sphere."""
    d = x.size
    h = gen.standard_normal((k, d))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    radius = eps * np.concatenate([gen.uniform(size=k // 2) ** (1 / d), np.ones(k - k // 2)])
    return np.vstack([x, x + radius[:, None] * h])


def _project(P, x, eps):
    """Rows of P moved onto the ball around x."""
    D = P - x
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    return x + D * (eps / np.maximum(norms, eps))


def _unit(V):
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    return V / np.where(norms > 0, norms, 1.0)


def _power(net, P, Y, V, loss, steps):
    """Power iteration with Hessian-vector products at the rows of P; returns the unit
    vectors and ``|v^T H v|`` per row."""
    V = _unit(V)
    for _ in range(steps):
        V = _unit(hessian_vector_product(net, P, Y, V, loss=loss))
    HV = hessian_vector_product(net, P, Y, V, loss=loss)
    return V, np.abs(np.sum(V * HV, axis=1))


def _tensor_power(net, P, Y, U, loss, steps):
    """Tensor power iteration ``u <- D3 L[u, u, .]``; the largest ``||D3 L[u, u, .]||`` seen
    per row."""
    U = _unit(U)
    best = np.zeros(len(P))
    for _ in range(steps):
        T = third_derivative(net, P, Y, U, U, loss=loss)
        best = np.maximum(best, np.linalg.norm(T, axis=1))
        U = _unit(T)
    return best


def _largest_values(net, x, y, eps, loss, n_samples, n_steps, gen, pending):
    """The largest loss, gradient norm, Hessian norm and third-derivative norm found
    (see the module docstring); stops early when ``pending()`` says Ctrl-C arrived."""
    P = _ball_points(gen, x, eps, n_samples)
    Y = np.full(len(P), y)
    top = min(4, len(P))

    # the loss: samples, then PGA from the best ones
    values = loss_values(net, P, Y, loss=loss)
    starts = P[np.argsort(-values)[:top]] - x
    ascent = projected_gradient_ascent(
        net, np.tile(x, (top, 1)), np.full(top, y), eps, init=starts, max_iter=20 * n_steps,
        tol=0.0, loss=loss,
    )  # fmt: skip
    found_loss = max(float(np.max(values)), float(np.max(ascent.loss)))

    # the gradient norm: samples, then projected ascent on ||grad L||^2 / 2
    grads = input_gradient(net, P, Y, loss=loss)
    gnorm = np.linalg.norm(grads, axis=1)
    Q = P[np.argsort(-gnorm)[:top]].copy()
    Yq = np.full(top, y)
    found_grad = float(np.max(gnorm))
    step = 0.1 * eps
    for _ in range(n_steps):
        if pending():
            break
        G = input_gradient(net, Q, Yq, loss=loss)
        found_grad = max(found_grad, float(np.max(np.linalg.norm(G, axis=1))))
        ascent_dir = _unit(hessian_vector_product(net, Q, Yq, G, loss=loss))
        Q = _project(Q + step * ascent_dir, x, eps)
    found_grad = max(found_grad, float(np.max(np.linalg.norm(
        input_gradient(net, Q, Yq, loss=loss), axis=1))))  # fmt: skip

    # the Hessian norm: power iteration at the samples, then ascent over the point
    V, hnorm = _power(net, P, Y, gen.standard_normal(P.shape), loss, n_steps)
    order = np.argsort(-hnorm)[:top]
    R, Vr = P[order].copy(), V[order]
    found_hess = float(np.max(hnorm))
    for _ in range(n_steps):
        if pending():
            break
        HV = hessian_vector_product(net, R, Yq, Vr, loss=loss)
        curvature = np.sum(Vr * HV, axis=1)
        found_hess = max(found_hess, float(np.max(np.abs(curvature))))
        T = third_derivative(net, R, Yq, Vr, Vr, loss=loss)
        R = _project(R + step * np.sign(curvature)[:, None] * _unit(T), x, eps)
        Vr, _ = _power(net, R, Yq, Vr, loss, 3)
    _, hnorm_end = _power(net, R, Yq, Vr, loss, n_steps)
    found_hess = max(found_hess, float(np.max(hnorm_end)))

    # the third derivative: tensor power iteration at the samples and the ascent's ends
    S = np.vstack([P, R])
    found_third = float(np.max(_tensor_power(
        net, S, np.full(len(S), y), gen.standard_normal(S.shape), loss, n_steps)))  # fmt: skip

    return dict(loss_max=found_loss, gradient_bound=found_grad, beta=found_hess,
                rho=found_third)  # fmt: skip


def audit_ball_constants(
    net, x, y, eps, *, loss="quadratic", method="tight", n_samples=32, n_steps=30, rng=None
) -> BoundAudit:
    """Hold :func:`fopa.ball_constants` against the largest values found in the ball.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    eps : float
        Radius, > 0.
    loss : {"quadratic", "logistic"}
    method : {"tight", "row_sum"}
        The bounds to audit (see :func:`fopa.ball_constants`).
    n_samples : int
        Points sampled in the ball (besides x), >= 2.
    n_steps : int
        Steps of each maximization, >= 1.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    BoundAudit
    """
    _, x, y, _ = one_point(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    n_samples = as_int("n_samples", n_samples, minimum=2)
    n_steps = as_int("n_steps", n_steps, minimum=1)
    gen = as_rng(rng)
    bounds = ball_constants(net, x, y, eps, loss=loss, method=method)
    with deferred_sigint() as pending:  # many short kernel calls: Ctrl-C between them
        found = _largest_values(net, x, y, eps, loss, n_samples, n_steps, gen, pending)
    looseness, violations = {}, []
    for name, _ in AUDITED:
        bound, value = getattr(bounds, name), found[name]
        looseness[name] = bound / value if value > 0 else np.inf
        if value > bound:
            violations.append(name)
    return BoundAudit(bounds=bounds, found=found, looseness=looseness,
                      violations=tuple(violations))  # fmt: skip
