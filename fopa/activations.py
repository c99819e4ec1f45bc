"""Activation functions with derivatives up to order three.

The seven activations (``tanh, sigmoid, softplus, gelu, silu, quadratic,
linear``) are compiled in :mod:`fopa._kernels.activation`, where the formulas
that avoid overflow are written (``docs/derivatives.md``, "Activations without
overflow"). This module names them, validates arguments and evaluates them on
arrays.
"""

from __future__ import annotations

import numpy as np

from ._kernels.activation import ACTIVATIONS, CRITICAL_TABLES, activation_table, sup_abs_table
from ._validate import as_float_array

__all__ = ["ACTIVATIONS", "activation_code", "activation_derivatives", "sup_abs_derivatives"]


def activation_code(activation) -> int:
    """Integer code of an activation name; raise a clear error for anything else."""
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a string, one of {ACTIVATIONS}; got {activation!r}")
    try:
        return ACTIVATIONS.index(activation)
    except ValueError:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None


def activation_derivatives(activation: str, z) -> np.ndarray:
    """Evaluate an activation and its first three derivatives.

    Parameters
    ----------
    activation : str
        One of :data:`ACTIVATIONS`.
    z : array_like
        Points of evaluation, any shape, finite.

    Returns
    -------
    ndarray, shape (4, *z.shape)
        ``out[k]`` is ``sigma^(k)(z)``.
    """
    code = activation_code(activation)
    z = as_float_array("z", z)
    flat = np.ascontiguousarray(z.reshape(-1))
    return activation_table(code, flat).reshape((4, *z.shape))


def sup_abs_derivatives(activation: str, lo, hi) -> np.ndarray:
    """Supremum of ``|sigma^(k)|`` over intervals, k = 0..3.

    Parameters
    ----------
    activation : str
        One of :data:`ACTIVATIONS`.
    lo, hi : array_like, same shape
        Interval end points with ``lo <= hi``, finite.

    Returns
    -------
    ndarray, shape (4, *lo.shape)
        ``out[k]`` is ``sup over [lo, hi] of |sigma^(k)|`` (exact up to rounding:
        end points plus interior critical points).
    """
    code = activation_code(activation)
    lo = as_float_array("lo", lo)
    hi = as_float_array("hi", hi)
    if lo.shape != hi.shape:
        raise ValueError(f"lo and hi must have the same shape; got {lo.shape} and {hi.shape}")
    if np.any(lo > hi):
        raise ValueError("lo must be <= hi elementwise")
    table = CRITICAL_TABLES[ACTIVATIONS[code]]
    out = sup_abs_table(
        code, table, np.ascontiguousarray(lo.reshape(-1)), np.ascontiguousarray(hi.reshape(-1))
    )
    return out.reshape((4, *lo.shape))
