"""Reading a store: export to CSV/JSON, and the reproduction studies and report from cells.

A store of built-in cells becomes the same study objects that
:mod:`fopa.experiments` returns (built by the same functions; which study a
store gives is decided by :func:`fopa.experiments.registry.study_for_cells`), so
the report, claims table and figures of ``fopa reproduce`` can be made from
sweeps:

- ``pga`` cells sweeping ``d`` and/or ``m`` (``step_policy = "lipschitz"``):
  ``polynomial_iterations`` (``logistic_iterations`` for the logistic loss);
- ``pga`` cells sweeping ``scale`` and/or ``step_policy``: ``input_scale_speed``
  (``logistic_speed``);
- ``landscape`` cells sweeping ``scale``: ``input_scale_regularity``;
- ``training`` cells sweeping ``scale`` and/or ``dataset`` (one seed):
  ``adversarial_training``.

Every seed is a run; the bootstrap of the slopes draws from the spec's seeds, so
a report built twice from the same store is the same.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from .._version import __version__
from ..experiments.common import cell_axis
from ..experiments.registry import STUDIES, study_for_cells
from ..report.reproduce import write_report
from .store import ResultStore

__all__ = ["export_results", "studies_from_stores", "report_from_stores"]

_FIRST_COLUMNS = ("cell_index", "seed", "status", "attempts", "seconds", "worker",
                  "fopa_version", "started", "finished")  # fmt: skip


def export_results(store, path, *, format=None) -> int:
    """Write a store's finished cells to CSV or JSON; return the number of cells.

    Parameters
    ----------
    store : str or path
    path : str or path
        Output file; the format follows its extension (``.csv`` or ``.json``)
        unless ``format`` is given.
    format : "csv" or "json", optional

    Notes
    -----
    CSV has one row per cell: the bookkeeping columns, ``param.<name>`` per
    parameter, ``out.<name>`` per output (lists as JSON text) and ``error``, so a
    parameter named like a bookkeeping column (``status``, ``error``) keeps its own.
    JSON holds the spec, its fingerprint and every cell with nested
    ``params`` and ``outputs``.
    """
    path = os.fspath(path)
    if format is None:
        format = os.path.splitext(path)[1].lstrip(".").lower()
    if format not in ("csv", "json"):
        raise ValueError(
            f"export format must be 'csv' or 'json' (from the extension); got {format!r}"
        )
    with ResultStore(store) as results:
        rows = results.rows()
        spec = results.spec
    if format == "json":
        with open(path, "w") as fh:
            json.dump(dict(spec=spec.to_dict(), fingerprint=spec.fingerprint, cells=rows), fh,
                      indent=1)  # fmt: skip
        return len(rows)
    params = sorted({k for r in rows for k in r["params"]})
    outputs = sorted({k for r in rows for k in (r["outputs"] or {})})
    # parameters and outputs are namespaced: a parameter may be called "status"
    header = [*_FIRST_COLUMNS, *(f"param.{k}" for k in params), *(f"out.{k}" for k in outputs),
              "error"]  # fmt: skip
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            out = r["outputs"] or {}
            writer.writerow(
                [r[k] for k in _FIRST_COLUMNS]
                + [r["params"].get(k, "") for k in params]
                + [_cell_text(out.get(k, "")) for k in outputs]
                + [r["error"] or ""]
            )
    return len(rows)


def _cell_text(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _studies_of_store(spec, rows):
    """``{name: study result}`` of one complete store's rows."""
    seeds = list(spec.seeds)
    gen = np.random.default_rng(seeds)
    losses = cell_axis(rows, "loss") if rows and "loss" in rows[0]["params"] else [None]
    out = {}
    for loss in losses:
        part = rows if loss is None else [r for r in rows if r["params"]["loss"] == loss]
        study = study_for_cells(spec.experiment, spec.swept, loss,
                                part[0]["params"] if part else None, name=spec.name)  # fmt: skip
        out[study.name] = study.from_cells(seeds, part, rng=gen)
    return out


def _study_results(stores):
    """``{name: study result}`` of complete stores (see :func:`studies_from_stores`)."""
    if isinstance(stores, (str, os.PathLike)):
        stores = [stores]
    out = {}
    for path in stores:
        with ResultStore(path) as results:
            spec, status, rows = results.spec, results.status(), results.rows("done")
        if status.pending or status.failed:
            raise ValueError(
                f"store {os.fspath(path)!r} is not complete ({status.pending} pending, "
                f"{status.failed} failed): finish the sweep (--retry-failed) first"
            )
        for name, study in _studies_of_store(spec, rows).items():
            if name in out:
                raise ValueError(f"two stores give the study {name!r}; pass one of them")
            out[name] = study
    return out


def studies_from_stores(stores) -> dict:
    """The reproduction studies (as ``to_dict()`` dicts, by experiment name) of complete stores.

    Raises
    ------
    ValueError
        If a store has pending or failed cells, its experiment is not a built-in
        one, its grid matches no study, or two stores give the same study.
    """
    return {name: study.to_dict() for name, study in _study_results(stores).items()}


def report_from_stores(stores, out="fopa-report", *, studies=None, study_seconds=None,
                       extra_meta=None) -> dict:  # fmt: skip
    """``report.md``, ``results.json`` and figures of ``fopa reproduce``, built from stores.

    Only the studies the stores hold (and ``studies``) appear in the claims table,
    in registry order. ``meta["parts"]`` (also a table in ``report.md``) gives per
    store its cells and their summed seconds; ``extra_meta`` (a dict) is merged into
    ``meta``. Returns the content of ``results.json``.

    Parameters
    ----------
    stores : str, path or sequence of them
        Complete stores of built-in cells.
    out : str or path
    studies : dict, optional
        ``{name: study result}`` computed outside the stores, reported beside theirs;
        a name the stores also give is an error.
    study_seconds : dict, optional
        ``{name: seconds}`` of ``studies``, added to the report's seconds and listed
        in ``meta["study_seconds"]`` (a table in ``report.md``).
    extra_meta : dict, optional
    """
    if isinstance(stores, (str, os.PathLike)):
        stores = [stores]
    results = _study_results(stores)
    for name, study in (studies or {}).items():
        if name in results:
            raise ValueError(f"the study {name!r} is in a store and in studies; give it once")
        results[name] = study
    results = {name: results[name] for name in STUDIES if name in results}
    seconds = 0.0
    fingerprints, parts = {}, {}
    for path in stores:
        with ResultStore(path) as store:
            status = store.status()
            seconds += status.cell_seconds
            fingerprints[os.fspath(path)] = store.spec.fingerprint
            parts[os.path.basename(os.fspath(path))] = dict(
                cells=status.done, cell_seconds=status.cell_seconds
            )
    source = "sweep store(s) " + ", ".join(f"`{os.path.basename(p)}`" for p in fingerprints)
    meta = dict(version=__version__, source=source, seconds=seconds, stores=fingerprints,
                parts=parts)  # fmt: skip
    if studies:
        study_seconds = dict(study_seconds or {})
        meta["source"] += f" and {len(studies)} studies run outside them"
        meta["seconds"] += sum(study_seconds.values())
        meta["study_seconds"] = {name: study_seconds.get(name) for name in studies}
    meta.update(extra_meta or {})
    return write_report(out, results, meta)
