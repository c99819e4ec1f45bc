"""One epoch of PGD adversarial training as compiled phases on a team of threads.

The per-batch driver of :func:`fopa.adversarial_training` builds a network, its
views and its Gram matrix in Python for every minibatch; at MNIST size with
batches of 128 that is about a third of the time. For the attack-library inner
step (:class:`fopa.NormalizedPGD` without certification) with SGD or Adam, the
whole epoch runs here instead: per batch three compiled phases
(:mod:`fopa._kernels.training_epoch`), each split into ``P`` parts that write
disjoint data, run by ``T`` threads with a barrier between phases
(``docs/adversarial-training.md``, "One epoch in compiled phases").

``P`` depends only on the shapes and ``numba.config.NUMBA_NUM_THREADS`` (as the
row blocks of the ascent, :mod:`fopa._parallel`); ``T = min(P, threads at run
time)``, each thread taking parts ``t, t + T, ...``. So the bits depend on ``P``
only: the same with one thread or two. With ``P > 1`` BLAS is held to one thread
during the epoch (its pool and the team would compete for the cores).

Ctrl-C: inside :func:`fopa._interrupts.deferred_sigint` each barrier's action (run
while every thread of the team waits there) looks for a pending interrupt and sets
the stop flag; every thread reads the flag after the barrier, so all leave at the
same barrier, and ``KeyboardInterrupt`` is raised when the epoch's buffers are
dropped.
"""

from __future__ import annotations

import threading

import numpy as np

from ._adversarial_steps import ADAM_BETAS, ADAM_EPSILON
from ._interrupts import deferred_sigint
from ._kernels.training_epoch import ADAM, SGD, gram_part, pgd_part, update_part
from ._parallel import row_blocks, single_threaded_blas, thread_count, worker_pool

#: The optimizers the compiled epoch runs (the others take the per-batch driver).
EPOCH_OPTIMIZERS = {"sgd": SGD, "adam": ADAM}


def part_count(batch: int, d: int, m: int) -> int:
    """Parts per phase for batches of ``batch`` rows: as :func:`fopa._parallel.row_blocks`
    (``NUMBA_NUM_THREADS`` parts when a batch has the work and the rows for them)."""
    return min(len(row_blocks(batch, d, m)), m)


def _edges(n, parts):
    return np.linspace(0, n, parts + 1).round().astype(np.int64)


def _gram_blocks(m, parts):
    """Lower-triangle blocks of K (``2 parts`` blocks a side) dealt to the parts in
    turn: ``(edges, [blocks of part 0, ...])``."""
    side = min(2 * parts, m)
    edges = _edges(m, side)
    blocks = [(i, j) for i in range(side) for j in range(i + 1)]
    dealt = [np.array(blocks[p::parts], dtype=np.int64).reshape(-1, 2) for p in range(parts)]
    return edges, dealt


class EpochTeam:
    """The buffers and the team for one training run (see the module docstring).

    Parameters
    ----------
    net : TwoLayerNet
        The initial network (copied).
    X, Y : ndarray
        Training data, (n, d) and (n,).
    code : int
        Loss code.
    eps, alpha : float
        Radius and the inner step's length.
    steps : int
    guard : float
    gram : bool
        The row-space inner iteration (:meth:`fopa.NormalizedPGD.uses_gram`).
    optimizer : "sgd" or "adam"
    rates : dict
        Learning rate per parameter.
    batch : int
        Rows per batch (the last batch of an epoch may be smaller).
    """

    def __init__(self, net, X, Y, code, eps, alpha, steps, guard, gram, optimizer, rates,
                 batch):  # fmt: skip
        self.template = net
        self.X, self.Y, self.code = X, Y, code
        self.eps, self.alpha, self.steps, self.guard, self.gram = eps, alpha, steps, guard, gram
        self.optimizer = EPOCH_OPTIMIZERS[optimizer]
        self.rates = np.array([rates[k] for k in ("W", "a", "b", "output_bias")], float)
        self.batch = batch
        m, d = net.W.shape
        self.parts = part_count(min(batch, X.shape[0]), d, m)
        self.buffers = [
            [net.W.copy(), net.a.copy(), net.b.copy(), np.array([net.output_bias], float)]
            for _ in range(2)
        ]
        self.current = 0
        self.K = np.zeros((m, m)) if gram else np.zeros((1, 1))
        self.gram_edges, self.gram_blocks = _gram_blocks(m, self.parts)
        self.unit_edges = _edges(m, self.parts)
        P = self.parts
        self.gW, self.ga, self.gb = np.empty((P, m, d)), np.empty((P, m)), np.empty((P, m))
        self.gb0 = np.empty((P, 1))
        shapes = ((2, m, d), (2, m), (2, m), (2, 1))
        self.moments = tuple(np.zeros(s) for s in shapes)
        self.t = 0  # optimizer steps taken

    def parameters(self):
        """The current (W, a, b, b0) as fresh arrays."""
        W, a, b, b0 = self.buffers[self.current]
        return W.copy(), a.copy(), b.copy(), float(b0[0])

    def run(self, order, D0):
        """One epoch over the batches of ``order`` (n,), starts ``D0`` (n, d) by position
        or (0, d) for zero starts.

        Returns ``(values, F, diverged)``: the losses and outputs at each position's
        perturbed point (``values[k]`` for the point ``order[k]``), and the first
        batch (its start position) at which something left float64's range, or
        None. :meth:`parameters` are then those after the epoch, or after the last
        finite batch. Raises ``KeyboardInterrupt`` on Ctrl-C.
        """
        n = self.X.shape[0]
        starts = list(range(0, n, self.batch))
        b1, b2 = ADAM_BETAS
        # Python's float power per step, as OuterStep computes it: NumPy's power on an
        # array differs in the last bit for some t (51 of 3,200 values here) and made
        # the bits of a run depend on the process (a cold numba cache or not)
        steps_at = range(self.t + 1, self.t + 1 + len(starts))
        corrections = ([1.0 - b1**t for t in steps_at], [1.0 - b2**t for t in steps_at])
        values, F = np.empty(n), np.empty(n)
        flags = np.ones(self.parts, dtype=bool)
        stop = np.zeros(1, np.int64)
        threads = min(self.parts, thread_count())

        def look_for_ctrl_c():  # run by the last thread to reach each barrier
            if pending():
                stop[0] = 1

        barrier = threading.Barrier(threads, action=look_for_ctrl_c)
        failure = []
        state = dict(current=self.current, diverged=None, done=0)

        def phases(t):
            current = self.current
            mine = range(t, self.parts, threads)
            for k, s in enumerate(starts):
                e = min(s + self.batch, n)
                W, a, b, b0 = self.buffers[current]
                Wn, an, bn, b0n = self.buffers[1 - current]
                if self.gram:
                    for p in mine:
                        gram_part(W, self.K, self.gram_blocks[p], self.gram_edges)
                    if self._wait(barrier, stop):
                        return
                rows = _edges(e - s, self.parts) + s
                for p in mine:
                    pgd_part(W, a, b, self.template.output_scale, b0,
                             self.template.activation_code, self.template.kernel_view.critical,
                             self.K, self.code, self.X, self.Y, order, rows[p], rows[p + 1], D0,
                             self.eps, self.alpha, self.steps, self.guard, self.gram, stop,
                             values, F, self.gW[p], self.ga[p], self.gb[p],
                             self.gb0[p])  # fmt: skip
                if self._wait(barrier, stop):
                    return
                for p in mine:
                    flags[p] = update_part(
                        self.optimizer, W, a, b, b0, Wn, an, bn, b0n, self.gW, self.ga,
                        self.gb, self.gb0, e - s, self.unit_edges[p], self.unit_edges[p + 1],
                        self.rates, self.moments, (b1, b2, ADAM_EPSILON), corrections[0][k],
                        corrections[1][k],
                        values, rows[p], rows[p + 1],
                    )  # fmt: skip
                if self._wait(barrier, stop):
                    return
                if not flags.all():
                    if t == 0:
                        state["diverged"] = s
                    return
                current = 1 - current
                if t == 0:
                    state.update(current=current, done=k + 1)

        def worker(t):
            try:
                phases(t)
            except BaseException as exc:  # noqa: BLE001 (handed to the calling thread)
                failure.append(exc)
                barrier.abort()

        with single_threaded_blas(self.parts > 1), deferred_sigint() as pending:
            helpers = []
            if threads > 1:
                helpers = [worker_pool(threads - 1).submit(worker, t) for t in range(1, threads)]
            try:
                phases(0)
            except threading.BrokenBarrierError:
                pass
            except BaseException:
                barrier.abort()
                raise
            finally:
                for h in helpers:
                    h.result()
            if failure:
                raise failure[0]
            if stop[0]:
                return None  # deferred_sigint raises KeyboardInterrupt on exit
        self.current = state["current"]
        self.t += state["done"]
        return values, F, state["diverged"]

    @staticmethod
    def _wait(barrier, stop):
        """Barrier between phases; True when the team is to stop.

        Ctrl-C is looked for in the barrier's action, which runs while every thread
        waits, so all of them read the same ``stop`` after it. (The calling thread
        used to look before its wait: released from one barrier, it could reach the
        next, see the interrupt and set ``stop`` before a slower thread had read it
        for the first, which then left the epoch while the calling thread waited for
        it at the next barrier for ever: ``fopa reproduce --jobs 2`` hung after
        Ctrl-C, about one interrupt in five during a training study.)
        """
        barrier.wait()
        return bool(stop[0])
