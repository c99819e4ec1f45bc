"""What the studies share: the random instance, result objects, statistics, verdicts
and the arrangement of sweep cells into arrays.

The setting is the initial phase of training: ``TwoLayerNet.random`` (``W_rj ~ N(0,
1/d)``, ``a_r = +-1``, ``c = 1/sqrt(m)``), an input direction ``x_hat`` with
``||x_hat|| = sqrt(d)`` (so pre-activations are of order 1 at unit scale), a label
``y = +-1``, and the radius tied to the input: ``eps = ratio * ||x||``.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from .._json import jsonable
from .._validate import as_rng
from ..network import TwoLayerNet

__all__ = ["StudyResult", "random_instance", "loglog_slope", "certified_stats", "direction"]


class StudyResult:
    """Base of the frozen study dataclasses: ``to_dict()`` is JSON-ready."""

    def to_dict(self) -> dict:
        """Every field as JSON-ready lists and numbers."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


def random_instance(d, m, activation, gen):
    """``(net, x_hat, y)``: an initial-phase network, a direction of norm sqrt(d) and a
    label +-1, drawn from the Generator ``gen`` in that order."""
    net = TwoLayerNet.random(d, m, activation=activation, rng=gen)
    x_hat = gen.standard_normal(d)
    x_hat *= np.sqrt(d) / np.linalg.norm(x_hat)
    y = float(gen.choice([-1.0, 1.0]))
    return net, x_hat, y


def certified_stats(first):
    """Share certified, median and 90th percentile of the certified runs' counts."""
    ok = first[first >= 0]
    if ok.size == 0:
        return 0.0, 0.0, 0.0
    return float(ok.size / first.size), float(np.median(ok)), float(np.percentile(ok, 90))


def loglog_slope(x, y, *, samples=None, rng=None, n_boot=200):
    """Least-squares slope of ``log y`` against ``log x``, with a bootstrap interval.

    Parameters
    ----------
    x : array_like, shape (k,)
        Positive abscissae (e.g. d, m or tau).
    y : array_like, shape (k,)
        Positive statistic per abscissa (e.g. median iterations).
    samples : list of k arrays, optional
        The runs behind each ``y`` (its median): resampled with replacement to give
        a 95 % percentile interval of the slope of the medians.
    rng : None, int or Generator
    n_boot : int

    Returns
    -------
    slope : float or None
        None when a statistic is not positive (e.g. no run was certified there)
        or there are fewer than two abscissae: nothing to fit.
    interval : tuple (low, high), (slope, slope) without samples, or None
    """
    lx = np.log(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    if np.any(y <= 0) or lx.size < 2:
        return None, None
    slope = float(np.polyfit(lx, np.log(y), 1)[0])
    if samples is None:
        return slope, (slope, slope)
    gen = as_rng(rng)
    boots = []
    for _ in range(n_boot):
        meds = [np.median(gen.choice(s, size=len(s))) for s in samples]
        if min(meds) > 0:
            boots.append(np.polyfit(lx, np.log(meds), 1)[0])
    if not boots:
        return slope, (slope, slope)
    low, high = np.percentile(boots, [2.5, 97.5])
    return slope, (float(low), float(high))


def direction(slope, interval):
    """'yes' if the interval is above 0, 'no' if below, else 'inconclusive'."""
    if slope is None or interval is None:
        return "inconclusive"
    low, high = interval
    if low > 0:
        return "yes"
    if high < 0:
        return "no"
    return "inconclusive"


def fmt(v):
    """A slope to two decimals, or n/a."""
    return "n/a" if v is None else f"{v:.2f}"


def fmt_interval(interval):
    """``[low, high]`` to two decimals, or nothing."""
    return "" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


# Sweep cells (rows of a store: dicts with "params", "outputs" and "seed") as arrays.


def cell_axis(rows, name, *, order=None):
    """The values a parameter takes over the rows, sorted (or in ``order``)."""
    values = list(dict.fromkeys(r["params"][name] for r in rows))
    if order is None:
        return sorted(values)
    return [v for v in order if v in values]


def constant_settings(rows, names):
    """The parameters ``names`` of the first row (constant over a study's rows)."""
    return {k: rows[0]["params"][k] for k in names}


def cell_array(rows, axes, seeds, output, dtype, fill):
    """``outputs[output]`` arranged by the axes' values and the seeds."""
    shape = tuple(len(values) for _, values in axes) + (len(seeds),)
    out = np.full(shape, fill, dtype)
    position = [{v: i for i, v in enumerate(values)} for _, values in axes]
    seed_at = {s: i for i, s in enumerate(seeds)}
    for r in rows:
        index = tuple(p[r["params"][name]] for p, (name, _) in zip(position, axes, strict=True))
        value = r["outputs"][output]
        out[index + (seed_at[r["seed"]],)] = fill if value is None else value
    return out
