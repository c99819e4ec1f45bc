"""Timing shared by the benchmarks: interleaved rounds, quiet gaps and paired ratios.

This machine's speed drifts by up to 2x within minutes (a shared VM), so timing
one method after another can compare a fast minute with a slow one. Instead
every round times each method once, in an order rotated from round to round;
a ratio is computed within each round (same minute, same load) and the median
over rounds is reported, with the range.

Thread pools keep spinning for a while after their work (OpenBLAS, OpenMP in
PyTorch, XLA's pool), and a method timed right after another library's work
competed with those spinning threads (seen here: the same fopa call 1.7x slower
right after a NumPy GEMM loop than after itself). So every measurement starts
after a pause of ``GAP`` seconds, and repeats its call until ``MIN_SECONDS`` have
passed so that short calls are not timed one at a time.

After the pause, one untimed call of the measured method comes first: the first
call after an idle pause runs cold (seen here: a two-thread fopa call at
(64, 100, 512) took 212-370 us per iteration right after 0.3 s of idling and
195-225 us on the next calls, the idle second virtual core and the sleeping
worker thread waking up), and with calls of 10-25 ms only two or three fit in
``MIN_SECONDS``, so the cold call weighed on the methods that use both cores.
The measurement is of the steady state, for every method alike.

``MIN_SECONDS`` is 0.25 s: with 50 ms (the first choice) the calls right after
the wake-up call were still slow on this VM for methods that keep two threads
busy: fopa's row blocks and NumPy's two-thread products at (64, 100, 512) take
194-200 us per iteration called back to back, but single 50 ms rounds took up
to 1.9x that, and the medians of the within-round ratios swung by 15 % from
run to run. With 0.25 s the medians of two runs agreed to within 2 % (single
rounds still stray). (JAX's jitted calls of a few tens of
microseconds, which hand their work to another thread, vary from 28 to over
100 us per call on this VM whatever the window.)
"""

from __future__ import annotations

import time

import numpy as np

GAP = 0.3
MIN_SECONDS = 0.25


def _calls_per_measurement(fn):
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(MIN_SECONDS / once))


def interleaved_times(functions, repeats):
    """{label: list of seconds per call, one per round} for {label: callable}.

    Each callable is first called for warm-up (compilation, caches) and to size
    its measurement.
    """
    labels = list(functions)
    for label in labels:
        functions[label]()
    calls = {label: _calls_per_measurement(functions[label]) for label in labels}
    times = {label: [] for label in labels}
    for k in range(repeats):
        order = labels[k % len(labels) :] + labels[: k % len(labels)]
        for label in order:
            fn, count = functions[label], calls[label]
            time.sleep(GAP)
            fn()  # untimed: wakes this method's threads after the pause
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            times[label].append((time.perf_counter() - t0) / count)
    return times


def paired_ratio(numerator, denominator):
    """(median, low, high) over rounds of numerator[k] / denominator[k]."""
    r = np.asarray(numerator) / np.asarray(denominator)
    return float(np.median(r)), float(r.min()), float(r.max())


def fastest_per_round(times, labels):
    """Per round, the smallest time among ``labels`` (those present)."""
    present = [times[label] for label in labels if label in times]
    return np.min(np.array(present), axis=0)
