"""Reading a store: export to CSV/JSON, and the reproduction studies and report from cells.

A store of built-in cells becomes the same study objects that
:mod:`fopa.experiments` returns (built by the same functions), so the report,
claims table and figures of ``fopa reproduce`` can be made from sweeps:

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

from .. import experiments as E
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
    CSV has one row per cell: the bookkeeping columns, one column per
    parameter, ``out.<name>`` per output (lists as JSON text) and ``error``.
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
    header = [*_FIRST_COLUMNS, *params, *(f"out.{k}" for k in outputs), "error"]
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


def _axis(rows, name, *, order=None):
    values = list(dict.fromkeys(r["params"][name] for r in rows))
    if order is None:
        return sorted(values)
    return [v for v in order if v in values]


def _constant_settings(rows, names):
    return {k: rows[0]["params"][k] for k in names}


def _array(rows, axes, seeds, output, dtype, fill):
    """outputs[output] arranged by the axes' values and the seeds."""
    shape = tuple(len(values) for _, values in axes) + (len(seeds),)
    out = np.full(shape, fill, dtype)
    position = [{v: i for i, v in enumerate(values)} for _, values in axes]
    seed_at = {s: i for i, s in enumerate(seeds)}
    for r in rows:
        index = tuple(p[r["params"][name]] for p, (name, _) in zip(position, axes, strict=True))
        value = r["outputs"][output]
        out[index + (seed_at[r["seed"]],)] = fill if value is None else value
    return out


def _pga_studies(spec, rows):
    swept = set(spec.swept) - {"loss"}
    gen = np.random.default_rng(list(spec.seeds))
    seeds = list(spec.seeds)
    studies = {}
    for loss in _axis(rows, "loss"):
        part = [r for r in rows if r["params"]["loss"] == loss]
        if swept <= {"d", "m"}:
            if any(r["params"]["step_policy"] != "lipschitz" for r in part):
                raise ValueError(
                    "the iteration study needs step_policy = 'lipschitz' (eta = 1/beta)"
                )
            axes = [("d", _axis(part, "d")), ("m", _axis(part, "m"))]
            names = ("scale", "ratio", "tol", "max_iter", "certify_every", "activation", "loss")
            settings = _constant_settings(part, names)
            study = E.iteration_study(
                axes[0][1], axes[1][1], _array(part, axes, seeds, "first_certified", np.int64, -1),
                _array(part, axes, seeds, "first_stationary", np.int64, -1),
                _array(part, axes, seeds, "bound", float, np.inf),
                dict(n_runs=len(seeds), **settings), rng=gen,
            )  # fmt: skip
            name = "polynomial_iterations" if loss == "quadratic" else "logistic_iterations"
        elif swept <= {"scale", "step_policy"}:
            axes = [("step_policy", _axis(part, "step_policy", order=E.POLICIES)),
                    ("scale", _axis(part, "scale"))]  # fmt: skip
            names = ("d", "m", "ratio", "fixed_step", "relative_factor", "tol", "max_iter",
                     "certify_every", "activation", "loss")  # fmt: skip
            settings = _constant_settings(part, names)
            study = E.speed_study(
                axes[1][1], axes[0][1], _array(part, axes, seeds, "first_certified", np.int64, -1),
                dict(n_runs=len(seeds), **settings), rng=gen,
            )  # fmt: skip
            name = "input_scale_speed" if loss == "quadratic" else "logistic_speed"
        else:
            raise ValueError(
                f"no study sweeps {sorted(swept)} with pga cells: the iteration study sweeps "
                "d and m, the speed study scale and step_policy (loss may vary in both)"
            )
        studies[name] = study.to_dict()
    return studies


def _landscape_studies(spec, rows):
    if not set(spec.swept) <= {"scale"}:
        raise ValueError(f"the regularity study sweeps scale only; this store sweeps {spec.swept}")
    axes = [("scale", _axis(rows, "scale"))]
    seeds = list(spec.seeds)
    settings = _constant_settings(rows, ("d", "m", "ratio", "n_starts", "activation", "loss"))
    study = E.regularity_study(
        axes[0][1], _array(rows, axes, seeds, "n_maxima", np.int64, 0),
        _array(rows, axes, seeds, "best_basin", float, 0.0),
        _array(rows, axes, seeds, "taylor_distance", float, -1.0),
        dict(n_runs=len(seeds), **settings),
    )  # fmt: skip
    return {"input_scale_regularity": study.to_dict()}


def _training_studies(spec, rows):
    if not set(spec.swept) <= {"scale", "dataset"} or len(spec.seeds) != 1:
        raise ValueError("the training study sweeps scale (and dataset) with one seed")
    runs = {}
    for dataset in _axis(rows, "dataset"):
        part = sorted((r for r in rows if r["params"]["dataset"] == dataset),
                      key=lambda r: r["params"]["scale"])  # fmt: skip
        n, d = E.load_binary_dataset(dataset)[0].shape
        settings = _constant_settings(
            part,
            (
                "m",
                "epochs",
                "ratio",
                "learning_rate",
                "pga_steps",
                "pga_step_factor",
                "target_fraction",
                "activation",
            ),
        )
        study = E.training_study(
            dataset, [r["params"]["scale"] for r in part], [r["outputs"] for r in part],
            dict(settings, n=n, d=d),
        )  # fmt: skip
        runs[dataset] = study.to_dict()
    return {"adversarial_training": runs}


_BUILDERS = {"pga": _pga_studies, "landscape": _landscape_studies, "training": _training_studies}


def studies_from_stores(stores) -> dict:
    """The reproduction studies (as ``to_dict()`` dicts, by experiment name) of complete stores.

    Raises
    ------
    ValueError
        If a store has pending or failed cells, its experiment is not a built-in
        one, its grid matches no study, or two stores give the same study.
    """
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
        if spec.experiment not in _BUILDERS:
            raise ValueError(f"no reproduction study is built from experiment {spec.experiment!r}")
        for name, study in _BUILDERS[spec.experiment](spec, rows).items():
            if name in out:
                raise ValueError(f"two stores give the study {name!r}; pass one of them")
            out[name] = study
    return out


def report_from_stores(stores, out="fopa-report") -> dict:
    """``report.md``, ``results.json`` and figures of ``fopa reproduce``, built from stores.

    Only the studies the stores hold appear in the claims table. Returns the
    content of ``results.json``.
    """
    from .. import __version__
    from ..figures import write_figures
    from ..report import _claims, _report_markdown

    if isinstance(stores, (str, os.PathLike)):
        stores = [stores]
    results = studies_from_stores(stores)
    os.makedirs(out, exist_ok=True)
    seconds = 0.0
    fingerprints = {}
    for path in stores:
        with ResultStore(path) as store:
            seconds += store.status().cell_seconds
            fingerprints[os.fspath(path)] = store.spec.fingerprint
    figures = write_figures(results, out)
    claims = _claims(results)
    source = "sweep store(s) " + ", ".join(f"`{os.path.basename(p)}`" for p in fingerprints)
    meta = dict(version=__version__, source=source, seconds=seconds, stores=fingerprints)
    payload = dict(meta=meta, experiments=results, claims=claims, figures=figures)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(payload, fh, indent=1)
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write(_report_markdown(claims, figures, meta))
    return payload
