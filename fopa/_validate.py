"""Input validation shared by every public function.

Public functions convert their arguments here and hand only contiguous float64
arrays and plain scalars to the compiled kernels. Every error names the
argument and says what was expected.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._jit import kernel

_FLOAT64 = np.dtype(np.float64)


def as_float_array(name: str, value, *, ndim=None) -> np.ndarray:
    """Convert ``value`` to a finite float64 array, or raise a clear error.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : array_like
        Real numbers: bool, integer and float dtypes are accepted, complex,
        object and string dtypes are not.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.

    Returns
    -------
    ndarray
        C-contiguous float64 array (a copy when a conversion was needed).
    """
    if (
        type(value) is np.ndarray
        and value.dtype is _FLOAT64  # (identity: the cheap test; others take the long way)
        and (flags := value.flags).c_contiguous
        and flags.writeable
    ):
        arr = value  # already what kernels take: no conversion
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} must be an array of real numbers; got {value!r}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers (float or int); got dtype {arr.dtype}")
        arr = np.asarray(arr, dtype=np.float64, order="C")
        if not arr.flags.writeable:  # one compiled signature: kernels get writable arrays
            arr = arr.copy()
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{k}-D" for k in allowed)
            raise ValueError(f"{name} must be {want}; got shape {arr.shape}")
    if not _all_finite(arr if arr.ndim == 1 else arr.reshape(-1)):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return arr


@kernel
def _all_finite(flat):
    """True when every entry of the 1-D array is finite (a compiled loop: no temporary)."""
    for v in flat:
        if not math.isfinite(v):
            return False
    return True


def as_positive_scalar(name: str, value) -> float:
    """A finite real number > 0 as a Python float."""
    value = as_real_scalar(name, value)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return value


def as_real_scalar(name: str, value) -> float:
    """A finite real number as a Python float."""
    if isinstance(value, float):  # the common cases (float, numpy.float64), checked cheaply
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value!r}")
        return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real scalar; got {value!r}")
    out = float(arr)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite; got {out!r}")
    return out


def as_int(name: str, value, *, minimum: int) -> int:
    """An integer >= minimum."""
    if type(value) is int:  # the common case, checked cheaply
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}; got {value}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_rng(rng) -> None:
    """Raise unless ``rng`` is None, an int seed or a Generator (without building one)."""
    if rng is None or isinstance(rng, np.random.Generator):
        return
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator; got {rng!r}")


def as_rng(rng) -> np.random.Generator:
    """``None``, an int seed or a Generator, as a Generator."""
    check_rng(rng)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


_NETWORK_CLASS = []


def _network_class():
    """fopa.TwoLayerNet, imported on first use (network.py imports this module)."""
    if not _NETWORK_CLASS:
        from .network import TwoLayerNet

        _NETWORK_CLASS.append(TwoLayerNet)
    return _NETWORK_CLASS[0]


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
    if not isinstance(net, _network_class()):
        raise TypeError(f"net must be a fopa.TwoLayerNet; got {type(net).__name__}")
    X = as_float_array("x", x, ndim=(1, 2))
    single = X.ndim == 1
    if single:
        X = X[None, :]
    n, d = X.shape
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
