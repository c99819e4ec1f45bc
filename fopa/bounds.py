"""Bounds over a ball, and the iteration bound they give.

Closed-form upper bounds of the loss and its derivatives over a ball. Over the
ball ``||delta|| <= eps`` around ``x`` the pre-activation of unit r stays in
``I_r = [w_r . x + b_r - eps ||w_r||, w_r . x + b_r + eps ||w_r||]``. With
``S_k,r = sup over I_r of |sigma^(k)|``:

* ``||grad f|| <= ||W||_2 ||c a S_1||_2 = G``
* ``||hess f|| <= sum_r |c a_r| S_2,r ||w_r||^2 = H``
* ``|D3 f| <= sum_r |c a_r| S_3,r ||w_r||^3 = T``
* ``|f| <= sum_r |c a_r| S_0,r = F``

and with bounds ``l_k`` of ``|l^(k)|`` over ``|f| <= F`` (for the quadratic loss
``l_1 = |y| + F``, ``l_2 = 1``, ``l_3 = 0``):

* gradient bound ``l_1 G``
* smoothness ``beta = l_2 G^2 + l_1 H``
* Hessian Lipschitz constant ``rho = l_3 G^3 + 3 l_2 G H + l_1 T``
* ``loss_max = sup l`` (``(|y| + F)^2 / 2`` for the quadratic loss).

The bounds are compiled in :mod:`fopa._kernels.ball` (``docs/derivatives.md``,
"Bounds over the ball").

The iteration bound (``docs/solver.md``, "Stopping rules and what is reported"). Sufficient ascent:
for ``eta <= 1/beta`` every PGA step satisfies

    L(delta_{t+1}) >= L(delta_t) + ||delta_{t+1} - delta_t||^2 / (2 eta)
                    = L(delta_t) + eta ||G(delta_t)||^2 / 2,

so while ``||G|| > g`` the loss grows by more than ``eta g^2 / 2`` a step, and it
can't exceed ``loss_max``. Hence the first t with ``||G(delta_t)|| <= g`` is at
most ``ceil(2 (loss_max - L(delta_0)) / (eta g^2))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import problem_arrays
from ._interrupts import PIECE_WORK, deferred_sigint
from ._kernels.ball import (
    BOUND_NAMES,
    MODE_FAST,
    MODE_RHO,
    MODE_ROW_SUM,
    MODE_TIGHT,
    ball_bounds,
)
from ._kernels.network import loss_values
from ._kernels.tensor import TENSOR_MAX_RANK
from ._kernels.tolerances import TINY
from ._parallel import row_blocks, run_blocks
from ._validate import as_float_array, as_positive_scalar

__all__ = ["BallConstants", "IterationBound", "ball_constants", "iteration_bound"]


@dataclass(frozen=True)
class BallConstants:
    """Upper bounds over the ball of radius ``eps`` around ``x``.

    Scalars for one input, arrays of shape (n,) for a batch.

    Attributes
    ----------
    eps : float
        Radius of the ball.
    gradient_bound : float or ndarray
        Bound on ``||grad L||``.
    beta : float or ndarray
        Bound on ``||hess L||_2`` (smoothness; ``1/beta`` is a safe ascent step).
    rho : float or ndarray
        Bound on the Lipschitz constant of ``hess L``.
    loss_max : float or ndarray
        Bound on ``L``.
    output_bound : float or ndarray
        ``F``, bound on ``|f|``.
    network_gradient_bound, network_hessian_bound, network_third_bound : float or ndarray
        ``G``, ``H`` and ``T``, the network's own bounds.
    """

    eps: float
    gradient_bound: float | np.ndarray
    beta: float | np.ndarray
    rho: float | np.ndarray
    loss_max: float | np.ndarray
    output_bound: float | np.ndarray
    network_gradient_bound: float | np.ndarray
    network_hessian_bound: float | np.ndarray
    network_third_bound: float | np.ndarray


#: How :func:`ball_constants` bounds: the tight form (default), the fast form (the
#: tight one without eigenproblems) or the row-sum form.
METHODS = ("tight", "fast", "row_sum")
_MODES = {"row_sum": MODE_ROW_SUM, "tight": MODE_TIGHT, "fast": MODE_FAST,
          "certificate": MODE_RHO}  # fmt: skip
_WITH_FACTOR = (MODE_TIGHT, MODE_RHO)  # the modes that read the row-space factor
# read-only like ``net.row_space_factor``: one compiled signature of ``ball_bounds``
# serves every mode (a writable array is another numba type: another compilation)
_NO_FACTOR = np.zeros((0, 0))
_NO_FACTOR.flags.writeable = False


def _tensor_work(r, m):
    """Multiply-adds per input of the center tensor the tight bounds form for r <= 8
    (its r(r+1)/2 rows of m entries, their product with F, two weighted Grams), so
    that the pieces between Ctrl-C checks keep their length."""
    return (r * (r + 1) // 2) * m * (2 + r) + 4 * r * m if r <= TENSOR_MAX_RANK else 0


def ball_constant_arrays(net, X, Y, eps, code, method="tight"):
    """All bounds for validated arrays X (n, d), Y (n,) and loss ``code``, by name,
    each of shape (n,). Large batches of tight bounds run in pieces of rows (each
    row's bounds are its own: the same bits), with Ctrl-C noticed between them."""
    mode = _MODES[method]
    with_factor = mode in _WITH_FACTOR
    factor = net.row_space_factor if with_factor else _NO_FACTOR
    view, norm = net.kernel_view, net.weight_norm
    n = X.shape[0]
    r = min(net.m, net.d)
    per_row = (r * r * net.m + 3 * r**3 + _tensor_work(r, net.m)) if with_factor else net.m * net.d
    rows = max(1, int(PIECE_WORK / max(per_row, 1)))
    try:
        if rows >= n:
            out = ball_bounds(view, norm, factor, code, X, Y, float(eps), mode)
        else:
            out = np.empty((len(BOUND_NAMES), n))
            with deferred_sigint() as pending:
                for a in range(0, n, rows):
                    if pending():
                        break
                    b = min(a + rows, n)
                    out[:, a:b] = ball_bounds(view, norm, factor, code, X[a:b], Y[a:b],
                                              float(eps), mode)  # fmt: skip
    except np.linalg.LinAlgError:  # an eigenproblem of the tight form met inf or NaN
        out = np.full((len(BOUND_NAMES), n), np.inf)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "the bounds over the ball overflow float64 for these inputs (weights, inputs, "
            "targets or eps too large); rescale the problem"
        )
    return dict(zip(BOUND_NAMES, out, strict=True))


def certificate_bounds(net, X, Y, eps, code, pending=None):
    """What the factorization route of :func:`fopa.certify` needs per row, shape (3, n):
    the tight ``rho`` (its center term ``||hess f(x)||_2`` proved by factorization,
    ``docs/certify.md``, "Proofs by factorization") and the tolerance scales of
    :func:`tolerance_scales`, computed once per distinct ``(x, y)`` (many
    certificates share a center: the starts of :func:`fopa.local_maxima`, the
    checkpoints of one ascent). The distinct centers go in pieces, each in row
    blocks on the cores; ``pending()`` (a pending Ctrl-C, see
    :func:`fopa._interrupts.deferred_sigint`) is asked between pieces, and the rows
    of centers not reached are NaN."""
    keys = np.column_stack([X, Y])
    # first[k]: a row holding distinct key k; back[i]: the key of row i
    _, first, back = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    back = np.ravel(back)
    Xu, Yu = X[first], Y[first]
    r = min(net.m, net.d)
    piece = max(1, int(PIECE_WORK / (r * r * net.m / 2 + 2 * r**3 / 3 + _tensor_work(r, net.m))))
    rho = np.full(Xu.shape[0], np.nan)
    for a in range(0, Xu.shape[0], piece):
        if pending is not None and pending():
            break
        b = min(a + piece, Xu.shape[0])
        Xp, Yp = Xu[a:b], Yu[a:b]

        def block(lo, hi, Xp=Xp, Yp=Yp):
            bounds = ball_constant_arrays(net, Xp[lo:hi], Yp[lo:hi], eps, code, "certificate")
            return (bounds["rho"],)

        rho[a:b] = run_blocks(block, row_blocks(b - a, r, r * net.m), (0,))[0]
    scale, curvature = tolerance_scales(net, Xu, Yu, eps, code)
    return np.stack([rho, scale, curvature])[:, back]


def tolerance_scales(net, X, Y, radius, code):
    """The units of the tolerances (validated arrays), from the fast bounds over the
    ball of ``radius`` (O(md) per input): the gradient scale (``gradient_bound``,
    floored at 1e-300), the same number in the solver and in the certificate
    (``docs/solver.md``, "Stopping rules"), and the curvature scale (``beta``)."""
    fast = ball_constant_arrays(net, X, Y, radius, code, "fast")
    return np.maximum(fast["gradient_bound"], TINY), fast["beta"]


def ball_constants(net, x, y, eps, *, loss="quadratic", method="tight") -> BallConstants:
    """Rigorous upper bounds over the ball of radius ``eps`` around ``x``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    eps : float
        Radius, > 0.
    loss : {"quadratic", "logistic"}
    method : {"tight", "fast", "row_sum"}
        ``"tight"``: exact values at x plus mean-value remainders, with spectral
        norms in the row space of W (each bound the smaller of this and the
        row-sum form); it costs the spectral norms of two ``r``-square symmetric
        matrices per input (``r = min(m, d)``; eigendecompositions up to r = 64,
        above that both ends proved by Lanczos and Cholesky factorizations,
        ``docs/certify.md``, "Proofs by factorization") and a product of ``r^2 m``
        multiply-adds (half of it above r = 64); up to r = 8 it also bounds the
        third derivative from its tensor at x, signs kept (``r^3 m / 2`` more).
        ``"fast"``: the same
        without the Hessian norms at x (no eigenproblem, O(md) per input), looser
        where the curvature at x matters. ``"row_sum"``: the earlier bounds, sums
        over hidden units of per-unit sups (O(md) per input, loose by a factor that
        grows with m). ``docs/derivatives.md``, "Bounds over the ball", derives them.

    Returns
    -------
    BallConstants
        Bounds valid at every ``x + delta`` with ``||delta|| <= eps``.
    """
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    eps = as_positive_scalar("eps", eps)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    values = ball_constant_arrays(net, X, Y, eps, code, method)
    if single:
        values = {k: float(v[0]) for k, v in values.items()}
    return BallConstants(eps=eps, **values)


@dataclass(frozen=True)
class IterationBound:
    """The sufficient-ascent bound held against measured counts (arrays over inputs).

    Attributes
    ----------
    bound : float or ndarray
        The bound on the first t with ``||G(delta_t)|| <= g`` (a whole number, as a
        float).
    measured : int or ndarray
        The measured first such t (-1: the run never got there: censored).
    reached : bool or ndarray
        ``measured >= 0``.
    within : bool or ndarray
        ``measured <= bound`` where reached (True where not reached: a censored run
        did not contradict the bound within its budget).
    looseness : float or ndarray
        ``bound / max(measured, 1)`` where reached, inf where not.
    """

    bound: float | np.ndarray
    measured: int | np.ndarray
    reached: bool | np.ndarray
    within: bool | np.ndarray
    looseness: float | np.ndarray


def iteration_bound(
    net, x, y, eps, step_size, g=None, *, initial_loss=None, loss="quadratic", measured=None
):
    """Upper bound on the first iteration with gradient-mapping norm at most ``g``.

    ``docs/solver.md``, "Stopping rules and what is reported", derives it: every step
    with ``eta <= 1/beta`` (or accepted by the backtracking test) gains at least
    ``eta ||G||^2 / 2``, and the loss can't exceed ``loss_max``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    eps : float
        Ball radius, > 0.
    step_size : float, "lipschitz" or AscentResult
        The step ``eta``; a float must satisfy ``eta <= 1/beta`` (``"lipschitz"`` is
        ``1/beta``). The result of :func:`fopa.projected_gradient_ascent` on the same
        inputs gives its smallest accepted step per input (``min_step_size``), its
        ``initial_loss``, ``g = tol * gradient_scale`` and, as ``measured``, its
        ``first_gradient_mapping_iteration``; a fixed step must still satisfy
        ``eta <= 1/beta``, a backtracking step needs not (its test gives the ascent).
    g : float or array_like (n,), optional
        Gradient-mapping threshold, > 0 (required unless a result is given).
    initial_loss : float or array_like (n,), optional
        ``L(x + delta_0)``; default ``L(x)`` (the zero start) or the result's.
    loss : "quadratic" or "logistic"
    measured : int or array_like (n,), optional
        Measured first iterations (-1: not reached) to hold against the bound.

    Returns
    -------
    float or ndarray of float, shape (n,), or IterationBound
        The bound (a whole number, as a float: a worst case that may exceed the
        int64 range); an :class:`IterationBound` when measured counts are given or
        come with a result.

    Raises
    ------
    ValueError
        If a fixed ``step_size > 1/beta``: the bound then does not hold.
    """
    code, X, Y, _, single = problem_arrays(net, x, y, loss)
    n = X.shape[0]
    eps = as_positive_scalar("eps", eps)
    consts = ball_constant_arrays(net, X, Y, eps, code)
    beta = consts["beta"]
    checked = True
    if hasattr(step_size, "min_step_size") and hasattr(step_size, "gradient_scale"):
        result = step_size
        eta = _per_input("step_size.min_step_size", result.min_step_size, n)
        if g is None:
            g = result.tol * np.atleast_1d(np.asarray(result.gradient_scale, dtype=float))
        if initial_loss is None:
            initial_loss = result.initial_loss
        if measured is None:
            measured = result.first_gradient_mapping_iteration
        checked = result.method != "backtracking"
    elif isinstance(step_size, str):
        if step_size != "lipschitz":
            raise ValueError(f"step_size must be a float or 'lipschitz'; got {step_size!r}")
        eta, checked = 1.0 / beta, False
    else:
        eta = np.full(n, as_positive_scalar("step_size", step_size))
    if checked and np.any(eta > (1.0 / beta) * (1.0 + 1e-12)):
        raise ValueError(
            f"step_size {float(np.max(eta)):.6g} exceeds 1/beta = {float(np.min(1.0 / beta)):.6g}: "
            "the sufficient-ascent bound needs eta <= 1/beta"
        )
    if g is None:
        raise TypeError("iteration_bound needs g (the gradient-mapping threshold) or a result")
    g = _per_input("g", g, n)
    if np.any(g <= 0):
        raise ValueError("g must be > 0")
    if initial_loss is None:
        start = loss_values(net.kernel_view, code, X, Y)
        if not np.all(np.isfinite(start)):
            raise ValueError("the loss at x overflows float64; rescale y or the network")
    else:
        start = _per_input("initial_loss", initial_loss, n)
    gap = np.maximum(consts["loss_max"] - start, 0.0)
    bound = np.ceil(2.0 * gap / (eta * g * g))
    if measured is None:
        return float(bound[0]) if single else bound
    counts = np.asarray(measured)
    if counts.dtype.kind not in "iu" and not np.all(counts == np.round(counts)):
        raise TypeError("measured must hold whole numbers of iterations (-1: not reached)")
    counts = np.broadcast_to(counts.astype(np.int64), (n,))
    reached = counts >= 0
    within = ~reached | (counts <= bound)
    looseness = np.where(reached, bound / np.maximum(counts, 1), np.inf)
    if single:
        return IterationBound(float(bound[0]), int(counts[0]), bool(reached[0]),
                              bool(within[0]), float(looseness[0]))  # fmt: skip
    return IterationBound(bound, counts.copy(), reached, within, looseness)


def _per_input(name, value, n):
    """A scalar or an (n,) array of finite floats, as an (n,) array."""
    arr = as_float_array(name, value, ndim=(0, 1))
    if arr.ndim == 1 and arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or shape ({n},); got {arr.shape}")
    return np.array(np.broadcast_to(arr, (n,)))
