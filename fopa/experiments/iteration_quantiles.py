"""Claim 1's "with high probability": the tail of the iterations to a certified maximum.

The iteration study (:mod:`.iterations`) fits the growth of the median; a claim that
holds with high probability is about the upper quantiles too. This study runs the
same ascents (the same arguments, the same instances for the same seed) with many
more runs per cell, reads the Kaplan-Meier 0.5, 0.9 and 0.99 quantiles with their
intervals, and fits the growth of the 0.99 quantile along d and m
(``docs/experiments/1-iterations.md``, "The tail").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_rng
from ..stats import censored_times, kaplan_meier
from .common import (
    RELATIVE_FACTOR,
    StudyResult,
    cell_array,
    cell_axis,
    claims_row,
    constant_settings,
)
from .iterations import (
    CLAIM,
    ITERATION_SETTINGS,
    grid_settings_text,
    growth_text,
    iteration_counts,
    policy_text,
)
from .verdicts import TAIL_QUANTILE, tail_verdict

__all__ = ["TAIL_QUANTILES", "TailStudy", "iteration_tails", "tail_study"]

#: The quantiles of the first certified iteration reported per cell.
TAIL_QUANTILES = (0.5, 0.9, TAIL_QUANTILE)


@dataclass(frozen=True)
class TailStudy(StudyResult):
    """The quantiles of the first certified iteration over many runs per (d, m) cell.

    ``first_certified[i, j, r]`` is for ``d = ds[i]``, ``m = ms[j]``, run r (-1: not
    certified within ``max_iter``, censored there and kept). ``quantile[i, j, k]`` is
    the Kaplan-Meier ``quantiles[k]`` quantile of cell (i, j) with its 95 %
    Brookmeyer-Crowley interval ``quantile_low``, ``quantile_high`` (inf: not reached
    within the budget); ``share_certified`` (with its exact interval ``share_low``,
    ``share_high``) and ``max`` (of the certified runs; -1: none) per cell.
    ``growth_d`` holds the :class:`fopa.stats.GrowthFit` of the 0.99 quantile along d
    per m (as dicts), ``growth_m`` along m per d, and ``verdict`` the verdict with its
    rule (:func:`fopa.experiments.verdicts.tail_verdict`).
    """

    ds: tuple
    ms: tuple
    quantiles: tuple
    first_certified: np.ndarray
    quantile: np.ndarray
    quantile_low: np.ndarray
    quantile_high: np.ndarray
    share_certified: np.ndarray
    share_low: np.ndarray
    share_high: np.ndarray
    max: np.ndarray
    growth_d: tuple
    growth_m: tuple
    verdict: dict
    settings: dict


def iteration_tails(
    ds=(4, 8, 16, 32), ms=(16,), *, n_runs=200, scale=1.0, ratio=0.5, tol=1e-8,
    max_iter=20_000, certify_every="auto", step_policy="lipschitz", fixed_step=0.5,
    relative_factor=RELATIVE_FACTOR, init="zero", activation="tanh", loss="quadratic", rng=0,
) -> TailStudy:  # fmt: skip
    """Measure the tail of the iterations to a certified local maximum over d and m.

    The ascents of :func:`fopa.experiments.polynomial_iterations` (same arguments; with
    the same ``rng`` its first ``n_runs`` instances per cell are the same), reported by
    their quantiles; ``n_runs`` of several hundred or more makes the 0.99 quantile an
    estimate with an interval rather than the largest run.
    """
    gen = as_rng(rng)
    counts, settings = iteration_counts(
        ds, ms, n_runs=n_runs, scale=scale, ratio=ratio, tol=tol, max_iter=max_iter,
        certify_every=certify_every, step_policy=step_policy, fixed_step=fixed_step,
        relative_factor=relative_factor, init=init, activation=activation, loss=loss, rng=gen,
    )  # fmt: skip
    return tail_study(ds, ms, counts[0], settings, rng=gen)


def tail_study(ds, ms, first_cert, settings, *, rng=None) -> TailStudy:
    """A :class:`TailStudy` from first certified iterations (shape (len(ds), len(ms),
    runs); -1: censored at ``settings["max_iter"]``); ``rng`` drives the bootstraps."""
    gen = as_rng(rng)
    first_cert = np.asarray(first_cert, dtype=np.int64)
    budget = settings["max_iter"]
    verdict, fits = tail_verdict(ds, ms, first_cert, budget, rng=gen)
    shape = (len(ds), len(ms))
    q, q_low, q_high = (np.empty(shape + (len(TAIL_QUANTILES),)) for _ in range(3))
    share, share_low, share_high, top = (np.empty(shape) for _ in range(4))
    for i in range(len(ds)):
        for j in range(len(ms)):
            times, observed = censored_times(first_cert[i, j], budget)
            km = kaplan_meier(times, observed)
            for k, p in enumerate(TAIL_QUANTILES):
                interval = km.quantile(p)
                q[i, j, k], q_low[i, j, k], q_high[i, j, k] = (
                    interval.estimate,
                    interval.low,
                    interval.high,
                )
            s = km.share_observed()
            share[i, j], share_low[i, j], share_high[i, j] = s.estimate, s.low, s.high
            top[i, j] = times[observed].max() if observed.any() else -1.0
    return TailStudy(
        ds=tuple(ds), ms=tuple(ms), quantiles=TAIL_QUANTILES, first_certified=first_cert,
        quantile=q, quantile_low=q_low, quantile_high=q_high, share_certified=share,
        share_low=share_low, share_high=share_high, max=top,
        growth_d=tuple(f.to_dict() for f in fits["d"]),
        growth_m=tuple(f.to_dict() for f in fits["m"]), verdict=verdict.to_dict(),
        settings=dict(settings),
    )  # fmt: skip


def tail_claims(name, study):
    """The claims-table row of a :class:`TailStudy` (experiment ``name``)."""
    p99 = study.quantile[..., -1]
    ratio = p99 / study.quantile[..., 0]
    finite = np.isfinite(ratio)
    spread = (f"p99 / median {np.min(ratio[finite]):.2g} to {np.max(ratio[finite]):.2g}"
              if finite.any() else "p99 / median n/a")  # fmt: skip
    reached = p99[np.isfinite(p99)]
    values = (f"p99 {np.min(reached):.0f} to {np.max(reached):.0f} iterations"
              if reached.size else "p99 not reached")  # fmt: skip
    n_runs = study.first_certified.shape[-1]
    censored = int(np.sum(study.first_certified < 0))
    return [claims_row(
        claim=CLAIM, experiment=name,
        statistic=(f"{values} per cell ({spread}); growth of the Kaplan-Meier p99 "
                   f"{growth_text(study.growth_d, 'd')}, {growth_text(study.growth_m, 'm')}; "
                   f"{censored} censored runs of {study.first_certified.size}"),
        verdict=study.verdict, n=f"{n_runs} runs per cell",
        settings=grid_settings_text(study),
    )]  # fmt: skip


def tail_figure(study):
    """Left: Kaplan-Meier survival curves ``P(first certified iteration > t)`` per cell
    on log-log axes, with the levels of p90 and p99 marked. Right: the 0.5, 0.9 and 0.99
    quantiles against d with their 95 % intervals (one line style per m)."""
    from matplotlib.figure import Figure

    from .figures import count_axis, median_with_interval, shifts

    budget = study.settings["max_iter"]
    n = study.first_certified.shape[-1]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_s, ax_q = fig.subplots(1, 2)
    styles = ("-", "--", ":", "-.")
    for j, m in enumerate(study.ms):
        for i, d in enumerate(study.ds):
            km = kaplan_meier(*censored_times(study.first_certified[i, j], budget))
            t = np.concatenate([[max(km.times[0], 1.0)], km.times]) if km.times.size else [1.0]
            s = np.concatenate([[1.0], km.survival]) if km.times.size else [1.0]
            ax_s.step(t, np.maximum(s, 0.5 / n), where="post", color=f"C{i % 10}",
                      linestyle=styles[j % 4], linewidth=1.1,
                      label=f"d={d}, m={m}")  # fmt: skip
    for level, text in ((0.1, "p90"), (0.01, "p99")):
        ax_s.axhline(level, color="0.5", linewidth=0.8, linestyle=":")
        ax_s.text(1.0, level, f" {text}", va="bottom", fontsize=7, color="0.4",
                  transform=ax_s.get_yaxis_transform())  # fmt: skip
    ax_s.set_xscale("log")
    ax_s.set_yscale("log")
    ax_s.set_ylim(0.5 / n, 1.5)
    ax_s.set_xlabel("iteration t")
    ax_s.set_ylabel(f"share of runs not certified by t (n={n} per curve)")
    ax_s.set_title("Kaplan-Meier survival (floor: 1/(2n))")
    ax_s.grid(True, which="major", alpha=0.3)
    ax_s.legend(fontsize=6, ncol=2)
    markers = ("o", "s", "^")
    series = [(k, j) for j in range(len(study.ms)) for k in range(len(study.quantiles))]
    for (k, j), dx in zip(series, shifts(len(series)), strict=True):
        median_with_interval(
            ax_q, study.ds, study.quantile[:, j, k], study.quantile_low[:, j, k],
            study.quantile_high[:, j, k], budget,
            label=f"q={study.quantiles[k]:g}, m={study.ms[j]}", marker=markers[k % 3],
            shift=dx, color=f"C{k}", linestyle=styles[j % 4],
        )  # fmt: skip
    count_axis(ax_q, study.ds, "d", "quantile of the first certified iteration")
    ax_q.set_title("95 % intervals; a bar to the budget: end not bounded", fontsize=9)
    ax_q.legend(fontsize=6)
    fig.suptitle(
        f"{study.settings['loss']} loss, step {policy_text(study.settings)}, start "
        f"{study.settings.get('init', 'zero')}, budget {budget}",
        fontsize=10,
    )
    return fig


def tail_study_from_cells(seeds, rows, *, rng):
    """The :class:`TailStudy` of ``pga`` cells that sweep d and m."""
    axes = [("d", cell_axis(rows, "d")), ("m", cell_axis(rows, "m"))]
    settings = dict(n_runs=len(seeds), **constant_settings(rows, ITERATION_SETTINGS))
    first = cell_array(rows, axes, seeds, "first_certified", np.int64, -1)
    return tail_study(axes[0][1], axes[1][1], first, settings, rng=rng)
