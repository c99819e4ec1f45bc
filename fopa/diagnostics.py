"""Taylor-remainder checks of derivatives, as tools for users.

Along a unit direction h the remainder of a correct k-th order Taylor model,

* ``E1(t) = |L(x + t h) - L(x) - t g.h|`` (gradient ``g``), and
* ``E2(t) = |L(x + t h) - L(x) - t g.h - t^2 h.H h / 2|`` (Hessian ``H``),

shrinks like ``t^2`` and ``t^3``. A wrong derivative leaves a term of lower order,
so the fitted log-log slope drops to 1 (or 2). The slope is fitted over the first
two decades of ``t`` (from small to large) where the remainder stands clear of
rounding noise and lies on a straight line in log-log coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._inputs import one_point
from ._validate import as_float_array, as_int, as_rng
from .derivatives import input_gradient, input_hessian
from .derivatives import loss as loss_values

__all__ = ["TaylorCheck", "check_gradient", "check_hessian"]

_STEPS = np.logspace(-8, 0, 33)  # 4 steps a decade
_FIT_LENGTHS = (9, 6)  # two decades, then 1.25 decades
_NOISE = 1e2 * np.finfo(float).eps  # remainder must exceed this times the magnitudes involved
_STRAIGHT = 0.05  # a window is straight when the fit misses no point by more than 5 %
_LOCAL_SLOPE = 0.3  # ... and no step-to-step slope strays further from the fitted one
_SLOPE_TOLERANCE = 0.1


@dataclass(frozen=True)
class TaylorCheck:
    """Result of a Taylor-remainder check.

    Attributes
    ----------
    order : int
        1 for a gradient check, 2 for a Hessian check.
    expected_slope : float
        ``order + 1``.
    slopes : ndarray, shape (n_directions,)
        Fitted log-log slope per direction; ``inf`` where the remainder stayed at
        rounding level for every step (the model is exact along that direction).
    steps : ndarray, shape (n_steps,)
        The step lengths ``t`` (times ``step_scale``).
    remainders : ndarray, shape (n_directions, n_steps)
        ``E(t)`` per direction and step.
    fit_windows : ndarray, shape (n_directions, 2)
        First and last step index used in each fit (-1 where no step was clean).
    step_scale : float
        Steps are ``step_scale * _STEPS`` (``1 / ||W||_2``: unit change of pre-activations).
    conclusive : ndarray of bool, shape (n_directions,)
        False for a direction whose remainder never runs straight above rounding
        noise (e.g. a saturated network, where the asymptotic regime drowns in
        rounding): its slope is reported but not judged.
    passed : bool
        At least one direction is conclusive and every conclusive slope is at
        least ``expected_slope - 0.1``.
    """

    order: int
    expected_slope: float
    slopes: np.ndarray
    steps: np.ndarray
    remainders: np.ndarray
    fit_windows: np.ndarray
    step_scale: float
    conclusive: np.ndarray
    passed: bool


def _fit_slope(steps, remainder, noise_floor):
    """Log-log slope of E(t) over the smallest-t window of clean, straight points.

    Windows of consecutive steps whose remainders all exceed the noise floor are
    tried from the smallest t up, two decades long first and then 1.25 decades;
    the first *straight* one decides: its least-squares line misses no point by
    more than ``_STRAIGHT`` (natural-log units) and no step-to-step slope differs
    from the fitted one by more than ``_LOCAL_SLOPE``. So the asymptotic regime
    decides, not a crossover of terms at larger t.

    Returns
    -------
    slope : float
        ``inf`` when no step is clean (the model is exact to rounding).
    window : (int, int)
        First and last index used, (-1, -1) if none.
    conclusive : bool
        False when clean steps exist but no window is straight (the slope is
        then that of the best-fitting window, for information only).
    """
    clean = remainder > noise_floor
    if clean.sum() < 2:
        return np.inf, (-1, -1), True
    logt, loge = np.log(steps), np.log(np.where(clean, remainder, 1.0))
    best = (np.inf, np.inf, (-1, -1))
    for length in _FIT_LENGTHS:
        for start in range(len(steps) - length + 1):
            window = slice(start, start + length)
            if not clean[window].all():
                continue
            coef = np.polyfit(logt[window], loge[window], 1)
            misfit = np.max(np.abs(np.polyval(coef, logt[window]) - loge[window]))
            local = np.diff(loge[window]) / np.diff(logt[window])
            span = (start, start + length - 1)
            if misfit <= _STRAIGHT and np.max(np.abs(local - coef[0])) <= _LOCAL_SLOPE:
                return float(coef[0]), span, True
            if misfit < best[0]:
                best = (misfit, float(coef[0]), span)
    return best[1], best[2], False


def _taylor_check(net, x, y, loss, rng, n_directions, order, gradient, hessian):
    _, x0, y0, _ = one_point(net, x, y, loss)
    gen = as_rng(rng)
    n_directions = as_int("n_directions", n_directions, minimum=1)
    g = (
        as_float_array("gradient(x)", gradient(x0))
        if gradient
        else input_gradient(net, x0, y0, loss=loss)
    )
    if g.shape != x0.shape:
        raise ValueError(f"gradient(x) must have shape {x0.shape}; got {g.shape}")
    if order == 2:
        H = (
            as_float_array("hessian(x)", hessian(x0))
            if hessian
            else input_hessian(net, x0, y0, loss=loss)
        )
        if H.shape != (net.d, net.d):
            raise ValueError(f"hessian(x) must have shape {(net.d, net.d)}; got {H.shape}")
    scale = 1.0 / net.weight_norm
    steps = scale * _STEPS
    L0 = loss_values(net, x0, y0, loss=loss)
    slopes, windows, conclusive = [], [], []
    remainders = np.empty((n_directions, steps.size))
    for k in range(n_directions):
        h = gen.standard_normal(net.d)
        h /= np.linalg.norm(h)
        Lt = loss_values(net, x0 + steps[:, None] * h, np.full(steps.size, y0), loss=loss)
        linear = steps * (g @ h)
        model = L0 + linear
        magnitude = np.abs(Lt) + abs(L0) + np.abs(linear)
        if order == 2:
            quadratic = 0.5 * steps**2 * (h @ H @ h)
            model = model + quadratic
            magnitude = magnitude + np.abs(quadratic)
        remainders[k] = np.abs(Lt - model)
        slope, window, sure = _fit_slope(steps, remainders[k], _NOISE * magnitude)
        slopes.append(slope)
        windows.append(window)
        conclusive.append(sure)
    slopes = np.array(slopes)
    conclusive = np.array(conclusive, dtype=bool)
    expected = float(order + 1)
    return TaylorCheck(
        order=order,
        expected_slope=expected,
        slopes=slopes,
        steps=steps,
        remainders=remainders,
        fit_windows=np.array(windows, dtype=np.int64),
        step_scale=scale,
        conclusive=conclusive,
        passed=bool(conclusive.any() and np.all(slopes[conclusive] >= expected - _SLOPE_TOLERANCE)),
    )


def check_gradient(net, x, y, *, loss="quadratic", rng=None, n_directions=3, gradient=None):
    """Check an input gradient by the slope of its Taylor remainder (about 2 if right).

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    loss : {"quadratic", "logistic"}
    rng : None, int or numpy.random.Generator
        Draws the random unit directions.
    n_directions : int
        Number of directions tried.
    gradient : callable, optional
        ``gradient(x) -> ndarray (d,)`` to check instead of :func:`fopa.input_gradient`.

    Returns
    -------
    TaylorCheck
        Prints nothing; ``passed`` says whether every slope is about 2 or more.
    """
    return _taylor_check(net, x, y, loss, rng, n_directions, 1, gradient, None)


def check_hessian(
    net, x, y, *, loss="quadratic", rng=None, n_directions=3, gradient=None, hessian=None
):
    """Check an input Hessian by the slope of its Taylor remainder (about 3 if right).

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,)
    y : float
    loss : {"quadratic", "logistic"}
    rng : None, int or numpy.random.Generator
    n_directions : int
    gradient : callable, optional
        ``gradient(x) -> (d,)``; fopa's gradient by default.
    hessian : callable, optional
        ``hessian(x) -> (d, d)`` to check instead of :func:`fopa.input_hessian`.

    Returns
    -------
    TaylorCheck
        ``passed`` says whether every slope is about 3 or more.
    """
    return _taylor_check(net, x, y, loss, rng, n_directions, 2, gradient, hessian)
