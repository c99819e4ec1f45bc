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

The studies that no sweep cell builds (tolerance, tail rates, saddles, the
training studies, the speed studies at a fixed absolute radius, regularity at
d = 100 and 784) run after the sweeps at the sizes of the ``full``
configuration, each with the seed it gets in ``fopa reproduce --config full``
(seed 0), so their rows equal that report's under the same BLAS threads. Each
result is saved to ``<out>/studies/<name>.pickle`` as it finishes (written to a
temporary file, then renamed); a rerun loads the saved ones whose name, parameters,
seed and fopa version match and runs the rest, so the claims table holds every
study of the reproduction. As with the stores, a saved result is not tied to the
code beyond the version string: after changing fopa's code, delete
``<out>/studies`` (and the stores) to measure the new code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import time

from .._version import __version__
from ..experiments.registry import ITERATION_ARMS, configuration
from ..experiments.scale_speed import POLICIES
from ..report.reproduce import run_studies, study_seeds
from .results import report_from_stores
from .runner import CELL_TIME_LIMIT, run_sweep

__all__ = ["PAPER_CONFIG", "PAPER_SIZES", "paper_specs", "paper_outside_studies", "run_paper"]

#: The name of the configuration ``fopa reproduce --config paper`` runs through
#: :func:`run_paper` (the other configurations are the registry's ``CONFIG_NAMES``).
PAPER_CONFIG = "paper"

#: The grids and instance counts of the paper configuration ("paper"), and a small
#: copy with the same structure for tests ("tiny"). ``iteration_seeds``: instances per
#: (d, m) cell and arm; ``speed_seeds``: per (tau, policy) cell and radius;
#: ``regularity_seeds``: per tau, each with ``n_starts`` starts; ``studies_config``: the
#: configuration whose sizes and seeds the studies outside the sweeps take;
#: ``tail_*``: the sub-grid and instances per cell of the tail of the iteration counts
#: (the first ``iteration_seeds`` of them are the iteration grid's instances there).
PAPER_SIZES = {
    "paper": dict(
        ds=[8, 16, 32, 64, 128, 256, 512, 784], ms=[16, 64, 256, 1024, 4096],
        iteration_seeds=100, iteration_max_iter=20_000,
        taus=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], ratios=[0.01, 0.1, 0.5, 1.0],
        speed_d=10, speed_m=50, speed_seeds=100,
        regularity_taus=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0], regularity_d=5, regularity_m=20,
        n_starts=256, regularity_seeds=100, studies_config="full",
        tail_ds=[8, 32, 128, 512], tail_ms=[64, 1024], tail_seeds=1000,
    ),
    "tiny": dict(
        ds=[3, 6], ms=[4, 8], iteration_seeds=3, iteration_max_iter=2_000,
        taus=[0.1, 1.0], ratios=[0.5, 1.0], speed_d=4, speed_m=6, speed_seeds=2,
        regularity_taus=[0.1, 1.0], regularity_d=3, regularity_m=4, n_starts=8,
        regularity_seeds=2, studies_config="tiny", tail_ds=[3, 6], tail_ms=[4], tail_seeds=6,
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

    def iteration_fixed(policy, init, loss):  # the iteration arms' and the tail's cells
        return dict(scale=1.0, ratio=0.5, step_policy=policy, init=init, loss=loss,
                    certify_every="auto", max_iter=g["iteration_max_iter"])  # fmt: skip

    for loss in ("quadratic", "logistic"):
        for suffix, policy, init in ITERATION_ARMS:
            specs.append(dict(
                name=_LOSS_PREFIX["iterations"][loss] + suffix, experiment="pga",
                description=f"claim 1: iterations to a certified maximum, {policy} step, "
                            f"start {init}, {loss} loss",
                seeds={"count": g["iteration_seeds"]},
                fixed=iteration_fixed(policy, init, loss), grid=dict(d=g["ds"], m=g["ms"]),
            ))  # fmt: skip
        if loss == "quadratic":
            specs.append(dict(
                name="polynomial_iterations_tail", experiment="pga",
                description="claim 1 with high probability: quantiles of the first certified "
                            "iteration, 1/beta step, start zero, quadratic loss",
                seeds={"count": g["tail_seeds"]},
                fixed=iteration_fixed("lipschitz", "zero", loss),
                grid=dict(d=g["tail_ds"], m=g["tail_ms"]),
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


def paper_outside_studies(size="paper") -> dict:
    """The studies of the paper configuration that no sweep cell builds.

    Parameters
    ----------
    size : {"paper", "tiny"}

    Returns
    -------
    dict
        ``{study name: parameters}`` in registry order: every study of the
        configuration ``PAPER_SIZES[size]["studies_config"]`` that no spec of
        :func:`paper_specs` builds, with that configuration's parameters.
    """
    swept = {spec["name"] for spec in paper_specs(size)}
    params = configuration(PAPER_SIZES[size]["studies_config"])
    return {name: p for name, p in params.items() if name not in swept}


def _saved_study(path, key):
    """The saved ``(result, seconds)`` at ``path`` if its key is ``key``; else None."""
    try:
        with open(path, "rb") as fh:
            saved = pickle.load(fh)
    except Exception:  # missing, unreadable or from other code: run the study again
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    return saved["result"], saved["seconds"]


def _save_study(path, key, result, seconds):
    """Write a study's result whole or not at all (a temporary file, then a rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(dict(key=key, result=result, seconds=seconds), fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _run_outside_studies(size, folder, jobs, stream, progress):
    """Run (or load) the studies outside the sweeps; ``(results, parts)``."""
    config = PAPER_SIZES[size]["studies_config"]
    params = paper_outside_studies(size)
    seeds = study_seeds(config, 0)
    os.makedirs(folder, exist_ok=True)
    keys = {name: dict(name=name, params=p, seed=seeds[name], version=__version__)
            for name, p in params.items()}  # fmt: skip
    path = {name: os.path.join(folder, name + ".pickle") for name in params}
    results, parts = {}, {}
    for name in params:
        saved = _saved_study(path[name], keys[name])
        if saved is not None:
            results[name] = saved[0]
            parts[name] = dict(config=config, seed=seeds[name], seconds=saved[1], ran=False)
    todo = {name: p for name, p in params.items() if name not in results}
    if progress and todo:
        print(f"{len(todo)} studies outside the sweeps ({len(results)} saved)", file=stream)
    runs = run_studies(todo, seeds, jobs=jobs, stream=stream, progress=progress,
                       config=config)  # fmt: skip
    with contextlib.closing(runs):  # an exception here shuts the pool down at once
        for name, result, seconds, _ in runs:
            _save_study(path[name], keys[name], result, seconds)
            results[name] = result
            parts[name] = dict(config=config, seed=seeds[name], seconds=seconds, ran=True)
    order = list(params)
    return ({name: results[name] for name in order}, {name: parts[name] for name in order})


def run_paper(
    out="fopa-report", *, size="paper", jobs=1, scheduler=None, progress=True, stream=None,
    cell_time_limit=CELL_TIME_LIMIT,
) -> dict:  # fmt: skip
    """Run (or resume) every sweep of the paper configuration and the studies outside
    them, then write its report.

    Parameters
    ----------
    out : str or path
        The report's directory; the stores go to ``<out>/stores/<study>.sqlite``.
    size : {"paper", "tiny"}
        See :func:`paper_specs`.
    jobs, scheduler, cell_time_limit
        As in :func:`fopa.sweeps.run_sweep` (a local pool, or a Dask cluster). The
        studies outside the sweeps run in a local pool of ``jobs`` workers (here, one
        at a time, with a scheduler).
    progress : bool
        A progress line per sweep, and a line per finished sweep, on ``stream``.
    stream : file, optional
        Default ``sys.stderr``.

    Returns
    -------
    dict
        The content of ``results.json``; its ``meta["sweeps"]`` gives per store the
        cells, their summed seconds and this call's wall-clock seconds;
        ``meta["outside"]`` per study outside the sweeps its configuration, seed,
        seconds (of the run that computed it) and whether this call ran it.
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
    # the studies no cell builds run here (a local pool of ``jobs`` workers, one with
    # a scheduler); each is saved as it finishes
    outside, outside_parts = _run_outside_studies(
        size, os.path.join(os.fspath(out), "studies"), 1 if scheduler is not None else jobs,
        stream, progress,
    )  # fmt: skip
    return report_from_stores(
        stores, out, studies=outside,
        study_seconds={name: part["seconds"] for name, part in outside_parts.items()},
        extra_meta=dict(config=f"paper ({size})", sweeps=parts, outside=outside_parts),
    )  # fmt: skip
