"""The local process pool of a sweep: one cell per worker at a time, watched.

Each worker is a spawned process with a pipe to the runner; it takes one cell,
runs it (:func:`fopa.sweeps.run_cell`, which stops the cell at its time limit
with an alarm) and sends back the record. The runner knows which cell each
worker holds and since when, so it can:

- fail exactly the cell of a worker that died (a segfault, ``os._exit``, the
  out-of-memory killer) and start a new worker for the rest;
- kill a worker whose cell outlived its time limit by :func:`grace` seconds: the
  alarm could not reach it (a cell stuck in one long call of foreign compiled
  code, or with the alarm's signal ignored); the cell is recorded as failed
  with why, and a new worker takes the next cell;
- stop every worker at once when the run is interrupted.

Workers ignore SIGINT (Ctrl-C is the runner's) and end when the runner goes,
even by SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from .._parallel import share_blas_between_workers
from .._version import __version__

__all__ = ["MAIN_GUARD", "failed_record", "grace", "pool_results"]

#: Why a local pool could not start, in the one case seen: spawn re-imports the main
#: script in every worker, which then calls run_sweep again before it is a worker.
MAIN_GUARD = (
    "the sweep's worker processes could not start. A script that calls "
    "run_sweep(..., jobs > 1) must call it under 'if __name__ == \"__main__\":' (each "
    "worker imports the script again; docs/sweeps.md, 'Running it locally'); no cell was run"
)


#: New workers in a row that may die before they are ready before the run gives up.
MAX_RESTARTS = 3


def grace(limit):
    """Seconds past a cell's time limit before the runner kills its worker: 10 % of
    the limit, at least 5 s (the alarm's own stop and the record's trip back) and
    at most 60 s."""
    return min(max(0.1 * limit, 5.0), 60.0)


def _watch_parent(parent):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _worker_start(parent, jobs):
    """Set up a worker: Ctrl-C is the runner's (at a terminal it reaches the whole
    process group; the runner stops the workers itself), and the worker ends when
    its runner goes, even by SIGKILL (Linux: ``PR_SET_PDEATHSIG``; everywhere: a
    thread that watches the parent's pid). BLAS gets the cores shared out between
    the ``jobs`` workers (:func:`fopa._parallel.share_blas_between_workers`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share_blas_between_workers(jobs)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the runner died before this worker got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _worker_main(conn, parent, jobs, run_cell):
    """A worker's life: say it is ready, then run cells (``run_cell(*task)``) until
    told to stop."""
    _worker_start(parent, jobs)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(run_cell(*task))


class _Worker:
    """A worker process, its end of the pipe, and the cell it holds (with the time
    it was handed over)."""

    def __init__(self, context, jobs, run_cell):
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, os.getpid(), jobs, run_cell),
            name="fopa-sweep-worker",
        )  # fmt: skip
        # born ignoring SIGINT (an ignored signal stays ignored across exec), so a Ctrl-C
        # while a worker imports its modules does not print its traceback
        here = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if here else None
        try:
            self.process.start()
        finally:
            if here:
                signal.signal(signal.SIGINT, previous)
        child.close()
        self.ready = False
        self.cell = None
        self.since = None

    def give(self, cell, task):
        self.conn.send(task)
        self.cell, self.since = cell, time.monotonic()

    def receive(self):
        """The worker's message, or None when it died (its end of the pipe closed:
        then wait for the process to be gone, so its exit code is known)."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5.0)
            return None

    def take(self):
        cell, self.cell, self.since = self.cell, None, None
        return cell

    def stop(self, kill=False, politely=False):
        """End the process: ``politely`` (an idle worker after the last cell) asks it to
        return first; otherwise SIGTERM, or SIGKILL with ``kill``."""
        if politely and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(timeout=5.0)
            except OSError:
                pass
        if self.process.is_alive():
            self.process.kill() if kill else self.process.terminate()
        self.process.join(timeout=5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def failed_record(error, seconds, worker):
    """The record of a cell that failed outside :func:`fopa.sweeps.run_cell` (its worker
    died or was killed, or it never returned), in ``run_cell``'s form, ending now."""
    now = time.time()
    return dict(status="failed", outputs=None, error=error, started=now - seconds,
                finished=now, seconds=seconds, worker=worker, fopa_version=__version__)  # fmt: skip


def _exit(worker):
    code = worker.process.exitcode
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"


def _died(worker):
    return (
        f"the worker process running this cell died ({_exit(worker)}) before it returned a "
        "result: a crash in compiled code, os._exit, or the out-of-memory killer"
    )


def _start(context, jobs, run_cell):
    """``jobs`` workers, each confirmed ready (else :data:`MAIN_GUARD`)."""
    workers = [_Worker(context, jobs, run_cell) for _ in range(jobs)]
    try:
        waiting = list(workers)
        while waiting:
            events = wait([w.conn for w in waiting] + [w.process.sentinel for w in waiting])
            for worker in [w for w in waiting if w.conn in events or w.process.sentinel in events]:
                if not worker.conn.poll() or worker.receive() != "ready":
                    raise RuntimeError(MAIN_GUARD)  # it died before it was ready
                worker.ready = True
                waiting.remove(worker)
    except BaseException:
        for worker in workers:
            worker.stop(kill=True)
        raise
    return workers


def pool_results(cells, experiment, jobs, limit, run_cell):
    """Yield ``(cell, record)`` for every cell of the iterable ``cells``, run by
    ``jobs`` worker processes, in the order they finish (the records of
    ``run_cell(experiment, params, seed, limit)``, :func:`fopa.sweeps.run_cell`;
    a worker that died or was killed gives a failed
    record for its cell, ``worker = "runner"``). Closing the generator (or an
    interrupt) stops every worker now."""
    context = multiprocessing.get_context("spawn")  # no fork of BLAS/numba threads
    workers = _start(context, jobs, run_cell)
    queue = iter(cells)
    exhausted = complete = False
    restarts = 0  # new workers in a row that died before they were ready
    held = []  # a cell whose hand-over failed, given to the next worker
    try:
        while True:
            for index, worker in enumerate(workers):
                if exhausted or not worker.ready or worker.cell is not None:
                    continue
                if not worker.process.is_alive():  # died while idle: nothing lost
                    worker.stop()
                    workers[index] = _Worker(context, jobs, run_cell)
                    continue
                cell = held.pop() if held else next(queue, None)
                if cell is None:
                    exhausted = True
                    break
                try:
                    worker.give(cell, (experiment, cell.params, cell.seed, limit))
                except OSError:  # its pipe broke as it was handed over: next worker
                    held.append(cell)
                    worker.stop()
                    workers[index] = _Worker(context, jobs, run_cell)
            busy = [w for w in workers if w.cell is not None or not w.ready]
            if not busy:
                complete = True
                return
            timeout = None
            if limit is not None:
                deadlines = [w.since + limit + grace(limit) for w in busy if w.cell is not None]
                timeout = max(min(deadlines) - time.monotonic(), 0.0) if deadlines else None
            events = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
            for index, worker in enumerate(workers):
                if worker not in busy:
                    continue
                if worker.conn in events or worker.process.sentinel in events:
                    message = worker.receive() if worker.conn.poll() else None
                    if message == "ready":
                        worker.ready = True
                        restarts = 0
                    elif message is not None:
                        yield worker.take(), message
                    elif not worker.process.is_alive():
                        cell = worker.cell
                        if cell is None:  # a new worker died before it was ready
                            restarts += 1
                            if restarts > MAX_RESTARTS:
                                raise RuntimeError(
                                    f"the sweep's worker processes die as they start "
                                    f"({_exit(worker)}); no more cells were run"
                                )
                        else:
                            elapsed = time.monotonic() - worker.since
                            record = failed_record(_died(worker), elapsed, "runner")
                        worker.stop()
                        workers[index] = _Worker(context, jobs, run_cell)
                        if cell is not None:
                            yield cell, record
                elif worker.cell is not None and limit is not None:
                    elapsed = time.monotonic() - worker.since
                    if elapsed >= limit + grace(limit):
                        cell = worker.cell
                        worker.stop(kill=True)
                        workers[index] = _Worker(context, jobs, run_cell)
                        why = (
                            f"the cell ran longer than its time limit of {limit:g} s and did not "
                            "stop at it (stuck in compiled code that does not return to Python, "
                            f"or with SIGALRM ignored); the runner killed its worker process "
                            f"after {elapsed:.1f} s"
                        )
                        yield cell, failed_record(why, elapsed, "runner")
    finally:  # every cell ran: the workers end on their own; else stop them now
        for worker in workers:
            worker.stop(kill=worker.cell is not None, politely=complete)
