"""Claim 2 (speed): iterations to a certified maximum against the input scale.

``x = tau x_hat``, ``eps = ratio ||x||``, the same instances at every tau (a paired
design), under each step-size policy (``docs/experiments/2-scale-speed.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._json import jsonable
from .._validate import as_int, as_positive_scalar, as_rng
from .common import (
    POLICIES,
    RELATIVE_FACTOR,
    StudyResult,
    cell_array,
    cell_axis,
    claims_row,
    constant_settings,
    fmt,
    fmt_interval,
    policy_step,
    random_instance,
)
from .iterations import pga_outcome
from .verdicts import censored_cell, speed_verdict

__all__ = ["POLICIES", "ScaleSpeedStudy", "policy_step", "input_scale_speed", "speed_study"]


@dataclass(frozen=True)
class ScaleSpeedStudy(StudyResult):
    """Claim 2 (speed): iterations to a certified maximum against the input scale.

    ``first_certified[p, t, r]`` for policy ``policies[p]``, scale ``taus[t]``, run r
    (-1: not certified within ``max_iter``, censored and kept). Per (policy, tau):
    ``share_certified`` with its exact interval (``share_low``, ``share_high``), the
    Kaplan-Meier ``median`` (inf: not reached) with its interval (``median_low``,
    ``median_high``) and ``p90``. ``slope[p]`` is the slope of log median (capped at
    the budget) against log tau with its paired-bootstrap ``slope_interval[p]``: > 0
    means fewer iterations at smaller scales; ``verdicts[p]`` the claim's verdict
    under that policy (:func:`fopa.experiments.verdicts.speed_verdict`).
    """

    taus: tuple
    policies: tuple
    first_certified: np.ndarray
    share_certified: np.ndarray
    share_low: np.ndarray
    share_high: np.ndarray
    median: np.ndarray
    median_low: np.ndarray
    median_high: np.ndarray
    p90: np.ndarray
    slope: tuple
    slope_interval: tuple
    verdicts: tuple
    settings: dict


def input_scale_speed(
    taus=(0.01, 0.1, 1.0), *, d=10, m=50, ratio=0.5, policies=POLICIES, fixed_step=0.5,
    relative_factor=RELATIVE_FACTOR, n_runs=20, tol=1e-8, max_iter=20_000, certify_every="auto",
    activation="tanh", loss="quadratic", absolute_eps=None, rng=0,
) -> ScaleSpeedStudy:  # fmt: skip
    """Iterations to a certified maximum for ``x = tau x_hat``, ``eps = ratio ||x||``.

    The same networks, directions and labels are used at every tau (a paired
    design), under each step-size policy: a fixed eta, eta proportional to eps
    (``relative_factor * eps``), eta = 1/beta and the backtracking step. With
    ``absolute_eps`` the radius is ``absolute_eps * sqrt(d)`` at every tau instead
    (the ratio is then not fixed: a control, not the paper's setting).
    """
    gen = as_rng(rng)
    for p in policies:
        if p not in POLICIES:
            raise ValueError(f"unknown policy {p!r}; expected one of {', '.join(POLICIES)}")
    for t in taus:
        as_positive_scalar("tau", float(t))
    instances = [
        random_instance(d, m, activation, gen) for _ in range(as_int("n_runs", n_runs, minimum=1))
    ]
    first = np.full((len(policies), len(taus), n_runs), -1, np.int64)
    for p, policy in enumerate(policies):
        for t, tau in enumerate(taus):
            for r, instance in enumerate(instances):
                out = pga_outcome(
                    *instance, scale=tau, ratio=ratio,
                    step_size=policy_step(policy, fixed_step, relative_factor), tol=tol,
                    max_iter=max_iter, certify_every=certify_every, loss=loss,
                    eps=None if absolute_eps is None else absolute_eps * np.sqrt(d),
                )  # fmt: skip
                first[p, t, r] = out["first_certified"]
    settings = dict(d=d, m=m, ratio=ratio, fixed_step=fixed_step,
                    relative_factor=relative_factor, n_runs=n_runs, tol=tol,
                    max_iter=max_iter, certify_every=certify_every,
                    activation=activation, loss=loss, absolute_eps=absolute_eps)  # fmt: skip
    return speed_study(taus, policies, first, settings, rng=gen)


def speed_study(taus, policies, first, settings, *, rng=None):
    """A :class:`ScaleSpeedStudy` from raw counts (shape (len(policies), len(taus), runs))."""
    gen = as_rng(rng)
    budget = settings["max_iter"]
    keys = ("share", "share_low", "share_high", "median", "median_low", "median_high", "p90")
    cells = [[censored_cell(first[p, t], budget) for t in range(len(taus))]
             for p in range(len(policies))]  # fmt: skip
    table = {k: np.array([[c[k] for c in row] for row in cells], dtype=float) for k in keys}
    slopes, intervals, verdicts = [], [], []
    for p in range(len(policies)):
        verdict, interval = speed_verdict(taus, first[p], budget, rng=gen)
        slopes.append(None if interval is None else interval.estimate)
        intervals.append(None if interval is None else (interval.low, interval.high))
        verdicts.append(verdict.to_dict())
    return ScaleSpeedStudy(
        taus=tuple(taus), policies=tuple(policies), first_certified=first,
        share_certified=table["share"], share_low=table["share_low"],
        share_high=table["share_high"], median=table["median"],
        median_low=table["median_low"], median_high=table["median_high"], p90=table["p90"],
        slope=tuple(slopes), slope_interval=tuple(intervals), verdicts=tuple(verdicts),
        settings=dict(settings),
    )  # fmt: skip


#: The claim of the studies at a fixed ratio, and of the control at a fixed radius.
SPEED_CLAIM = "2. smaller input scale, faster convergence of PGA"
CONTROL_CLAIM = "control: smaller input scale, faster PGA at a fixed absolute eps"


def speed_claims(name, study):
    """One claims-table row per step policy of a :class:`ScaleSpeedStudy`."""
    rows = []
    loss = study.settings["loss"]
    absolute = study.settings.get("absolute_eps")
    claim = CONTROL_CLAIM if absolute is not None else SPEED_CLAIM
    radius = (f"eps = {absolute:g} sqrt(d) at every tau" if absolute is not None
              else f"eps/||x|| = {study.settings['ratio']:g}")  # fmt: skip
    for p, policy in enumerate(study.policies):
        slope, interval = study.slope[p], study.slope_interval[p]
        share = study.share_certified[p]
        verdict = study.verdicts[p]
        rows.append(claims_row(
            claim=claim,
            experiment=name,
            statistic=(f"slope of log median iterations vs log tau {fmt(slope)} "
                       f"{fmt_interval(interval)} (> 0: fewer at small tau); share certified "
                       f"{share.min():.2f} to {share.max():.2f} per tau"),
            verdict=verdict,
            n=f"{study.first_certified.shape[-1]} instances, paired across tau",
            settings=(f"{loss} loss, step policy {policy}, {radius}, tau in "
                      f"{jsonable(study.taus)}"),
        ))  # fmt: skip
    return rows


def speed_figure(study):
    """Kaplan-Meier median first certified iteration against tau with 95 % intervals,
    one line per step policy (open markers at the budget: median not reached)."""
    from matplotlib.figure import Figure

    from .figures import count_axis, median_with_interval, shifts

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    budget = study.settings["max_iter"]
    for p, (policy, dx) in enumerate(zip(study.policies, shifts(len(study.policies)),
                                         strict=True)):  # fmt: skip
        median_with_interval(ax, study.taus, study.median[p], study.median_low[p],
                             study.median_high[p], budget, label=policy, marker="o",
                             shift=dx)  # fmt: skip
    n = study.first_certified.shape[-1]
    count_axis(ax, study.taus, "input scale tau",
               f"median first certified iteration (n={n})")  # fmt: skip
    absolute = study.settings.get("absolute_eps")
    radius = (f"eps = {absolute:g} sqrt(d)" if absolute is not None
              else f"eps/||x|| = {study.settings['ratio']:g}")  # fmt: skip
    ax.set_title(f"{study.settings['loss']} loss, d={study.settings['d']}, "
                 f"m={study.settings['m']}, {radius}")  # fmt: skip
    ax.legend(fontsize=8, title="step policy", title_fontsize=8)
    return fig


def speed_study_from_cells(seeds, rows, *, rng):
    """The :class:`ScaleSpeedStudy` of ``pga`` cells that sweep scale and step_policy."""
    axes = [("step_policy", cell_axis(rows, "step_policy", order=POLICIES)),
            ("scale", cell_axis(rows, "scale"))]  # fmt: skip
    names = ("d", "m", "ratio", "fixed_step", "relative_factor", "tol", "max_iter",
             "certify_every", "activation", "loss")  # fmt: skip
    settings = constant_settings(rows, names)
    return speed_study(
        axes[1][1], axes[0][1], cell_array(rows, axes, seeds, "first_certified", np.int64, -1),
        dict(n_runs=len(seeds), **settings), rng=rng,
    )  # fmt: skip
