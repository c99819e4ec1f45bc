"""Run independent rows of a compiled loop on several threads.

The ascent kernels treat every row (one input, one restart) as an independent
run. For batches with enough work per iteration, fopa splits the rows into
contiguous blocks, runs the same ``nogil`` kernel on each block in its own
thread, and stacks the outputs. While the blocks run, BLAS is held to one
thread per call: two thread pools (fopa's blocks and BLAS's workers) on the
same cores compete, and each block's products are then single-threaded.

Reproducibility: how the rows are split depends only on the shapes and the
machine's ``numba.config.NUMBA_NUM_THREADS`` (the number of cores by default),
never on how many threads are used at run time (``numba.get_num_threads()``, set
with ``numba.set_num_threads``),
so the same call gives the same bits with one thread or many. BLAS computes
each block the same way whether the blocks run one after another or together.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

# Below this many multiply-adds per iteration (rows x d x m), a batch runs as one
# block on BLAS's own threads: splitting costs more than it saves.
MIN_WORK = 1_000_000
MIN_ROWS = 8  # rows per block, at least

_lock = threading.Lock()
_state = {"pool": None, "workers": 0, "blas": None, "active": 0, "saved": None}


def share_blas_between_workers(jobs: int) -> int:
    """Set-up of one of ``jobs`` worker processes: hold every loaded BLAS (NumPy's
    and SciPy's, which numba's kernels call; both are loaded once fopa is imported)
    to the cores shared out, at least one thread; returns that count. Workers whose
    BLAS pools each take every core spin against each other: measured on 2 cores,
    two concurrent studies ran 7x slower than one alone (the checkpoint study's quick
    configuration: 16.8 s alone, 118 s each as a pair, 10.7 s each as a pair of
    one-thread workers)."""
    from threadpoolctl import threadpool_limits

    threads = max(1, (os.cpu_count() or 1) // jobs)
    threadpool_limits(limits=threads, user_api="blas")
    return threads


def _after_fork_in_child():
    """A forked child has none of the parent's threads: start from scratch."""
    global _lock
    _lock = threading.Lock()
    _state.update(pool=None, workers=0, active=0, saved=None)


os.register_at_fork(after_in_child=_after_fork_in_child)


def row_blocks(n_rows: int, d: int, m: int) -> list[tuple[int, int]]:
    """Contiguous row ranges [(start, stop), ...] for a batch (one range: no split).

    Depends only on the shapes and ``numba.config.NUMBA_NUM_THREADS``.
    """
    most = min(numba.config.NUMBA_NUM_THREADS, n_rows // MIN_ROWS)
    if most < 2 or n_rows * d * m < MIN_WORK:
        return [(0, n_rows)]
    edges = np.linspace(0, n_rows, most + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def thread_count() -> int:
    """``numba.get_num_threads()``, without starting numba's threading layer.

    Asking numba starts its layer (OpenMP, TBB or its own work queue), which fopa
    never uses otherwise. Until the layer runs, nobody can have called
    ``numba.set_num_threads``, so the count is ``NUMBA_NUM_THREADS``.
    """
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", True):
        return numba.get_num_threads()
    return numba.config.NUMBA_NUM_THREADS


def _blas_controllers():
    """The loaded BLAS libraries' thread controls (found once: it scans the process)."""
    if _state["blas"] is None:
        controller = ThreadpoolController()
        _state["blas"] = [c for c in controller.lib_controllers if c.user_api == "blas"]
    return _state["blas"]


def _enter_single_threaded_blas():
    with _lock:
        if _state["active"] == 0:
            libs = _blas_controllers()
            _state["saved"] = [lib.get_num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _state["active"] += 1


def _leave_single_threaded_blas():
    with _lock:
        _state["active"] -= 1
        if _state["active"] == 0:
            for lib, count in zip(_blas_controllers(), _state["saved"], strict=True):
                lib.set_num_threads(count)


@contextmanager
def single_threaded_blas(hold: bool = True):
    """Hold every loaded BLAS to one thread inside the block (when ``hold``); nested
    and concurrent uses share one count, the thread counts restored by the last."""
    if not hold:
        yield
        return
    _enter_single_threaded_blas()
    try:
        yield
    finally:
        _leave_single_threaded_blas()


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """A pool with at least ``workers`` threads (kept for later calls)."""
    with _lock:
        if _state["pool"] is None or _state["workers"] < workers:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=False)
            _state["pool"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fopa")
            _state["workers"] = workers
        return _state["pool"]


def _stacked(parts, stack):
    """The blocks' outputs as the batch's: each output concatenated along its axis in
    ``stack`` (None: the first block's value)."""
    out = []
    for k, axis in enumerate(stack):
        values = [part[k] for part in parts]
        out.append(values[0] if axis is None else np.concatenate(values, axis=axis))
    return tuple(out)


def run_blocks(function, blocks, stack):
    """Call ``function(start, stop)`` for every block and stack the outputs.

    Parameters
    ----------
    function : callable
        Runs the rows ``start:stop`` and returns a tuple of arrays (or None).
    blocks : list of (start, stop)
        From :func:`row_blocks`.
    stack : sequence of int or None
        For each output, the axis along which blocks are concatenated (None:
        take the first block's value).

    Returns
    -------
    tuple
        The outputs of the whole batch.
    """
    if len(blocks) == 1:
        return function(*blocks[0])
    threads = min(thread_count(), len(blocks))
    with single_threaded_blas():
        if threads > 1:
            pool = worker_pool(threads)
            parts = [f.result() for f in [pool.submit(function, *b) for b in blocks]]
        else:
            parts = [function(*block) for block in blocks]
    return _stacked(parts, stack)


#: Seconds between two looks at a pending Ctrl-C while kernels run on workers.
POLL = 0.05


def run_blocks_stoppable(function, blocks, stack, pending, stop):
    """:func:`run_blocks` on worker threads while the calling thread watches for Ctrl-C.

    ``function(start, stop_flag)`` style kernels check ``stop[0]`` (an int64 array
    of one element) every iteration; as soon as ``pending()`` says an interrupt
    arrived, ``stop[0]`` is set to 1, the kernels return early, and the caller
    (inside :func:`fopa._interrupts.deferred_sigint`) raises ``KeyboardInterrupt``
    and drops their partial outputs. With one block BLAS keeps its threads.
    """
    single = len(blocks) == 1
    with single_threaded_blas(hold=not single):
        pool = worker_pool(min(max(thread_count(), 1), len(blocks)))
        futures = [pool.submit(function, *block) for block in blocks]
        while True:
            done, running = wait(futures, timeout=POLL, return_when=FIRST_EXCEPTION)
            if pending():
                stop[0] = 1
            if not running or any(f.exception() for f in done):
                break
        wait(futures)
        parts = [f.result() for f in futures]
    if single:
        return parts[0]
    return _stacked(parts, stack)
