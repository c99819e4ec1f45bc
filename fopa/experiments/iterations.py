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
from ..stats import censored_times, joint_power_fit
from .common import (
    RELATIVE_FACTOR,
    StudyResult,
    cell_array,
    cell_axis,
    claims_row,
    constant_settings,
    policy_step,
    random_instance,
)
from .verdicts import iteration_verdict

#: Claim 1, as the claims table words it.
CLAIM = "1. PGA reaches a certified local maximum in polynomially many iterations"

__all__ = [
    "CLAIM", "IterationStudy", "pga_outcome", "polynomial_iterations", "iteration_counts",
    "iteration_study",
]  # fmt: skip


@dataclass(frozen=True)
class IterationStudy(StudyResult):
    """Claim 1: iterations until PGA's iterate is certified a strict local maximum.

    ``first_certified[i, j, r]`` is for ``d = ds[i]``, ``m = ms[j]``, run r (-1: not
    certified within ``max_iter``, a censored run: kept in every statistic as "more
    than ``max_iter``"); ``first_stationary`` likewise for the first KKT point
    (relative residual <= tol), ``first_gradient_mapping`` for the first ``||G|| <= tol
    x gradient scale`` and ``bound`` the sufficient-ascent bound on that iteration
    (-1 where it does not apply: a fixed step above ``1/beta``); ``all_within_bound``
    holds every reached ``first_gradient_mapping`` against its bound (where one
    applies).

    Per cell (shape (len(ds), len(ms))): ``share_certified`` within the budget with its
    exact interval (``share_low``, ``share_high``), the Kaplan-Meier ``median`` with its
    interval (``median_low``, ``median_high``), ``p90``, ``p99`` (inf: not reached
    within the budget) and ``max`` of the certified runs. ``growth_d`` holds a
    :class:`fopa.stats.GrowthFit` (as a dict) along d per m, ``growth_m`` along m per d,
    and ``verdict`` the claim's verdict with its rule
    (:func:`fopa.experiments.verdicts.iteration_verdict`). ``joint_fit`` is
    :func:`fopa.stats.joint_power_fit` of the cells' Kaplan-Meier medians (log median
    on centred log d, log m and their product, cluster bootstrap over the runs) as a
    dict: the exponents of the whole grid at once, beside the lines of ``growth_d``
    and ``growth_m`` (it informs; the verdict's rule does not use it).
    """

    ds: tuple
    ms: tuple
    first_certified: np.ndarray
    first_stationary: np.ndarray
    first_gradient_mapping: np.ndarray
    bound: np.ndarray
    share_certified: np.ndarray
    share_low: np.ndarray
    share_high: np.ndarray
    median: np.ndarray
    median_low: np.ndarray
    median_high: np.ndarray
    p90: np.ndarray
    p99: np.ndarray
    max: np.ndarray
    growth_d: tuple
    growth_m: tuple
    verdict: dict
    all_within_bound: bool
    settings: dict
    joint_fit: dict = None


def pga_outcome(
    net, x_hat, y, *, scale, ratio, step_size, tol, max_iter, certify_every, loss,
    init="zero", rng=None, eps=None,
):  # fmt: skip
    """One ascent of an experiment: PGA at ``x = scale * x_hat``, ``eps = ratio ||x||``,
    from ``init`` (``"zero"``, or ``"sphere"``: uniform on the sphere, drawn from
    ``rng``), certified every ``certify_every`` iterations. ``eps`` given: that
    radius instead of ``ratio ||x||``.

    Returns a JSON-ready dict: ``first_certified``, ``first_stationary`` (the first
    KKT point, -1: never), ``first_gradient_mapping`` (first ``||G|| <= tol x gradient
    scale``), ``bound`` (:func:`fopa.iteration_bound` on that iteration, from the
    run's smallest step; None for a fixed step above ``1/beta``, where it does not
    hold), ``iterations``, ``gradient_evaluations``, ``min_step``, ``loss``,
    ``initial_loss`` and ``stopping_criterion``.
    """
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x) if eps is None else eps
    res = projected_gradient_ascent(
        net, x, y, eps, step_size=step_size, tol=tol, max_iter=max_iter,
        certify_every=certify_every, loss=loss, init=init, rng=rng,
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
    max_iter=20_000, certify_every="auto", step_policy="lipschitz", fixed_step=0.5,
    relative_factor=RELATIVE_FACTOR, init="zero", activation="tanh", loss="quadratic", rng=0,
) -> IterationStudy:  # fmt: skip
    """Measure how the iterations to a certified local maximum grow with d and m.

    PGA with the step policy (``"lipschitz"``: ``eta = 1/beta`` of the tight
    constants; ``"backtracking"``; ``"fixed"``: ``fixed_step``; ``"relative"``:
    ``relative_factor * eps``) from ``init`` (``"zero"`` or ``"sphere"``, a uniform
    point of the sphere drawn from ``rng``); every ``certify_every`` iterations
    the iterate is certified (:func:`fopa.certify`). Runs that do not certify within
    ``max_iter`` are censored, not dropped. The Kaplan-Meier median count is fitted
    along d (at each m) and along m (at each d) by :func:`fopa.stats.growth_fit`; every
    first gradient-mapping iteration is held against :func:`fopa.iteration_bound`.
    ``n_runs`` >= 2 (a median needs an interval).
    """
    gen = as_rng(rng)
    counts, settings = iteration_counts(
        ds, ms, n_runs=n_runs, scale=scale, ratio=ratio, tol=tol, max_iter=max_iter,
        certify_every=certify_every, step_policy=step_policy, fixed_step=fixed_step,
        relative_factor=relative_factor, init=init, activation=activation, loss=loss, rng=gen,
    )  # fmt: skip
    return iteration_study(ds, ms, *counts, settings, rng=gen)


def iteration_counts(
    ds, ms, *, n_runs, scale, ratio, tol, max_iter, certify_every, step_policy, fixed_step,
    relative_factor, init, activation, loss, rng,
):  # fmt: skip
    """The raw counts of :func:`polynomial_iterations` (its arguments; ``rng`` a
    Generator): ``((first_certified, first_stationary, first_gradient_mapping,
    bound), settings)``, arrays of shape (len(ds), len(ms), n_runs), instances drawn
    cell by cell in that order."""
    loss_code(loss)
    n_runs = as_int("n_runs", n_runs, minimum=2)
    step_size = policy_step(step_policy, fixed_step, relative_factor)
    if init not in ("zero", "sphere"):
        raise ValueError(f"init must be 'zero' or 'sphere'; got {init!r}")
    shape = (len(ds), len(ms), n_runs)
    first_cert = np.full(shape, -1, np.int64)
    first_stat = np.full(shape, -1, np.int64)
    first_gmap = np.full(shape, -1, np.int64)
    bound = np.zeros(shape)
    for i, d in enumerate(ds):
        for j, m in enumerate(ms):
            for r in range(n_runs):
                instance = random_instance(d, m, activation, rng)
                out = pga_outcome(
                    *instance, scale=scale, ratio=ratio, step_size=step_size, tol=tol,
                    max_iter=max_iter, certify_every=certify_every, loss=loss, init=init,
                    rng=rng if init != "zero" else None,
                )  # fmt: skip
                first_cert[i, j, r] = out["first_certified"]
                first_stat[i, j, r] = out["first_stationary"]
                first_gmap[i, j, r] = out["first_gradient_mapping"]
                bound[i, j, r] = -1.0 if out["bound"] is None else out["bound"]
    settings = dict(n_runs=n_runs, scale=scale, ratio=ratio, tol=tol, max_iter=max_iter,
                    certify_every=certify_every, step_policy=step_policy,
                    fixed_step=fixed_step, relative_factor=relative_factor, init=init,
                    activation=activation, loss=loss)  # fmt: skip
    return (first_cert, first_stat, first_gmap, bound), settings


def iteration_study(ds, ms, first_cert, first_stat, first_gmap, bound, settings, *, rng=None):
    """An :class:`IterationStudy` from raw counts (shape (len(ds), len(ms), runs)).

    Used by :func:`polynomial_iterations` and to build the study from a sweep's
    store; ``rng`` drives the bootstraps of the growth fits.
    """
    gen = as_rng(rng)
    verdict, fits = iteration_verdict(ds, ms, first_cert, settings["max_iter"], rng=gen)
    cells = fits["cells"]
    keys = ("share", "share_low", "share_high", "median", "median_low", "median_high", "p90",
            "p99", "max")  # fmt: skip
    table = {k: np.array([[c[k] for c in row] for row in cells], dtype=float) for k in keys}
    held = (first_gmap >= 0) & (bound >= 0)
    joint = joint_power_fit(ds, ms, *censored_times(first_cert, settings["max_iter"]), rng=gen)
    return IterationStudy(
        ds=tuple(ds), ms=tuple(ms), first_certified=first_cert, first_stationary=first_stat,
        first_gradient_mapping=first_gmap, bound=bound, share_certified=table["share"],
        share_low=table["share_low"], share_high=table["share_high"], median=table["median"],
        median_low=table["median_low"], median_high=table["median_high"], p90=table["p90"],
        p99=table["p99"], max=table["max"],
        growth_d=tuple(f.to_dict() for f in fits["d"]),
        growth_m=tuple(f.to_dict() for f in fits["m"]), verdict=verdict.to_dict(),
        all_within_bound=bool(np.all(first_gmap[held] <= bound[held])),
        settings=dict(settings), joint_fit=joint.to_dict(),
    )  # fmt: skip


def growth_text(fits, axis):
    """``GrowthFit`` dicts along an axis, in words: the models and the exponents' span."""
    if not fits:
        return f"along {axis}: not tested"
    exps = [f["exponent"] for f in fits if f["exponent"] is not None]
    span = f"exponents {min(exps):.2f} to {max(exps):.2f}" if exps else "no exponent"
    models = ", ".join(f["model"] for f in fits)
    return f"along {axis}: {models} ({span})"


def _joint_text(joint):
    if not joint or not joint["fitted"]:
        return "joint fit: not fitted" + (f" ({joint['reason']})" if joint else "")

    def term(name, label):
        low, high = joint["intervals"][name]
        shown = "" if low is None else f" [{low:.2f}, {high:.2f}]"
        return f"{label} {joint['coefficients'][name]:.2f}{shown}"

    return (f"joint fit of log median on log d, log m: exponents at the grid's centre "
            f"{term('log_d', 'd')}, {term('log_m', 'm')}, "
            f"{term('log_d_log_m', 'interaction')}")  # fmt: skip


def iteration_claims(name, study):
    """The claims-table row of an :class:`IterationStudy` (experiment ``name``)."""
    reached = (study.first_gradient_mapping > 0) & (study.bound >= 0)
    ratio = study.bound[reached] / study.first_gradient_mapping[reached]
    looseness = f"{float(np.median(ratio)):.2g}" if ratio.size else "n/a"
    n_runs = study.first_certified.shape[-1]
    censored = int(np.sum(study.first_certified < 0))
    return [claims_row(
        claim=CLAIM,
        experiment=name,
        statistic=(f"share certified within {study.settings['max_iter']} iterations "
                   f"{np.min(study.share_certified):.2f} to {np.max(study.share_certified):.2f} "
                   f"per cell ({censored} censored runs of {study.first_certified.size}); "
                   f"growth of the Kaplan-Meier median {growth_text(study.growth_d, 'd')}, "
                   f"{growth_text(study.growth_m, 'm')}; {_joint_text(study.joint_fit)}; "
                   f"all within the sufficient-ascent "
                   f"bound: {study.all_within_bound} (median bound / count {looseness})"),
        verdict=study.verdict, n=f"{n_runs} runs per cell",
        settings=grid_settings_text(study),
    )]  # fmt: skip


def grid_settings_text(study):
    """The settings column of a study over a (d, m) grid: loss, step, start, grid."""
    return (f"{study.settings['loss']} loss, step {policy_text(study.settings)}, start "
            f"{study.settings.get('init', 'zero')}, d in {jsonable(study.ds)}, m in "
            f"{jsonable(study.ms)}")  # fmt: skip


def policy_text(settings):
    """The step policy of a study's settings, as the tables and titles word it."""
    policy = settings.get("step_policy", "lipschitz")
    if policy == "fixed":
        return f"fixed {settings['fixed_step']:g}"
    if policy == "relative":
        return f"{settings['relative_factor']:g} eps"
    return "1/beta" if policy == "lipschitz" else "backtracking from 1/beta"


def iteration_figure(study):
    """Kaplan-Meier median first certified iteration against d (one line per m) and
    against m (one line per d), with 95 % intervals; an open marker at the budget where
    the median was not reached."""
    from matplotlib.figure import Figure

    from .figures import count_axis, median_with_interval, shifts

    title = (f"{study.settings['loss']} loss, step {policy_text(study.settings)}, "
             f"start {study.settings.get('init', 'zero')}")  # fmt: skip
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_d, ax_m = fig.subplots(1, 2)
    budget = study.settings["max_iter"]
    median, low, high = (np.asarray(v) for v in (study.median, study.median_low,
                                                   study.median_high))  # fmt: skip
    for j, (m, dx) in enumerate(zip(study.ms, shifts(len(study.ms)), strict=True)):
        median_with_interval(ax_d, study.ds, median[:, j], low[:, j], high[:, j], budget,
                             label=f"m={m}", marker="o", shift=dx)  # fmt: skip
    for i, (d, dx) in enumerate(zip(study.ds, shifts(len(study.ds)), strict=True)):
        median_with_interval(ax_m, study.ms, median[i], low[i], high[i], budget,
                             label=f"d={d}", marker="s", shift=dx)  # fmt: skip
    n = study.first_certified.shape[-1]
    count_axis(ax_d, study.ds, "d", f"median first certified iteration (n={n} per point)")
    count_axis(ax_m, study.ms, "m", None)
    fig.suptitle(title, fontsize=10)
    ax_d.set_title("against d")
    ax_m.set_title("against m")
    ax_d.legend(fontsize=7)
    ax_m.legend(fontsize=7)
    return fig


#: The parameters of a ``pga`` cell that an iteration study's settings hold.
ITERATION_SETTINGS = ("scale", "ratio", "tol", "max_iter", "certify_every", "step_policy",
                      "fixed_step", "relative_factor", "init", "activation", "loss")  # fmt: skip


def iteration_study_from_cells(seeds, rows, *, rng):
    """The :class:`IterationStudy` of ``pga`` cells that sweep d and m (one loss, one
    step policy and start: its settings say which)."""
    axes = [("d", cell_axis(rows, "d")), ("m", cell_axis(rows, "m"))]
    settings = constant_settings(rows, ITERATION_SETTINGS)
    return iteration_study(
        axes[0][1], axes[1][1], cell_array(rows, axes, seeds, "first_certified", np.int64, -1),
        cell_array(rows, axes, seeds, "first_stationary", np.int64, -1),
        cell_array(rows, axes, seeds, "first_gradient_mapping", np.int64, -1),
        cell_array(rows, axes, seeds, "bound", float, -1.0),
        dict(n_runs=len(seeds), **settings), rng=rng,
    )  # fmt: skip
