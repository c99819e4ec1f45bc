"""Projected gradient ascent (PGA): the first-order adversary.

``maximize L(x + delta)  subject to  ||delta||_2 <= eps`` by

    delta_{t+1} = Proj(delta_t + eta_t * grad L(x + delta_t)),
    Proj(v) = v * eps / max(||v||, eps),

with a fixed step, ``1/beta`` from the tight ball bounds, or a backtracking step
that accepts only steps of sufficient ascent. A run stops at a KKT point: when
its KKT residual (the tangent gradient on the sphere, the gradient inside) is at
most ``tol`` times the ball's gradient scale and the loss does not grow toward
the interior, the same test :func:`fopa.certify` applies; or after ``max_iter``
steps. The loops are compiled (:mod:`fopa._kernels.pga`,
:mod:`fopa._kernels.backtracking`); this module validates input, draws starts,
picks the iteration and assembles an :class:`AscentResult` (``docs/solver.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import problem_arrays
from ._interrupts import deferred_sigint
from ._kernels import backtracking as BT
from ._kernels import pga as K
from ._kernels.ball import CONSTRAINTS
from ._pga_pieces import NO_PERTURBATION, NO_TARGET, piece_length, runs_in_pieces
from ._pga_runs import INITS as INITS  # re-exported: the words the CLI offers
from ._pga_runs import STEP_POLICIES as STEP_POLICIES
from ._pga_runs import (
    choice,
    choose_method,
    gram_weights_in_range,
    run_kernel,
    starts,
    steps_and_scales,
)
from ._progress import iteration_bar
from ._validate import (
    as_int,
    as_nonnegative_scalar,
    as_positive_scalar,
    as_rng,
    check_rng,
)

__all__ = ["AscentResult", "History", "Perturbation", "Restarts", "projected_gradient_ascent"]

METHODS = ("auto", "plain", "gram")
STOPPING = {
    K.MAX_ITER: "max_iter", K.TOL: "kkt_tol", K.NO_ESCAPE: "no_escape",
    BT.STEP_UNDERFLOW: "step_underflow",
}  # fmt: skip
_STOP_NAMES = np.array([STOPPING[k] for k in range(len(STOPPING))])


@dataclass(frozen=True)
class Perturbation:
    """Noise injection for escaping saddle points (perturbed gradient ascent).

    When the gradient-mapping norm falls to ``threshold`` the iterate is saved and
    moved by a point drawn uniformly from the ball of radius ``radius`` (then
    projected). If after ``interval`` iterations the loss has not grown by
    ``min_gain`` over the saved point, the saved point is returned (stopping
    criterion ``"no_escape"``). At most ``max_perturbations`` are made; after that
    the usual ``tol`` rule stops the run.

    Parameters
    ----------
    radius : float
        Noise radius, > 0.
    threshold : float
        Gradient-mapping norm that triggers a perturbation, > 0.
    interval : int
        Iterations allowed to escape, >= 1.
    min_gain : float
        Loss increase that counts as an escape, >= 0.
    max_perturbations : int
        >= 1.
    """

    radius: float
    threshold: float = 1e-4
    interval: int = 50
    min_gain: float = 1e-10
    max_perturbations: int = 10

    def __post_init__(self):
        object.__setattr__(self, "radius", as_positive_scalar("perturbation.radius", self.radius))
        object.__setattr__(
            self, "threshold", as_positive_scalar("perturbation.threshold", self.threshold)
        )
        object.__setattr__(
            self, "interval", as_int("perturbation.interval", self.interval, minimum=1)
        )
        gain = as_nonnegative_scalar("perturbation.min_gain", self.min_gain)
        object.__setattr__(self, "min_gain", gain)
        count = as_int("perturbation.max_perturbations", self.max_perturbations, minimum=1)
        object.__setattr__(self, "max_perturbations", count)

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.radius, self.threshold, self.interval, self.min_gain, self.max_perturbations],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class Restarts:
    """Every restart of every input (leading shape (n, n_restarts), or (n_restarts,)).

    Attributes
    ----------
    seed : ndarray of uint64
        Seed of the restart's own generator: ``numpy.random.default_rng(seed)``
        draws its start (and seeds its perturbation noise).
    start, end : ndarray, shape (..., d)
        First and returned iterate.
    loss : ndarray
        Loss at ``end``.
    iterations : ndarray of int
    stopping_criterion : ndarray of str
    """

    seed: np.ndarray
    start: np.ndarray
    end: np.ndarray
    loss: np.ndarray
    iterations: np.ndarray
    stopping_criterion: np.ndarray


@dataclass(frozen=True)
class History:
    """Per-iteration record of one ascent (the best restart), iterations 0..T.

    Attributes
    ----------
    loss : ndarray, shape (T + 1,)
        ``L(x + delta_t)``.
    grad_mapping_norm : ndarray, shape (T + 1,)
        ``||G(delta_t)||`` with the step of iteration t.
    distance_to_final : ndarray, shape (T + 1,)
        ``||delta_t - delta_T||``.
    kkt_residual : ndarray, shape (T + 1,)
        The relative KKT residual at ``delta_t`` (what the run stops on).
    step_size : ndarray, shape (T + 1,)
        The step in use at iteration t: ``G(delta_t)`` is measured with it and it is
        the first trial from ``delta_t`` (constant for a fixed step; backtracking may
        halve it before ``delta_{t+1}`` is accepted).
    iterates : ndarray, shape (T + 1, d), or None
        The iterates, when asked for with ``record_history="iterates"``.
    """

    loss: np.ndarray
    grad_mapping_norm: np.ndarray
    distance_to_final: np.ndarray
    kkt_residual: np.ndarray
    step_size: np.ndarray
    iterates: np.ndarray | None = None


@dataclass(frozen=True)
class AscentResult:
    """Outcome of :func:`projected_gradient_ascent` (per input: arrays when batched).

    Attributes
    ----------
    delta : ndarray, shape (d,) or (n, d)
        The best perturbation found (by loss, over restarts).
    loss, initial_loss : float or ndarray (n,)
        Loss at ``delta`` and at the start of the same restart.
    iterations : int or ndarray (n,)
        Steps taken by that restart.
    converged : bool or ndarray (n,)
        A stopping rule other than ``max_iter`` fired.
    stopping_criterion : str or ndarray (n,) of str
        ``"kkt_tol"`` (a KKT point within ``tol``), ``"max_iter"``, ``"no_escape"``
        (perturbed ascent) or ``"step_underflow"`` (backtracking found no step of
        sufficient ascent).
    grad_mapping_norm : float or ndarray (n,)
        ``||G(delta)||`` at the returned point, with the last step.
    tangent_gradient_norm : float or ndarray (n,)
        KKT residual: ``||grad L - (u.grad L) u||`` on the sphere (``u = delta /
        ||delta||``), ``||grad L||`` inside; for ``"linf"``, the norm of the gradient
        over the free coordinates.
    kkt_residual : float or ndarray (n,)
        ``tangent_gradient_norm / gradient_scale``: the relative KKT residual the run
        stops on and :func:`fopa.certify` tests (``docs/solver.md``, "Stopping").
    gradient_scale : float or ndarray (n,)
        The ball's fast gradient bound (``fopa.ball_constants(..., method="fast")``),
        the unit of ``tol``; :func:`fopa.certify` uses the same.
    multiplier : float or ndarray (n,)
        Lagrange multiplier ``mu = u.grad L / eps`` on the sphere, 0 inside; for
        ``"linf"`` the smallest ``sign(delta_j) g_j`` over coordinates at the bound
        (0 if none). Non-negative at a KKT point.
    step_size : float or ndarray (n,)
        The eta in use at the end (fixed steps: the eta).
    min_step_size : float or ndarray (n,)
        The smallest step accepted (fixed steps: the eta): the step for which
        :func:`fopa.iteration_bound` holds.
    gradient_evaluations : int or ndarray (n,)
        Evaluations of the loss and its gradient by that restart.
    first_stationary_iteration : int or ndarray (n,)
        First t whose iterate passes the KKT test with ``tol``; -1 if never.
    first_gradient_mapping_iteration : int or ndarray (n,)
        First t with ``||G(delta_t)|| <= tol * gradient_scale`` (the step of iteration
        t): the quantity :func:`fopa.iteration_bound` bounds; -1 if never.
    first_certified_iteration : int or ndarray (n,) or None
        First checked iterate certified a strict local maximum (``certify_every``);
        None when not requested.
    n_perturbations : int or ndarray (n,)
    restarts : Restarts
    history : History, tuple of History, or None
    method : str
        ``"plain"``, ``"gram"`` (the row-space iteration) or ``"backtracking"``.
    eps : float
    constraint : str
    tol : float
        The ``tol`` of the run.
    message : str
        How many inputs converged, and how the others stopped.
    """

    delta: np.ndarray
    loss: float | np.ndarray
    initial_loss: float | np.ndarray
    iterations: int | np.ndarray
    converged: bool | np.ndarray
    stopping_criterion: str | np.ndarray
    grad_mapping_norm: float | np.ndarray
    tangent_gradient_norm: float | np.ndarray
    kkt_residual: float | np.ndarray
    gradient_scale: float | np.ndarray
    multiplier: float | np.ndarray
    step_size: float | np.ndarray
    min_step_size: float | np.ndarray
    gradient_evaluations: int | np.ndarray
    first_stationary_iteration: int | np.ndarray
    first_gradient_mapping_iteration: int | np.ndarray
    first_certified_iteration: int | np.ndarray | None
    n_perturbations: int | np.ndarray
    restarts: Restarts
    history: History | tuple | None
    method: str
    eps: float
    constraint: str
    tol: float
    message: str

    @property
    def n_converged(self) -> int:
        """How many inputs stopped by a rule other than ``max_iter``."""
        return int(np.count_nonzero(self.converged))


def _message(names, tol, max_iter):
    """One line: how many of the inputs converged and how the others stopped."""
    names = np.atleast_1d(names)
    n = names.size
    counts = {k: int(np.count_nonzero(names == k)) for k in dict.fromkeys(names.tolist())}
    ok = n - counts.get("max_iter", 0)
    parts = [f"{ok} of {n} input{'s' if n > 1 else ''} converged"]
    if "kkt_tol" in counts:
        parts.append(f"{counts['kkt_tol']} at a KKT point (residual <= {tol:g} x gradient scale)")
    if "max_iter" in counts:
        parts.append(f"{counts['max_iter']} stopped at max_iter = {max_iter}")
    for other in ("no_escape", "step_underflow"):
        if other in counts:
            parts.append(f"{counts[other]} by {other}")
    return "; ".join(parts)


def projected_gradient_ascent(
    net,
    x,
    y,
    eps,
    *,
    step_size="lipschitz",
    max_iter=10_000,
    tol=1e-8,
    init="zero",
    n_restarts=1,
    constraint="ball",
    perturbation=None,
    record_history=False,
    certify_every=0,
    method="auto",
    rng=None,
    loss="quadratic",
    progress=False,
) -> AscentResult:
    """Maximize ``L(x + delta)`` over ``||delta|| <= eps`` by projected gradient ascent.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
        Input point(s); each gets its own independent ascent.
    y : float or array_like, shape (n,)
        Targets (labels in {-1, +1} for the logistic loss).
    eps : float
        Radius of the perturbation set, > 0.
    step_size : float, "lipschitz", "backtracking", "relative" or ("relative", factor)
        A fixed eta; ``"lipschitz"``: ``eta = 1/beta`` with the tight ``beta`` of
        :func:`fopa.ball_constants` for each input (monotone ascent guaranteed);
        ``"backtracking"``: start from ``1/beta``, accept a step only when it gains
        ``||delta+ - delta||^2 / (2 eta)`` (halve otherwise, double after 3 easy
        acceptances; monotone by construction, ``docs/solver.md``);
        ``"relative"``: ``eta = factor * eps`` (factor 0.5 by default, the
        experiments' and sweeps' too), a step tied to the radius.
    max_iter : int
        Maximum number of steps, >= 0. The default suits the default step: on
        initial-phase networks at unit input scale (d 4 to 100, m 50 to 512, eps =
        0.5 ||x||) the runs to ``tol = 1e-8`` took at most 1,600 iterations.
    tol : float
        Stop at a KKT point: when the KKT residual (tangent gradient on the sphere,
        gradient inside) is at most ``tol`` times the ball's gradient scale (its
        ``gradient_bound``) and the radial gradient is at least ``-tol`` times it
        (>= 0; 0 never stops early: a fixed budget of ``max_iter`` steps).
    init : "zero", "sphere", "ball" or array_like (shape of x)
        Starting point: the origin, uniform on the sphere or in the ball of radius eps.
    n_restarts : int
        Independent random starts per input; the best by loss is returned.
    constraint : "ball", "sphere" or "linf"
        The l2 ball (the problem), the sphere ``||delta|| = eps``, or the l-infinity
        ball with the sign-gradient step ``clip(delta + eta sign(grad L))`` of the
        attack literature.
    perturbation : Perturbation, optional
        Noise injection when the gradient mapping is small (perturbed ascent).
    record_history : bool or "iterates"
        Record loss, gradient-mapping norm, KKT residual, step and distance to the
        final point per iteration (``"iterates"`` also keeps the iterates). The
        ascent then runs twice (the second, identical run measures the distances).
    certify_every : int or "auto"
        If k > 0, certify (:func:`fopa.certify`) the iterate every k iterations and
        where the run stops, until it is a strict local maximum, and report the
        first such iteration as ``first_certified_iteration`` (-1 if none). The run
        goes in chunks of k iterations and keeps only the current points. A point
        is certified only where its KKT residual is within twice the certificate's
        tolerance, and a norm test in O(md) settles most strict maxima of small
        balls before any certificate is formed (``docs/certify.md``, "Inside the
        ascent: a norm test first"); the answer is that of :func:`fopa.certify`.
        ``"auto"``: every iteration up to iteration 100, then every ``ceil(t / 100)``
        iterations at iteration t, so the first certified iteration is exact up to
        100 and within 1 % above (:data:`fopa._kernels.pga.AUTO_CERTIFY_EXACT`).
    method : "auto", "plain" or "gram"
        ``"gram"`` iterates in the row space of W (``docs/solver.md``, "The Gram
        iteration"): one rows x m x m product per step. ``"auto"`` picks it when
        ``m < 2d`` for the l2 constraints with a fixed step and without
        perturbation or history. The backtracking step runs its own loop.
    rng : None, int or numpy.random.Generator
        Seeds the random starts and the perturbation noise.
    loss : "quadratic" or "logistic"
    progress : bool or str
        Show a bar (tqdm, on stderr; a string: its label) of the iterations done and
        the runs still running, between the pieces of a long run; results unchanged.

    Returns
    -------
    AscentResult
    """
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    max_iter = as_int("max_iter", max_iter, minimum=0)
    tol = as_nonnegative_scalar("tol", tol)
    constraint = choice("constraint", constraint, CONSTRAINTS)
    R = as_int("n_restarts", n_restarts, minimum=1)
    method = choice("method", method, METHODS)
    if perturbation is not None and not isinstance(perturbation, Perturbation):
        raise TypeError(f"perturbation must be a fopa.Perturbation or None; got {perturbation!r}")
    if record_history not in (False, True, "iterates"):
        raise ValueError(
            f"record_history must be False, True or 'iterates'; got {record_history!r}"
        )
    if isinstance(certify_every, str):
        if certify_every != "auto":
            raise ValueError(
                f"certify_every must be an integer >= 0 or 'auto'; got {certify_every!r}"
            )
    else:
        certify_every = as_int("certify_every", certify_every, minimum=0)
    n, d = X.shape
    if perturbation is not None or (isinstance(init, str) and init != "zero"):
        seeds = as_rng(rng).integers(0, 2**64 - 1, size=n * R, dtype=np.uint64, endpoint=True)
    else:  # a deterministic run draws nothing
        check_rng(rng)
        seeds = np.zeros(n * R, dtype=np.uint64)
    D0 = starts(init, seeds.reshape(n, R), n, R, d, eps, constraint, single)
    policy, eta, scale, known = steps_and_scales(step_size, net, X, Y, eps, code, constraint)

    if certify_every and constraint != "ball":
        raise ValueError("certify_every needs constraint='ball' (the certificate is for the ball)")
    if certify_every and perturbation is not None:
        raise ValueError("certify_every does not run with a perturbation (its state spans chunks)")
    if policy == "backtracking":
        if constraint == "linf" or perturbation is not None:
            raise ValueError("step_size='backtracking' needs an l2 constraint and no perturbation")
        if method == "gram":
            raise ValueError("step_size='backtracking' runs its own loop; use method='auto'")
        method = "backtracking"
    gram_ok = constraint != "linf" and perturbation is None and not record_history
    lengths = np.concatenate([eta * scale, scale])  # steps and gradients: squared in gram
    method = choose_method(method, gram_ok and not certify_every, net.m, d, eps, lengths,
                           gram_weights_in_range(net))  # fmt: skip

    if R == 1:
        Xr, Yr, etar, scaler = X, Y, eta, scale
    else:
        Xr = np.ascontiguousarray(np.repeat(X, R, axis=0))
        Yr, etar, scaler = np.repeat(Y, R), np.repeat(eta, R), np.repeat(scale, R)
        known = None if known is None else np.repeat(known, R, axis=1)
    cons = CONSTRAINTS.index(constraint)
    pert = perturbation.as_array() if perturbation else NO_PERTURBATION
    streak = np.zeros(Xr.shape[0], np.int64)  # and 1/beta: what backtracking may take untested
    rows, scalars = (Xr, Yr, etar, D0, scaler, streak, etar.copy()), (eps, max_iter, tol, cons)
    first_certified = hist = iterates = None
    bar = iteration_bar(progress, max_iter, Xr.shape[0], "ascent")
    with deferred_sigint() as pending, bar:  # Ctrl-C: noticed between pieces, raised on exit
        if perturbation is None and not record_history:
            every = certify_every or piece_length(Xr.shape[0], d, net.m)
            out, first_certified = runs_in_pieces(
                net, loss, code, method, rows, scalars, seeds, every, bool(certify_every),
                pending, known, bar.tick,
            )  # fmt: skip
        else:  # one piece: the perturbation's state and the history span the whole run
            out = run_kernel(method, net, code, rows, scalars, pert, seeds, 0, NO_TARGET, 0)
        if record_history and not pending():
            store = 1 if record_history == "iterates" else 0
            again = run_kernel(method, net, code, rows, scalars, pert, seeds, 1, out[0], store)
            if not np.array_equal(again[0], out[0]):  # the two runs must be the same run
                raise RuntimeError("history run diverged from the first run; please report this")
            hist, iterates = again[4], again[5] if store else None
    D, grads, fstats, istats, _, _, evals, min_step, last_step, _ = out
    if R == 1:
        rows = np.arange(n)  # every row is its input's only run
    else:
        rows = np.arange(n) * R + np.argmax(fstats[:, K.F_LOSS].reshape(n, R), axis=1)
    iters = istats[:, K.I_ITERS]
    histories = None
    if record_history:
        histories = tuple(
            History(
                loss=hist[0, i, : iters[i] + 1].copy(),
                grad_mapping_norm=hist[1, i, : iters[i] + 1].copy(),
                distance_to_final=hist[2, i, : iters[i] + 1].copy(),
                kkt_residual=hist[3, i, : iters[i] + 1].copy(),
                step_size=hist[4, i, : iters[i] + 1].copy(),
                iterates=None if iterates is None else iterates[i, : iters[i] + 1].copy(),
            )
            for i in rows
        )
        histories = histories[0] if single else histories
    if first_certified is not None:
        first_certified = first_certified[rows]

    # every row's outputs as contiguous columns; the chosen row of each input from them
    fcols, icols = fstats.T.copy(), istats.T.copy()
    names = _STOP_NAMES[icols[K.I_STATUS]]
    shape = (R,) if single else (n, R)
    restarts = Restarts(
        seed=seeds.reshape(shape),
        start=D0.reshape(*shape, d).copy(),
        end=D.reshape(*shape, d),
        loss=fcols[K.F_LOSS].reshape(shape),
        iterations=icols[K.I_ITERS].reshape(shape),
        stopping_criterion=names.reshape(shape),
    )
    chosen = dict(
        scale=scaler[rows], evals=evals[rows], min_step=min_step[rows], step=last_step[rows]
    )
    values, initial, gmap, tangent, mult = fcols[:, rows]
    n_iter, status, first_stat, n_pert, first_gmap = icols[:, rows]
    names, delta = names[rows], D[rows]
    residual = tangent / chosen["scale"]
    fields = dict(
        loss=values, initial_loss=initial, iterations=n_iter, converged=status != K.MAX_ITER,
        stopping_criterion=names, grad_mapping_norm=gmap, tangent_gradient_norm=tangent,
        kkt_residual=residual, gradient_scale=chosen["scale"], multiplier=mult,
        step_size=chosen["step"], min_step_size=chosen["min_step"],
        gradient_evaluations=chosen["evals"], first_stationary_iteration=first_stat,
        first_gradient_mapping_iteration=first_gmap, first_certified_iteration=first_certified,
        n_perturbations=n_pert,
    )  # fmt: skip
    if single:  # Python scalars
        fields = {k: (None if v is None else v[0].item()) for k, v in fields.items()}
        delta = delta[0]
    return AscentResult(
        delta=delta, restarts=restarts, history=histories, method=method, eps=eps,
        constraint=constraint, tol=tol, message=_message(names, tol, max_iter), **fields,
    )  # fmt: skip
