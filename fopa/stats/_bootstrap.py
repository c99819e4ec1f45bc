"""Bootstrap intervals (percentile and BCa) with paired and cluster resampling, and the
exact binomial interval of a share (``docs/stats.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import beta as beta_dist

from .._validate import as_int, as_rng

__all__ = ["Interval", "bootstrap_interval", "proportion_interval"]

METHODS = ("percentile", "bca")


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval.

    Attributes
    ----------
    estimate : float
        The statistic on the data as given (``inf`` allowed where it means "not reached",
        as for a median survival time beyond the follow-up).
    low, high : float
        The interval's ends (``high`` may be ``inf``: unbounded above).
    level : float
        Nominal coverage, e.g. 0.95.
    method : str
        ``"percentile"``, ``"bca"``, ``"clopper-pearson"``, ``"greenwood-loglog"``
        or ``"brookmeyer-crowley"``.
    n_samples : int
        Units behind the estimate (rows, runs or clusters that were resampled).
    n_boot : int
        Bootstrap replicates (0 for closed-form intervals).
    n_nonfinite : int
        Replicates whose statistic was infinite (kept: they sort to an end).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_samples: int
    n_boot: int = 0
    n_nonfinite: int = 0

    def contains(self, value) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (infinite ends as the strings "inf"/"-inf")."""
        out = {}
        for k, v in self.__dict__.items():
            out[k] = json_float(v) if isinstance(v, float) else v
        return out


def json_float(v):
    """A float for JSON: infinities as ``"inf"`` / ``"-inf"`` (JSON has no infinity)."""
    v = float(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def json_ready(value):
    """``value`` with every float JSON-ready (infinities as strings, NaN as None),
    through tuples, lists, dicts and NumPy scalars."""
    if isinstance(value, float):
        return None if math.isnan(value) else json_float(value)
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return json_ready(value.item())
    return value


def _as_groups(samples):
    """``samples`` as a list of arrays (one group per array, resampled along axis 0)."""
    if isinstance(samples, np.ndarray) or np.isscalar(samples):
        groups = [np.asarray(samples)]
    else:
        try:
            groups = [np.asarray(s) for s in samples]
        except Exception as exc:
            raise ValueError("samples must be an array or a sequence of arrays") from exc
        if groups and all(g.ndim == 0 for g in groups):  # a plain list of numbers
            groups = [np.asarray(samples)]
    if not groups:
        raise ValueError("samples must hold at least one group; got none")
    for k, g in enumerate(groups):
        if g.ndim == 0:
            raise ValueError(f"samples[{k}] must be an array of units (axis 0); got a scalar")
        if g.shape[0] < 2:
            raise ValueError(f"samples[{k}] must hold at least 2 units; got {g.shape[0]}")
    return groups


def _resamplers(groups, paired, cluster):
    """``(n_units, draw, jackknife)``: ``draw(gen)`` gives one resample of every group,
    ``jackknife()`` yields the leave-one-unit-out data sets."""
    if cluster is not None:
        if len(groups) == 1 and not isinstance(cluster, (list, tuple)):
            labels = [np.asarray(cluster)]
        elif isinstance(cluster, (list, tuple)) and len(cluster) == len(groups):
            labels = [np.asarray(c) for c in cluster]
        elif paired:
            labels = [np.asarray(cluster)] * len(groups)
        else:
            raise ValueError(
                "cluster must be one label array (one group, or paired groups) or one label "
                f"array per group ({len(groups)} groups)"
            )
        for k, (g, lab) in enumerate(zip(groups, labels, strict=True)):
            if lab.shape != (g.shape[0],):
                raise ValueError(
                    f"cluster labels of group {k} must have shape ({g.shape[0]},); got {lab.shape}"
                )
        ids = np.unique(np.concatenate(labels))
        if ids.size < 2:
            raise ValueError(f"cluster must name at least 2 clusters; got {ids.size}")
        members = [[np.flatnonzero(lab == i) for i in ids] for lab in labels]

        def take(chosen):
            out = []
            for g, mem in zip(groups, members, strict=True):
                index = np.concatenate([mem[c] for c in chosen])
                out.append(g[index])
            return out

        def draw(gen):
            return take(gen.integers(0, ids.size, ids.size))

        def jackknife():
            everything = np.arange(ids.size)
            for c in range(ids.size):
                yield take(np.delete(everything, c))

        return ids.size, draw, jackknife
    if paired:
        n = groups[0].shape[0]
        for k, g in enumerate(groups):
            if g.shape[0] != n:
                raise ValueError(
                    f"paired samples must have the same number of units; samples[0] has {n}, "
                    f"samples[{k}] has {g.shape[0]}"
                )

        def draw(gen):
            index = gen.integers(0, n, n)
            return [g[index] for g in groups]

        def jackknife():
            for i in range(n):
                yield [np.delete(g, i, axis=0) for g in groups]

        return n, draw, jackknife

    def draw(gen):
        return [g[gen.integers(0, g.shape[0], g.shape[0])] for g in groups]

    def jackknife():
        for k, g in enumerate(groups):
            for i in range(g.shape[0]):
                yield groups[:k] + [np.delete(g, i, axis=0)] + groups[k + 1 :]

    return sum(g.shape[0] for g in groups), draw, jackknife


def _scalar(statistic, data, what):
    value = statistic(*data)
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"statistic must return a real number; got {value!r} on {what}") from exc
    if math.isnan(value):
        raise ValueError(f"statistic returned NaN on {what}")
    return value


def _order_statistic(sorted_values, q):
    """The ``q`` quantile as an order statistic (no interpolation, safe with inf)."""
    b = sorted_values.size
    k = min(b - 1, max(0, math.ceil(q * b) - 1))
    return float(sorted_values[k])


def bootstrap_interval(
    statistic, samples, *, n_boot=2000, level=0.95, method="percentile", paired=False,
    cluster=None, rng=None,
) -> Interval:  # fmt: skip
    """A bootstrap confidence interval of ``statistic(*samples)``.

    Parameters
    ----------
    statistic : callable
        ``statistic(*groups) -> float``, where each group is an array whose axis 0
        holds the units (runs, inputs, networks). It may return ``inf`` (for example
        a median that is not reached); it must not return NaN.
    samples : array_like or sequence of array_like
        One array (a single group) or several; each is resampled along axis 0.
    n_boot : int
        Bootstrap replicates.
    level : float
        Coverage in (0, 1).
    method : {"percentile", "bca"}
        Percentile interval, or bias-corrected and accelerated (BCa; acceleration
        from the jackknife over the resampled units; needs a finite estimate).
    paired : bool
        False: each group is resampled on its own (independent samples). True: all
        groups have the same units in the same order (the same network in every cell)
        and are resampled with the same indices.
    cluster : array_like or sequence of array_like, optional
        Cluster labels, shape (n_k,) per group (or one array for one group or paired
        groups): whole clusters are resampled, every group taking the rows of the
        drawn clusters (for designs where one network or input appears in several
        rows or cells).
    rng : None, int or Generator

    Returns
    -------
    Interval
        The estimate on the data, the interval, and the counts behind it.

    Raises
    ------
    ValueError
        On fewer than 2 units, mismatched paired groups or labels, a NaN statistic,
        an unknown method, or BCa with an infinite estimate.
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be callable; got {statistic!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    n_boot = as_int("n_boot", n_boot, minimum=10)
    gen = as_rng(rng)
    groups = _as_groups(samples)
    n_units, draw, jackknife = _resamplers(groups, bool(paired), cluster)
    estimate = _scalar(statistic, groups, "the samples")
    replicates = np.empty(n_boot)
    for b in range(n_boot):
        replicates[b] = _scalar(statistic, draw(gen), f"bootstrap replicate {b}")
    replicates.sort()
    alpha = 1.0 - level
    q_low, q_high = alpha / 2, 1.0 - alpha / 2
    if method == "bca":
        if not math.isfinite(estimate):
            raise ValueError(
                f"BCa needs a finite estimate; the statistic is {estimate} on the samples "
                "(use method='percentile')"
            )
        below = np.mean(replicates < estimate) + 0.5 * np.mean(replicates == estimate)
        below = min(max(below, 0.5 / n_boot), 1.0 - 0.5 / n_boot)
        z0 = float(ndtri(below))
        jack = np.array([_scalar(statistic, data, "a jackknife sample") for data in jackknife()])
        if not np.all(np.isfinite(jack)):
            raise ValueError("BCa needs finite jackknife values (use method='percentile')")
        u = jack.mean() - jack
        denom = 6.0 * float(np.sum(u**2)) ** 1.5
        accel = float(np.sum(u**3)) / denom if denom > 0 else 0.0
        adjusted = []
        for q in (q_low, q_high):
            z = z0 + ndtri(q)
            adjusted.append(float(ndtr(z0 + z / (1.0 - accel * z))))
        q_low, q_high = adjusted
    return Interval(
        estimate=estimate, low=_order_statistic(replicates, q_low),
        high=_order_statistic(replicates, q_high), level=level, method=method,
        n_samples=int(n_units), n_boot=n_boot,
        n_nonfinite=int(np.sum(~np.isfinite(replicates))),
    )  # fmt: skip


def proportion_interval(successes, n, *, level=0.95) -> Interval:
    """The exact (Clopper-Pearson) interval of a share ``successes / n``.

    Conservative: its coverage is at least ``level`` for every true share.

    Parameters
    ----------
    successes : int
        Count in ``[0, n]``.
    n : int
        Trials, >= 1.
    level : float

    Returns
    -------
    Interval
    """
    n = as_int("n", n, minimum=1)
    successes = as_int("successes", successes, minimum=0)
    if successes > n:
        raise ValueError(f"successes must be <= n = {n}; got {successes}")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    alpha = 1.0 - level
    low = 0.0 if successes == 0 else float(beta_dist.ppf(alpha / 2, successes, n - successes + 1))
    high = (
        1.0 if successes == n else float(beta_dist.ppf(1 - alpha / 2, successes + 1, n - successes))
    )
    return Interval(
        estimate=successes / n, low=low, high=high, level=level, method="clopper-pearson",
        n_samples=n,
    )  # fmt: skip
