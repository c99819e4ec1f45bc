"""The parts of :func:`fopa.projected_gradient_ascent` below the public function:
starting points, step sizes with the ball's gradient scale, and the compiled
ascent run in row blocks (:mod:`fopa._parallel`)."""

from __future__ import annotations

import numbers

import numpy as np

from ._kernels import backtracking as BT
from ._kernels import pga as K
from ._kernels.linalg import row_norms
from ._kernels.pga_gram import pga_gram
from ._kernels.tolerances import ON_SPHERE_START, START_FEASIBLE, TINY
from ._parallel import row_blocks, run_blocks
from ._validate import as_float_array, as_positive_scalar
from .bounds import ball_constant_arrays, tolerance_scales

INITS = ("zero", "sphere", "ball")
STEP_POLICIES = ("lipschitz", "backtracking", "relative")
#: The factor of ``step_size="relative"`` (``eta = RELATIVE_FACTOR * eps``): one default
#: for the API, the command line, the experiments and the sweep cells (it was 0.1 in the
#: API and 0.5 elsewhere until 0.5 became the only one).
RELATIVE_FACTOR = 0.5


def choice(name, value, options):
    """``value`` if it is one of ``options``, else a clear error naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {options}; got {value!r}")
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(options)}")
    return value


def steps_and_scales(step_size, net, X, Y, eps, code, constraint):
    """``(policy, eta, scale, certificate)``: the first three per input, shapes (n,).

    ``policy`` is ``"fixed"``, ``"lipschitz"``, ``"backtracking"`` or ``"relative"``;
    ``eta`` is the step (the first trial step for backtracking, ``1/beta`` with the
    tight ``beta``); ``scale`` is the gradient scale of
    :func:`fopa.bounds.tolerance_scales`, the unit of the KKT
    residual that stops a run. Both bounds are over the l2 ball that contains the
    feasible set (radius ``eps sqrt(d)`` for the cube). ``certificate`` is what the
    certificate's factorization route needs per input, shape (3, n) (the tight
    ``rho`` and the two tolerance scales, :func:`fopa.bounds.certificate_bounds`)
    over the l2 ball (None for the cube); ``rho`` is NaN unless the tight bounds were
    computed for the step.
    """
    radius = eps * np.sqrt(X.shape[1]) if constraint == "linf" else eps
    scale, curvature = tolerance_scales(net, X, Y, radius, code)
    n = X.shape[0]
    ball = constraint != "linf"
    certificate = np.stack([np.full(n, np.nan), scale, curvature]) if ball else None
    if isinstance(step_size, bool):
        pass
    elif isinstance(step_size, numbers.Real):
        eta = as_positive_scalar("step_size", step_size)
        return "fixed", np.full(n, eta), scale, certificate
    elif isinstance(step_size, tuple) and len(step_size) == 2 and step_size[0] == "relative":
        factor = as_positive_scalar("step_size factor", step_size[1])
        return "relative", np.full(n, factor * eps), scale, certificate
    elif isinstance(step_size, str):
        policy = choice("step_size", step_size, STEP_POLICIES)
        if policy == "relative":
            return policy, np.full(n, RELATIVE_FACTOR * eps), scale, certificate
        tight = ball_constant_arrays(net, X, Y, radius, code)
        if ball:
            certificate[0] = tight["rho"]
        return policy, 1.0 / np.maximum(tight["beta"], TINY), scale, certificate
    raise TypeError(
        "step_size must be a float > 0, 'lipschitz', 'backtracking', 'relative' or "
        f"('relative', factor); got {step_size!r}"
    )


def starts(init, seeds, n, R, d, eps, constraint, single):
    """Starting points, shape (n * R, d), C-contiguous (input i's restarts in rows i*R...).

    A user's array is copied: results never alias the caller's arrays.
    """
    if isinstance(init, str):
        choice("init", init, INITS)
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
    start = np.array(start.reshape(n, d), order="C", copy=True)
    if constraint == "linf":
        bad = np.max(np.abs(start)) > eps * (1 + START_FEASIBLE)
    else:
        norms = row_norms(start)
        bad = np.any(norms > eps * (1 + START_FEASIBLE))
        if constraint == "sphere" and np.any(np.abs(norms - eps) > ON_SPHERE_START * eps):
            raise ValueError("init must lie on the sphere ||delta|| = eps for constraint='sphere'")
    if bad:
        raise ValueError("init must lie in the feasible set (norm at most eps)")
    return start


# axis along which each kernel output is stacked over row blocks (None: not per row)
_STACK = (0, 0, 0, 0, 1, 0, 0, 0, 0, 0)
_STACK_GRAM = (0, 0, 0, 0, None, None, 0, 0, 0, 0)


def run_kernel(method, net, loss, rows, scalars, pert, seeds, record, target, store,
               schedule=None):  # fmt: skip
    """Run the compiled ascent on ``rows = (X, Y, eta, D0, scale, streak, safe)``, block by block.

    ``method`` is ``"plain"``, ``"gram"`` or ``"backtracking"``; ``loss`` the loss
    code; ``scalars`` are (eps, max_iter, tol, constraint code); ``streak`` the
    backtracking step's count of easy acceptances (zeros for a new run) and ``safe``
    its rows' ``1/beta`` (steps it accepts without a test where the loss test is
    blind). ``schedule``: the checkpoints ``(done0, every, at_least, watch)`` of the
    plain and backtracking kernels (:func:`fopa._kernels.pga.pga_plain`; None: none).
    Returns,
    for the whole batch, ``D, grads, fstats, istats, hist, iterates, evaluations,
    min_step, last_step, streak`` (see :func:`fopa._kernels.pga.pga_plain` and
    :func:`fopa._kernels.backtracking.pga_backtracking`); the Gram kernel's
    history slots are None. For a fixed step, ``evaluations`` is ``iterations + 1``,
    both steps are eta and the streak is unchanged.
    """
    X, Y, eta, D0, scale, streak, safe = rows
    eps, max_iter, tol, cons = scalars
    view = net.kernel_view
    if schedule is None:  # no checkpoints: no row is watched
        schedule = (0, K.NO_CHECKPOINTS, 0, np.full(X.shape[0], -1.0))
    done0, every, at_least, watch = schedule

    def fixed_step_extras(out, eta, streak):
        evaluations = out[3][:, K.I_ITERS] + 1
        return (*out, evaluations, eta.copy(), eta.copy(), streak.copy())

    if method == "gram":
        gram = net.gram

        def run(X, Y, eta, D0, scale, streak, safe, seeds, target, watch):
            common = (loss, X, Y, eps, eta, D0, max_iter, tol, scale, cons)
            out = (*pga_gram(view, gram, *common), None, None)
            return fixed_step_extras(out, eta, streak)

    elif method == "backtracking":

        def run(X, Y, eta, D0, scale, streak, safe, seeds, target, watch):
            common = (loss, X, Y, eps, eta, D0, max_iter, tol, scale, cons)
            return BT.pga_backtracking(view, *common, record, target, store, streak, safe,
                                       done0, every, at_least, watch)  # fmt: skip

    else:

        def run(X, Y, eta, D0, scale, streak, safe, seeds, target, watch):
            common = (loss, X, Y, eps, eta, D0, max_iter, tol, scale, cons)
            out = K.pga_plain(view, *common, pert, seeds, record, target, store, done0, every,
                              at_least, watch)  # fmt: skip
            return fixed_step_extras(out, eta, streak)

    blocks = row_blocks(X.shape[0], X.shape[1], net.m)
    if len(blocks) == 1:
        return run(X, Y, eta, D0, scale, streak, safe, seeds, target, watch)

    def run_block(a, b):
        part = target[a:b] if record else target
        return run(X[a:b], Y[a:b], eta[a:b], D0[a:b], scale[a:b], streak[a:b], safe[a:b],
                   seeds[a:b], part, watch[a:b])  # fmt: skip

    return run_blocks(run_block, blocks, _STACK_GRAM if method == "gram" else _STACK)


#: The Gram iteration runs only when eps, every step's length and every gradient
#: scale lie in this range (a gradient of 1e263 overflowed ``Q K``, silently NaN),
GRAM_LENGTHS = (1e-140, 1e140)
#: and every nonzero row norm of W in this one: its coordinates are lengths divided
#: by W's scale and ``K = W W^T`` holds its square (weights of 1e-120 gave points
#: outside the ball: ``Q K`` underflowed).
GRAM_WEIGHTS = (1e-60, 1e60)


def gram_weights_in_range(net):
    """Whether every nonzero row norm of ``net.W`` lies in :data:`GRAM_WEIGHTS`."""
    norms = net.row_norms[net.row_norms > 0]
    return bool(np.all((norms >= GRAM_WEIGHTS[0]) & (norms <= GRAM_WEIGHTS[1])))


def choose_method(method, gram_ok, m, d, eps, step_lengths, weights_ok):
    """The ascent loop to run: ``"plain"``, ``"gram"`` or ``"backtracking"``.

    ``gram_ok``: the run's options allow the row-space iteration (an l2
    constraint, no perturbation, no history, no certify_every). The Gram iteration
    measures lengths through squared forms (``a K a^T``), which under- or overflow
    when eps or a length in ``step_lengths`` (each input's step length and gradient
    scale) leaves :data:`GRAM_LENGTHS` or the weights' scale leaves :data:`GRAM_WEIGHTS`
    (``weights_ok``: :func:`gram_weights_in_range`); the plain iteration's norms are
    scale-safe. ``"auto"`` picks gram for ``m < 2 d`` when it may run.
    """
    if method == "backtracking":
        return method
    if method == "gram" and not gram_ok:
        raise ValueError(
            "method='gram' needs an l2 constraint, no perturbation, no history and no certify_every"
        )
    lengths = np.concatenate([[eps], step_lengths])
    in_range = bool(np.all((lengths >= GRAM_LENGTHS[0]) & (lengths <= GRAM_LENGTHS[1])))
    if method == "gram" and not in_range:
        raise ValueError(
            "method='gram' squares lengths, which leave float64's range at this scale "
            "(eps, a step's length or a gradient scale outside "
            f"[{GRAM_LENGTHS[0]:g}, {GRAM_LENGTHS[1]:g}]); "
            "use method='plain' or 'auto'"
        )
    if method == "gram" and not weights_ok:
        raise ValueError(
            "method='gram' squares the weights, which leave float64's range at this scale "
            f"(a row norm of W outside [{GRAM_WEIGHTS[0]:g}, {GRAM_WEIGHTS[1]:g}]); "
            "use method='plain' or 'auto'"
        )
    in_range = in_range and weights_ok
    if method == "auto":
        return "gram" if gram_ok and in_range and m < 2 * d else "plain"
    return method


class RunArrays:
    """The whole run's per-row outputs (N rows), filled as rows stop."""

    def __init__(self, N, d, grads, fstats, istats):
        self.D = np.empty((N, d))
        self.grads = np.empty((N, *grads.shape[1:]))
        self.fstats = np.empty((N, *fstats.shape[1:]))
        self.istats = np.empty((N, *istats.shape[1:]), istats.dtype)
        self.step, self.min_step = np.empty(N), np.empty(N)
        self.streak = np.empty(N, np.int64)
        self.total, self.evals = np.empty(N, np.int64), np.empty(N, np.int64)
        self.firsts = {K.I_FIRST_STAT: np.empty(N, np.int64), K.I_FIRST_GMAP: np.empty(N, np.int64)}


class LiveRows:
    """The state of the rows still running in :func:`fopa._pga_pieces.runs_in_pieces`, packed: their
    global ``index``, the kernel's inputs (own copies) and the run's tallies."""

    def __init__(self, X, Y, eta, D0, scale, streak, safe, seeds):
        n = X.shape[0]
        self.index = np.arange(n)
        self.X, self.Y, self.scale, self.safe = X.copy(), Y.copy(), scale.copy(), safe.copy()
        self.seeds = seeds.copy()
        self.step, self.D, self.streak = eta.copy(), D0.copy(), streak.copy()
        self.total, self.evals = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.min_step = np.full(n, np.inf)
        self.firsts = {K.I_FIRST_STAT: np.full(n, -1, np.int64),
                       K.I_FIRST_GMAP: np.full(n, -1, np.int64)}  # fmt: skip
        self.grads = self.fstats = self.istats = None

    @property
    def size(self):
        return self.index.size

    def inputs(self):
        """The rows argument of :func:`fopa._pga_runs.run_kernel` for these rows."""
        return (self.X, self.Y, self.step, self.D, self.scale, self.streak, self.safe)

    def record(self, D, grads, fstats, istats, evaluations, min_step, last, streak):
        """Take a piece's outputs: the points, steps and streaks to continue from, the
        first iterations the kernel flagged (offset by the iterations before), the
        evaluations (a continued piece evaluates its start again: not a new one),
        iterations and smallest steps."""
        for column, seen in self.firsts.items():
            flagged = istats[:, column]
            new = (seen < 0) & (flagged >= 0)
            seen[new] = self.total[new] + flagged[new]
        self.evals += evaluations - (self.total > 0)
        self.total += istats[:, K.I_ITERS]
        np.minimum(self.min_step, min_step, out=self.min_step)
        self.D, self.step, self.streak = D, last, streak
        self.grads, self.fstats, self.istats = grads, fstats, istats

    #: the per-row arrays a stopped row leaves in the run's arrays, and those that
    #: only the running rows need
    _OUTPUTS = ("D", "step", "streak", "total", "evals", "min_step", "grads", "fstats", "istats")
    _INPUTS = ("index", "X", "Y", "scale", "safe", "seeds")

    def retire(self, stop, whole):
        """Write the rows where ``stop`` into ``whole`` (a :class:`RunArrays`) and keep
        the others."""
        rows = self.index[stop]
        for name in self._OUTPUTS:
            getattr(whole, name)[rows] = getattr(self, name)[stop]
        for column, seen in self.firsts.items():
            whole.firsts[column][rows] = seen[stop]
        keep = ~stop
        for name in self._OUTPUTS + self._INPUTS:
            setattr(self, name, getattr(self, name)[keep])
        self.firsts = {column: seen[keep] for column, seen in self.firsts.items()}
