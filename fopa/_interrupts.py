"""Ctrl-C during compiled work: deferred to a safe point, then a clean KeyboardInterrupt.

A SIGINT that arrives while a numba kernel runs is handled by Python when the
kernel returns, in the middle of turning its results into Python objects; an
exception raised there left a half-built result and crashed the interpreter
(seen: ``fopa ascend`` exiting with a segmentation fault, two interrupts out of
two). Inside :func:`deferred_sigint` the signal only sets a flag; the caller runs
its work in short pieces, checks the flag between them, and the context raises
``KeyboardInterrupt`` once the pieces are done with (``docs/solver.md``,
"Interrupts").
"""

from __future__ import annotations

import _signal  # the C module: signal.signal's enum conversions cost ~10 us per call
import signal
import threading
from contextlib import contextmanager

#: Multiply-adds of one piece of compiled work between two looks at a pending Ctrl-C
#: (a piece of one ascent row, or of a batch of tight bounds, takes about 0.1-0.3 s here).
PIECE_WORK = 2e9


@contextmanager
def deferred_sigint():
    """Defer SIGINT while compiled kernels run; yields a callable that says whether one
    arrived. On exit, a deferred interrupt is raised as ``KeyboardInterrupt`` (or handed
    to the handler that was installed before). Outside the main thread (where Python
    delivers no signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = _signal.getsignal(signal.SIGINT)
    if not callable(previous) and previous != signal.default_int_handler:
        yield lambda: False  # SIG_IGN or SIG_DFL set by the user: leave it alone
        return
    arrived = []

    def note(signum, frame):
        arrived.append(frame)

    _signal.signal(signal.SIGINT, note)
    try:
        yield lambda: bool(arrived)
    finally:
        _signal.signal(signal.SIGINT, previous)
    if arrived:
        if previous is signal.default_int_handler or not callable(previous):
            raise KeyboardInterrupt
        previous(signal.SIGINT, arrived[-1])
