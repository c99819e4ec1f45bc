"""Claim 1: iterations until PGA's iterate is certified a strict local maximum.

Experiments 1 (quadratic loss) and 5 (logistic loss): PGA with ``eta = 1/beta``
from the origin on random initial-phase instances over a grid of d and m,
certified every ``certify_every`` iterations (``docs/experiments/1-iterations.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._json import jsonable
from .._validate import as_int, as_rng
from ..ascent import projected_gradient_ascent
from ..bounds import iteration_bound
from ..losses import loss_code
from .common import (
    StudyResult,
    cell_array,
    cell_axis,
    certified_stats,
    constant_settings,
    fmt,
    fmt_interval,
    loglog_slope,
    random_instance,
)

__all__ = ["IterationStudy", "pga_outcome", "polynomial_iterations", "iteration_study"]


@dataclass(frozen=True)
class IterationStudy(StudyResult):
    """Claim 1: iterations until PGA's iterate is certified a strict local maximum.

    ``first_certified[i, j, r]`` is for ``d = ds[i]``, ``m = ms[j]``, run r (-1: not
    certified within ``max_iter``); ``first_stationary`` likewise for the first KKT
    point (relative residual <= tol), ``first_gradient_mapping`` for the first
    ``||G|| <= tol x gradient scale`` and ``bound`` the sufficient-ascent bound on that
    iteration; ``all_within_bound`` holds every reached ``first_gradient_mapping``
    against its bound.
    """

    ds: tuple
    ms: tuple
    first_certified: np.ndarray
    first_stationary: np.ndarray
    first_gradient_mapping: np.ndarray
    bound: np.ndarray
    share_certified: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    slope_d: float
    slope_d_interval: tuple
    slope_m: float
    slope_m_interval: tuple
    all_within_bound: bool
    settings: dict


def pga_outcome(net, x_hat, y, *, scale, ratio, step_size, tol, max_iter, certify_every, loss):
    """One ascent of an experiment: PGA from the origin at ``x = scale * x_hat``,
    ``eps = ratio ||x||``, certified every ``certify_every`` iterations.

    Returns a JSON-ready dict: ``first_certified``, ``first_stationary`` (the first
    KKT point, -1: never), ``first_gradient_mapping`` (first ``||G|| <= tol x gradient
    scale``), ``bound`` (:func:`fopa.iteration_bound` on that iteration, from the
    run's smallest step; None for a fixed step above ``1/beta``, where it does not
    hold), ``iterations``, ``gradient_evaluations``, ``min_step``, ``loss``,
    ``initial_loss`` and ``stopping_criterion``.
    """
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x)
    res = projected_gradient_ascent(
        net, x, y, eps, step_size=step_size, tol=tol, max_iter=max_iter,
        certify_every=certify_every, loss=loss,
    )  # fmt: skip
    bound = None  # the sufficient-ascent bound holds for steps of sufficient ascent
    if tol > 0:
        try:
            bound = iteration_bound(net, x, y, eps, res, loss=loss).bound
        except ValueError:  # a fixed step above 1/beta
            bound = None
    return dict(
        first_certified=int(res.first_certified_iteration),
        first_stationary=int(res.first_stationary_iteration),
        first_gradient_mapping=int(res.first_gradient_mapping_iteration), bound=bound,
        iterations=int(res.iterations), gradient_evaluations=int(res.gradient_evaluations),
        min_step=float(res.min_step_size), loss=float(res.loss),
        initial_loss=float(res.initial_loss), stopping_criterion=res.stopping_criterion,
    )  # fmt: skip


def polynomial_iterations(
    ds=(4, 8, 16), ms=(16, 32, 64), *, n_runs=20, scale=1.0, ratio=0.5, tol=1e-8,
    max_iter=20_000, certify_every=10, activation="tanh", loss="quadratic", rng=0,
) -> IterationStudy:  # fmt: skip
    """Measure how the iterations to a certified local maximum grow with d and m.

    PGA with ``eta = 1/beta`` from the origin; every ``certify_every`` iterations
    the iterate is certified (:func:`fopa.certify`). Slopes are of the median
    count against d (at the middle m) and against m (at the middle d), with
    bootstrap intervals; every first stationary iteration is held against
    :func:`fopa.iteration_bound`.
    """
    gen = as_rng(rng)
    loss_code(loss)
    n_runs = as_int("n_runs", n_runs, minimum=1)
    shape = (len(ds), len(ms), n_runs)
    first_cert = np.full(shape, -1, np.int64)
    first_stat = np.full(shape, -1, np.int64)
    first_gmap = np.full(shape, -1, np.int64)
    bound = np.zeros(shape)
    for i, d in enumerate(ds):
        for j, m in enumerate(ms):
            for r in range(n_runs):
                out = pga_outcome(
                    *random_instance(d, m, activation, gen), scale=scale, ratio=ratio,
                    step_size="lipschitz", tol=tol, max_iter=max_iter,
                    certify_every=certify_every, loss=loss,
                )  # fmt: skip
                first_cert[i, j, r] = out["first_certified"]
                first_stat[i, j, r] = out["first_stationary"]
                first_gmap[i, j, r] = out["first_gradient_mapping"]
                bound[i, j, r] = out["bound"]
    settings = dict(n_runs=n_runs, scale=scale, ratio=ratio, tol=tol, max_iter=max_iter,
                    certify_every=certify_every, activation=activation, loss=loss)  # fmt: skip
    return iteration_study(ds, ms, first_cert, first_stat, first_gmap, bound, settings, rng=gen)


def iteration_study(ds, ms, first_cert, first_stat, first_gmap, bound, settings, *, rng=None):
    """An :class:`IterationStudy` from raw counts (shape (len(ds), len(ms), runs)).

    Used by :func:`polynomial_iterations` and to build the study from a sweep's
    store; ``rng`` drives the bootstrap of the slopes.
    """
    gen = as_rng(rng)
    stats = np.array(
        [[certified_stats(first_cert[i, j]) for j in range(len(ms))] for i in range(len(ds))]
    )
    share, median, p90 = stats[..., 0], stats[..., 1], stats[..., 2]
    jm, id_ = len(ms) // 2, len(ds) // 2
    cert_runs = [
        [v for v in first_cert[i, j] if v >= 0] for i in range(len(ds)) for j in range(len(ms))
    ]
    by_d = [np.array(cert_runs[i * len(ms) + jm]) for i in range(len(ds))]
    by_m = [np.array(cert_runs[id_ * len(ms) + j]) for j in range(len(ms))]
    ok_d = all(s.size for s in by_d)
    ok_m = all(s.size for s in by_m)
    sd, sd_int = loglog_slope(ds, median[:, jm], samples=by_d if ok_d else None, rng=gen)
    sm, sm_int = loglog_slope(ms, median[id_, :], samples=by_m if ok_m else None, rng=gen)
    reached = first_gmap >= 0
    return IterationStudy(
        ds=tuple(ds), ms=tuple(ms), first_certified=first_cert, first_stationary=first_stat,
        first_gradient_mapping=first_gmap, bound=bound, share_certified=share, median=median,
        p90=p90, slope_d=sd, slope_d_interval=sd_int, slope_m=sm, slope_m_interval=sm_int,
        all_within_bound=bool(np.all(first_gmap[reached] <= bound[reached])),
        settings=dict(settings),
    )  # fmt: skip


def iteration_claims(name, study):
    """The claims-table row of an :class:`IterationStudy` (experiment ``name``)."""
    share = float(np.mean(study.share_certified))
    loss = study.settings["loss"]
    reached = (study.first_gradient_mapping > 0) & np.isfinite(study.bound)
    ratio = study.bound[reached] / study.first_gradient_mapping[reached]
    looseness = f"{float(np.median(ratio)):.2g}" if ratio.size else "n/a"
    return [dict(
        claim="1. PGA reaches a certified local maximum in polynomially many iterations",
        experiment=name,
        statistic=(f"share certified {share:.2f}; log-log slope of median vs d "
                   f"{fmt(study.slope_d)} {fmt_interval(study.slope_d_interval)}, vs m "
                   f"{fmt(study.slope_m)} {fmt_interval(study.slope_m_interval)}; all within "
                   f"the sufficient-ascent bound: {study.all_within_bound} (median bound / "
                   f"count {looseness})"),
        # yes: certified within the budget in >= 90 % of runs, counts fitted by a power law
        agrees="yes" if share >= 0.9 and study.slope_d is not None else "no",
        settings=f"{loss} loss, d in {jsonable(study.ds)}, m in {jsonable(study.ms)}",
    )]  # fmt: skip


def iteration_figure(study):
    """Median first certified iteration against d (one line per m) and against m."""
    from matplotlib.figure import Figure

    title = f"{study.settings['loss']} loss"
    fig = Figure(figsize=(9, 3.6))
    ax_d, ax_m = fig.subplots(1, 2)
    median = np.asarray(study.median)
    for j, m in enumerate(study.ms):
        ok = median[:, j] > 0
        ax_d.loglog(np.array(study.ds)[ok], median[ok, j], "o-", label=f"m={m}")
    for i, d in enumerate(study.ds):
        ok = median[i] > 0
        ax_m.loglog(np.array(study.ms)[ok], median[i, ok], "s-", label=f"d={d}")
    ax_d.set(xlabel="d", ylabel="median first certified iteration", title=f"{title}: vs d")
    ax_m.set(xlabel="m", title=f"{title}: vs m")
    ax_d.legend(fontsize=7)
    ax_m.legend(fontsize=7)
    return fig


def iteration_study_from_cells(seeds, rows, *, rng):
    """The :class:`IterationStudy` of ``pga`` cells that sweep d and m (one loss)."""
    if any(r["params"]["step_policy"] != "lipschitz" for r in rows):
        raise ValueError("the iteration study needs step_policy = 'lipschitz' (eta = 1/beta)")
    axes = [("d", cell_axis(rows, "d")), ("m", cell_axis(rows, "m"))]
    names = ("scale", "ratio", "tol", "max_iter", "certify_every", "activation", "loss")
    settings = constant_settings(rows, names)
    return iteration_study(
        axes[0][1], axes[1][1], cell_array(rows, axes, seeds, "first_certified", np.int64, -1),
        cell_array(rows, axes, seeds, "first_stationary", np.int64, -1),
        cell_array(rows, axes, seeds, "first_gradient_mapping", np.int64, -1),
        cell_array(rows, axes, seeds, "bound", float, np.inf),
        dict(n_runs=len(seeds), **settings), rng=rng,
    )  # fmt: skip
