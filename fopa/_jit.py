"""The one place where numba options live.

Every compiled kernel in fopa is built with :func:`kernel`. Options:

* ``cache=True``: compiled machine code is stored next to the sources (or in
  ``NUMBA_CACHE_DIR``) so that only the first run on a machine pays compile time.
* ``fastmath`` with ``contract`` (fused multiply-add), ``reassoc`` (vectorised
  reductions), ``nsz`` and ``arcp`` only. ``nnan`` and ``ninf`` are left out on
  purpose: NaN and inf checks must keep working, and ``afn`` is left out so that
  ``exp``, ``tanh`` and ``erfc`` stay the correctly rounded library functions.
"""

from __future__ import annotations

import types

import numba

FASTMATH = frozenset({"contract", "reassoc", "nsz", "arcp"})


def kernel(func=None, *, parallel: bool = False):
    """Compile ``func`` with fopa's numba options (usable bare or with arguments)."""

    def wrap(f):
        return numba.njit(cache=True, fastmath=set(FASTMATH), parallel=parallel, nogil=True)(f)

    return wrap(func) if func is not None else wrap


def scalar_kernel(func):
    """Compile a small scalar helper called from kernels (LLVM inlines it)."""
    return numba.njit(cache=True, fastmath=set(FASTMATH), nogil=True)(func)


def kernel_variants(func):
    """Compile ``func`` twice: serially and with ``prange`` loops run in parallel.

    Thread-pool dispatch costs microseconds per parallel loop, which dominates
    small problems; callers pick the serial variant below a work threshold. The
    copies get distinct qualified names so that their caches do not collide.

    Returns
    -------
    serial, parallel : numba dispatchers
    """
    variants = []
    for suffix, parallel in (("serial", False), ("parallel", True)):
        copy = types.FunctionType(
            func.__code__,
            func.__globals__,
            f"{func.__name__}_{suffix}",
            func.__defaults__,
            func.__closure__,
        )
        copy.__qualname__ = f"{func.__qualname__}_{suffix}"
        copy.__doc__ = func.__doc__
        variants.append(kernel(copy, parallel=parallel))
    return tuple(variants)
