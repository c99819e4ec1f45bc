"""Kaplan-Meier survival curves of censored counts (``docs/stats.md``).

In fopa a "time" is a count (the first certified iteration of a run) and a run
that never certified within its budget is *censored* at the budget: all we know
is that its time exceeds the budget. Dropping such runs biases every statistic
towards fast runs; the Kaplan-Meier curve keeps them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from ._bootstrap import Interval, json_float, proportion_interval

__all__ = ["SurvivalCurve", "kaplan_meier", "censored_times"]


@dataclass(frozen=True)
class SurvivalCurve:
    """The Kaplan-Meier estimate of ``S(t) = P(T > t)`` with pointwise intervals.

    Attributes
    ----------
    times : ndarray, shape (k,)
        The distinct times at which an event was observed, increasing.
    survival : ndarray, shape (k,)
        ``S`` just after each of ``times`` (a right-continuous step function; 1 before
        the first).
    low, high : ndarray, shape (k,)
        Pointwise ``level`` intervals of ``S`` (Greenwood's variance on the log-log
        scale, which keeps them inside [0, 1]).
    at_risk, events : ndarray of int, shape (k,)
        Units still at risk just before each time, and events at it.
    n, n_observed, n_censored : int
        Units, observed events, censored units.
    max_time : float
        The largest time, observed or censored: the curve says nothing beyond it.
    level : float
    """

    times: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    n: int
    n_observed: int
    n_censored: int
    max_time: float
    level: float

    def survival_at(self, t) -> float:
        """``S(t)``: the share of units whose time exceeds ``t``.

        Raises
        ------
        ValueError
            If ``t`` is beyond :attr:`max_time` (the curve is not defined there).
        """
        t = float(t)
        if not t <= self.max_time:
            raise ValueError(f"t = {t} is beyond the follow-up (max_time = {self.max_time})")
        k = int(np.searchsorted(self.times, t, side="right"))
        return 1.0 if k == 0 else float(self.survival[k - 1])

    def quantile(self, p) -> Interval:
        """The ``p`` quantile of the time, ``min{t : S(t) <= 1 - p}``, with its interval.

        The interval (Brookmeyer and Crowley) is the set of ``t`` where the pointwise
        band of ``S`` contains ``1 - p``: its low end is where the lower band first
        reaches ``1 - p``, its high end where the upper band does. An end that is
        never reached within the follow-up is ``inf``, and so is the estimate when
        ``S`` stays above ``1 - p`` (for example a median when over half the runs are
        censored).
        """
        p = float(p)
        if not 0.0 < p < 1.0:
            raise ValueError(f"p must be in (0, 1); got {p!r}")
        target = 1.0 - p + 1e-12  # S <= 1 - p, robust to the rounding of products
        return Interval(
            estimate=self._first_below(self.survival, target),
            low=self._first_below(self.low, target),
            high=self._first_below(self.high, target),
            level=self.level, method="brookmeyer-crowley", n_samples=self.n,
        )  # fmt: skip

    @property
    def median(self) -> Interval:
        """The median time with its interval (:meth:`quantile` at 0.5)."""
        return self.quantile(0.5)

    def share_observed_by(self, t) -> Interval:
        """``1 - S(t)``, the share of units with an event by ``t``, with its interval."""
        s = self.survival_at(t)
        k = int(np.searchsorted(self.times, float(t), side="right"))
        low = 0.0 if k == 0 else 1.0 - float(self.high[k - 1])
        high = 0.0 if k == 0 else 1.0 - float(self.low[k - 1])
        return Interval(
            estimate=1.0 - s, low=low, high=high, level=self.level, method="greenwood-loglog",
            n_samples=self.n,
        )  # fmt: skip

    def share_observed(self) -> Interval:
        """The raw share of units whose event was observed, with its exact interval
        (the co-primary outcome beside the curve: "certified within the budget")."""
        return proportion_interval(self.n_observed, self.n, level=self.level)

    def _first_below(self, values, target):
        hit = np.flatnonzero(values <= target)
        return float(self.times[hit[0]]) if hit.size else math.inf

    def to_dict(self) -> dict:
        """JSON-ready: the curve, the counts, and the median and quartiles."""
        quantiles = {}
        for p in (0.25, 0.5, 0.75, 0.9):
            quantiles[f"{p:g}"] = self.quantile(p).to_dict()
        return dict(
            times=self.times.tolist(), survival=self.survival.tolist(),
            low=self.low.tolist(), high=self.high.tolist(), at_risk=self.at_risk.tolist(),
            events=self.events.tolist(), n=self.n, n_observed=self.n_observed,
            n_censored=self.n_censored, max_time=json_float(self.max_time), level=self.level,
            quantiles=quantiles,
        )  # fmt: skip


def kaplan_meier(times, observed, *, level=0.95) -> SurvivalCurve:
    """The Kaplan-Meier curve of right-censored times.

    Parameters
    ----------
    times : array_like, shape (n,)
        Finite times >= 0: the event time where observed, the censoring time (for a
        run, its budget) where not.
    observed : array_like of bool, shape (n,)
        True where the event was observed, False where the unit is censored.
    level : float
        Coverage of the pointwise intervals, in (0, 1).

    Returns
    -------
    SurvivalCurve

    Notes
    -----
    At a time with both events and censorings the events come first (censored units
    are at risk at their censoring time). Where ``S`` reaches 0 (every unit still at
    risk had the event) Greenwood's variance is infinite; the interval there is
    ``[0, h (1 - ((1 - level)/2)^(1/k))]``: the exact upper end of "none of the k at
    risk survive" times the upper end ``h`` just before (1 before the first time).
    Without censoring and with every unit's event at one time this is the
    Clopper-Pearson interval of a share of 0.
    """
    t = np.asarray(times)
    obs = np.asarray(observed)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"times must be a non-empty 1-D array; got shape {t.shape}")
    if t.dtype.kind not in "biuf":
        raise TypeError(f"times must hold real numbers; got dtype {t.dtype}")
    t = t.astype(float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0 (censor a run at its budget)")
    if obs.shape != t.shape:
        raise ValueError(f"observed must have the shape of times {t.shape}; got {obs.shape}")
    if obs.dtype != bool:
        if obs.dtype.kind not in "biu" or not np.all((obs == 0) | (obs == 1)):
            raise TypeError("observed must hold booleans (True: event seen, False: censored)")
        obs = obs.astype(bool)
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    event_times, events, at_risk = _risk_table(t, obs)
    survival = np.cumprod(1.0 - events / at_risk)
    n = t.size
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        log_s = np.log(survival)
        spread = float(ndtri(0.5 + level / 2)) * np.sqrt(greenwood) / np.abs(log_s)
        low = survival ** np.exp(spread)
        high = survival ** np.exp(-spread)
    low[survival >= 1.0] = high[survival >= 1.0] = 1.0
    if survival.size and survival[-1] <= 0.0:  # all left at risk had the event: no Greenwood
        # The exact (Clopper-Pearson) upper end of "0 of the at-risk survive", times the
        # upper end just before: the interval of S there is [0, high].
        before = high[-2] if survival.size > 1 else 1.0
        low[-1] = 0.0
        high[-1] = before * (1.0 - ((1.0 - level) / 2) ** (1.0 / at_risk[-1]))
    return SurvivalCurve(
        times=event_times, survival=survival, low=low, high=high, at_risk=at_risk,
        events=events, n=int(n), n_observed=int(obs.sum()), n_censored=int(n - obs.sum()),
        max_time=float(t.max()), level=level,
    )  # fmt: skip


def _risk_table(t, obs):
    """Distinct event times, events at each and units at risk just before each."""
    event_times, events = np.unique(t[obs], return_counts=True)
    at_risk = t.size - np.searchsorted(np.sort(t), event_times, side="left")
    return event_times, events.astype(np.int64), at_risk.astype(np.int64)


def km_quantile(t, obs, p=0.5):
    """The Kaplan-Meier ``p`` quantile of validated float times ``t`` with boolean
    ``obs`` (inf: not reached), without the curve's intervals (for resampling)."""
    event_times, events, at_risk = _risk_table(t, obs)
    survival = np.cumprod(1.0 - events / at_risk)
    hit = np.flatnonzero(survival <= 1.0 - p + 1e-12)
    return float(event_times[hit[0]]) if hit.size else math.inf


def censored_times(first, budget):
    """``(times, observed)`` from counts where -1 marks "not reached within ``budget``".

    Parameters
    ----------
    first : array_like of int
        First iteration of an event per run, or -1 (censored).
    budget : int or float
        The iteration budget (``max_iter``): the censoring time of the -1 runs.

    Returns
    -------
    times : ndarray of float
    observed : ndarray of bool
    """
    first = np.asarray(first)
    observed = first >= 0
    times = np.where(observed, first, float(budget)).astype(float)
    return times, observed
