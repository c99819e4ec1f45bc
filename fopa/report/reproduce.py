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

import itertools
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from .._parallel import share_blas_between_workers
from .._version import __version__
from ..experiments.registry import STUDIES, configuration
from .claims import claims_table
from .figures import write_figures
from .markdown import report_markdown

__all__ = ["reproduce", "write_report"]


def _run(name, params, seed):
    """One study (in a worker process or here): its result object."""
    return STUDIES[name].run(rng=seed, **params)


def _bar(total, stream):
    """A tqdm bar of the studies on ``stream``, the current study as its description."""
    from tqdm import tqdm

    return tqdm(total=total, file=stream, unit="study", dynamic_ncols=True, mininterval=0.2)


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


def write_report(out, results, meta, *, seeds=None):
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

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    os.makedirs(out, exist_ok=True)
    figures = write_figures(results, out)
    claims = claims_table(results)
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
    spawned = np.random.SeedSequence(seed).spawn(len(every))
    seed_of = {name: int(s.generate_state(1)[0]) for name, s in zip(every, spawned, strict=True)}
    seeds = [seed_of[name] for name in names]
    start = time.perf_counter()
    results = {}
    bar = _bar(len(names), stream)
    if jobs == 1:
        with bar:
            for k, name in enumerate(names):
                bar.set_description_str(name)
                results[name] = _run(name, params[name], seeds[k])
                bar.update(1)
            bar.set_description_str("done")
    else:
        # at most one study per worker in flight: on Ctrl-C (which reaches the workers
        # too) nothing is queued behind the interrupted studies
        queue = iter(enumerate(names))
        running = {}
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=share_blas_between_workers,
                                   initargs=(jobs,))  # fmt: skip
        try:
            while True:
                for k, name in itertools.islice(queue, jobs - len(running)):
                    running[pool.submit(_run, name, params[name], seeds[k])] = name
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    results[name] = future.result()
                    bar.set_description_str(name)
                    bar.update(1)
        finally:  # interrupted: drop what is not running, do not start it
            bar.close()
            pool.shutdown(wait=True, cancel_futures=True)
        results = {name: results[name] for name in names}  # the order of the studies
    seconds = time.perf_counter() - start
    source = f"config `{config}`, seed {seed}"
    if len(names) < len(every):
        source += f", {len(names)} of the {len(every)} studies: {', '.join(names)}"
    meta = dict(version=__version__, config=config, seed=seed, jobs=jobs, seconds=seconds,
                source=source, studies=names)  # fmt: skip
    return write_report(out, results, meta, seeds=dict(zip(names, seeds, strict=True)))
