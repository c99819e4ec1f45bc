"""``fopa reproduce --config paper``: the research-scale grids, run as resumable sweeps.

The paper configuration is a list of sweep specs (:func:`paper_specs`), one per
study that a sweep cell can build (:data:`fopa.experiments.registry.STUDIES`,
``cell``): the iteration studies over d in {8, ..., 784} x m in {16, ..., 4096}
for every step policy, start and loss; the speed studies over tau in [1e-3, 10] for
every radius eps/||x|| in {0.01, 0.1, 0.5, 1}, every step policy and both losses;
the regularity studies with 256 starts per instance. :func:`run_paper` runs each
spec into its own SQLite store under ``<out>/stores/`` (a rerun resumes: finished
cells are not run again), then builds ``report.md``, ``results.json`` and the
figures from the stores, exactly as ``fopa sweep --report`` does
(``docs/experiments/index.md``, "The paper configuration").

Studies that no sweep cell builds (tolerance, tail rates, saddles, training
protocols and checkpoints, regularity at d = 100 and 784) are not part of it:
their rows are absent from its claims table, which says so.
"""

from __future__ import annotations

import os
import sys
import time

from ..experiments.registry import ITERATION_ARMS
from ..experiments.scale_speed import POLICIES
from .results import report_from_stores
from .runner import CELL_TIME_LIMIT, run_sweep

__all__ = ["PAPER_CONFIG", "PAPER_SIZES", "paper_specs", "run_paper"]

#: The name of the configuration ``fopa reproduce --config paper`` runs through
#: :func:`run_paper` (the other configurations are the registry's ``CONFIG_NAMES``).
PAPER_CONFIG = "paper"

#: The grids and instance counts of the paper configuration ("paper"), and a small
#: copy with the same structure for tests ("tiny"). ``iteration_seeds``: instances per
#: (d, m) cell and arm; ``speed_seeds``: per (tau, policy) cell and radius;
#: ``regularity_seeds``: per tau, each with ``n_starts`` starts.
PAPER_SIZES = {
    "paper": dict(
        ds=[8, 16, 32, 64, 128, 256, 512, 784], ms=[16, 64, 256, 1024, 4096],
        iteration_seeds=100, iteration_max_iter=20_000,
        taus=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], ratios=[0.01, 0.1, 0.5, 1.0],
        speed_d=10, speed_m=50, speed_seeds=100,
        regularity_taus=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0], regularity_d=5, regularity_m=20,
        n_starts=256, regularity_seeds=100,
    ),
    "tiny": dict(
        ds=[3, 6], ms=[4, 8], iteration_seeds=3, iteration_max_iter=2_000,
        taus=[0.1, 1.0], ratios=[0.5, 1.0], speed_d=4, speed_m=6, speed_seeds=2,
        regularity_taus=[0.1, 1.0], regularity_d=3, regularity_m=4, n_starts=8,
        regularity_seeds=2,
    ),
}  # fmt: skip

_LOSS_PREFIX = {
    "iterations": {"quadratic": "polynomial_iterations", "logistic": "logistic_iterations"},
    "speed": {"quadratic": "input_scale_speed", "logistic": "logistic_speed"},
    "regularity": {"quadratic": "input_scale_regularity", "logistic": "logistic_regularity"},
}


def _ratio_suffix(ratio):
    return "" if ratio == 0.5 else f"_ratio_{ratio:g}"


def paper_specs(size="paper") -> list[dict]:
    """The sweep specs of the paper configuration, as dicts (:class:`fopa.sweeps.SweepSpec`).

    Each spec's ``name`` is the study it builds. Cells with the same seed share their
    random instance wherever the shapes agree (a paired design across tau, radius and
    step policy; across arms of the iteration grid).

    Parameters
    ----------
    size : {"paper", "tiny"}
        The grids of :data:`PAPER_SIZES`.

    Returns
    -------
    list of dict
    """
    if size not in PAPER_SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(PAPER_SIZES)}")
    g = PAPER_SIZES[size]
    specs = []
    for loss in ("quadratic", "logistic"):
        for suffix, policy, init in ITERATION_ARMS:
            specs.append(dict(
                name=_LOSS_PREFIX["iterations"][loss] + suffix, experiment="pga",
                description=f"claim 1: iterations to a certified maximum, {policy} step, "
                            f"start {init}, {loss} loss",
                seeds={"count": g["iteration_seeds"]},
                fixed=dict(scale=1.0, ratio=0.5, step_policy=policy, init=init, loss=loss,
                           certify_every="auto", max_iter=g["iteration_max_iter"]),
                grid=dict(d=g["ds"], m=g["ms"]),
            ))  # fmt: skip
        for ratio in g["ratios"]:
            specs.append(dict(
                name=_LOSS_PREFIX["speed"][loss] + _ratio_suffix(ratio), experiment="pga",
                description=f"claim 2: iterations against tau at eps/||x|| = {ratio:g}, "
                            f"{loss} loss",
                seeds={"count": g["speed_seeds"]},
                fixed=dict(d=g["speed_d"], m=g["speed_m"], ratio=ratio, loss=loss,
                           certify_every="auto"),
                grid=dict(scale=g["taus"], step_policy=list(POLICIES)),
            ))  # fmt: skip
        specs.append(dict(
            name=_LOSS_PREFIX["regularity"][loss], experiment="landscape",
            description=f"claim 2: certified maxima from {g['n_starts']} starts, {loss} loss",
            seeds={"count": g["regularity_seeds"]},
            fixed=dict(d=g["regularity_d"], m=g["regularity_m"], n_starts=g["n_starts"],
                       loss=loss),
            grid=dict(scale=g["regularity_taus"]),
        ))  # fmt: skip
    return specs


def run_paper(
    out="fopa-report", *, size="paper", jobs=1, scheduler=None, progress=True, stream=None,
    cell_time_limit=CELL_TIME_LIMIT,
) -> dict:  # fmt: skip
    """Run (or resume) every sweep of the paper configuration, then write its report.

    Parameters
    ----------
    out : str or path
        The report's directory; the stores go to ``<out>/stores/<study>.sqlite``.
    size : {"paper", "tiny"}
        See :func:`paper_specs`.
    jobs, scheduler, cell_time_limit
        As in :func:`fopa.sweeps.run_sweep` (a local pool, or a Dask cluster).
    progress : bool
        A progress line per sweep, and a line per finished sweep, on ``stream``.
    stream : file, optional
        Default ``sys.stderr``.

    Returns
    -------
    dict
        The content of ``results.json``; its ``meta["sweeps"]`` gives per store the
        cells, their summed seconds and this call's wall-clock seconds.
    """
    stream = sys.stderr if stream is None else stream
    specs = paper_specs(size)
    folder = os.path.join(os.fspath(out), "stores")
    os.makedirs(folder, exist_ok=True)
    stores, parts = [], {}
    for spec in specs:
        store = os.path.join(folder, spec["name"] + ".sqlite")
        tick = time.perf_counter()
        summary = run_sweep(spec, store, jobs=jobs, scheduler=scheduler, progress=progress,
                            stream=stream, cell_time_limit=cell_time_limit)  # fmt: skip
        wall = time.perf_counter() - tick
        if progress:
            print(f"{spec['name']}: {summary.ran} cells ran in {wall:.0f} s", file=stream)
        stores.append(store)
        parts[spec["name"]] = dict(ran=summary.ran, wall_seconds=wall)
    return report_from_stores(stores, out, extra_meta=dict(config=f"paper ({size})", sweeps=parts))
