"""Running a sweep: here, in a local process pool, or on a Dask cluster; one writer.

Workers only compute (:func:`run_cell`); every result flows back to the process
that called :func:`run_sweep`, which writes it to the store in one transaction
as soon as it arrives. Rerunning the same sweep skips the cells the store
already holds as done (and, unless ``retry_failed``, as failed).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
import threading
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from .._json import jsonable
from .._validate import as_positive_scalar, check_jobs
from .._version import __version__
from ..precompile import compile_first
from .pool import failed_record, grace, pool_results
from .spec import SweepSpec, canonical_json, load_spec, resolve_experiment
from .store import ResultStore, StoreError

__all__ = ["SweepSummary", "run_cell", "run_sweep"]

#: Seconds to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT = 10.0
#: Cells in flight per Dask worker: enough to keep workers busy, few enough that an
#: interrupted sweep drops little queued work and a huge grid is not all submitted.
WINDOW_PER_WORKER = 4


def _cell_json(value):
    """A cell's outputs as plain JSON values (lists inside, string keys)."""
    if isinstance(value, (list, tuple)):
        return [_cell_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell_json(v) for k, v in value.items()}
    return jsonable(value)


#: Default time limit of one cell, in seconds (``run_sweep(cell_time_limit=...)``).
CELL_TIME_LIMIT = 3600.0


class CellTimeout(Exception):
    """A cell ran longer than its time limit."""


@contextmanager
def _time_limit(seconds):
    """Raise :class:`CellTimeout` in this process's main thread after ``seconds``.

    A SIGALRM timer: it interrupts Python code and fopa's compiled work (which
    returns to Python between pieces of a fraction of a second), but not a cell
    stuck inside one long call of foreign compiled code; outside the main thread
    (Dask's worker threads) there is no timer and no limit.
    """
    usable = (
        seconds is not None and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )  # fmt: skip
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CellTimeout(f"the cell ran longer than its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def run_cell(experiment, params, seed, time_limit=None) -> dict:
    """Run one cell and describe how it went; never raises for the cell's own errors.

    Parameters
    ----------
    experiment : str
        A built-in experiment name or ``"module:function"``.
    params : dict
        Keyword arguments of the experiment.
    seed : int
    time_limit : float, optional
        Seconds after which the cell is stopped and recorded as failed
        (:class:`CellTimeout`); None for no limit.

    Returns
    -------
    dict
        ``status`` ("done" or "failed"), ``outputs`` (JSON-ready dict, or None),
        ``error`` (traceback text, or None), ``started``/``finished`` (epoch
        seconds), ``seconds`` (the cell's own time), ``worker`` (host:pid) and
        ``fopa_version``.
    """
    started = time.time()
    tick = time.perf_counter()
    outputs, error = None, None
    try:
        with _time_limit(time_limit):
            func = resolve_experiment(experiment)
            check = getattr(func, "check", None)
            if check is not None:  # every cell, also those the spec did not check eagerly
                check(dict(params))
            value = func(**params, seed=seed)
        if not isinstance(value, dict):
            raise TypeError(f"an experiment must return a dict; got {type(value).__name__}")
        outputs = _cell_json(value)
        canonical_json(outputs)  # JSON with finite numbers only, or a clear failure
    except Exception:  # noqa: BLE001 - recorded as a failed cell, the sweep goes on
        outputs, error = None, traceback.format_exc()
    except SystemExit as exc:  # sys.exit in a cell: a failed cell, not the sweep's end
        outputs = None
        error = f"the cell called sys.exit({exc.code!r})\n{traceback.format_exc()}"
    return dict(
        status="done" if error is None else "failed", outputs=outputs, error=error,
        started=started, finished=time.time(), seconds=time.perf_counter() - tick,
        worker=f"{socket.gethostname()}:{os.getpid()}", fopa_version=__version__,
    )  # fmt: skip


def _collect(future) -> dict:
    """A finished future's cell record; an error of the executor itself (a dead or
    lost worker) becomes a failed record for that cell only."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return failed_record(text, 0.0, "executor")


@dataclass(frozen=True)
class SweepSummary:
    """What a call of :func:`run_sweep` did.

    ``total`` cells in the spec; ``skipped`` were already in the store; ``ran``
    finished in this call (``ran_done`` + ``ran_failed``); ``done``/``failed``
    are the store's counts afterwards; ``seconds`` is wall-clock time.
    """

    name: str
    store: str
    total: int
    skipped: int
    ran: int
    ran_done: int
    ran_failed: int
    done: int
    failed: int
    seconds: float


class _Progress:
    """A tqdm bar of cells (done and failed counted, rate and ETA from tqdm), on
    ``stream``; nothing when disabled."""

    def __init__(self, total, done, failed, pending, stream, enabled):
        from tqdm import tqdm

        self.done, self.failed = done, failed
        self.bar = tqdm(
            total=total, initial=done + failed, file=stream, disable=not enabled,
            unit="cell", dynamic_ncols=True, mininterval=0.2, smoothing=0.1,
        )  # fmt: skip
        self._describe()

    def _describe(self):
        self.bar.set_postfix_str(f"{self.done} done, {self.failed} failed", refresh=False)

    def update(self, status=None):
        if status is None:
            self.bar.refresh()
            return
        if status == "done":
            self.done += 1
        else:
            self.failed += 1
        self._describe()
        self.bar.update(1)

    def close(self):
        self.bar.close()


def _as_spec(spec):
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        return SweepSpec.from_dict(spec)
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec)
    raise TypeError(f"spec must be a SweepSpec, a dict or a TOML path; got {type(spec).__name__}")


def _dask_client(scheduler):
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(
            "running on a Dask cluster needs the 'dask' extra: pip install -e \".[dask]\""
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler:
        raise TypeError(f"scheduler must be an address string or a Client; got {scheduler!r}")
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), True
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None


def _stuck_here(store, spec, cell, limit, stream):
    """A cell run in this process is still running :func:`~fopa.sweeps.pool.grace`
    seconds past its time limit: the alarm cannot reach it (one long call of foreign
    compiled code), and nothing can stop it in this process. Record it as failed
    (from this watchdog thread, on a connection of its own) so that a rerun passes
    over it, and say so."""
    waited = limit + grace(limit)
    error = (
        f"the cell ran longer than its time limit of {limit:g} s and did not stop at it "
        "(stuck in compiled code that does not return to Python, or with SIGALRM ignored); "
        f"in the runner's own process (jobs = 1) it cannot be stopped: recorded as failed "
        f"after {waited:.1f} s"
    )
    record = failed_record(error, waited, f"{socket.gethostname()}:{os.getpid()}")
    try:
        with ResultStore(store, spec) as results:
            results.record(cell, record)
        saved = "it is recorded as failed, so a rerun passes over it"
    except StoreError as exc:
        saved = f"it could not be recorded ({exc})"
    stream.write(
        f"\nfopa sweep: cell {cell.index} (seed {cell.seed}) is still running {waited:.0f} s "
        f"after its time limit of {limit:g} s began, inside code the limit cannot interrupt; "
        f"{saved}. This process cannot stop it: end it (kill {os.getpid()}) and rerun, "
        "with --jobs 2 or more to have such cells stopped by killing their worker.\n"
    )
    stream.flush()


def _results_here(cells, experiment, limit, store, spec, stream):
    for cell in cells:
        watchdog = None
        if limit is not None:
            watchdog = threading.Timer(
                limit + grace(limit), _stuck_here, args=(store, spec, cell, limit, stream)
            )
            watchdog.daemon = True
            watchdog.start()
        try:
            result = run_cell(experiment, cell.params, cell.seed, limit)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        yield cell, result


def _results_dask(cells, experiment, client):
    from distributed import as_completed

    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    queue = iter(cells)
    running = {}

    def submit(count):
        for cell in itertools.islice(queue, count):
            future = client.submit(run_cell, experiment, cell.params, cell.seed, pure=False)
            running[future] = cell
            yield future

    stream = as_completed(list(submit(WINDOW_PER_WORKER * workers)))
    try:
        for future in stream:
            cell = running.pop(future)
            result = _collect(future)
            stream.update(submit(1))  # keep the cluster busy, the queue bounded
            yield cell, result
    finally:  # interrupted: release the cluster from cells nobody will record
        client.cancel(list(running))


@contextmanager
def _runner_lock(store):
    """Hold an exclusive lock on ``<store>.lock`` while a sweep runs on the store, so a
    second runner is refused instead of computing every cell again (only the first
    result of a cell is kept). The lock is the kernel's (``flock``): a runner that
    dies, even by SIGKILL, releases it. Where ``fcntl`` is missing, no lock."""
    try:
        import fcntl
    except ImportError:  # (not POSIX)
        yield
        return
    path = os.fspath(store) + ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot make the runner's lock {path!r} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise StoreError(
                f"store {os.fspath(store)!r} is busy: another sweep runs on it ({holder}); "
                "wait for it to end or use another --store (--status and --export still work)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _check_definitions(results, spec, stored):
    """Refuse a store whose finished cells were defined otherwise than the spec's cells
    are now (same spec, but the experiment's defaults changed: the stored ``params``
    and ``cell_key`` differ from what the cell would be today). Resuming would mix
    the two definitions in one store. ``stored``: :meth:`ResultStore.keys`; only
    those cells are built."""
    changed = [c for c in spec.cells_at(sorted(stored)) if stored[c.index][0] != c.key]
    if not changed:
        return
    first = changed[0]
    was = results.stored_params(first.index)
    diff = {
        k: (was.get(k), first.params.get(k))
        for k in sorted(set(was) | set(first.params))
        if was.get(k) != first.params.get(k)
    }
    shown = ", ".join(f"{k}: stored {a!r}, now {b!r}" for k, (a, b) in diff.items())
    raise StoreError(
        f"store {results.path!r}: {len(changed)} finished cell(s) were computed with another "
        f"definition of the experiment's cells than this fopa gives them (cell "
        f"{first.index}: {shown or 'same parameters, another key'}); the experiment's "
        "defaults changed. Use a new --store (resuming would mix both definitions)"
    )


def run_sweep(
    spec,
    store,
    *,
    jobs=1,
    scheduler=None,
    retry_failed=False,
    progress=False,
    stream=None,
    cell_time_limit=CELL_TIME_LIMIT,
) -> SweepSummary:
    """Run every unfinished cell of a sweep and record each in the store.

    Parameters
    ----------
    spec : SweepSpec, dict or path to a TOML file
        Validated completely before any work starts.
    store : str or path
        The SQLite results store; created if missing, resumed if it holds this
        sweep, refused (:class:`fopa.sweeps.StoreError`) if it holds another one
        or is corrupt, or busy (another runner holds ``<store>.lock``).
    jobs : int
        1: run cells in this process; more: a local pool of that many processes
        (on an empty numba cache the kernels are first compiled in parallel,
        :func:`fopa.precompile.compile_first`, so that no cell's time limit pays
        for compilation and the workers do not all compile the same kernels).
    scheduler : str or distributed.Client, optional
        Run cells on a Dask cluster (``"tcp://host:port"`` or a client); results
        still come back here to be written. Exclusive with ``jobs > 1``.
    retry_failed : bool
        Also rerun cells recorded as failed.
    cell_time_limit : float or None
        Seconds after which a running cell is stopped and recorded as failed
        (default :data:`CELL_TIME_LIMIT`, one hour; None for no limit). Applies to
        cells run here and in the local pool, not on a Dask cluster. An alarm stops
        the cell (Python code, and fopa's compiled work between its pieces); in the
        local pool (``jobs > 1``) a cell the alarm cannot reach (stuck inside one call
        of foreign compiled code) is ended by killing its worker
        :func:`fopa.sweeps.pool.grace` seconds after the limit. With ``jobs = 1``
        such a cell cannot be stopped (it runs in this process): at the same time it
        is recorded as failed and a message on ``stream`` says to end the run and
        rerun (the rerun passes over it).
    progress : bool
        Show a progress line (cells done, failed, rate, ETA) on ``stream``.
    stream : file, optional
        Default ``sys.stderr``.

    Returns
    -------
    SweepSummary
    """
    check_jobs(jobs)
    if scheduler is not None and jobs != 1:
        raise ValueError("give either jobs (a local pool) or scheduler (a Dask cluster), not both")
    spec = _as_spec(spec)
    if cell_time_limit is not None:
        cell_time_limit = as_positive_scalar("cell_time_limit", cell_time_limit)
    tick = time.perf_counter()
    with ExitStack() as held:
        results = held.enter_context(ResultStore(store, spec))
        results.check_writable()  # before any cell is computed
        held.enter_context(_runner_lock(store))
        stored = results.keys()  # one read of the store for both uses
        _check_definitions(results, spec, stored)
        rerun = {"failed"} if retry_failed else set()
        skip = {i for i, (_, status) in stored.items() if status not in rerun}
        pending = spec.n_cells - len(skip)
        cells = spec.iter_cells(skip)  # one at a time, as workers free up
        done = sum(1 for _, s in stored.values() if s == "done")
        failed = 0 if retry_failed else len(stored) - done
        stream = sys.stderr if stream is None else stream
        if pending and scheduler is None and jobs > 1:
            compile_first(jobs, stream)  # not the same kernels in every worker at once
        bar = _Progress(spec.n_cells, done, failed, pending, stream, progress)
        bar.update()
        ran_done = ran_failed = 0
        owned = None
        outcomes = None
        try:
            if not pending:
                outcomes = iter(())
            elif scheduler is not None:
                client, own = _dask_client(scheduler)
                owned = client if own else None
                outcomes = _results_dask(cells, spec.experiment, client)
            elif jobs > 1:
                outcomes = pool_results(cells, spec.experiment, jobs, cell_time_limit, run_cell)
            else:
                outcomes = _results_here(cells, spec.experiment, cell_time_limit, store, spec,
                                         stream)  # fmt: skip
            for cell, result in outcomes:
                results.record(cell, result)
                bar.update(result["status"])
                if result["status"] == "done":
                    ran_done += 1
                else:
                    ran_failed += 1
        finally:
            if hasattr(outcomes, "close"):
                outcomes.close()  # stops the executor's work now, not at garbage collection
            bar.close()
            if owned is not None:
                owned.close()
        status = results.status()
    return SweepSummary(
        name=spec.name, store=os.fspath(store), total=spec.n_cells,
        skipped=spec.n_cells - pending, ran=ran_done + ran_failed, ran_done=ran_done,
        ran_failed=ran_failed, done=status.done, failed=status.failed,
        seconds=time.perf_counter() - tick,
    )  # fmt: skip
