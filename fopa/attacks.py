"""The first-order adversaries people run, on fopa's compiled core.

Each function maximizes ``L(x + delta)`` over ``||delta|| <= eps`` (the l2 ball)
for one input or a batch, by the update rule of an attack library or of a
textbook method, and returns an :class:`AttackResult`: the final perturbation,
the best one seen, the loss at every iterate, iterations and gradient
evaluations. ``docs/attacks.md`` derives each rule, says which library it
matches (and the conventions behind options such as ``guard`` and ``order``),
and how the cross-checks against torchattacks, ART and AutoAttack are run.

:func:`fopa.projected_gradient_ascent` stays the instrumented reference
adversary of the study (a step from the bounds, a KKT stopping rule,
certificates); these run a fixed budget and stop only when it is spent.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ._inputs import problem_arrays
from ._interrupts import deferred_sigint
from ._kernels import attacks as kern
from ._kernels.linalg import row_norms
from ._kernels.tolerances import START_FEASIBLE
from ._parallel import row_blocks, run_blocks, run_blocks_stoppable
from ._pga_runs import choice
from ._validate import (
    as_float_array,
    as_int,
    as_nonnegative_scalar,
    as_positive_scalar,
    as_real_scalar,
    as_rng,
)
from .bounds import ball_constant_arrays

__all__ = [
    "AttackResult", "fgm", "pgd", "apgd", "momentum_pga", "frank_wolfe", "riemannian_ascent",
    "ATTACKS",
]  # fmt: skip

#: Orders of projection and clipping for :func:`pgd` (see ``docs/attacks.md``).
ORDERS = ("project_then_clip", "clip_then_project")
#: Conventions of APGD's first oscillation count (see :func:`apgd`).
CONVENTIONS = ("autoattack", "paper")


@dataclass(frozen=True)
class AttackResult:
    """What an attack did, per input (arrays unstacked for one input).

    Attributes
    ----------
    attack : str
        The attack's name.
    delta : ndarray, shape (d,) or (n, d)
        The final perturbation (``x + delta`` is the attack's output).
    best_delta : ndarray, shape like ``delta``
        The perturbation with the largest loss among the iterates.
    loss : float or ndarray, shape (n,)
        The loss at ``x + delta``.
    best_loss : float or ndarray, shape (n,)
        The loss at ``x + best_delta``.
    loss_trajectory : ndarray, shape (T + 1,) or (n, T + 1)
        The loss at every iterate, the start first (T = ``iterations``).
    iterations : int
        Updates made.
    gradient_evaluations : int
        Gradients the attack itself used per input (the final point's loss is
        evaluated once more for the record and not counted).
    extra : mapping
        Attack-specific records: ``step_size`` (APGD's step at every iteration),
        ``frank_wolfe_gap`` (the Frank-Wolfe gap at every iterate).
    """

    attack: str
    delta: np.ndarray
    best_delta: np.ndarray
    loss: float | np.ndarray
    best_loss: float | np.ndarray
    loss_trajectory: np.ndarray
    iterations: int
    gradient_evaluations: int
    extra: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


def _box(box, X):
    """``(flag, lo, hi)`` for the kernels from ``None`` or ``(lo, hi)``."""
    if box is None:
        return False, 0.0, 0.0
    if not isinstance(box, (tuple, list)) or len(box) != 2:
        raise TypeError(f"box must be None or a pair (lo, hi); got {box!r}")
    lo, hi = as_real_scalar("box lo", box[0]), as_real_scalar("box hi", box[1])
    if not lo < hi:
        raise ValueError(f"box must have lo < hi; got ({lo}, {hi})")
    if np.any(X < lo) or np.any(X > hi):
        raise ValueError(f"x must lie in the box [{lo}, {hi}]")
    return True, lo, hi


def _start(start, X, eps, single, rng, where, in_ball=True):
    """Starting perturbations (n, d): a user's (copied, checked to lie in the ball),
    zero, or random: ``"sphere"`` (on the sphere) or ``"ball"`` (uniform in it)."""
    n, d = X.shape
    if start is None or (isinstance(start, str) and start == "zero"):
        return np.zeros((n, d))
    if isinstance(start, str):
        choice("start", start, ("zero", "sphere", "ball"))
        gen = as_rng(rng)
        U = gen.standard_normal((n, d))
        U /= np.maximum(np.linalg.norm(U, axis=1), 1e-300)[:, None]
        radius = eps if start == "sphere" else eps * gen.uniform(size=n) ** (1.0 / d)
        return np.ascontiguousarray(U * np.broadcast_to(radius, (n,))[:, None])
    D = as_float_array("start", start, ndim=(1, 2))
    want = (d,) if single else (n, d)
    if D.shape != want:
        raise ValueError(f"start must have shape {want} like x; got {D.shape}")
    D = np.array(D.reshape(n, d), order="C", copy=True)
    if in_ball and np.any(row_norms(D) > eps * (1 + START_FEASIBLE)):
        raise ValueError(f"start must lie in the ball ||delta|| <= eps ({where})")
    return D


def _result(name, D, best_D, best_val, traj, single, grads, extra=None):
    last = traj[:, -1].copy()
    iterations = traj.shape[1] - 1
    out = dict(
        attack=name, delta=D, best_delta=best_D, loss=last, best_loss=best_val,
        loss_trajectory=traj,
    )  # fmt: skip
    extra = dict(extra or {})
    if single:
        out = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in out.items()}
        out["loss"], out["best_loss"] = float(out["loss"]), float(out["best_loss"])
        extra = {k: v[0] for k, v in extra.items()}
    return AttackResult(
        **out, iterations=iterations, gradient_evaluations=grads, extra=MappingProxyType(extra)
    )


#: Multiply-adds (rows x d x m x iterations) above which a run goes to worker
#: threads, so that Ctrl-C stops it within ``fopa._parallel.POLL`` seconds plus
#: one iteration (below it a run takes about 0.05 s or less and runs in place).
STOPPABLE_WORK = 5e8
#: The largest per-iteration record (loss trajectories and the like) a run may
#: allocate, in bytes.
MAX_RECORD_BYTES = 4 * 2**30


def _check_record(n, steps, records):
    """Refuse a budget whose per-iteration records (``records`` arrays of shape
    (n, steps + 1)) would exceed :data:`MAX_RECORD_BYTES`."""
    size = 8 * n * (steps + 1) * records
    if size > MAX_RECORD_BYTES:
        raise ValueError(
            f"a budget of {steps} iterations for {n} inputs needs {size / 2**30:.3g} GiB "
            f"for the per-iteration records (loss trajectory); the limit is "
            f"{MAX_RECORD_BYTES / 2**30:g} GiB: run fewer iterations or fewer inputs at a time"
        )


def _run(kernel, outputs, iterations, net, code, X, Y, start, *args):
    """``kernel(view, code, X, Y, start, *args, stop)`` in row blocks on all cores
    (rows are independent; the split depends only on the shapes, ``fopa._parallel``),
    each of its ``outputs`` arrays stacked along its first axis. Ctrl-C during a
    long run stops the kernels at their next iteration and raises
    ``KeyboardInterrupt`` with nothing returned."""
    view = net.kernel_view
    stop = np.zeros(1, dtype=np.int64)

    def block(a, b):
        return kernel(view, code, X[a:b], Y[a:b], start[a:b], *args, stop)

    n, d = X.shape
    blocks = row_blocks(n, d, net.m)
    if n * d * net.m * iterations < STOPPABLE_WORK:
        return run_blocks(block, blocks, (0,) * outputs)
    with deferred_sigint() as pending:
        out = run_blocks_stoppable(block, blocks, (0,) * outputs, pending, stop)
    return out


def _common(net, x, y, eps, loss):
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    return code, X, Y, as_positive_scalar("eps", eps), single


def pgd(
    net, x, y, eps, *, steps=10, alpha=None, start=None, rng=None, box=None, guard=0.0,
    order="project_then_clip", loss="quadratic",
) -> AttackResult:  # fmt: skip
    """The attack-library L2 PGD: ``delta <- Proj(delta + alpha g / ||g||)``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    eps : float
        Radius of the l2 ball, > 0.
    steps : int
        Updates, >= 1 (one gradient each).
    alpha : float, optional
        Step length along the normalized gradient (default ``2.5 eps / steps``).
    start : None, "zero", "sphere", "ball" or array_like shaped like x
        Starting perturbation (default zero; ``"ball"`` is uniform in the ball,
        ``"sphere"`` uniform on its surface, drawn from ``rng``).
    rng : None, int or numpy.random.Generator
    box : None or (lo, hi)
        Bounds on every coordinate of ``x + delta``, applied by clipping in the
        ``order`` given (not the exact projection onto ball and box).
    guard : float
        Added to ``||g||`` before dividing (torchattacks: 1e-10 on the gradient of
        its batch-mean loss, which is ``n * 1e-10`` on fopa's per-input gradient);
        0 leaves a zero gradient at zero (ART).
    order : "project_then_clip" or "clip_then_project"
        torchattacks projects onto the ball, then clips; ART clips, then projects.
    loss : "quadratic" or "logistic"

    Returns
    -------
    AttackResult
    """
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    steps = as_int("steps", steps, minimum=1)
    alpha = 2.5 * eps / steps if alpha is None else as_positive_scalar("alpha", alpha)
    guard = as_nonnegative_scalar("guard", guard)
    order_code = ORDERS.index(choice("order", order, ORDERS))
    flag, lo, hi = _box(box, X)
    _check_record(X.shape[0], steps, 1)
    D0 = _start(start, X, eps, single, rng, "pgd")
    P, best_P, best_val, traj = _run(
        kern.pgd_run, 4, steps, net, code, X, Y, X + D0, eps, alpha, steps, guard, order_code, flag,
        lo, hi,
    )  # fmt: skip
    return _result("pgd", P - X, best_P - X, best_val, traj, single, steps)


def fgm(net, x, y, eps, *, box=None, loss="quadratic") -> AttackResult:
    """The fast gradient method: one normalized step to the sphere,
    ``delta = eps g / ||g||`` at ``delta = 0`` (``delta = 0`` if ``g = 0``), then
    clipped to ``box``. One gradient evaluation. Parameters as :func:`pgd`."""
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    flag, lo, hi = _box(box, X)
    P, best_P, best_val, traj = _run(
        kern.pgd_run, 4, 1, net, code, X, Y, X.copy(), eps, eps, 1, 0.0, 0, flag, lo, hi
    )
    return _result("fgm", P - X, best_P - X, best_val, traj, single, 1)


def apgd(
    net, x, y, eps, *, n_iter=100, start="sphere", rng=None, rho=0.75, box=None,
    convention="autoattack", guard=1e-12, loss="quadratic",
) -> AttackResult:  # fmt: skip
    """APGD (Croce and Hein, 2020) for the L2 ball, as AutoAttack runs it.

    Step ``2 eps`` along the normalized gradient, momentum weight 0.75 (none in
    the first step), checkpoints after ``0.22 n_iter`` iterations and then ever
    closer (down to ``0.06 n_iter``); at a checkpoint the step halves and the
    iterate returns to the best point when the loss rose in at most ``rho k`` of
    the last ``k`` steps, or when the step was not halved at the previous
    checkpoint and the best loss did not grow since. ``docs/attacks.md``.

    Parameters
    ----------
    n_iter : int
        Iterations, >= 1 (``n_iter + 1`` gradient evaluations).
    start : "sphere", "zero", "ball" or array_like
        AutoAttack starts on the sphere (``x + eps t / ||t||``, ``t`` Gaussian, from
        ``rng``); give an array to start where another run started.
    rho : float
        The share of rising steps below which the step halves (0.75).
    convention : "autoattack" or "paper"
        How condition 1 counts rising steps. AutoAttack's code compares losses
        rounded to float32 (its record of losses is a float32 array, so a rise
        below float32's resolution does not count) and, at the first checkpoint,
        the first step's loss with 0 (an index -1 that reads a row of zeros); the
        paper compares the losses themselves, the first with the starting loss.
    guard : float
        Added to norms before dividing (AutoAttack: 1e-12).
    Other parameters as :func:`pgd`.

    Returns
    -------
    AttackResult
        ``extra["step_size"]``: the step at every iteration, shape (n_iter,) or
        (n, n_iter). ``best_delta`` is AutoAttack's ``x_best - x``.
    """
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    n_iter = as_int("n_iter", n_iter, minimum=1)
    rho = as_real_scalar("rho", rho)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1]; got {rho}")
    guard = as_nonnegative_scalar("guard", guard)
    paper = CONVENTIONS.index(choice("convention", convention, CONVENTIONS)) == 1
    flag, lo, hi = _box(box, X)
    _check_record(X.shape[0], n_iter, 2)
    D0 = _start(start, X, eps, single, rng, "apgd")
    P, best_P, best_val, traj, steps = _run(
        kern.apgd_run, 5, n_iter, net, code, X, Y, X + D0, eps, n_iter, rho, 0.75, guard,
        paper, flag, lo, hi,
    )  # fmt: skip
    return _result(
        "apgd", P - X, best_P - X, best_val, traj, single, n_iter + 1, {"step_size": steps}
    )


def _step(step_size, net, X, Y, eps, code):
    """The step per input, shape (n,)."""
    if isinstance(step_size, numbers.Real) and not isinstance(step_size, bool):
        return np.full(X.shape[0], as_positive_scalar("step_size", step_size))
    if step_size == "lipschitz":
        beta = ball_constant_arrays(net, X, Y, eps, code)["beta"]
        return 1.0 / np.maximum(beta, 1e-300)
    raise ValueError(f"step_size must be a float > 0 or 'lipschitz'; got {step_size!r}")


def momentum_pga(
    net, x, y, eps, *, steps=100, step_size="lipschitz", momentum=0.9, nesterov=False,
    start=None, rng=None, box=None, loss="quadratic",
) -> AttackResult:  # fmt: skip
    """Projected gradient ascent with heavy-ball or Nesterov momentum.

    Heavy ball: ``delta+ = P(delta + h g(delta) + mu (delta - delta_prev))``;
    Nesterov: the gradient at the extrapolated (and projected) point
    ``y = P(delta + mu (delta - delta_prev))``, ``delta+ = P(y + h g(y))``.

    Parameters
    ----------
    step_size : float or "lipschitz"
        ``h``; ``"lipschitz"`` is ``1 / beta`` with the tight smoothness bound over
        each input's ball (one step per input).
    momentum : float
        ``mu`` in [0, 1).
    nesterov : bool
    Other parameters as :func:`pgd`; ``box`` clips ``x + delta`` after each
    projection.

    Returns
    -------
    AttackResult
        ``gradient_evaluations`` is ``steps`` (plus ``steps`` for Nesterov, whose
        iterates' losses are evaluated for the record).
    """
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    steps = as_int("steps", steps, minimum=1)
    mu = as_real_scalar("momentum", momentum)
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum must be in [0, 1); got {mu}")
    if not isinstance(nesterov, bool):
        raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
    h = _step(step_size, net, X, Y, eps, code)
    flag, lo, hi = _box(box, X)
    _check_record(X.shape[0], steps, 1)
    D0 = _start(start, X, eps, single, rng, "momentum_pga")
    kind = kern.NESTEROV if nesterov else kern.HEAVY_BALL
    D, best_D, best_val, traj = _run(
        kern.momentum_run, 4, 2 * steps, net, code, X, Y, D0, eps, h, mu, steps, kind, flag, lo, hi
    )
    name = "nesterov_pga" if nesterov else "momentum_pga"
    return _result(name, D, best_D, best_val, traj, single, steps)


def frank_wolfe(net, x, y, eps, *, steps=100, start=None, rng=None, loss="quadratic"):
    """Frank-Wolfe over the ball: ``s = eps g / ||g||``, ``delta+ = delta +
    gamma_t (s - delta)`` with ``gamma_t = 2 / (t + 2)``.

    Returns
    -------
    AttackResult
        ``extra["frank_wolfe_gap"]``: ``<g, s - delta> = eps ||g|| - <g, delta>`` at
        every iterate, which is 0 exactly at KKT points of the ball.
    """
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    steps = as_int("steps", steps, minimum=1)
    _check_record(X.shape[0], steps, 2)
    D0 = _start(start, X, eps, single, rng, "frank_wolfe")
    D, best_D, best_val, traj, gaps = _run(
        kern.frank_wolfe_run, 5, steps, net, code, X, Y, D0, eps, steps
    )
    return _result(
        "frank_wolfe", D, best_D, best_val, traj, single, steps, {"frank_wolfe_gap": gaps}
    )


def riemannian_ascent(
    net, x, y, eps, *, steps=100, start="sphere", rng=None, armijo=1e-4, max_halvings=50,
    loss="quadratic",
) -> AttackResult:  # fmt: skip
    """Riemannian gradient ascent on the sphere ``||delta|| = eps``, Armijo steps.

    The Riemannian gradient is the tangent part ``r = g - (u . g) u`` of the
    gradient (``u = delta / eps``), the retraction ``R(delta, v) = eps (delta + v) /
    ||delta + v||``. A trial step ``t`` is accepted when ``L(R(delta, t r)) >= L(delta)
    + armijo t ||r||^2`` and halved otherwise; the first trial moves by eps, later
    ones are twice the last accepted step. It maximizes over the sphere only: an
    interior maximum of the ball is out of its reach (``docs/attacks.md``).

    Parameters
    ----------
    start : "sphere" or array_like
        A random point on the sphere from ``rng``, or a given one (rescaled onto
        the sphere; it must not be 0).
    armijo : float
        The sufficient-increase constant, in (0, 1).
    max_halvings : int
        Halvings per step before a row keeps its point.
    Other parameters as :func:`pgd`.

    Returns
    -------
    AttackResult
        ``extra["loss_evaluations"]`` (per input; the line searches' evaluations
        besides the ``steps + 1`` gradients) and ``extra["tangent_norm"]``
        (``||r||`` at every iterate: 0 exactly at KKT points of the sphere).
    """
    code, X, Y, eps, single = _common(net, x, y, eps, loss)
    steps = as_int("steps", steps, minimum=1)
    armijo = as_real_scalar("armijo", armijo)
    if not 0.0 < armijo < 1.0:
        raise ValueError(f"armijo must be in (0, 1); got {armijo}")
    max_halvings = as_int("max_halvings", max_halvings, minimum=0, maximum=1074)
    if isinstance(start, str) and start == "zero":
        raise ValueError("start='zero' is not on the sphere; use 'sphere' or an array")
    _check_record(X.shape[0], steps, 2)
    D0 = _start(start, X, eps, single, rng, "riemannian_ascent", in_ball=False)
    norms = row_norms(D0)
    if np.any(norms == 0.0):
        raise ValueError("start must be nonzero: it is rescaled onto the sphere")
    D0 = np.ascontiguousarray(D0 * (eps / norms)[:, None])
    D, best_D, best_val, traj, evals, tangent = _run(
        kern.riemannian_run, 6, 3 * steps, net, code, X, Y, D0, eps, steps, armijo, max_halvings
    )
    return _result(
        "riemannian_ascent", D, best_D, best_val, traj, single, steps + 1,
        {"loss_evaluations": evals, "tangent_norm": tangent},
    )  # fmt: skip


#: The attacks by name.
ATTACKS = MappingProxyType(
    {"fgm": fgm, "pgd": pgd, "apgd": apgd, "momentum_pga": momentum_pga,
     "frank_wolfe": frank_wolfe, "riemannian_ascent": riemannian_ascent}
)  # fmt: skip
