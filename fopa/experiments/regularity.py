"""Claim 2 (regularity): the landscape's shape against the input scale.

Per scale and instance: the distinct certified maxima from many starts, the best
one's basin, and its distance to the Taylor model's maximizer
(``docs/experiments/3-scale-regularity.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ..landscape import local_maxima, taylor_model_maximum
from .common import StudyResult, cell_array, cell_axis, constant_settings, random_instance

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
    (-1 where no maximum was certified).
    """

    taus: tuple
    n_maxima: np.ndarray
    best_basin: np.ndarray
    taylor_distance: np.ndarray
    mean_maxima: np.ndarray
    mean_best_basin: np.ndarray
    median_taylor_distance: np.ndarray
    settings: dict


def input_scale_regularity(
    taus=(0.01, 0.1, 1.0), *, d=5, m=20, ratio=0.5, n_runs=10, n_starts=32,
    activation="tanh", loss="quadratic", rng=0,
) -> ScaleRegularityStudy:  # fmt: skip
    """Count certified maxima, the best one's basin, and the distance to the
    Taylor model's maximizer, for ``x = tau x_hat`` with ``eps = ratio ||x||``."""
    gen = as_rng(rng)
    instances = [
        random_instance(d, m, activation, gen)
        for _ in range(as_int("n_runs", n_runs, minimum=1))
    ]
    shape = (len(taus), n_runs)
    count = np.zeros(shape, np.int64)
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
    settings = dict(d=d, m=m, ratio=ratio, n_runs=n_runs, n_starts=n_starts,
                    activation=activation, loss=loss)  # fmt: skip
    return regularity_study(taus, count, basin, dist, settings)


def landscape_outcome(net, x_hat, y, *, scale, ratio, n_starts, loss, rng):
    """Certified maxima at ``x = scale * x_hat`` from ``n_starts`` starts (drawn from
    ``rng``): their number, the best one's basin and its distance / eps to the Taylor
    model's maximizer (-1 when no maximum was certified), as a JSON-ready dict."""
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x)
    land = local_maxima(net, x, y, eps, n_starts=n_starts, rng=rng, loss=loss)
    if land.best is None:
        return dict(n_maxima=0, best_basin=0.0, taylor_distance=-1.0)
    model = taylor_model_maximum(net, x, y, eps, loss=loss)
    return dict(
        n_maxima=len(land.maxima), best_basin=float(land.best.basin_fraction),
        taylor_distance=float(np.linalg.norm(land.best.point - model.point) / eps),
    )  # fmt: skip


def regularity_study(taus, count, basin, dist, settings):
    """A :class:`ScaleRegularityStudy` from raw per-(tau, run) arrays."""
    measured = [row[row >= 0] for row in dist]
    medians = np.array([float(np.median(v)) if v.size else -1.0 for v in measured])
    return ScaleRegularityStudy(
        taus=tuple(taus), n_maxima=count, best_basin=basin, taylor_distance=dist,
        mean_maxima=count.mean(axis=1), mean_best_basin=basin.mean(axis=1),
        median_taylor_distance=medians, settings=dict(settings),
    )  # fmt: skip


def regularity_claims(name, study):
    """The claims-table row of a :class:`ScaleRegularityStudy`."""
    maxima, basin = study.mean_maxima, study.mean_best_basin
    taus, dist = study.taus, study.median_taylor_distance
    regular = maxima[0] <= maxima[-1] and basin[0] >= basin[-1]
    strictly = maxima[0] < maxima[-1] or basin[0] > basin[-1]
    return [dict(
        claim="2. smaller input scale, more regular landscape",
        experiment=name,
        statistic=(f"mean certified maxima {maxima[0]:.2f} at tau={taus[0]} vs "
                   f"{maxima[-1]:.2f} at tau={taus[-1]}; best basin {basin[0]:.2f} vs "
                   f"{basin[-1]:.2f}; distance to Taylor maximizer / eps "
                   f"{dist[0]:.3g} vs {dist[-1]:.3g}"),
        agrees="yes" if regular and strictly else ("inconclusive" if regular else "no"),
        settings=(f"{study.settings.get('loss', 'quadratic')} loss, d={study.settings['d']}, "
                  f"m={study.settings['m']}"),
    )]  # fmt: skip


def regularity_figure(study):
    """Mean certified maxima, the best basin and the distance to the Taylor maximizer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    taus = np.array(study.taus)
    axes[0].semilogx(taus, study.mean_maxima, "o-")
    axes[0].set(xlabel="tau", ylabel="mean certified maxima", title="distinct maxima")
    axes[1].semilogx(taus, study.mean_best_basin, "o-")
    axes[1].set(xlabel="tau", ylabel="share of starts", title="basin of the best maximum")
    dist = np.asarray(study.median_taylor_distance)
    ok = dist > 0
    axes[2].loglog(taus[ok], dist[ok], "o-")
    axes[2].set(xlabel="tau", ylabel="distance / eps", title="to the Taylor model's maximizer")
    return fig


def regularity_study_from_cells(seeds, rows, *, rng):
    """The :class:`ScaleRegularityStudy` of ``landscape`` cells that sweep scale."""
    axes = [("scale", cell_axis(rows, "scale"))]
    settings = constant_settings(rows, ("d", "m", "ratio", "n_starts", "activation", "loss"))
    return regularity_study(
        axes[0][1], cell_array(rows, axes, seeds, "n_maxima", np.int64, 0),
        cell_array(rows, axes, seeds, "best_basin", float, 0.0),
        cell_array(rows, axes, seeds, "taylor_distance", float, -1.0),
        dict(n_runs=len(seeds), **settings),
    )  # fmt: skip
