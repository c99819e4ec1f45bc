"""The one place where numba options live.

Every compiled function in fopa is built with :func:`jit`. Options:

* ``cache=True``: compiled machine code is stored next to the sources (or in
  ``NUMBA_CACHE_DIR``) so that only the first run on a machine pays compile time.
* ``fastmath`` with ``contract`` (fused multiply-add), ``nsz`` and ``arcp`` only.
  ``nnan`` and ``ninf`` are left out on purpose: NaN and inf checks must keep
  working. ``reassoc`` is left out because it lets LLVM rewrite the Horner
  polynomial of :func:`fopa._kernels.activation.exp_nonpositive` and costs digits,
  and ``afn`` so that ``log1p`` and ``erfc`` stay the library functions.
* ``error_model="numpy"``: a float division by zero gives inf instead of raising,
  which removes a branch per division and lets loops vectorise (fopa guards its
  divisions itself).
* ``nogil=True``: row blocks of the ascent run on Python threads
  (:mod:`fopa._parallel`).

:func:`jit_exact` is the same without ``fastmath``: every operation rounds as IEEE
754 says, whatever LLVM does around it. Fused multiply-adds (``contract``) and
reciprocals (``arcp``) are each correct, but where LLVM applies them is a choice
of the optimizer that can differ between two compiles of the same function, and
was measured to: the Adam update of the compiled epoch
(:func:`fopa._kernels.training_epoch.update_part`, which calls a helper) fused its
second-moment multiply-add differently in the machine code numba stored in its
cache than in the code it had compiled in the process that stored it, so a
process with a cold cache and one with a warm cache trained to networks that
differed in the last bit. Kernels whose results a later step compares or selects
on (optimizer updates, where one ulp grows over epochs) use :func:`jit_exact`;
they are elementwise and memory-bound, so the flags bought no speed there.
``tests/test_reproducibility.py`` compares a cold-cache and a warm-cache process.

Kernels are serial: their matrix products call BLAS, which has threads of its
own, and a numba thread pool beside it makes the two compete for the cores.
Small helpers called from kernels are compiled the same way (LLVM inlines them).
"""

from __future__ import annotations

import numba

FASTMATH = frozenset({"contract", "nsz", "arcp"})


def jit(func):
    """Compile ``func`` with fopa's numba options."""
    return numba.njit(cache=True, fastmath=set(FASTMATH), nogil=True, error_model="numpy")(func)


def jit_exact(func):
    """Compile ``func`` with fopa's numba options but without ``fastmath``: its
    floating-point results do not depend on how LLVM schedules it (see above)."""
    return numba.njit(cache=True, fastmath=False, nogil=True, error_model="numpy")(func)


def cache_is_warm(dispatcher):
    """Whether ``dispatcher`` (a function compiled by :func:`jit`) has machine code in
    numba's cache: True, False, or None when it cannot tell (numba's cache layout is
    private and read defensively)."""
    import os

    try:
        return bool(os.path.exists(dispatcher._cache._cache_file._index_path))
    except (AttributeError, TypeError, OSError):
        return None


def cache_holds(dispatcher, args):
    """Whether numba's cache holds machine code of ``dispatcher`` (compiled by
    :func:`jit`) for the argument types ``args`` (a tuple of numba types), for this
    machine and the function's current source: True, False, or None when it cannot
    tell (numba's cache layout is private and read defensively)."""
    try:
        cache = dispatcher._cache
        key = cache._index_key(tuple(args), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 -- any change of numba's internals: cannot tell
        return None
