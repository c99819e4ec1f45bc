"""The verdict rules of the reproduction, one per claim, on raw arrays.

Each rule takes the measured counts (``-1``: the run did not reach the event within
its budget, a censored run, kept), returns a :class:`fopa.stats.Verdict` whose
``rule`` text is printed next to it in the report, and is tested to produce every
outcome on synthetic data (``tests/test_verdicts.py``). The statistics are those of
:mod:`fopa.stats`; ``docs/experiments/`` gives each rule with its reasons.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_rng
from ..stats import (
    MIN_SIZES,
    MIN_SPAN,
    Verdict,
    bootstrap_interval,
    censored_times,
    growth_decidable,
    growth_fit,
    kaplan_meier,
    km_quantile,
    sign_verdict,
)

__all__ = [
    "ITERATION_RULE",
    "TAIL_RULE",
    "TAIL_QUANTILE",
    "SPEED_RULE",
    "CENSORED_SLOPE",
    "REGULARITY_RULE",
    "TOLERANCE_RULE",
    "TRAINING_RULE",
    "censored_cell",
    "iteration_verdict",
    "tail_verdict",
    "speed_verdict",
    "regularity_verdict",
    "tolerance_verdict",
    "training_verdict",
    "PROTOCOL_RULE",
    "protocol_verdict",
]

#: The share a cell must not be significantly below (agrees) and the share that, when
#: significantly undercut, says PGA fails more often than it succeeds (disagrees).
HIGH_PROBABILITY, MAJORITY = 0.9, 0.5

ITERATION_RULE = (
    "growth_fit of the Kaplan-Meier median of the first certified iteration along d at "
    "each m and along m at each d (an axis with at least "
    f"{MIN_SIZES} sizes spanning a factor {MIN_SPAN:g}): agrees if along every tested axis "
    "most lines are polynomial and none exponential, and no cell's share certified within "
    f"the budget is significantly below {HIGH_PROBABILITY} (Clopper-Pearson upper end >= "
    f"{HIGH_PROBABILITY}); disagrees if along some axis most lines are exponential, or a "
    f"cell's share is significantly below {MAJORITY}; not tested if neither axis has such "
    "sizes; else inconclusive"
)

#: The quantile of the first certified iteration whose growth the tail rule fits.
TAIL_QUANTILE = 0.99

TAIL_RULE = (
    f"growth_fit of the Kaplan-Meier {TAIL_QUANTILE:g} quantile (p99) of the first certified "
    "iteration along d at each m and along m at each d (an axis with at least "
    f"{MIN_SIZES} sizes spanning a factor {MIN_SPAN:g}; runs resampled within each cell): "
    "agrees if along every tested axis most lines are polynomial and none exponential, "
    "and the p99 is reached within the budget in every cell; disagrees if along some axis "
    "most lines are exponential; not tested if neither axis has such sizes; else "
    "inconclusive (a p99 beyond the budget leaves its line inconclusive: the budget is "
    "fixed, so it cannot show exponential growth by itself)"
)

#: How both slope rules treat a median that is not reached within the budget.
CENSORED_SLOPE = (
    "medians are Kaplan-Meier medians capped at the budget (a median at the budget counts "
    "as capped); a capped median is only "
    "known to be at least the budget, so capping lowers the slope when it happens above "
    "the mean log tau and raises it below: agrees needs the interval of the slope's lower "
    "bound (a replicate with a capped median below the mean log tau has none: -inf) above "
    "0, disagrees the interval of its upper bound (+inf for a capped median above the mean "
    "log tau) below 0; without capping both bounds are the slope"
)

SPEED_RULE = (
    "agrees if the 95 % paired-bootstrap interval (runs resampled, the same instances at "
    "every tau) of the least-squares slope of log median first certified iteration "
    "against log tau is above 0 (fewer iterations at smaller tau), disagrees if below 0, "
    f"else inconclusive; {CENSORED_SLOPE}; not tested with fewer than 2 scales or no "
    "median below the budget"
)

REGULARITY_RULE = (
    "agrees if the 95 % paired-bootstrap interval (instances resampled) of the "
    "least-squares slope of the mean number of distinct certified maxima against log tau "
    "is above 0 (fewer maxima at smaller tau), disagrees if below 0, else inconclusive "
    "(an interval [0, 0]: the same number of maxima at every tau); instances where no "
    "maximum was certified are left out at that tau and counted; not tested with fewer "
    "than 2 scales"
)

TOLERANCE_RULE = (
    "with N(g) the Kaplan-Meier median first iteration with relative KKT residual <= g "
    "and s = log(1/g): agrees if the affine model N = a + b s (linear convergence) leaves "
    "a smaller residual in log N than the model log N = a + r s (N a power of 1/g: "
    "sublinear convergence) in at least 97.5 % of 1000 bootstrap replicates (runs "
    "resampled; a replicate with a median not reached counts against it), disagrees if "
    "the power of 1/g does, else inconclusive; both models are fitted on the tail g <= "
    "1e-4 (near the maximum: the first iterations of a run are a transient that neither "
    "model describes); not tested with fewer than 3 tail tolerances spanning 4 decades"
)

#: The tail of the tolerance study: tolerances at most this, spanning this many decades.
TOLERANCE_TAIL, TAIL_DECADES = 1e-4, 4.0

TRAINING_RULE = (
    "not tested: one learning rate for every tau makes the change of the network per "
    "step scale like lr tau^2, so this protocol cannot separate the input scale from the "
    "step size, and one run per tau gives no interval; shown for reference"
)


PROTOCOL_RULE = (
    "with N the epochs to the absolute target of the robust training loss (a run that "
    "did not reach it within the budget is censored there): agrees if the 95 % "
    "paired-bootstrap interval (seeds resampled, the same initial network at every tau) "
    "of the least-squares slope of log median N against log tau is above 0 (fewer "
    f"epochs at smaller tau), disagrees if below 0, else inconclusive; {CENSORED_SLOPE}; "
    "not tested with fewer than 2 scales or no median below the budget"
)

#: What stands next to P1's verdict: the protocol decides that answer.
P1_CONFOUND = (
    "P1 is confounded: with one rate for every tau the gradient in W scales like tau and "
    "the change of f per step like lr tau^2, so a smaller tau is also a smaller "
    "effective first-layer step; read P2-P4 for the input scale itself"
)


def protocol_verdict(protocol, taus, first, budget, *, rng=0, n_boot=2000):
    """Claim 2 (training) under one protocol, on ``first[t, s]`` (epochs to the target
    at scale taus[t] from seed s's network; -1: censored at ``budget``).

    The statistic, its interval and the treatment of censored medians are those of
    :func:`speed_verdict` (applied to epochs instead of iterations); the rule text is
    :data:`PROTOCOL_RULE`,
    with :data:`P1_CONFOUND` in the reason of P1. Returns ``(Verdict, Interval or
    None)``.
    """
    verdict, interval = _slope_verdict(taus, first, budget, PROTOCOL_RULE, rng=rng,
                                       n_boot=n_boot)  # fmt: skip
    reason, outcome = verdict.reason, verdict.outcome
    if protocol == "P1":
        reason = f"{reason}; {P1_CONFOUND}"
    return Verdict(outcome, PROTOCOL_RULE, reason), interval


def censored_cell(first, budget, *, level=0.95):
    """Statistics of one cell's first-event counts, censored runs kept.

    Parameters
    ----------
    first : array_like of int, shape (n,)
        First iteration of the event per run, -1 where it was not reached.
    budget : int
        The budget (``max_iter``) at which -1 runs are censored.

    Returns
    -------
    dict
        ``n``, ``n_censored``, ``share`` (with ``share_low``, ``share_high``: exact
        interval), ``median`` (with ``median_low``, ``median_high``: Brookmeyer-Crowley),
        ``p90``, ``p99`` (Kaplan-Meier quantiles; inf: not reached within the budget)
        and ``max`` (of the runs that finished; -1 if none).
    """
    times, observed = censored_times(first, budget)
    km = kaplan_meier(times, observed, level=level)
    share, median = km.share_observed(), km.median
    finished = times[observed]
    return dict(
        n=int(times.size), n_censored=int(km.n_censored), share=share.estimate,
        share_low=share.low, share_high=share.high, median=median.estimate,
        median_low=median.low, median_high=median.high,
        p90=km.quantile(0.9).estimate, p99=km.quantile(0.99).estimate,
        max=float(finished.max()) if finished.size else -1.0,
    )  # fmt: skip


def iteration_verdict(ds, ms, first, budget, *, rng=None, n_boot=1000):
    """Claim 1's verdict on ``first[i, j, r]`` (d = ds[i], m = ms[j], run r; -1: censored).

    Returns
    -------
    verdict : Verdict
    fits : dict
        ``{"d": [GrowthFit per m], "m": [GrowthFit per d]}`` (empty lists for an axis
        that cannot be tested), and ``cells``: :func:`censored_cell` per (d, m).
    """
    first = np.asarray(first)
    cells = [[censored_cell(first[i, j], budget) for j in range(len(ms))] for i in range(len(ds))]
    fits = dict(_line_fits(ds, ms, first, budget, quantile=0.5, rng=rng, n_boot=n_boot),
                cells=cells)  # fmt: skip
    all_fits = fits["d"] + fits["m"]
    flat = [c for row in cells for c in row]
    low_share = [c for c in flat if c["share_high"] < MAJORITY]
    below_high = [c for c in flat if c["share_high"] < HIGH_PROBABILITY]
    axes = [[f.model for f in fits[a]] for a in ("d", "m") if fits[a]]

    summary = (
        f"growth along d: {_tally(fits['d'])}; along m: {_tally(fits['m'])}; share certified "
        f"per cell {min(c['share'] for c in flat):.2f} to {max(c['share'] for c in flat):.2f} "
        f"(n = {flat[0]['n']} per cell)"
    )
    if not all_fits:
        return Verdict("not tested", ITERATION_RULE, f"no axis can be tested: {summary}"), fits
    if any(_most(models, "exponential") for models in axes) or low_share:
        return Verdict("disagrees", ITERATION_RULE, summary), fits
    polynomial = all(_most(ms_, "polynomial") and "exponential" not in ms_ for ms_ in axes)
    if polynomial and not below_high:
        return Verdict("agrees", ITERATION_RULE, summary), fits
    return Verdict("inconclusive", ITERATION_RULE, summary), fits


def tail_verdict(ds, ms, first, budget, *, quantile=TAIL_QUANTILE, rng=None, n_boot=1000):
    """Claim 1's "with high probability" on ``first[i, j, r]`` (d = ds[i], m = ms[j], run
    r; -1: censored at ``budget``): does the ``quantile`` of the first certified
    iteration grow polynomially? (:data:`TAIL_RULE`)

    Returns
    -------
    verdict : Verdict
    fits : dict
        ``{"d": [GrowthFit of the quantile per m], "m": [per d]}`` (empty lists for an
        axis that cannot be tested).
    """
    first = np.asarray(first)
    fits = _line_fits(ds, ms, first, budget, quantile=quantile, rng=rng, n_boot=n_boot)
    reached = np.array([[km_quantile(*censored_times(first[i, j], budget), quantile)
                         for j in range(len(ms))] for i in range(len(ds))])  # fmt: skip
    n_beyond = int(np.sum(~np.isfinite(reached)))
    summary = (f"growth of the {quantile:g} quantile along d: {_tally(fits['d'])}; along m: "
               f"{_tally(fits['m'])}; quantile beyond the budget in {n_beyond} of "
               f"{reached.size} cells (n = {first.shape[-1]} per cell)")  # fmt: skip
    axes = [[f.model for f in fits[a]] for a in ("d", "m") if fits[a]]

    if not axes:
        return Verdict("not tested", TAIL_RULE, f"no axis can be tested: {summary}"), fits
    if any(_most(models, "exponential") for models in axes):
        return Verdict("disagrees", TAIL_RULE, summary), fits
    polynomial = all(_most(mo, "polynomial") and "exponential" not in mo for mo in axes)
    if polynomial and n_beyond == 0:
        return Verdict("agrees", TAIL_RULE, summary), fits
    return Verdict("inconclusive", TAIL_RULE, summary), fits


def _line_fits(ds, ms, first, budget, *, quantile, rng, n_boot):
    """``{"d": [GrowthFit per m], "m": [GrowthFit per d]}`` of the Kaplan-Meier
    ``quantile`` of ``first[i, j, r]`` (censored at ``budget``), lines along d first;
    an axis :func:`fopa.stats.growth_decidable` rejects gets an empty list."""
    fits = {"d": [], "m": []}
    for axis, sizes in (("d", ds), ("m", ms)):
        if not growth_decidable(sizes):
            continue
        for k in range(len(ms) if axis == "d" else len(ds)):
            counts = first[:, k] if axis == "d" else first[k, :]
            pairs = [censored_times(row, budget) for row in counts]
            fits[axis].append(growth_fit(
                sizes, [t for t, _ in pairs], censored=[~o for _, o in pairs],
                quantile=quantile, n_boot=n_boot, rng=rng,
            ))  # fmt: skip
    return fits


def _most(models, name):
    """Whether most of ``models`` are ``name``."""
    return 2 * sum(mo == name for mo in models) > len(models)


def _tally(fits):
    if not fits:
        return "not tested"
    counts = {}
    for f in fits:
        counts[f.model] = counts.get(f.model, 0) + 1
    return ", ".join(f"{v} {k}" for k, v in counts.items()) + f" of {len(fits)}"


def _capped_median(row, budget):
    """Kaplan-Meier median of one row capped at the budget: as a plain median of
    ``min(t, budget)`` with runs censored at the budget, this is ``min(median, budget)``."""
    times, _ = censored_times(row, budget)
    return float(np.sort(times)[(times.size - 1) // 2])


def _slope(log_x, values):
    """Least-squares slope, centred (exactly 0 for equal values: no rounding sign)."""
    dx = log_x - log_x.mean()
    values = np.asarray(values, dtype=float)
    return float(dx @ (values - values.mean()) / (dx @ dx))


def speed_verdict(taus, first, budget, *, rng=None, n_boot=2000):
    """Claim 2 (speed) on ``first[t, r]`` (scale taus[t], run r on the same instance at
    every tau; -1: censored). Returns ``(Verdict, Interval or None)``: the interval of
    the slope of the capped medians; the verdict also rests on the intervals of its
    bounds where medians are capped (:data:`CENSORED_SLOPE`)."""
    return _slope_verdict(taus, first, budget, SPEED_RULE, rng=rng, n_boot=n_boot)


def _slope_verdict(taus, first, budget, rule, *, rng, n_boot):
    first = np.asarray(first)
    if len(taus) < 2:
        return Verdict("not tested", rule, "fewer than 2 scales"), None
    log_tau = np.log(np.asarray(taus, dtype=float))
    side = np.sign(log_tau - log_tau.mean())  # +1 above the mean log tau: capping lowers
    medians = np.array([_capped_median(row, budget) for row in first])
    if not np.any(medians < budget):
        reason = (
            "no median below the budget at any tau (a median at the budget is "
            "indistinguishable from a capped one)"
        )
        return Verdict("not tested", rule, reason), None
    capped_where = set()  # the sides of the mean log tau where some replicate capped

    def capped(runs):
        meds = np.array([_capped_median(runs[:, t], budget) for t in range(runs.shape[1])])
        capped_where.update(side[meds >= budget].tolist())
        return meds

    def statistic(runs):  # runs: (n_runs, n_taus)
        return _slope(log_tau, np.log(np.maximum(capped(runs), 1.0)))

    def bound(sign):  # sign -1: the lower bound (-inf when capped below the mean)
        def statistic_bound(runs):
            meds = capped(runs)
            if np.any((side == sign) & (meds >= budget)):
                return sign * np.inf
            return _slope(log_tau, np.log(np.maximum(meds, 1.0)))

        return statistic_bound

    gen = as_rng(rng)
    state = gen.bit_generator.state
    interval = bootstrap_interval(statistic, first.T, n_boot=n_boot, rng=gen)
    lower = upper = interval
    for sign in (-1.0, 1.0):  # the bounds from the same resamples, only where they differ
        if sign in capped_where:
            again = np.random.Generator(type(gen.bit_generator)())
            again.bit_generator.state = state
            out = bootstrap_interval(bound(sign), first.T, n_boot=n_boot, rng=again)
            lower, upper = (out, upper) if sign < 0 else (lower, out)
    what = "slope of log median vs log tau"
    plain = sign_verdict(interval, expected="positive", what=what, rule=rule)
    if lower.low > 0:
        outcome = "agrees"
    elif upper.high < 0:
        outcome = "disagrees"
    else:
        outcome = "inconclusive"
    reason = plain.reason
    unreached = [f"{t:g}" for t, med in zip(taus, medians, strict=True) if med >= budget]
    if unreached:
        reason += f"; median not reached at tau = {', '.join(unreached)} (capped at {budget})"
    if lower is not interval or upper is not interval:
        reason += (f"; lower bound [{lower.low:.3g}, {lower.high:.3g}], upper bound "
                   f"[{upper.low:.3g}, {upper.high:.3g}]")  # fmt: skip
        if outcome != plain.outcome:
            reason += f" (the capped slope alone would read {plain.outcome})"
    return Verdict(outcome, rule, reason), interval


def regularity_verdict(taus, n_maxima, *, rng=None, n_boot=2000):
    """Claim 2 (regularity) on ``n_maxima[t, r]`` (distinct certified maxima at scale
    taus[t] on instance r; 0: none certified, left out). Returns ``(Verdict, Interval or
    None)``."""
    counts = np.asarray(n_maxima, dtype=float)
    if len(taus) < 2:
        return Verdict("not tested", REGULARITY_RULE, "fewer than 2 scales"), None
    measured = counts > 0
    if not np.all(measured.any(axis=1)):
        empty = [f"{t:g}" for t, ok in zip(taus, measured.any(axis=1), strict=True) if not ok]
        reason = f"no maximum certified at tau = {', '.join(empty)}"
        return Verdict("not tested", REGULARITY_RULE, reason), None
    log_tau = np.log(np.asarray(taus, dtype=float))

    def statistic(runs):  # runs: (n_instances, n_taus)
        means = []
        for t in range(runs.shape[1]):
            column = runs[:, t][runs[:, t] > 0]
            if column.size == 0:  # a resample without a measured instance at this tau:
                return 0.0  # counted as "no trend", which can only widen towards 0
            means.append(column.mean())
        return _slope(log_tau, np.array(means))

    interval = bootstrap_interval(statistic, counts.T, n_boot=n_boot, rng=rng)
    what = "slope of mean certified maxima vs log tau"
    verdict = sign_verdict(interval, expected="positive", what=what, rule=REGULARITY_RULE)
    left_out = int((~measured).sum())
    if left_out:
        verdict = Verdict(verdict.outcome, REGULARITY_RULE,
                          f"{verdict.reason}; {left_out} of {counts.size} (tau, instance) "
                          "pairs certified no maximum and were left out")  # fmt: skip
    return verdict, interval


def _log_residuals(s, medians):
    """``(affine, power)``: residual sums of squares in log N of ``N = a + b s`` (fitted
    by least squares in N) and of ``log N = a + r s``; None when a median is unusable
    or the affine fit is not positive at every s."""
    if not np.all(np.isfinite(medians)) or np.any(medians <= 0):
        return None
    b, a = np.polyfit(s, medians, 1)
    fitted = a + b * s
    if np.any(fitted <= 0):
        return None
    log_n = np.log(medians)
    affine = float(np.sum((log_n - np.log(fitted)) ** 2))
    r, c = np.polyfit(s, log_n, 1)
    power = float(np.sum((log_n - (c + r * s)) ** 2))
    return affine, power


def tolerance_verdict(tolerances, first, budget, *, rng=None, n_boot=1000):
    """Linear convergence on ``first[k, r]`` (first iteration with residual <=
    tolerances[k] in run r; -1: censored). Returns ``(Verdict, dict or None)``: the
    evidence (``medians``, the shares of replicates favouring each model, ``slope``: b
    of the affine model, iterations per unit of log(1/g))."""
    first = np.asarray(first)
    g = np.asarray(tolerances, dtype=float)
    tail = g <= TOLERANCE_TAIL * (1 + 1e-12)
    g, first = g[tail], first[tail]
    order = np.argsort(-g)
    g, first = g[order], first[order]
    decades = float(np.log10(g[0] / g[-1])) if g.size else 0.0
    if g.size < 3 or decades < TAIL_DECADES - 1e-9:
        reason = f"{g.size} tolerances <= {TOLERANCE_TAIL:g} spanning {decades:.3g} decades"
        return Verdict("not tested", TOLERANCE_RULE, reason), None
    s = np.log(1.0 / g)
    groups = [censored_times(row, budget) for row in first]
    medians = np.array([km_quantile(t, o) for t, o in groups])
    point = _log_residuals(s, medians)
    if point is None:
        reason = "a median is not reached within the budget (or the affine fit is not positive)"
        return Verdict("inconclusive", TOLERANCE_RULE, reason), None
    gen = as_rng(rng)
    affine_better = power_better = 0
    for _ in range(n_boot):
        index = gen.integers(0, first.shape[1], first.shape[1])  # the same runs at every g
        med = np.array([km_quantile(t[index], o[index]) for t, o in groups])
        out = _log_residuals(s, med)
        if out is not None:
            affine_better += out[0] < out[1]
            power_better += out[1] < out[0]
    evidence = dict(
        medians=medians.tolist(), log_inverse_tolerance=s.tolist(),
        rss_affine=point[0], rss_power=point[1], share_affine_better=affine_better / n_boot,
        share_power_better=power_better / n_boot, slope=float(np.polyfit(s, medians, 1)[0]),
        rate=float(np.polyfit(s, np.log(medians), 1)[0]),
    )  # fmt: skip
    reason = (f"the affine model fits better in {affine_better / n_boot:.1%} and the power of "
              f"1/g in {power_better / n_boot:.1%} of {n_boot} replicates; "
              f"{evidence['slope']:.3g} iterations per unit of log(1/g)")  # fmt: skip
    if affine_better / n_boot >= 0.975:
        return Verdict("agrees", TOLERANCE_RULE, reason), evidence
    if power_better / n_boot >= 0.975:
        return Verdict("disagrees", TOLERANCE_RULE, reason), evidence
    return Verdict("inconclusive", TOLERANCE_RULE, reason), evidence


def training_verdict():
    """Claim 2 (training) under today's protocol: not tested (:data:`TRAINING_RULE`)."""
    return Verdict("not tested", TRAINING_RULE, "protocol P1 only (one learning rate)")
