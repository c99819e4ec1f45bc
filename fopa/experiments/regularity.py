"""Claim 2 (regularity): the landscape's shape against the input scale.

Per scale and instance: the distinct certified maxima from many starts, the best
one's basin, and its distance to the Taylor model's maximizer
(``docs/experiments/3-scale-regularity.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ..derivatives import input_gradient, input_hessian
from ..landscape import local_maxima, taylor_model_maximum
from ..stats import bootstrap_interval, proportion_interval
from .common import (
    StudyResult,
    cell_array,
    cell_axis,
    claims_row,
    constant_settings,
    random_instance,
)
from .verdicts import regularity_verdict

__all__ = [
    "ScaleRegularityStudy",
    "input_scale_regularity",
    "landscape_outcome",
    "regularity_study",
]


@dataclass(frozen=True)
class ScaleRegularityStudy(StudyResult):
    """Claim 2 (regularity): the landscape's shape against the input scale.

    Per scale ``taus[t]`` and instance r: ``n_maxima`` distinct certified maxima,
    ``best_basin`` the share of starts reaching the best one, ``taylor_distance``
    the distance from the best maximum to the Taylor model's maximizer over eps
    (-1 where no maximum was certified). ``slope`` is the slope of the mean number of
    maxima (over instances with one certified) against log tau, with its
    paired-bootstrap ``slope_interval`` (> 0: fewer maxima at smaller tau), and
    ``verdict`` the claim's verdict with its rule
    (:func:`fopa.experiments.verdicts.regularity_verdict`). ``maxima_interval`` and
    ``basin_interval`` hold per tau the 95 % bootstrap interval ``(low, high)`` of
    ``mean_maxima`` and ``mean_best_basin``. Per (tau, run) also: ``chao1`` (maxima
    estimated seen and unseen), ``loss_spread`` ((best - worst certified loss) /
    |best|), ``share_saddles`` (of starts ending at a saddle), ``best_curvature`` (the
    largest tangent eigenvalue at the best maximum), from
    :func:`landscape_outcome`; ``spread_ratio`` ``eps (lambda_max - lambda_min) /
    ||grad L||`` of the Hessian and gradient at x (below 1 the quadratic model of L
    over the ball has one local maximum: :func:`spread_ratio`; -1: not measured),
    and ``threshold`` the share of cells with a second certified maximum below and
    at or above 1, with exact intervals (:func:`threshold_table`).
    """

    taus: tuple
    n_maxima: np.ndarray
    best_basin: np.ndarray
    taylor_distance: np.ndarray
    chao1: np.ndarray
    loss_spread: np.ndarray
    share_saddles: np.ndarray
    best_curvature: np.ndarray
    mean_maxima: np.ndarray
    mean_best_basin: np.ndarray
    median_taylor_distance: np.ndarray
    maxima_interval: tuple
    basin_interval: tuple
    slope: float | None
    slope_interval: tuple | None
    verdict: dict
    settings: dict
    spread_ratio: np.ndarray = None
    threshold: dict = None


def input_scale_regularity(
    taus=(0.01, 0.1, 1.0), *, d=5, m=20, ratio=0.5, n_runs=10, n_starts=32,
    activation="tanh", loss="quadratic", rng=0,
) -> ScaleRegularityStudy:  # fmt: skip
    """Count certified maxima, the best one's basin, and the distance to the
    Taylor model's maximizer, for ``x = tau x_hat`` with ``eps = ratio ||x||``."""
    gen = as_rng(rng)
    instances = [
        random_instance(d, m, activation, gen) for _ in range(as_int("n_runs", n_runs, minimum=1))
    ]
    shape = (len(taus), n_runs)
    count = np.zeros(shape, np.int64)
    extra = {k: np.zeros(shape) for k in EXTRA}
    basin = np.zeros(shape)
    dist = np.zeros(shape)
    for t, tau in enumerate(taus):
        for r, instance in enumerate(instances):
            out = landscape_outcome(
                *instance, scale=tau, ratio=ratio, n_starts=n_starts, loss=loss, rng=gen
            )
            count[t, r], basin[t, r], dist[t, r] = (
                out["n_maxima"],
                out["best_basin"],
                out["taylor_distance"],
            )
            for k in EXTRA:
                extra[k][t, r] = out[k]
    settings = dict(d=d, m=m, ratio=ratio, n_runs=n_runs, n_starts=n_starts,
                    activation=activation, loss=loss)  # fmt: skip
    return regularity_study(taus, count, basin, dist, settings, rng=gen, extra=extra)


def chao1(counts):
    """Chao1 estimate of the number of distinct maxima, seen and unseen, from how many
    starts reached each: ``S + f1^2 / (2 f2)`` (``S + f1 (f1 - 1) / 2`` when no maximum
    was reached exactly twice), with f1, f2 the maxima reached by one and two starts."""
    counts = np.asarray(counts)
    f1, f2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    seen = int(np.sum(counts > 0))
    return float(seen + (f1 * f1 / (2.0 * f2) if f2 else f1 * (f1 - 1) / 2.0))


def spread_ratio(net, x, y, eps, *, loss="quadratic"):
    """``eps (lambda_max - lambda_min) / ||grad L(x)||`` for the Hessian of L at x.

    Below 1 the quadratic model ``g.delta + delta^T H delta / 2`` has exactly one local
    maximum over ``||delta|| <= eps`` (``docs/experiments/3-scale-regularity.md``,
    "A threshold"): a second local maximum on the sphere needs a multiplier mu in
    ``[lambda_2, lambda_1]``, where ``||g|| = ||(mu I - H) delta|| <= eps (lambda_1 -
    lambda_d)``. The largest float when the gradient is 0 (finite, for JSON).
    """
    g = float(np.linalg.norm(input_gradient(net, x, y, loss=loss)))
    eigs = np.linalg.eigvalsh(input_hessian(net, x, y, loss=loss))
    spread = float(eps * (eigs[-1] - eigs[0]))
    return min(spread / g, float(np.finfo(float).max)) if g > 0 else float(np.finfo(float).max)


def landscape_outcome(net, x_hat, y, *, scale, ratio, n_starts, loss, rng):
    """Certified maxima at ``x = scale * x_hat`` from ``n_starts`` starts (drawn from
    ``rng``), as a JSON-ready dict: ``n_maxima``, ``best_basin`` (share of starts at the
    best), ``taylor_distance`` (best to the Taylor model's maximizer, / eps; -1 when no
    maximum was certified), ``chao1`` (estimated maxima, seen and unseen),
    ``loss_spread`` ((best - worst certified loss) / |best|), ``share_saddles`` (of
    starts ending at a certified saddle) and ``best_curvature`` (the largest tangent
    eigenvalue at the best maximum, < 0; 0 when none) and ``spread_ratio``
    (:func:`spread_ratio` at x)."""
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x)
    land = local_maxima(net, x, y, eps, n_starts=n_starts, rng=rng, loss=loss)
    share_saddles = float(np.mean(land.kinds == "saddle"))
    ratio_at_x = spread_ratio(net, x, y, eps, loss=loss)
    if land.best is None:
        return dict(n_maxima=0, best_basin=0.0, taylor_distance=-1.0, chao1=0.0,
                    loss_spread=0.0, share_saddles=share_saddles, best_curvature=0.0,
                    spread_ratio=ratio_at_x)  # fmt: skip
    model = taylor_model_maximum(net, x, y, eps, loss=loss)
    counts = np.bincount(land.labels[land.labels >= 0], minlength=len(land.maxima))
    losses = [mx.loss for mx in land.maxima]
    spread = (max(losses) - min(losses)) / max(abs(max(losses)), 1e-300)
    return dict(
        n_maxima=len(land.maxima), best_basin=float(land.best.basin_fraction),
        taylor_distance=float(np.linalg.norm(land.best.point - model.point) / eps),
        chao1=chao1(counts), loss_spread=float(spread), share_saddles=share_saddles,
        best_curvature=float(land.best.certificate.max_tangent_eigenvalue),
        spread_ratio=ratio_at_x,
    )  # fmt: skip


#: The landscape measures beyond the count, basin and Taylor distance.
EXTRA = ("chao1", "loss_spread", "share_saddles", "best_curvature", "spread_ratio")
#: What an absent measure reads as (stores written before a measure existed).
ABSENT = dict.fromkeys(EXTRA, 0.0) | {"spread_ratio": -1.0}


def threshold_table(count, ratios):
    """The share of (tau, run) cells with a second certified maximum among the cells
    with ``ratios < 1`` and with ``ratios >= 1`` (cells with a certified maximum and a
    measured ratio), each ``{n, multiple, share, low, high}`` with its exact interval."""
    ok = (count > 0) & (ratios >= 0)
    out = {}
    for side, cells in (("below", ok & (ratios < 1)), ("above", ok & (ratios >= 1))):
        n, multiple = int(cells.sum()), int(np.sum(cells & (count >= 2)))
        if n == 0:
            out[side] = dict(n=0, multiple=0, share=None, low=None, high=None)
            continue
        interval = proportion_interval(multiple, n)
        out[side] = dict(n=n, multiple=multiple, share=multiple / n, low=interval.low,
                         high=interval.high)  # fmt: skip
    return out


def regularity_study(taus, count, basin, dist, settings, *, rng=None, extra=None):
    """A :class:`ScaleRegularityStudy` from raw per-(tau, run) arrays (``extra``:
    ``{name: array}`` for the names of :data:`EXTRA`, zeros when absent); ``rng``
    drives the bootstraps."""
    extra = {k: np.asarray((extra or {}).get(k, np.full(count.shape, ABSENT[k])), dtype=float)
             for k in EXTRA}  # fmt: skip
    measured = [row[row >= 0] for row in dist]
    medians = np.array([float(np.median(v)) if v.size else -1.0 for v in measured])
    gen = as_rng(rng)
    verdict, interval = regularity_verdict(taus, count, rng=gen)
    with_max = count > 0
    mean_maxima = np.array([row[ok].mean() if ok.any() else 0.0
                            for row, ok in zip(count, with_max, strict=True)])  # fmt: skip

    def mean_interval(values):
        if values.size < 2:
            return (float("nan"), float("nan"))
        out = bootstrap_interval(np.mean, values, n_boot=1000, rng=gen)
        return (out.low, out.high)

    maxima_interval = tuple(mean_interval(row[ok]) for row, ok in zip(count, with_max,
                                                                      strict=True))  # fmt: skip
    basin_interval = tuple(mean_interval(row) for row in basin)
    return ScaleRegularityStudy(
        taus=tuple(taus), n_maxima=count, best_basin=basin, taylor_distance=dist, **extra,
        mean_maxima=mean_maxima, mean_best_basin=basin.mean(axis=1),
        median_taylor_distance=medians, maxima_interval=maxima_interval,
        basin_interval=basin_interval, slope=None if interval is None else interval.estimate,
        slope_interval=None if interval is None else (interval.low, interval.high),
        verdict=verdict.to_dict(), settings=dict(settings),
        threshold=threshold_table(count, extra["spread_ratio"]),
    )  # fmt: skip


def _threshold_text(table):
    if not table or table["below"]["n"] + table["above"]["n"] == 0:
        return ""

    def side(entry, where):
        if entry["n"] == 0:
            return f"no cell {where}"
        return (f"{entry['multiple']} of {entry['n']} cells ({entry['share']:.0%} "
                f"[{entry['low']:.0%}, {entry['high']:.0%}]) {where}")  # fmt: skip

    return ("; a second maximum in " + side(table["below"], "with eps (lambda_max - "
            "lambda_min) / ||grad L|| < 1 (one maximum of the quadratic model)") + " and in "
            + side(table["above"], "at >= 1"))  # fmt: skip


def regularity_claims(name, study):
    """The claims-table row of a :class:`ScaleRegularityStudy`."""
    maxima, basin = study.mean_maxima, study.mean_best_basin
    taus, dist = study.taus, study.median_taylor_distance
    chao = np.asarray(study.chao1, dtype=float).mean(axis=1)
    saddles = np.asarray(study.share_saddles, dtype=float).mean(axis=1)
    slope = "n/a" if study.slope is None else (
        f"{study.slope:.3g} [{study.slope_interval[0]:.3g}, {study.slope_interval[1]:.3g}]"
    )  # fmt: skip
    return [claims_row(
        claim="2. smaller input scale, more regular landscape",
        experiment=name,
        statistic=(f"mean distinct certified maxima {maxima[0]:.2f} at tau={taus[0]} vs "
                   f"{maxima[-1]:.2f} at tau={taus[-1]} (slope vs log tau {slope}); best "
                   f"basin {basin[0]:.2f} vs {basin[-1]:.2f}; distance to Taylor maximizer "
                   f"/ eps {dist[0]:.3g} vs {dist[-1]:.3g}; Chao1 (maxima seen and unseen) "
                   f"mean {chao[0]:.3g} vs {chao[-1]:.3g}; share of starts at a saddle "
                   f"{saddles[0]:.2f} vs {saddles[-1]:.2f}{_threshold_text(study.threshold)}"),
        verdict=study.verdict,
        n=(f"{study.n_maxima.shape[1]} instances, paired across tau, "
           f"{study.settings['n_starts']} starts each"),
        settings=(f"{study.settings.get('loss', 'quadratic')} loss, d={study.settings['d']}, "
                  f"m={study.settings['m']}"),
    )]  # fmt: skip


def regularity_figure(study):
    """Mean distinct certified maxima and the best basin against tau (95 % bootstrap
    intervals), and the distance to the Taylor model's maximizer."""
    from matplotlib.figure import Figure

    from .figures import count_axis

    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    taus = np.array(study.taus, dtype=float)
    n = study.n_maxima.shape[1]
    for ax, mean, interval, ylabel, title in (
        (axes[0], study.mean_maxima, study.maxima_interval, "mean distinct certified maxima",
         "distinct maxima"),
        (axes[1], study.mean_best_basin, study.basin_interval, "share of starts",
         "basin of the best maximum"),
    ):  # fmt: skip
        mean = np.asarray(mean, dtype=float)
        low, high = (np.array([iv[k] for iv in interval], dtype=float) for k in (0, 1))
        ax.errorbar(taus, mean, yerr=[np.nan_to_num(mean - low), np.nan_to_num(high - mean)],
                    marker="o", capsize=3)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(taus)
        ax.set_xticklabels([f"{t:g}" for t in taus])
        ax.minorticks_off()
        ax.set(xlabel="input scale tau", ylabel=ylabel, title=f"{title} (n={n})")
        ax.grid(True, alpha=0.3)
    dist = np.asarray(study.median_taylor_distance)
    ok = dist > 0
    axes[2].loglog(taus[ok], dist[ok], "o-")
    count_axis(axes[2], taus, "input scale tau", "median distance / eps", counts=False)
    axes[2].set_title("to the Taylor model's maximizer")
    fig.suptitle(f"{study.settings.get('loss', 'quadratic')} loss, d={study.settings['d']}, "
                 f"m={study.settings['m']}, {study.settings['n_starts']} starts per instance",
                 fontsize=9)  # fmt: skip
    return fig


def regularity_study_from_cells(seeds, rows, *, rng):
    """The :class:`ScaleRegularityStudy` of ``landscape`` cells that sweep scale."""
    axes = [("scale", cell_axis(rows, "scale"))]
    settings = constant_settings(rows, ("d", "m", "ratio", "n_starts", "activation", "loss"))
    return regularity_study(
        axes[0][1], cell_array(rows, axes, seeds, "n_maxima", np.int64, 0),
        cell_array(rows, axes, seeds, "best_basin", float, 0.0),
        cell_array(rows, axes, seeds, "taylor_distance", float, -1.0),
        dict(n_runs=len(seeds), **settings), rng=rng,
        extra={k: cell_array(rows, axes, seeds, k, float, ABSENT[k]) for k in EXTRA},
    )  # fmt: skip
