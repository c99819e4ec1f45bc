"""Power law or exponential: how a (censored) count grows with a size (``docs/stats.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ._bootstrap import json_ready
from ._survival import km_quantile

__all__ = ["GrowthFit", "growth_fit", "growth_decidable", "GROWTH_MODELS"]

#: What :func:`growth_fit` can call a growth.
GROWTH_MODELS = ("polynomial", "exponential", "inconclusive")

#: The smallest design :func:`growth_fit` decides on: sizes (the offset families have
#: three parameters: through three sizes both fit exactly) and largest / smallest size.
MIN_SIZES, MIN_SPAN = 4, 4.0


@dataclass(frozen=True)
class GrowthFit:
    """The growth of a median (or another quantile of a) count with a size, and which
    model describes it.

    Attributes
    ----------
    model : str
        ``"polynomial"`` (``median ~ C size^b`` fits better than ``C exp(r size)``,
        and ``a + C size^b`` better than ``a + C exp(r size)``, in at least
        ``1 - (1 - level)/2`` of the bootstrap replicates), ``"exponential"`` (the
        reverse), or ``"inconclusive"``; :attr:`reason` says why.
    reason : str
    exponent, exponent_interval : float, tuple
        ``b`` of the power law fitted to log median against log size, and its
        percentile bootstrap interval (NaN, (NaN, NaN) when nothing was fitted).
    rate, rate_interval : float, tuple
        ``r`` of the exponential fitted to log median against size.
    local_slopes : tuple of dict
        Per pair of consecutive sizes: ``low``, ``high`` (the sizes), ``slope`` (of
        log median against log size between them) and its ``interval``. A power law
        keeps them constant; an exponential makes them grow like the size.
    evidence : dict
        ``share_power_better``, ``share_exponential_better``, ``share_failed`` (of the
        replicates; a replicate fails when a median is not reached or not positive),
        ``share_pure_*`` and ``share_offset_*`` (the two comparisons separately),
    ``rss_power``, ``rss_exponential`` (residual sums of squares of log median),
    ``rss_power_offset``, ``rss_exponential_offset`` (of the offset families),
        ``delta_aic`` (AIC of the exponential minus AIC of the power law: > 0 favours
        the power law; both have two parameters), ``holdout_error_power`` and
        ``holdout_error_exponential`` (|log error| at the largest size of each model
        fitted without it), ``slopes_increase`` (whether the last local slope exceeds
        the first in at least ``1 - (1 - level)/2`` of the replicates).
    sizes, medians : tuple
        The sizes and the Kaplan-Meier median count at each (``inf``: not reached).
    quantile : float
        The quantile of the counts that was fitted (0.5: the median).
    quantiles : tuple
        The Kaplan-Meier ``quantile`` count at each size (``inf``: not reached): what
        the models are fitted to (``medians`` again when ``quantile`` is 0.5).
    n_samples, n_censored : tuple of int
        Runs and censored runs per size.
    level : float
    n_boot : int
    """

    model: str
    reason: str
    exponent: float
    exponent_interval: tuple
    rate: float
    rate_interval: tuple
    local_slopes: tuple
    evidence: dict
    sizes: tuple
    medians: tuple
    n_samples: tuple
    n_censored: tuple
    level: float
    n_boot: int
    quantile: float = 0.5
    quantiles: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready fields (infinities as strings, NaN as None)."""
        return {k: json_ready(v) for k, v in self.__dict__.items()}


def growth_decidable(sizes) -> bool:
    """Whether :func:`growth_fit` can decide on a design of these sizes: at least
    ``MIN_SIZES`` of them, the largest at least ``MIN_SPAN`` times the smallest."""
    sizes = np.asarray(sizes, dtype=float)
    return bool(sizes.size >= MIN_SIZES and sizes[-1] / sizes[0] >= MIN_SPAN)


class _Line:
    """Least squares ``y = a + b x`` over fixed ``x``, by the operations of
    ``np.polyfit(x, y, 1)`` (its scaled Vandermonde matrix formed once for the
    many ``y`` of a bootstrap: the same numbers, less work per fit)."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=float) + 0.0
        lhs = np.vander(self.x, 2)
        self.scale = np.sqrt((lhs * lhs).sum(axis=0))
        lhs /= self.scale
        self.lhs = lhs
        self.rcond = len(self.x) * np.finfo(self.x.dtype).eps

    def fit(self, y):
        """``(b, residual sum of squares)``."""
        c = np.linalg.lstsq(self.lhs, y, self.rcond)[0]
        b, a = c / self.scale
        resid = y - (a + b * self.x)
        return float(b), float(resid @ resid)


def _quantiles(groups, p=0.5):
    """Kaplan-Meier ``p`` quantile of each ``(times, observed)`` group (inf: not reached)."""
    return np.array([km_quantile(t, o, p) for t, o in groups])


#: Grids of the offset models' shape parameter: the exponent b of ``a + C s^b`` and
#: ``t = r (s_max - s_min)`` of ``a + C exp(r s)``, r > 0: exponential *growth*, by a
#: factor e^0.05 to e^30 over the range (a negative rate saturates: not exponential).
EXPONENTS = np.linspace(-3.0, 6.0, 360)
RATE_SPANS = np.linspace(0.05, 30.0, 360)


def _offset_rss(basis, squares, y, log_y):
    """Best log-space residual of ``y ~ a + C u`` over the rows ``u`` of ``basis``
    (shape (G, k); ``squares`` is ``basis * basis``); each row fitted by least
    squares with relative weights ``1/y^2``."""
    w = 1.0 / (y * y)
    sw, swu, swuu = w.sum(), basis @ w, squares @ w
    swy, swuy = w @ y, basis @ (w * y)
    det = sw * swuu - swu * swu
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (sw * swuy - swu * swy) / det
        a = (swy - c * swu) / sw
        pred = a[:, None] + c[:, None] * basis
        rss = np.sum((log_y - np.log(pred)) ** 2, axis=1)
    rss[~np.isfinite(rss) | (np.abs(det) <= 1e-300) | np.any(pred <= 0, axis=1)] = np.inf
    return float(rss.min())


def _bases(sizes):
    """What the fits over ``sizes`` share: the lines against log size and size
    (:class:`_Line`), and the offset models' bases and their squares ``(power,
    power^2, expo, expo^2)``, shapes (G, k)."""
    scaled = sizes / sizes[-1]
    power = scaled[None, :] ** EXPONENTS[:, None]
    span = sizes[-1] - sizes[0]
    expo = np.exp(RATE_SPANS[:, None] * ((sizes - sizes[-1]) / span)[None, :])
    return _Line(np.log(sizes)), _Line(sizes), (power, power * power, expo, expo * expo)


def _compare(medians, bases):
    """``(exponent, rate, rss_power, rss_exponential, rss_power_offset,
    rss_exponential_offset)`` or None when a median is unusable; ``bases`` is
    ``_bases(sizes)``."""
    if not np.all(np.isfinite(medians)) or np.any(medians <= 0):
        return None
    log_med = np.log(medians)
    against_log, against_size, (power, power2, expo, expo2) = bases
    b, rss_p = against_log.fit(log_med)
    r, rss_e = against_size.fit(log_med)
    return (b, r, rss_p, rss_e, _offset_rss(power, power2, medians, log_med),
            _offset_rss(expo, expo2, medians, log_med))  # fmt: skip


def _resampled_quantiles(t, obs, index, p):
    """The Kaplan-Meier ``p`` quantile of each resample ``t[index[k]]``, ``obs[index[k]]``
    (``index`` of shape (B, n)), as :func:`fopa.stats.km_quantile` gives it for each.

    The product runs over the distinct times of ``t`` in order; at a time with no
    event in a resample its factor is exactly 1, so each survival value is the same
    floating-point product (same divisions, same order) that the one-resample
    computation forms over that resample's event times.
    """
    n_boot, n = index.shape
    times, which = np.unique(t, return_inverse=True)
    n_times = times.size
    # how often each distinct time is drawn, as an event and in all, per resample
    key = (np.arange(n_boot)[:, None] * n_times + which[index]).ravel()
    drawn = np.bincount(key, minlength=n_boot * n_times).reshape(n_boot, n_times)
    events = np.bincount(key, weights=obs[index].ravel().astype(float),
                         minlength=n_boot * n_times).reshape(n_boot, n_times)  # fmt: skip
    at_risk = n - np.cumsum(drawn, axis=1) + drawn  # units with time >= each time
    factor = np.ones((n_boot, n_times))
    has_event = events > 0
    factor[has_event] = 1.0 - events[has_event] / at_risk[has_event]
    survival = np.cumprod(factor, axis=1)
    hit = has_event & (survival <= 1.0 - p + 1e-12)
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), times[first], math.inf)


def _groups(sizes, samples, censored):
    sizes = np.asarray(sizes, dtype=float)
    if sizes.ndim != 1 or sizes.size < 2:
        raise ValueError(f"sizes must be a 1-D array of at least 2 sizes; got shape {sizes.shape}")
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise ValueError("sizes must be finite and > 0")
    if np.any(np.diff(sizes) <= 0):
        raise ValueError("sizes must be strictly increasing")
    if len(samples) != sizes.size:
        raise ValueError(f"samples must hold one array per size ({sizes.size}); got {len(samples)}")
    if censored is not None and len(censored) != sizes.size:
        raise ValueError(
            f"censored must hold one array per size ({sizes.size}); got {len(censored)}"
        )
    groups = []
    for k, s in enumerate(samples):
        t = np.asarray(s, dtype=float)
        if t.ndim != 1 or t.size < 2:
            raise ValueError(f"samples[{k}] must be a 1-D array of at least 2 counts")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError(f"samples[{k}] must be finite counts >= 0")
        if censored is None:
            obs = np.ones(t.size, bool)
        else:
            c = np.asarray(censored[k])
            if c.shape != t.shape or c.dtype != bool:
                raise ValueError(f"censored[{k}] must be a boolean array of shape {t.shape}")
            obs = ~c
        groups.append((t, obs))
    return sizes, groups


def growth_fit(
    sizes, samples, *, censored=None, quantile=0.5, level=0.95, n_boot=1000, rng=None,
) -> GrowthFit:  # fmt: skip
    """Decide whether a median count (or another quantile) grows polynomially or
    exponentially with a size.

    At each size the median of the counts is the Kaplan-Meier median (censored runs
    kept as "more than their budget"). A power law ``log med = a + b log s`` and an
    exponential ``log med = a + r s`` are fitted by least squares; both have two
    parameters, so the information criteria compare their residuals. So are the two
    families with an offset, ``med = a + C s^b`` and ``med = a + C exp(r s)`` (a
    count with a fixed transient is still polynomial; the shape parameter on a grid,
    ``a`` and ``C`` by least squares with relative weights, compared by their
    residuals in log med). Runs are resampled within each size (``n_boot``
    replicates) and the fits are repeated.

    Rule: ``"polynomial"`` if the power law has the smaller residual, both as a pure
    law and with an offset, in at least ``1 - (1 - level)/2`` of the replicates (a
    failed replicate, with a median not reached, counts against it),
    ``"exponential"`` if the exponential does, and
    ``"inconclusive"`` otherwise, or when the design is too small to tell (fewer than
    4 sizes, or largest / smallest size below 4: two doublings), or when a median is
    not reached on the data.

    With ``quantile`` other than 0.5 the same is done with the Kaplan-Meier
    ``quantile`` count in place of the median (0.99: does the tail of the counts grow
    polynomially too?); the bootstrap then resamples the tail the quantile reads, so it
    needs enough runs per size that ``(1 - quantile) n`` of them lie beyond it.

    Parameters
    ----------
    sizes : array_like, shape (k,)
        Increasing positive sizes (d, m, 1/tolerance, ...).
    samples : sequence of k array_like
        The counts at each size (>= 0; a censored count is the budget it reached).
    censored : sequence of k boolean arrays, optional
        True where a run did not finish (its count is a lower bound).
    quantile : float
        In (0, 1): the quantile of the counts whose growth is fitted.
    level : float
    n_boot : int
    rng : None, int or Generator

    Returns
    -------
    GrowthFit
    """
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    n_boot = as_int("n_boot", n_boot, minimum=10)
    quantile = float(quantile)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1); got {quantile!r}")
    gen = as_rng(rng)
    sizes, groups = _groups(sizes, samples, censored)
    log_sizes = np.log(sizes)
    medians = _quantiles(groups)
    fitted = medians if quantile == 0.5 else _quantiles(groups, quantile)
    what = "median" if quantile == 0.5 else f"{quantile:g} quantile"
    tail = (1.0 - level) / 2
    nan2 = (math.nan, math.nan)
    common = dict(
        sizes=tuple(float(s) for s in sizes), medians=tuple(float(v) for v in medians),
        n_samples=tuple(int(t.size) for t, _ in groups),
        n_censored=tuple(int((~o).sum()) for _, o in groups), level=level, n_boot=n_boot,
        quantile=quantile, quantiles=tuple(float(v) for v in fitted),
    )  # fmt: skip

    def inconclusive(reason, **fit):
        base = dict(exponent=math.nan, exponent_interval=nan2, rate=math.nan,
                    rate_interval=nan2, local_slopes=(), evidence={})  # fmt: skip
        base.update(fit)
        return GrowthFit(model="inconclusive", reason=reason, **base, **common)

    bases = _bases(sizes)
    point = _compare(fitted, bases)
    if point is None:
        bad = [f"{s:g}" for s, v in zip(sizes, fitted, strict=True) if not 0 < v < math.inf]
        return inconclusive(f"the {what} count is not reached (or is 0) at size {', '.join(bad)}")
    b, r, rss_p, rss_e, rss_po, rss_eo = point
    # bootstrap: resample runs within each size
    boots = np.full((n_boot, 6), np.nan)
    local = np.full((n_boot, sizes.size - 1), np.nan)
    index = [np.empty((n_boot, t.size), dtype=np.int64) for t, _ in groups]
    for k in range(n_boot):  # the draws in the order of one resample at a time
        for j, (t, _) in enumerate(groups):
            index[j][k] = gen.integers(0, t.size, t.size)
    boot_quantiles = np.column_stack([_resampled_quantiles(t, o, index[j], quantile)
                                      for j, (t, o) in enumerate(groups)])  # fmt: skip
    for k in range(n_boot):
        med = boot_quantiles[k]
        out = _compare(med, bases)
        if out is not None:
            boots[k] = out
            local[k] = np.diff(np.log(med)) / np.diff(log_sizes)
    ok = ~np.isnan(boots[:, 0])
    # the decision: a model must win both as a pure law and with an offset (a count
    # with a transient, a + C s^b, is polynomial too; a + C exp(r s) is exponential)
    pure_power_better = float(np.mean(ok & (boots[:, 2] < boots[:, 3])))
    pure_exp_better = float(np.mean(ok & (boots[:, 3] < boots[:, 2])))
    offset_power_better = float(np.mean(ok & (boots[:, 4] < boots[:, 5])))
    offset_exp_better = float(np.mean(ok & (boots[:, 5] < boots[:, 4])))
    power_better = min(pure_power_better, offset_power_better)
    exp_better = min(pure_exp_better, offset_exp_better)
    q = (tail, 1.0 - tail)

    def interval(values):
        values = values[~np.isnan(values)]
        return tuple(float(v) for v in np.quantile(values, q)) if values.size else nan2

    slopes_local = np.diff(np.log(fitted)) / np.diff(log_sizes)
    local_slopes = tuple(
        dict(low=float(sizes[i]), high=float(sizes[i + 1]), slope=float(slopes_local[i]),
             interval=interval(local[:, i]))
        for i in range(sizes.size - 1)
    )  # fmt: skip
    k_sizes = sizes.size
    floor = 1e-300  # an exact fit: the criterion's log needs a positive residual
    evidence = dict(
        share_power_better=power_better, share_exponential_better=exp_better,
        share_failed=float(np.mean(~ok)), rss_power_offset=rss_po,
        rss_exponential_offset=rss_eo, rss_power=rss_p, rss_exponential=rss_e,
        share_pure_power_better=pure_power_better, share_pure_exponential_better=pure_exp_better,
        share_offset_power_better=offset_power_better,
        share_offset_exponential_better=offset_exp_better,
        delta_aic=float(k_sizes * (math.log(max(rss_e, floor)) - math.log(max(rss_p, floor)))),
        slopes_increase=bool(
            sizes.size >= 3 and np.mean(ok & (local[:, -1] > local[:, 0])) >= 1.0 - tail
        ),
    )  # fmt: skip
    if k_sizes >= 3:
        head = slice(0, k_sizes - 1)
        lm = np.log(fitted)
        bp, ap = np.polyfit(log_sizes[head], lm[head], 1)
        be, ae = np.polyfit(sizes[head], lm[head], 1)
        evidence["holdout_error_power"] = float(abs(ap + bp * log_sizes[-1] - lm[-1]))
        evidence["holdout_error_exponential"] = float(abs(ae + be * sizes[-1] - lm[-1]))
    fit = dict(exponent=b, exponent_interval=interval(boots[:, 0]), rate=r,
               rate_interval=interval(boots[:, 1]), local_slopes=local_slopes,
               evidence=evidence)  # fmt: skip
    if not growth_decidable(sizes):
        return inconclusive(
            f"{k_sizes} sizes spanning a factor {sizes[-1] / sizes[0]:.3g}: at least "
            f"{MIN_SIZES} sizes spanning a factor {MIN_SPAN:g} are needed to tell the models "
            "apart", **fit,
        )  # fmt: skip
    if power_better >= 1.0 - tail:
        reason = (f"the power law fits better, pure and with an offset, in at least "
                  f"{power_better:.1%} of {n_boot} replicates (needed {1 - tail:.1%})")  # fmt: skip
        return GrowthFit(model="polynomial", reason=reason, **fit, **common)
    if exp_better >= 1.0 - tail:
        reason = (f"the exponential fits better, pure and with an offset, in at least "
                  f"{exp_better:.1%} of {n_boot} replicates (needed {1 - tail:.1%})")  # fmt: skip
        return GrowthFit(model="exponential", reason=reason, **fit, **common)
    return inconclusive(
        f"pure laws: power better in {pure_power_better:.1%}, exponential in "
        f"{pure_exp_better:.1%}; with offsets: {offset_power_better:.1%} and "
        f"{offset_exp_better:.1%} of {n_boot} replicates (needed {1 - tail:.1%}); "
        f"{np.mean(~ok):.1%} of them failed", **fit,
    )  # fmt: skip
