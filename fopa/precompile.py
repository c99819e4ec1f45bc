"""Compile fopa's numba kernels ahead of use, spread over processes.

The first run on a machine compiles every kernel it calls (about 100 s of one
core for all of them, ``docs/api.md``, "Compiling ahead"). Worker processes that
start on an empty cache all compile the same kernels at the same time, so a pool
of two spends two cores on one core's work. :func:`precompile` instead compiles
disjoint parts of the kernels in different processes; each writes its machine
code to numba's cache, where every later process (and every later run) loads it.

Only types are compiled, nothing runs: each kernel gets the one signature that
fopa's public functions call it with (``_SIGNATURES``, written out from the
types of the arguments they build). ``tests/test_precompile.py`` calls the public
functions on every path to a kernel, and a study of each kind, in a fresh process,
and fails if a kernel was called with a signature missing here or if a signature
here was not called.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import time
from dataclasses import dataclass

import numpy as np
from numba import typeof, types

from ._kernels.jit import cache_holds
from ._validate import check_jobs
from .network import TwoLayerNet

__all__ = [
    "PART_SECONDS",
    "REPRODUCTION_PARTS",
    "Precompiled",
    "cold_parts",
    "compile_first",
    "precompile",
]

# Argument type codes: V the network's kernel view; F float64, I int64, B bool;
# A1/A2/A3 writable C-ordered float64 arrays of 1/2/3 dimensions, R2 a read-only
# one; I1/I2 int64 arrays, U1 a uint64 array; T4 and F3 the optimizer-state tuples
# of the training epoch's update.
_PGA = "I A2 A1 F A1 A2 I F A1 I"  # the ascent kernels' common arguments

#: ``(part, module, kernel, argument codes)``; the parts are compiled in order
#: within a process, each part by one process. A kernel's callees are compiled
#: with it, so kernels that share many callees (the bounds and the certificates)
#: sit in one part.
_SIGNATURES = tuple(
    (part, module, name, tuple(args.format(pga=_PGA).split()))
    for part, module, name, args in (
        ("bounds", "ball", "ball_bounds", "V F R2 I A2 A1 F I"),
        ("bounds", "ball", "sphere_kkt", "A1 A1 F"),
        ("bounds", "ball", "householder_complement", "A1 A2"),
        ("bounds", "certificate", "factor_rows", "V I A2 A1 A2 F A2"),
        ("bounds", "certificate", "certify_rows", "V F R2 I A2 A1 A2 F"),
        ("bounds", "certificate", "radius", "B F F F F F F F"),
        ("bounds", "certificate", "norm_test_rows", "V I A2 A1 A2 F F"),
        ("ascent", "backtracking", "pga_backtracking", "V {pga} I A2 I I1 A1 I I I A1"),
        ("ascent", "pga", "pga_plain", "V {pga} A1 U1 I A2 I I I I A1"),
        ("ascent", "pga", "next_checkpoint", "I I"),
        ("ascent", "pga_gram", "pga_gram", "V R2 {pga}"),
        ("ascent", "linalg", "gram_matrix", "R2 R2"),
        ("training", "training_epoch", "pgd_part",
         "A2 A1 A1 F A1 I A2 A2 I A2 A1 I1 I I A2 F F I F B I1 A1 A1 A2 A1 A1 A1"),
        ("training", "training_epoch", "update_part",
         "I A2 A1 A1 A1 A2 A1 A1 A1 A3 A2 A2 A2 I I I A1 T4 F3 F F A1 I I"),
        ("training", "training_epoch", "gram_part", "A2 A2 I2 I1"),
        ("training", "training", "pgd_batch_gradient", "V R2 I A2 A1 A2 F F I F B I1"),
        ("training", "training", "gradient_at", "V I A2 A1 A2"),
        ("network", "network", "predict", "V A2"),
        ("network", "network", "loss_values", "V I A2 A1"),
        ("network", "network", "gradient_coefficients", "V I A2 A1"),
        ("network", "network", "input_gradient", "V I A2 A1"),
        ("network", "network", "input_hessian", "V I A2 A1"),
        ("network", "network", "parameter_coefficients", "V I A2 A1"),
        ("network", "linalg", "norm2", "A1"),
        ("network", "linalg", "row_norms", "A2"),
        ("network", "linalg", "all_finite", "A1"),
        ("network", "linalg", "largest_row_norm", "A2"),
        ("network", "linalg", "eigvalsh", "A2"),
        ("tools", "network", "hessian_vector_product", "V I A2 A1 A2"),
        ("tools", "network", "third_derivative", "V I A2 A1 A2 A2"),
        ("tools", "certificate", "dense_point", "V F R2 I A1 F A1 F"),
        ("tools", "activation", "activation_table", "I A1"),
        ("tools", "activation", "sup_abs_table", "I A2 A1 A1"),
        ("tools", "attacks", "pgd_run", "V I A2 A1 A2 F F I F I B F F I1"),
        ("tools", "attacks", "apgd_run", "V I A2 A1 A2 F I F F F B B F F I1"),
        ("tools", "attacks", "momentum_run", "V I A2 A1 A2 F A1 F I I B F F I1"),
        ("tools", "attacks", "frank_wolfe_run", "V I A2 A1 A2 F I I1"),
        ("tools", "attacks", "riemannian_run", "V I A2 A1 A2 F I F I I1"),
    )
)  # fmt: skip

#: Seconds of each part compiled alone from an empty cache (development machine; they
#: only balance the parts over processes).
PART_SECONDS = {"tools": 51.0, "bounds": 37.0, "training": 30.0, "ascent": 22.0, "network": 15.0}

#: The parts every study of ``fopa reproduce`` and a sweep call (not the attacks
#: of ``fopa attacks``, the dense certificate route or the third derivative).
REPRODUCTION_PARTS = ("bounds", "ascent", "training", "network")


@dataclass(frozen=True)
class Precompiled:
    """What :func:`precompile` did.

    Attributes
    ----------
    parts : tuple of tuple of str
        The parts of the kernels (names of :data:`PART_SECONDS`) each process
        compiled, one tuple per process; empty when every kernel asked for was
        already in the cache.
    part_seconds : tuple of float
        Wall-clock seconds of each process's compilation (loading from the cache
        when it is already there).
    kernels : int
        Kernel signatures compiled or loaded.
    seconds : float
        Wall-clock seconds of the whole call.
    """

    parts: tuple
    part_seconds: tuple
    kernels: int
    seconds: float


def _types():
    """The numba type of each argument code."""
    f8, i8 = types.float64, types.int64
    array = types.Array
    return {
        "V": typeof(TwoLayerNet.random(2, 2, rng=0).kernel_view),
        "F": f8, "I": i8, "B": types.boolean,
        "A1": array(f8, 1, "C"), "A2": array(f8, 2, "C"), "A3": array(f8, 3, "C"),
        "R2": array(f8, 2, "C", readonly=True),
        "I1": array(i8, 1, "C"), "I2": array(i8, 2, "C"), "U1": array(types.uint64, 1, "C"),
        "T4": typeof((np.zeros((1, 1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))),
        "F3": types.UniTuple(f8, 3),
    }  # fmt: skip


def _kernel_rows(parts):
    """``[(part, dispatcher, argument types)]`` of the kernels of ``parts`` (None: all),
    in compilation order."""
    codes = _types()
    return [
        (part, getattr(importlib.import_module(f"fopa._kernels.{module}"), name),
         tuple(codes[a] for a in args))
        for part, module, name, args in _SIGNATURES
        if parts is None or part in parts
    ]  # fmt: skip


def signatures(parts=None):
    """``[(dispatcher, argument types)]`` of the kernels of ``parts`` (default: all),
    in compilation order."""
    return [(kernel, args) for _, kernel, args in _kernel_rows(parts)]


def _compiled(kernel):
    """Whether ``kernel`` is a numba dispatcher (with ``NUMBA_DISABLE_JIT=1`` the
    kernels are plain Python functions: nothing to compile)."""
    return hasattr(kernel, "compile")


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def compile_parts(parts):
    """Compile (or load from numba's cache) the kernels of ``parts`` here; returns
    ``(number of signatures, seconds)``."""
    tick = time.perf_counter()
    chosen = [(kernel, args) for kernel, args in signatures(parts) if _compiled(kernel)]
    for kernel, args in chosen:
        kernel.compile(args)
    return len(chosen), time.perf_counter() - tick


def _check_parts(parts):
    parts = tuple(PART_SECONDS) if parts is None else tuple(parts)
    unknown = [p for p in parts if p not in PART_SECONDS]
    if unknown or not parts:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "none given"
        raise ValueError(f"parts: {what}; expected names among {', '.join(PART_SECONDS)}")
    return parts


def cold_parts(parts=None):
    """The parts (default: all) with a kernel signature that numba's cache does not
    hold for this machine and the current sources, in the given order
    (:func:`fopa._kernels.jit.cache_holds`; a part whose cache cannot be read counts
    as cold)."""
    parts = _check_parts(parts)
    cold = {part for part, kernel, args in _kernel_rows(parts)
            if _compiled(kernel) and cache_holds(kernel, args) is not True}  # fmt: skip
    return tuple(p for p in parts if p in cold)


def split_parts(parts, jobs):
    """``parts`` as at most ``jobs`` groups of about equal compile time (longest first,
    each to the least loaded group), in the order of :data:`PART_SECONDS` within a
    group."""
    groups = [[] for _ in range(max(1, min(jobs, len(parts))))]
    load = [0.0] * len(groups)
    for part in sorted(parts, key=lambda p: -PART_SECONDS[p]):
        k = load.index(min(load))
        groups[k].append(part)
        load[k] += PART_SECONDS[part]
    return [tuple(p for p in PART_SECONDS if p in g) for g in groups]


def precompile(jobs=1, *, parts=None, only_cold=False) -> Precompiled:
    """Compile fopa's kernels into numba's cache, in ``jobs`` processes.

    Parameters
    ----------
    jobs : int
        Processes (>= 1). With 1 the kernels are compiled here (this process then
        has them in memory); with more, fresh processes compile disjoint parts
        and write them to the cache (``NUMBA_CACHE_DIR`` if set), and this
        process loads them from there when it first calls them.
    parts : sequence of str, optional
        Names among :data:`PART_SECONDS` (default: all);
        :data:`REPRODUCTION_PARTS` are those ``fopa reproduce`` needs.
    only_cold : bool
        Skip the parts whose kernels the cache already holds.

    Returns
    -------
    Precompiled

    Notes
    -----
    Nothing is computed, so no result depends on it: a later run loads the machine
    code from the cache instead of compiling it, as any second run does
    (``tests/test_reproducibility.py`` compares the results of a cold and a warm
    cache). Where the cache already holds a kernel, compiling it only loads it.
    """
    check_jobs(jobs)
    tick = time.perf_counter()
    parts = cold_parts(parts) if only_cold else _check_parts(parts)
    if not parts:
        return Precompiled(parts=(), part_seconds=(), kernels=0,
                           seconds=time.perf_counter() - tick)  # fmt: skip
    groups = split_parts(parts, jobs)
    if len(groups) == 1:
        done = [compile_parts(groups[0])]
    else:
        # a Pool, not an executor: leaving the block (an interrupt here) terminates
        # the workers at once instead of waiting for their compilation to end; they
        # ignore Ctrl-C themselves (no traceback of theirs on the terminal)
        with multiprocessing.Pool(len(groups), initializer=_ignore_sigint) as pool:
            done = pool.map(compile_parts, groups, chunksize=1)
    return Precompiled(
        parts=tuple(groups), part_seconds=tuple(s for _, s in done),
        kernels=sum(n for n, _ in done), seconds=time.perf_counter() - tick,
    )  # fmt: skip


def compile_first(jobs, stream, parts=REPRODUCTION_PARTS):
    """Before a pool of ``jobs`` workers starts: the kernels of ``parts`` that numba's
    cache does not hold yet, compiled in up to ``jobs`` processes, each a different
    part (:func:`precompile`), so that the workers do not all compile the same
    kernels at the same time. Says so on ``stream``; nothing when the cache is warm.
    Returns the :class:`Precompiled` or None."""
    cold = cold_parts(parts)
    if not cold:
        return None
    print(f"compiling the kernels into numba's cache first ({', '.join(cold)}; "
          f"{min(jobs, len(cold))} processes)", file=stream, flush=True)  # fmt: skip
    return precompile(jobs, parts=cold)
