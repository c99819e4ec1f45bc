"""Iterations against the tolerance: linear convergence near a strict maximum?

For each run, the first iteration whose relative KKT residual (the quantity the
solver stops on and the certificate tests) is at most ``g``, for ``g`` from 1e-2 to
1e-10. If PGA converges linearly near a strict local maximum the count grows like
``log(1/g)``; a count growing like a power of ``1/g`` is sublinear convergence
(``docs/experiments/6-tolerance.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ..ascent import projected_gradient_ascent
from ..certify import certify, local_rate
from ..losses import loss_code
from ..stats import bootstrap_interval
from .common import RELATIVE_FACTOR, StudyResult, claims_row, policy_step, random_instance
from .verdicts import censored_cell, tolerance_verdict

__all__ = [
    "TOLERANCES",
    "ToleranceStudy",
    "first_below",
    "iterations_against_tolerance",
    "tolerance_claims",
    "tolerance_figure",
    "tolerance_study",
]

TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)


@dataclass(frozen=True)
class ToleranceStudy(StudyResult):
    """First iteration with relative KKT residual <= g, per step policy and g.

    ``first_below[p, k, r]`` for policy ``policies[p]``, tolerance ``tolerances[k]``,
    run r (-1: not reached within ``max_iter``, censored). ``median``, ``median_low``,
    ``median_high`` (Kaplan-Meier, shape (P, K)); ``growth[p]``: the
    evidence of the verdict's comparison of ``N = a + b log(1/g)`` (linear
    convergence) with ``N ~ (1/g)^r`` (None: not compared); ``verdicts[p]`` the
    verdict with its rule (:func:`fopa.experiments.verdicts.tolerance_verdict`).
    ``measured_rate[p, r]`` is the contraction factor of the relative KKT residual
    per iteration over the tail (:data:`RATE_WINDOW`), ``predicted_rate[p, r]`` the
    factor :func:`fopa.local_rate` predicts at the certified final point (-1: not
    available; none for the backtracking step, whose step changes), and
    ``rate_ratio[p]`` the median of ``log measured / log predicted`` with its
    bootstrap interval ``(median, low, high)`` (1: as predicted; None: no pair).
    """

    policies: tuple
    tolerances: tuple
    first_below: np.ndarray
    median: np.ndarray
    median_low: np.ndarray
    median_high: np.ndarray
    growth: tuple
    verdicts: tuple
    measured_rate: np.ndarray
    predicted_rate: np.ndarray
    rate_ratio: tuple
    settings: dict


def first_below(residuals, tolerances):
    """First index where ``residuals <= g`` for each ``g`` (-1: never)."""
    residuals = np.asarray(residuals)
    out = np.full(len(tolerances), -1, np.int64)
    for k, g in enumerate(tolerances):
        hit = np.flatnonzero(residuals <= g)
        if hit.size:
            out[k] = hit[0]
    return out


def iterations_against_tolerance(
    tolerances=TOLERANCES, *, d=10, m=50, scale=1.0, ratio=0.5,
    policies=("lipschitz", "backtracking"), fixed_step=0.5, relative_factor=RELATIVE_FACTOR,
    n_runs=20, max_iter=20_000, activation="tanh", loss="quadratic", rng=0,
) -> ToleranceStudy:  # fmt: skip
    """For each run, the first iteration reaching each relative KKT tolerance.

    The same instances under every policy (a paired design); PGA from the origin at
    ``x = scale x_hat``, ``eps = ratio ||x||``, run with ``tol = min(tolerances) / 2``
    and its per-iteration relative KKT residual recorded.
    """
    gen = as_rng(rng)
    loss_code(loss)
    n_runs = as_int("n_runs", n_runs, minimum=2)
    tolerances = tuple(sorted((float(g) for g in tolerances), reverse=True))
    if not tolerances or tolerances[-1] <= 0 or tolerances[0] >= 1:
        raise ValueError(f"tolerances must lie in (0, 1); got {tolerances}")
    for p in policies:
        policy_step(p, fixed_step, relative_factor)
    instances = [random_instance(d, m, activation, gen) for _ in range(n_runs)]
    first = np.full((len(policies), len(tolerances), n_runs), -1, np.int64)
    measured = np.full((len(policies), n_runs), -1.0)
    predicted = np.full((len(policies), n_runs), -1.0)
    for p, policy in enumerate(policies):
        step = policy_step(policy, fixed_step, relative_factor)
        for r, (net, x_hat, y) in enumerate(instances):
            x = scale * x_hat
            res = projected_gradient_ascent(
                net, x, y, ratio * np.linalg.norm(x), step_size=step,
                tol=tolerances[-1] / 2, max_iter=max_iter, record_history=True, loss=loss,
            )  # fmt: skip
            first[p, :, r] = first_below(res.history.kkt_residual, tolerances)
            if policy != "backtracking":  # a fixed step per run: the linear theory applies
                measured[p, r], predicted[p, r] = tail_rates(
                    net, x, y, ratio * np.linalg.norm(x), res, loss
                )
    settings = dict(d=d, m=m, scale=scale, ratio=ratio, fixed_step=fixed_step,
                    relative_factor=relative_factor, n_runs=n_runs, max_iter=max_iter,
                    activation=activation, loss=loss)  # fmt: skip
    return tolerance_study(policies, tolerances, first, settings, rng=gen,
                           rates=(measured, predicted))  # fmt: skip


#: The tail window of the measured rate: relative KKT residuals in this range.
RATE_WINDOW = (1e-10, 1e-4)


def tail_rates(net, x, y, eps, res, loss, min_points=3):
    """``(measured, predicted)`` contraction factors per iteration of one run, -1 where
    not available: measured from the slope of log residual over the iterations with
    relative KKT residual in :data:`RATE_WINDOW` (at least ``min_points``), predicted by
    :func:`fopa.local_rate` at the final point if it is certified a strict maximum."""
    residual = res.history.kkt_residual
    window = np.flatnonzero((residual >= RATE_WINDOW[0]) & (residual <= RATE_WINDOW[1]))
    if window.size < min_points:
        return -1.0, -1.0
    slope = np.polyfit(window.astype(float), np.log(residual[window]), 1)[0]
    cert = certify(net, x, y, res.delta, eps, loss=loss)
    if cert.kind != "strict_local_max":
        return float(np.exp(slope)), -1.0
    return float(np.exp(slope)), float(local_rate(cert, res.step_size))


def tolerance_study(policies, tolerances, first, settings, *, rng=None, rates=None):
    """A :class:`ToleranceStudy` from raw counts (shape (P, K, runs)); ``rates``:
    ``(measured, predicted)`` tail contraction factors, shape (P, runs), -1 where not
    available (default: none)."""
    gen = as_rng(rng)
    if rates is None:
        rates = (np.full(first.shape[::2], -1.0), np.full(first.shape[::2], -1.0))
    measured, predicted = (np.asarray(v, dtype=float) for v in rates)
    budget = settings["max_iter"]
    cells = [[censored_cell(first[p, k], budget) for k in range(len(tolerances))]
             for p in range(len(policies))]  # fmt: skip
    table = {key: np.array([[c[key] for c in row] for row in cells])
             for key in ("median", "median_low", "median_high")}  # fmt: skip
    growth, verdicts = [], []
    for p in range(len(policies)):
        verdict, evidence = tolerance_verdict(tolerances, first[p], budget, rng=gen)
        growth.append(evidence)
        verdicts.append(verdict.to_dict())
    return ToleranceStudy(
        policies=tuple(policies), tolerances=tuple(tolerances), first_below=first,
        median=table["median"], median_low=table["median_low"],
        median_high=table["median_high"], growth=tuple(growth), verdicts=tuple(verdicts),
        measured_rate=measured, predicted_rate=predicted,
        rate_ratio=tuple(rate_ratio(measured[p], predicted[p]) for p in range(len(policies))),
        settings=dict(settings),
    )  # fmt: skip


def rate_ratio(measured, predicted, rng=0):
    """The median of ``log measured / log predicted`` over the runs where both tail
    contraction factors are in (0, 1), with its bootstrap interval ``(median, low,
    high)``; None with fewer than 2 such runs."""
    ok = (measured > 0) & (measured < 1) & (predicted > 0) & (predicted < 1)
    if ok.sum() < 2:
        return None
    ratio = np.log(measured[ok]) / np.log(predicted[ok])
    out = bootstrap_interval(np.median, ratio, n_boot=1000, rng=rng)
    return (out.estimate, out.low, out.high)


def tolerance_claims(name, study):
    """One claims-table row per step policy of a :class:`ToleranceStudy`."""
    rows = []
    for p, policy in enumerate(study.policies):
        fit, verdict = study.growth[p], study.verdicts[p]
        medians = ", ".join("n/a" if not np.isfinite(v) else f"{v:.0f}" for v in study.median[p])
        slope = "n/a" if fit is None else f"{fit['slope']:.3g}"
        ratio = study.rate_ratio[p]
        rate = ("" if ratio is None else
                f"; measured / predicted log tail rate (fopa.local_rate) {ratio[0]:.2f} "
                f"[{ratio[1]:.2f}, {ratio[2]:.2f}]")  # fmt: skip
        rows.append(claims_row(
            claim=CLAIM, experiment=name,
            statistic=(f"median first iteration with relative KKT residual <= g for g = "
                       f"{study.tolerances[0]:g} .. {study.tolerances[-1]:g}: {medians}; "
                       f"iterations per unit of log(1/g) {slope}{rate}"),
            verdict=verdict,
            n=f"{study.first_below.shape[-1]} instances",
            settings=(f"{study.settings['loss']} loss, step policy {policy}, "
                      f"d={study.settings['d']}, m={study.settings['m']}, tau="
                      f"{study.settings['scale']:g}, eps/||x||={study.settings['ratio']:g}"),
        ))  # fmt: skip
    return rows


#: The hypothesis this study tests (fopa's, from the local analysis of
#: ``docs/certify.md``; not a statement of the paper).
CLAIM = "local: PGA converges linearly near a strict local maximum (fopa's hypothesis)"


def tolerance_figure(study):
    """Median first iteration with residual <= g against 1/g (log x), per policy."""
    from matplotlib.figure import Figure

    from .figures import median_with_interval, shifts

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    inverse = [1.0 / g for g in study.tolerances]
    for p, (policy, dx) in enumerate(zip(study.policies, shifts(len(study.policies)),
                                         strict=True)):  # fmt: skip
        median_with_interval(ax, inverse, study.median[p], study.median_low[p],
                             study.median_high[p], study.settings["max_iter"], label=policy,
                             marker="o", shift=dx)  # fmt: skip
    ax.set_yscale("linear")  # log(1/g) growth is a straight line on these axes
    ax.set_ylim(bottom=0)
    ax.set_xticks(inverse)
    ax.set_xticklabels([f"1e{round(np.log10(v))}" for v in inverse])
    ax.minorticks_off()
    ax.set(
        xlabel="1 / g (relative KKT tolerance)",
        ylabel=f"median first iteration (n={study.first_below.shape[-1]})",
    )
    ax.grid(True, alpha=0.3)
    ax.set_title(
        f"{study.settings['loss']} loss, d={study.settings['d']}, "
        f"m={study.settings['m']}: straight line = linear convergence",
        fontsize=9,
    )
    ax.legend(fontsize=8, title="step policy", title_fontsize=8)
    return fig
