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
from ._interrupts import PIECE_WORK, deferred_sigint
from ._kernels import backtracking as BT
from ._kernels import pga as K
from ._kernels.ball import CONSTRAINTS
from ._parallel import row_blocks
from ._pga_runs import INITS as INITS  # re-exported: the words the CLI offers
from ._pga_runs import STEP_POLICIES as STEP_POLICIES
from ._pga_runs import (
    LiveRows,
    RunArrays,
    choice,
    choose_method,
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
from .bounds import certificate_bounds
from .certify import DEFAULT_TOL as CERTIFY_TOL
from .certify import certify_arrays, pick_method

__all__ = ["AscentResult", "History", "Perturbation", "Restarts", "projected_gradient_ascent"]

METHODS = ("auto", "plain", "gram")
STOPPING = {
    K.MAX_ITER: "max_iter", K.TOL: "kkt_tol", K.NO_ESCAPE: "no_escape",
    BT.STEP_UNDERFLOW: "step_underflow",
}  # fmt: skip
_STOP_NAMES = np.array([STOPPING[k] for k in range(len(STOPPING))])
_NO_PERTURBATION = np.zeros(5)  # radius 0: off (the kernels only read it)
_NO_TARGET = np.zeros((0, 0))  # no history: the kernels do not read it


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


#: Iterations of one piece of a long run, at least (a piece is also at least
#: ``PIECE_WORK`` multiply-adds): between pieces a pending Ctrl-C is noticed
#: (``docs/solver.md``, "Interrupts").
PIECE_ITERS = 100


def _piece_length(rows, d, m):
    """Iterations per piece of a run; depends only on the shapes (bits do not depend on
    timing)."""
    return max(PIECE_ITERS, int(PIECE_WORK / max(2.0 * rows * d * m, 1.0)))


#: ``certify_every="auto"`` certifies every iteration up to this one, then every
#: ``ceil(t / AUTO_CERTIFY_EXACT)`` iterations at iteration t (a 1 % resolution).
AUTO_CERTIFY_EXACT = K.AUTO_CERTIFY_EXACT

#: A row is certified at a checkpoint when its KKT residual is at most this factor
#: times the certificate's tolerance (times its gradient scale): well above it, the
#: point is not critical for the certificate and none is computed.
HOPEFUL = 2.0
#: The kernel's test for "hopeful" is this much wider (relative), so that it ends a
#: piece wherever the test here could pass whatever the last bit of the residual.
_HOPEFUL_WIDER = 1.0 + 1e-6


def _chunked_runs(net, loss, code, method, rows, scalars, seeds, every, certify, pending, known,
                  tick=None):  # fmt: skip
    """The ascent in pieces that end at checkpoints (every ``every`` iterations, or
    the "auto" schedule of :func:`fopa._kernels.pga.next_checkpoint`), each
    continuing where the previous one ended with the step in use (and, for
    backtracking, its count of easy acceptances), so the iterates are those of one
    run (the row-space iteration starts its coordinates afresh at each piece: the
    same iterates up to rounding).

    With ``certify``, each row's point is certified at every checkpoint (and where
    it stops) until it is a strict local maximum; only the current points are kept
    (memory O(rows x d)). A point is certified only where it is "hopeful" (KKT
    residual at most ``HOPEFUL`` times the certificate's tolerance); the kernels run
    on over checkpoints with no hopeful row (:func:`fopa._kernels.pga.pga_plain`),
    with the same iterates as pieces that end at every checkpoint.
    Between pieces ``pending()`` is asked whether Ctrl-C arrived; if so the run ends
    early (its caller then raises KeyboardInterrupt). ``loss`` is the loss's name,
    ``code`` its code. Returns the kernel outputs of the whole run and the first
    certified iteration per row (-1: none). ``known``: each row's certificate bounds (3,
    rows) when the step's tight bounds gave them, else None (then computed for a row
    when it is first certified). ``tick(done, running)`` is told after every piece the
    iterations done and the rows still running.
    """
    X, Y, eta, D0, scale, streak, safe = rows
    eps, max_iter, tol, cons = scalars
    N, d = D0.shape
    first = np.full(N, -1, np.int64)
    cert_method = pick_method("auto", net, d)
    # rho and the tolerance scales per row: from the step's tight bounds, or when needed
    cert_bounds = np.full((3, N), np.nan) if known is None else known.copy()
    # The state of the rows still running, packed (own copies, C-contiguous, as the
    # kernel gets them), in :class:`LiveRows`; a row that stops is written into
    # the whole-run arrays once. Per piece only the packed arrays are touched.
    live = LiveRows(X, Y, eta, D0, scale, streak, safe, seeds)
    whole = None  # the whole-run arrays, made from the first piece's outputs
    initial = None
    left_max = 0  # the most iterations of a row that stopped
    every_code = K.AUTO_SCHEDULE if every == "auto" else int(every)
    while live.size and not pending():
        done = int(live.total.max())  # every running row has done as many
        if method != "gram":
            # one call runs from checkpoint to checkpoint until a row is to be
            # certified (the same iterates as a call per checkpoint, fewer calls);
            # in row blocks it ends at every checkpoint (blocks change as rows stop)
            one_block = certify and len(row_blocks(live.size, d, net.m)) == 1
            at_least = _piece_length(live.size, d, net.m) if one_block else 1
            watch = np.full(live.size, -1.0)
            if certify:
                unsure = first[live.index] < 0
                watch[unsure] = HOPEFUL * _HOPEFUL_WIDER * CERTIFY_TOL * live.scale[unsure]
            budget, schedule = max_iter - done, (done, every_code, at_least, watch)
        else:
            budget = int(min(K.next_checkpoint(done, every_code), max_iter) - done)
            schedule = None
        res = run_kernel(method, net, code, live.inputs(), (eps, budget, tol, cons),
                         _NO_PERTURBATION, live.seeds, 0, _NO_TARGET, 0, schedule)  # fmt: skip
        Dp, Gp, fs, ist, _, _, ev, mn, last, st = res
        if whole is None:
            whole = RunArrays(N, d, Gp, fs, ist)
            initial = fs[:, K.F_INITIAL].copy()
        live.record(Dp, Gp, fs, ist, ev, mn, last, st)
        if certify:
            # a point whose KKT residual is well above the certificate's tolerance is
            # not critical for it: no certificate is computed there. The others are
            # certified as one batch; each row's bounds (its center's) once per run
            hopeful = fs[:, K.F_TANGENT] <= HOPEFUL * CERTIFY_TOL * live.scale
            ks = np.flatnonzero(hopeful & (first[live.index] < 0))
            if ks.size:
                rows_now = live.index[ks]
                if cert_method == "factor":
                    fresh = rows_now[np.isnan(cert_bounds[0, rows_now])]
                    if fresh.size:
                        cert_bounds[:, fresh] = certificate_bounds(net, X[fresh], Y[fresh], eps,
                                                                   code, pending)  # fmt: skip
                    bounds = cert_bounds[:, rows_now]
                else:
                    bounds = None
                certs = certify_arrays(net, X[rows_now], Y[rows_now], Dp[ks], eps, CERTIFY_TOL,
                                       code, cert_method, bounds, pending)  # fmt: skip
                for k, cert in zip(ks, certs, strict=False):  # fewer after an interrupt
                    if cert[0] == "strict_local_max":
                        first[live.index[k]] = live.total[k]
        keep = (ist[:, K.I_STATUS] == K.MAX_ITER) & (live.total < max_iter)
        if not keep.all():
            left_max = max(left_max, int(live.total[~keep].max()))
            live.retire(~keep, whole)
        if tick is not None:
            tick(max(left_max, int(live.total.max()) if live.size else 0), live.size)
    if whole is None:  # interrupted before the first piece
        return None, first
    live.retire(np.ones(live.size, bool), whole)  # the rows an interrupt stopped
    whole.fstats[:, K.F_INITIAL] = initial
    whole.istats[:, K.I_ITERS] = whole.total
    for column, seen in whole.firsts.items():
        whole.istats[:, column] = seen
    return (whole.D, whole.grads, whole.fstats, whole.istats, None, None, whole.evals,
            whole.min_step, whole.step, whole.streak), first  # fmt: skip


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
        goes in chunks of k iterations and keeps only the current points.
        ``"auto"``: every iteration up to iteration 100, then every ``ceil(t / 100)``
        iterations at iteration t, so the first certified iteration is exact up to
        100 and within 1 % above (:data:`AUTO_CERTIFY_EXACT`).
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
    method = choose_method(method, gram_ok and not certify_every, net.m, d, eps, eta * scale)

    if R == 1:
        Xr, Yr, etar, scaler = X, Y, eta, scale
    else:
        Xr = np.ascontiguousarray(np.repeat(X, R, axis=0))
        Yr, etar, scaler = np.repeat(Y, R), np.repeat(eta, R), np.repeat(scale, R)
        known = None if known is None else np.repeat(known, R, axis=1)
    cons = CONSTRAINTS.index(constraint)
    pert = perturbation.as_array() if perturbation else _NO_PERTURBATION
    streak = np.zeros(Xr.shape[0], np.int64)  # and 1/beta: what backtracking may take untested
    rows, scalars = (Xr, Yr, etar, D0, scaler, streak, etar.copy()), (eps, max_iter, tol, cons)
    first_certified = hist = iterates = None
    bar = iteration_bar(progress, max_iter, Xr.shape[0], "ascent")
    with deferred_sigint() as pending, bar:  # Ctrl-C: noticed between pieces, raised on exit
        if perturbation is None and not record_history:
            every = certify_every or _piece_length(Xr.shape[0], d, net.m)
            out, first_certified = _chunked_runs(
                net, loss, code, method, rows, scalars, seeds, every, bool(certify_every),
                pending, known, bar.tick,
            )  # fmt: skip
        else:  # one piece: the perturbation's state and the history span the whole run
            out = run_kernel(method, net, code, rows, scalars, pert, seeds, 0, _NO_TARGET, 0)
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
