"""``fopa reproduce``: run every study, write report.md, results.json and figures.

Each study gets its own seed spawned from the run's seed, so results do not
depend on the order of work. With ``jobs > 1`` each worker's BLAS runs on
``cpu_count // jobs`` threads, which changes how products round: results equal
a ``jobs=1`` run under the same BLAS thread count to the bit, and a default one
to rounding (``docs/solver.md``, "What is reproduced, exactly").
The claims table gives each study's verdict on its claim (agrees, disagrees,
inconclusive or not tested) by the rule of :mod:`fopa.experiments.verdicts`
written next to it; it never assumes the answer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from .._parallel import share_blas_between_workers
from .._version import __version__
from ..experiments.registry import STUDIES, configuration
from ..experiments.study_seconds import SECONDS
from ..precompile import compile_first
from .claims import claims_table
from .figures import write_figure, write_figures
from .markdown import report_markdown

__all__ = ["longest_first", "reproduce", "run_studies", "study_seeds", "write_report"]


def _run(name, params, seed, out=None):
    """One study (in a worker process or here): its result object, its seconds and,
    when ``out`` is given, what the report needs of it, made right here: its figure
    written into ``out`` and its claims rows, ``{"figure": entry, "claims": rows}``
    (else None). Drawing in the worker spreads the figures over the workers."""
    tick = time.perf_counter()
    result = STUDIES[name].run(rng=seed, **params)
    seconds = time.perf_counter() - tick
    if out is None:
        return result, seconds, None
    made = dict(figure=write_figure(name, result, out), claims=STUDIES[name].claims(name, result))
    return result, seconds, made


def _bar(total, stream, progress=True):
    """A tqdm bar of the studies on ``stream``, the current study as its description."""
    from tqdm import tqdm

    return tqdm(total=total, file=stream, unit="study", dynamic_ncols=True, mininterval=0.2,
                disable=not progress)  # fmt: skip


def _chosen_studies(studies, every):
    """The names to run, in registry order; a clear error for anything else."""
    if studies is None:
        return list(every)
    if isinstance(studies, str):
        studies = [studies]
    chosen = list(studies)
    unknown = [name for name in chosen if name not in every]
    if unknown or not chosen:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "none given"
        raise ValueError(f"studies: {what}; expected names among {', '.join(every)}")
    return [name for name in every if name in chosen]


def study_seeds(config, seed) -> dict:
    """``{study name: seed}`` of a run of configuration ``config`` with ``seed``.

    Each study's seed is spawned from ``seed`` by its position in the registry
    (:data:`fopa.experiments.registry.STUDIES`), so it does not depend on which
    studies run or in which order.
    """
    every = list(configuration(config))
    spawned = np.random.SeedSequence(seed).spawn(len(every))
    return {name: int(s.generate_state(1)[0]) for name, s in zip(every, spawned, strict=True)}


def longest_first(names, config):
    """``names`` with the studies that took longest in a measured run of ``config``
    first (:data:`fopa.experiments.study_seconds.SECONDS`; unmeasured ones first of
    all, in the given order): the order in which a pool of workers should start them,
    so that no long study starts last and runs alone."""
    seconds = SECONDS.get(config, {})
    return sorted(names, key=lambda name: -seconds.get(name, math.inf))


def run_studies(params, seeds, *, jobs=1, stream=None, progress=True, out=None,
                config=None):  # fmt: skip
    """Run studies, yielding ``(name, result, seconds, made)`` as each finishes.

    Parameters
    ----------
    params : dict
        ``{study name: parameters}``, run in this order (as ``jobs`` allows; with
        ``jobs > 1`` and ``config``, the longest of a measured run of ``config``
        first, :func:`longest_first`).
    seeds : dict
        ``{study name: seed}`` (at least the names of ``params``).
    jobs : int
        Worker processes (1: run here, in order). Each worker's BLAS runs on
        ``cpu_count // jobs`` threads; at most one study per worker is in flight,
        so on Ctrl-C nothing is queued behind the interrupted studies. On an
        empty numba cache the kernels are first compiled in parallel
        (:func:`fopa.precompile.compile_first`).
    stream : file, optional
        Where the progress bar goes (default stderr).
    progress : bool
        Show the bar.
    out : str or path, optional
        A report directory (existing): each study's figure is written there and its
        claims rows made, in the process that ran it, right after it (so that the
        report's figures are drawn in parallel too).
    config : str, optional
        The configuration the parameters come from: the start order of a pool.

    Yields
    ------
    (str, object, float, dict or None)
        A study's name, its result, its wall-clock seconds (in its process, without
        the figure) and, with ``out``, ``{"figure": its entry in results.json,
        "claims": its rows of the claims table}`` (else None), in the order they
        finish.

    Notes
    -----
    A caller that may stop early (an exception in its loop) should close the
    generator (``contextlib.closing``), which shuts the pool down at once.
    """
    stream = sys.stderr if stream is None else stream
    names = list(params)
    if jobs > 1:
        compile_first(jobs, stream)
        if config is not None:  # so that no long study starts last and runs alone
            names = longest_first(names, config)
    bar = _bar(len(names), stream, progress)
    if jobs == 1:
        with bar:
            for name in names:
                bar.set_description_str(name)
                result, seconds, made = _run(name, params[name], seeds[name], out)
                bar.update(1)
                yield name, result, seconds, made
            bar.set_description_str("done")
        return
    queue = iter(names)
    running = {}
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=share_blas_between_workers,
                               initargs=(jobs,))  # fmt: skip
    try:
        while True:
            for name in itertools.islice(queue, jobs - len(running)):
                running[pool.submit(_run, name, params[name], seeds[name], out)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                result, seconds, made = future.result()
                bar.set_description_str(name)
                bar.update(1)
                yield name, result, seconds, made
    finally:  # interrupted: drop what is not running, do not start it
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)


def write_report(out, results, meta, *, seeds=None, made=None):
    """Write the figures, ``results.json`` and ``report.md`` of ``results`` into ``out``.

    Parameters
    ----------
    out : str or path
        Output directory (created).
    results : dict
        ``{study name: result}`` (objects with ``to_dict()``).
    meta : dict
        Run metadata: ``version``, ``source`` and ``seconds`` at least.
    seeds : dict, optional
        The seed of each study (written after ``meta``).
    made : dict, optional
        ``{name: {"figure": entry, "claims": rows}}`` of studies whose figure is
        already in ``out`` and whose rows are made (from :func:`run_studies` with
        ``out``); the others are drawn and made here.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    os.makedirs(out, exist_ok=True)
    made = {} if made is None else made
    figures = write_figures(results, out, drawn={k: v["figure"] for k, v in made.items()})
    claims = claims_table(results, computed={k: v["claims"] for k, v in made.items()})
    payload = dict(meta=meta)
    if seeds is not None:
        payload["seeds"] = seeds
    payload.update(experiments={name: r.to_dict() for name, r in results.items()},
                   claims=claims, figures=figures)  # fmt: skip
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(payload, fh, indent=1)
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write(report_markdown(claims, figures, meta))
    return payload


def reproduce(out="fopa-report", *, config="quick", seed=0, jobs=1, stream=None,
              studies=None) -> dict:  # fmt: skip
    """Run the studies and write ``report.md``, ``results.json`` and PNG figures.

    Parameters
    ----------
    out : str or path
        Output directory (created).
    config : "quick", "full" or "tiny"
    seed : int
    jobs : int
        Worker processes (1: run here).
    stream : file, optional
        Where the progress bar goes (default stderr).
    studies : sequence of str, optional
        Run only these studies (names of :data:`fopa.experiments.registry.STUDIES`;
        default: all). Each study's seed is the one it gets in a run of all of them,
        so its numbers are those of the whole report's (under the same threads).

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    params = configuration(config)
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got {jobs!r}")
    stream = sys.stderr if stream is None else stream
    every = list(params)
    names = _chosen_studies(studies, every)
    os.makedirs(out, exist_ok=True)
    seed_of = study_seeds(config, seed)
    seeds = [seed_of[name] for name in names]
    start = time.perf_counter()
    results, study_seconds, made = {}, {}, {}
    runs = run_studies({name: params[name] for name in names}, seed_of, jobs=jobs,
                       stream=stream, out=out, config=config)  # fmt: skip
    with contextlib.closing(runs):  # an exception here shuts the pool down at once
        for name, result, secs, figure_and_rows in runs:
            results[name], study_seconds[name], made[name] = result, secs, figure_and_rows
    results = {name: results[name] for name in names}  # the order of the studies
    seconds = time.perf_counter() - start
    source = f"config `{config}`, seed {seed}"
    if len(names) < len(every):
        source += f", {len(names)} of the {len(every)} studies: {', '.join(names)}"
    meta = dict(version=__version__, config=config, seed=seed, jobs=jobs, seconds=seconds,
                source=source, studies=names,
                study_seconds={name: study_seconds[name] for name in names})  # fmt: skip
    return write_report(out, results, meta, seeds=dict(zip(names, seeds, strict=True)),
                        made=made)  # fmt: skip
