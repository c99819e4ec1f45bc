"""Projected gradient ascent (PGA): the first-order adversary.

``maximize L(x + delta)  subject to  ||delta||_2 <= eps`` by

    delta_{t+1} = Proj(delta_t + eta * grad L(x + delta_t)),
    Proj(v) = v * eps / max(||v||, eps),

stopped when the gradient mapping ``G(delta) = (Proj(delta + eta grad L) - delta) / eta``
has norm at most ``tol`` (``G = 0`` exactly at KKT points) or after ``max_iter``
steps. The loop is compiled (:mod:`fopa._kernels.pga`); this module validates
input, draws starts, picks the iteration and assembles an :class:`AscentResult`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._inputs import problem_arrays
from ._kernels import pga as K
from ._kernels.ball import CONSTRAINTS
from ._kernels.tolerances import ON_SPHERE_START, START_FEASIBLE, TINY
from ._parallel import row_blocks, run_blocks
from ._validate import (
    as_float_array,
    as_int,
    as_positive_scalar,
    as_real_scalar,
    as_rng,
    check_rng,
)
from .bounds import ball_constant_arrays
from .certify import certify

__all__ = ["AscentResult", "History", "Perturbation", "Restarts", "projected_gradient_ascent"]

INITS = ("zero", "sphere", "ball")
METHODS = ("auto", "plain", "gram")
STOPPING = {K.MAX_ITER: "max_iter", K.TOL: "grad_mapping_tol", K.NO_ESCAPE: "no_escape"}
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
        gain = as_real_scalar("perturbation.min_gain", self.min_gain)
        if gain < 0:
            raise ValueError(f"perturbation.min_gain must be >= 0; got {gain}")
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
        ``||G(delta_t)||``.
    distance_to_final : ndarray, shape (T + 1,)
        ``||delta_t - delta_T||``.
    iterates : ndarray, shape (T + 1, d), or None
        The iterates, when asked for with ``record_history="iterates"``.
    """

    loss: np.ndarray
    grad_mapping_norm: np.ndarray
    distance_to_final: np.ndarray
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
        ``"grad_mapping_tol"``, ``"max_iter"`` or ``"no_escape"``.
    grad_mapping_norm : float or ndarray (n,)
        ``||G(delta)||`` at the returned point.
    tangent_gradient_norm : float or ndarray (n,)
        KKT residual: ``||grad L - (u.grad L) u||`` on the sphere (``u = delta/eps``),
        ``||grad L||`` inside; for ``"linf"``, the norm of the gradient over the free
        coordinates.
    multiplier : float or ndarray (n,)
        Lagrange multiplier ``mu = u.grad L / eps`` on the sphere, 0 inside; for
        ``"linf"`` the smallest ``sign(delta_j) g_j`` over coordinates at the bound
        (0 if none). Non-negative at a KKT point.
    step_size : float or ndarray (n,)
        The eta actually used.
    first_stationary_iteration : int or ndarray (n,)
        First t with ``||G(delta_t)|| <= tol``; -1 if never.
    first_certified_iteration : int or ndarray (n,) or None
        First checked iterate certified a strict local maximum (``certify_every``);
        None when not requested.
    n_perturbations : int or ndarray (n,)
    restarts : Restarts
    history : History, tuple of History, or None
    method : str
        ``"plain"`` or ``"gram"`` (the row-space iteration).
    eps : float
    constraint : str
    """

    delta: np.ndarray
    loss: float | np.ndarray
    initial_loss: float | np.ndarray
    iterations: int | np.ndarray
    converged: bool | np.ndarray
    stopping_criterion: str | np.ndarray
    grad_mapping_norm: float | np.ndarray
    tangent_gradient_norm: float | np.ndarray
    multiplier: float | np.ndarray
    step_size: float | np.ndarray
    first_stationary_iteration: int | np.ndarray
    first_certified_iteration: int | np.ndarray | None
    n_perturbations: int | np.ndarray
    restarts: Restarts
    history: History | tuple | None
    method: str
    eps: float
    constraint: str


def _choice(name, value, options):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {options}; got {value!r}")
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(options)}")
    return value


def _step_sizes(step_size, net, X, Y, eps, code, constraint):
    """The step size eta for every input, shape (n,)."""
    if type(step_size) is float:  # the common case, checked cheaply
        return np.full(X.shape[0], as_positive_scalar("step_size", step_size))
    if isinstance(step_size, tuple) and len(step_size) == 2 and step_size[0] == "relative":
        factor = as_positive_scalar("step_size factor", step_size[1])
        return np.full(X.shape[0], factor * eps)
    if isinstance(step_size, str):
        _choice("step_size", step_size, ("lipschitz", "relative"))
        if step_size == "relative":
            return np.full(X.shape[0], 0.1 * eps)
        # 1/beta with beta bounded over the l2 ball containing the feasible set
        radius = eps * np.sqrt(X.shape[1]) if constraint == "linf" else eps
        beta = ball_constant_arrays(net, X, Y, radius, code)["beta"]
        return 1.0 / np.maximum(beta, TINY)
    if isinstance(step_size, numbers.Real) and not isinstance(step_size, bool):
        return np.full(X.shape[0], as_positive_scalar("step_size", step_size))
    raise TypeError(
        "step_size must be a float > 0, 'lipschitz', 'relative' or ('relative', factor); "
        f"got {step_size!r}"
    )


def _starts(init, seeds, n, R, d, eps, constraint, single):
    """Starting points, shape (n * R, d), C-contiguous (input i's restarts in rows i*R...)."""
    if isinstance(init, str):
        _choice("init", init, INITS)
        if init == "zero":
            if R > 1:
                raise ValueError("n_restarts > 1 needs a random init ('sphere' or 'ball')")
            if constraint == "sphere":
                raise ValueError("init='zero' is not on the sphere; use init='sphere'")
            return np.zeros((n * R, d))
        out = np.empty((n, R, d))
        for i in range(n):
            for k in range(R):
                gen = np.random.default_rng(int(seeds[i, k]))
                if constraint == "linf":
                    u = gen.uniform(-1.0, 1.0, d)
                    if init == "sphere":  # a face of the cube: one coordinate at the bound
                        j = gen.integers(d)
                        u[j] = np.sign(u[j]) or 1.0
                    out[i, k] = eps * u
                    continue
                u = gen.standard_normal(d)
                u /= max(np.linalg.norm(u), TINY)
                radius = eps if init == "sphere" else eps * gen.uniform() ** (1.0 / d)
                out[i, k] = radius * u
        return out.reshape(n * R, d)
    start = as_float_array("init", init, ndim=(1, 2))
    if R > 1:
        raise ValueError("an array init gives one start per input; use n_restarts=1")
    want = (d,) if single else (n, d)
    if start.shape != want:
        raise ValueError(f"init must have shape {want} like x; got {start.shape}")
    start = start.reshape(n, d)
    if constraint == "linf":
        bad = np.max(np.abs(start)) > eps * (1 + START_FEASIBLE)
    else:
        norms = np.linalg.norm(start, axis=1)
        bad = np.any(norms > eps * (1 + START_FEASIBLE))
        if constraint == "sphere" and np.any(np.abs(norms - eps) > ON_SPHERE_START * eps):
            raise ValueError("init must lie on the sphere ||delta|| = eps for constraint='sphere'")
    if bad:
        raise ValueError("init must lie in the feasible set (norm at most eps)")
    return start


def _first_certified(net, X, Y, eps, loss, iterates, iters, rows, every):
    """First checked iteration (a multiple of ``every``, or the last) certified a strict max."""
    out = np.full(len(rows), -1, np.int64)
    for k, i in enumerate(rows):
        checks = list(range(every, int(iters[i]) + 1, every))
        if not checks or checks[-1] != iters[i]:
            checks.append(int(iters[i]))
        for t in checks:
            cert = certify(net, X[k], Y[k], iterates[i, t], eps, loss=loss)
            if cert.kind == "strict_local_max":
                out[k] = t
                break
    return out


# axis along which each kernel output is stacked over row blocks (None: not per row)
_STACK_AXES = (0, 0, 0, 0, 1, 0)
_STACK_AXES_GRAM = (0, 0, 0, 0, None, None)


def _run_kernel(method, net, loss, rows, scalars, pert, seeds, record, target, store):
    """Run the compiled ascent on the rows ``X, Y, eta, D0`` (``rows``), block by block.

    ``loss`` is the loss code, ``scalars`` are (eps, max_iter, tol, constraint).
    Returns the kernel's outputs for the whole batch, ``D, grads, fstats, istats,
    hist, iterates`` (see :func:`fopa._kernels.pga.pga_plain`); the Gram
    kernel's history slots are None.
    """
    X, Y, eta, D0 = rows
    eps, max_iter, tol, cons = scalars
    view = net.kernel_view
    if method == "gram":
        gram = net.gram

        def run(X, Y, eta, D0, seeds, target):
            common = (loss, X, Y, eps, eta, D0, max_iter, tol, cons)
            return (*K.pga_gram(view, gram, *common), None, None)

    else:

        def run(X, Y, eta, D0, seeds, target):
            common = (loss, X, Y, eps, eta, D0, max_iter, tol, cons)
            return K.pga_plain(view, *common, pert, seeds, record, target, store)

    blocks = row_blocks(X.shape[0], X.shape[1], net.m)
    if len(blocks) == 1:
        return run(X, Y, eta, D0, seeds, target)

    def run_block(a, b):
        return run(X[a:b], Y[a:b], eta[a:b], D0[a:b], seeds[a:b], target[a:b] if record else target)

    return run_blocks(run_block, blocks, _STACK_AXES_GRAM if method == "gram" else _STACK_AXES)


def projected_gradient_ascent(
    net,
    x,
    y,
    eps,
    *,
    step_size="lipschitz",
    max_iter=1000,
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
    step_size : float, "lipschitz", "relative" or ("relative", factor)
        A fixed eta; ``"lipschitz"``: ``eta = 1/beta`` from :func:`fopa.ball_constants`
        for each input (monotone ascent guaranteed); ``"relative"``: ``eta = factor *
        eps`` (factor 0.1 by default), as attack libraries scale their steps.
    max_iter : int
        Maximum number of steps, >= 0.
    tol : float
        Stop when the gradient-mapping norm is at most ``tol`` (>= 0; 0 never stops early).
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
        Record loss, gradient-mapping norm and distance to the final point per
        iteration (``"iterates"`` also keeps the iterates). The ascent then runs
        twice (the second, identical run measures the distances).
    certify_every : int
        If k > 0, certify (:func:`fopa.certify`) every k-th iterate of the returned
        run, and the last one, and report the first certified a strict local
        maximum as ``first_certified_iteration`` (-1 if none). Runs the plain
        iteration twice (as for a history).
    method : "auto", "plain" or "gram"
        ``"gram"`` iterates in the row space of W (``docs/solver.md``, "The Gram iteration"): one
        rows x m x m product per step. ``"auto"`` picks it when ``m < 2d`` for the
        l2 constraints without perturbation or history.
    rng : None, int or numpy.random.Generator
        Seeds the random starts and the perturbation noise.
    loss : "quadratic" or "logistic"

    Returns
    -------
    AscentResult
    """
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    max_iter = as_int("max_iter", max_iter, minimum=0)
    tol = as_real_scalar("tol", tol)
    if tol < 0:
        raise ValueError(f"tol must be >= 0; got {tol}")
    constraint = _choice("constraint", constraint, CONSTRAINTS)
    R = as_int("n_restarts", n_restarts, minimum=1)
    method = _choice("method", method, METHODS)
    if perturbation is not None and not isinstance(perturbation, Perturbation):
        raise TypeError(f"perturbation must be a fopa.Perturbation or None; got {perturbation!r}")
    if record_history not in (False, True, "iterates"):
        raise ValueError(
            f"record_history must be False, True or 'iterates'; got {record_history!r}"
        )
    certify_every = as_int("certify_every", certify_every, minimum=0)
    n, d = X.shape
    if perturbation is not None or (isinstance(init, str) and init != "zero"):
        seeds = as_rng(rng).integers(0, 2**64 - 1, size=n * R, dtype=np.uint64, endpoint=True)
    else:  # a deterministic run draws nothing
        check_rng(rng)
        seeds = np.zeros(n * R, dtype=np.uint64)
    D0 = _starts(init, seeds.reshape(n, R), n, R, d, eps, constraint, single)
    eta = _step_sizes(step_size, net, X, Y, eps, code, constraint)

    if certify_every and constraint != "ball":
        raise ValueError("certify_every needs constraint='ball' (the certificate is for the ball)")
    wants_iterates = record_history == "iterates" or certify_every > 0
    gram_ok = constraint != "linf" and perturbation is None and not record_history
    gram_ok = gram_ok and not certify_every
    if method == "gram" and not gram_ok:
        raise ValueError("method='gram' needs an l2 constraint, no perturbation and no history")
    if method == "auto":
        method = "gram" if gram_ok and net.m < 2 * d else "plain"

    if R == 1:
        Xr, Yr, etar = X, Y, eta
    else:
        Xr = np.ascontiguousarray(np.repeat(X, R, axis=0))
        Yr, etar = np.repeat(Y, R), np.repeat(eta, R)
    cons = CONSTRAINTS.index(constraint)
    pert = perturbation.as_array() if perturbation else _NO_PERTURBATION
    rows, scalars = (Xr, Yr, etar, D0), (eps, max_iter, tol, cons)
    out = _run_kernel(method, net, code, rows, scalars, pert, seeds, 0, _NO_TARGET, 0)
    hist = iterates = None
    if record_history or certify_every:
        store = 1 if wants_iterates else 0
        again = _run_kernel(method, net, code, rows, scalars, pert, seeds, 1, out[0], store)
        if not np.array_equal(again[0], out[0]):  # the two runs must be the same run
            raise RuntimeError("history run diverged from the first run; please report this")
        out, hist = again, again[4]
        iterates = again[5] if store else None
    D, grads, fstats, istats = out[:4]
    if R == 1:
        rows = np.arange(n)  # every row is its input's only run
    else:
        rows = np.arange(n) * R + np.argmax(fstats[:, K.F_LOSS].reshape(n, R), axis=1)
    iters = istats[:, K.I_ITERS]

    first_certified = None
    if certify_every:
        first_certified = _first_certified(
            net, X, Y, eps, loss, iterates, iters, rows, certify_every
        )
    if record_history != "iterates":
        iterates = None
    histories = None
    if record_history:
        histories = tuple(
            History(
                loss=hist[0, i, : iters[i] + 1].copy(),
                grad_mapping_norm=hist[1, i, : iters[i] + 1].copy(),
                distance_to_final=hist[2, i, : iters[i] + 1].copy(),
                iterates=None if iterates is None else iterates[i, : iters[i] + 1].copy(),
            )
            for i in rows
        )
        histories = histories[0] if single else histories

    # every row's outputs as contiguous columns; the chosen row of each input from them
    fcols, icols = fstats.T.copy(), istats.T.copy()
    names = _STOP_NAMES[icols[K.I_STATUS]]
    shape = (R,) if single else (n, R)
    restarts = Restarts(
        seed=seeds.reshape(shape),
        start=D0.reshape(*shape, d),
        end=D.reshape(*shape, d),
        loss=fcols[K.F_LOSS].reshape(shape),
        iterations=icols[K.I_ITERS].reshape(shape),
        stopping_criterion=names.reshape(shape),
    )
    if single:  # Python scalars
        row = int(rows[0])
        values, initial, gmap, tangent, mult = fstats[row].tolist()
        n_iter, status, first_stat, n_pert = istats[row].tolist()
        name, delta, step = STOPPING[status], D[row], float(eta[0])
        first_cert = None if first_certified is None else int(first_certified[0])
    else:
        if R > 1:
            fcols, icols, names, D = fcols[:, rows], icols[:, rows], names[rows], D[rows]
        values, initial, gmap, tangent, mult = fcols
        n_iter, status, first_stat, n_pert = icols
        name, delta, step, first_cert = names, D, eta, first_certified
    return AscentResult(
        delta=delta,
        loss=values,
        initial_loss=initial,
        iterations=n_iter,
        converged=status != K.MAX_ITER,
        stopping_criterion=name,
        grad_mapping_norm=gmap,
        tangent_gradient_norm=tangent,
        multiplier=mult,
        step_size=step,
        first_stationary_iteration=first_stat,
        first_certified_iteration=first_cert,
        n_perturbations=n_pert,
        restarts=restarts,
        history=histories,
        method=method,
        eps=eps,
        constraint=constraint,
    )
