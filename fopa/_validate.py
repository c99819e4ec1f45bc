"""Input validation shared by every public function.

Public functions convert their arguments here and hand only contiguous float64
arrays and plain scalars to the compiled kernels. Every error names the
argument and says what was expected. (A network, its points and targets are
validated together by :mod:`fopa._inputs`.)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._kernels.linalg import all_finite

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
    if not all_finite(arr if arr.ndim == 1 else arr.reshape(-1)):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return arr


def as_positive_scalar(name: str, value) -> float:
    """A finite real number > 0 as a Python float."""
    value = as_real_scalar(name, value)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return value


def as_nonnegative_scalar(name: str, value) -> float:
    """A finite real number >= 0 as a Python float."""
    value = as_real_scalar(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
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


#: The largest count a kernel takes (its loops count in int64).
MAX_COUNT = 2**62


def as_int(name: str, value, *, minimum: int, maximum: int = MAX_COUNT) -> int:
    """An integer with minimum <= value <= maximum (default 2**62: what a kernel can count)."""
    if type(value) is not int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer; got {value!r}")
        value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_jobs(jobs) -> None:
    """Raise ``ValueError`` unless ``jobs`` (a number of worker processes) is an
    integer >= 1 (a bool is not)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got {jobs!r}")


def check_rng(rng) -> None:
    """Raise unless ``rng`` is None, an int seed or a Generator (without building one)."""
    if rng is None or isinstance(rng, np.random.Generator):
        return
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a non-negative int seed, None or a Generator; got {rng}")
        return
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator; got {rng!r}")


def as_rng(rng) -> np.random.Generator:
    """``None``, an int seed or a Generator, as a Generator."""
    check_rng(rng)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
