"""The one place where numba options live.

Every compiled kernel in fopa is built with :func:`kernel`. Options:

* ``cache=True``: compiled machine code is stored next to the sources (or in
  ``NUMBA_CACHE_DIR``) so that only the first run on a machine pays compile time.
* ``fastmath`` with ``contract`` (fused multiply-add), ``nsz`` and ``arcp`` only.
  ``nnan`` and ``ninf`` are left out on purpose: NaN and inf checks must keep
  working. ``reassoc`` is left out because it lets LLVM rewrite the Horner
  polynomials of :func:`fopa.activations._exp_nonpositive` and costs digits,
  and ``afn`` so that ``log1p`` and ``erfc`` stay the library functions.
* ``error_model="numpy"``: a float division by zero gives inf instead of raising,
  which removes a branch per division and lets loops vectorise (fopa guards its
  divisions itself).
"""

from __future__ import annotations

import numba

FASTMATH = frozenset({"contract", "nsz", "arcp"})


def kernel(func):
    """Compile a kernel with fopa's numba options.

    Kernels are serial: their matrix products call BLAS, which has threads of its
    own, and a numba thread pool beside it makes the two compete for the cores.
    """
    return numba.njit(cache=True, fastmath=set(FASTMATH), nogil=True, error_model="numpy")(func)


def scalar_kernel(func):
    """Compile a small scalar helper called from kernels (LLVM inlines it there)."""
    return numba.njit(cache=True, fastmath=set(FASTMATH), nogil=True, error_model="numpy")(func)
