"""Validation of a problem's inputs: a network, its points, targets and loss.

Every public function that evaluates the loss starts here and hands the
kernels contiguous float64 arrays, the loss code and the network's
:attr:`~fopa.TwoLayerNet.kernel_view`.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import as_float_array
from .losses import check_targets, loss_code
from .network import TwoLayerNet


def points_and_targets(net, x, y, *, extra=()):
    """Validate an input point or batch, its targets and extra direction arrays.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    extra : sequence of (name, array_like)
        Directions that must have the shape of ``x``.

    Returns
    -------
    X : ndarray, shape (n, d)
    Y : ndarray, shape (n,)
    extras : list of ndarray, shape (n, d)
    single : bool
        True when ``x`` was one point; results are then unstacked.
    """
    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"net must be a fopa.TwoLayerNet; got {type(net).__name__}")
    X = as_float_array("x", x, ndim=(1, 2))
    single = X.ndim == 1
    if single:
        X = X[None, :]
    n, d = X.shape
    if n == 0:
        raise ValueError(f"x must hold at least one point; got shape {X.shape}")
    if d != net.d:
        raise ValueError(f"x must have {net.d} features (the network's d); got {d}")
    if type(y) is float and math.isfinite(y):  # the common case, without an array round trip
        Y = np.array((y,)) if n == 1 else np.full(n, y)  # (np.full costs 0.7 us)
    else:
        Y = as_float_array("y", y, ndim=(0, 1))
        if Y.ndim == 0:
            Y = np.full(n, float(Y))
        elif Y.shape[0] != n or single:
            want = "a scalar" if single else f"a scalar or shape ({n},)"
            raise ValueError(f"y must be {want}; got shape {Y.shape}")
    extras = []
    for name, value in extra:
        arr = as_float_array(name, value, ndim=(1, 2))
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.shape != X.shape or (single and np.ndim(value) != 1):
            want = (d,) if single else (n, d)
            raise ValueError(f"{name} must have shape {want} like x; got {np.shape(value)}")
        extras.append(arr)
    return X, Y, extras, single


def problem_arrays(net, x, y, loss, extra=()):
    """Validate a network, point(s), targets for ``loss`` and arrays shaped like x.

    Returns
    -------
    code, X (n, d), Y (n,), extras (list of (n, d)), single (bool)
    """
    code = loss_code(loss)
    X, Y, extras, single = points_and_targets(net, x, y, extra=extra)
    check_targets(code, Y)
    return code, X, Y, extras, single


def one_point(net, x, y, loss, extra=()):
    """As :func:`problem_arrays` for exactly one point: (code, x (d,), y float, extras (d,))."""
    code, X, Y, extras, single = problem_arrays(net, x, y, loss, extra)
    if not single:
        raise ValueError(f"x must be one point of shape ({net.d},); got shape {X.shape}")
    return code, X[0], float(Y[0]), [e[0] for e in extras]
