"""Timing shared by the benchmarks: interleaved rounds and paired ratios.

This machine's speed drifts by up to 2x within minutes (a shared VM), so timing
one method after another can compare a fast minute with a slow one. Instead
every round times each method once, in an order rotated from round to round;
a ratio is computed within each round (same minute, same load) and the median
over rounds is reported, with the range.
"""

from __future__ import annotations

import time

import numpy as np


def interleaved_times(functions, repeats):
    """{label: list of seconds, one per round} for ``functions`` = {label: callable}.

    Each callable is called once first (warm-up: compilation, caches).
    """
    labels = list(functions)
    for label in labels:
        functions[label]()
    times = {label: [] for label in labels}
    for k in range(repeats):
        order = labels[k % len(labels) :] + labels[: k % len(labels)]
        for label in order:
            t0 = time.perf_counter()
            functions[label]()
            times[label].append(time.perf_counter() - t0)
    return times


def paired_ratio(numerator, denominator):
    """(median, low, high) over rounds of numerator[k] / denominator[k]."""
    r = np.asarray(numerator) / np.asarray(denominator)
    return float(np.median(r)), float(r.min()), float(r.max())


def fastest_per_round(times, labels):
    """Per round, the smallest time among ``labels`` (those present)."""
    present = [times[label] for label in labels if label in times]
    return np.min(np.array(present), axis=0)
