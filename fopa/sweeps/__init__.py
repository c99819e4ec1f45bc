"""Sweeps: grids of experiment cells, a resumable SQLite store, local or Dask execution.

- :class:`SweepSpec` / :func:`load_spec`: what to run (experiment, grid, seeds),
  validated before any work.
- :func:`run_sweep`: run the unfinished cells here, in a process pool or on a
  Dask cluster; the calling process writes each result to the store.
- :class:`ResultStore`: the SQLite store (status, rows); :func:`export_results`
  to CSV/JSON; :func:`report_from_stores` for the reproduction report.
- :func:`run_paper` / :func:`paper_specs`: ``fopa reproduce --config paper``, the
  research-scale grids as sweeps.

See ``docs/sweeps.md``.
"""

from .paper import PAPER_CONFIG, PAPER_SIZES, paper_outside_studies, paper_specs, run_paper
from .results import export_results, report_from_stores, studies_from_stores
from .runner import SweepSummary, run_cell, run_sweep
from .spec import BUILTIN_EXPERIMENTS, Cell, SweepSpec, load_spec, resolve_experiment
from .store import ResultStore, StoreError, StoreStatus

__all__ = [
    "BUILTIN_EXPERIMENTS",
    "PAPER_CONFIG",
    "PAPER_SIZES",
    "Cell",
    "ResultStore",
    "StoreError",
    "StoreStatus",
    "SweepSpec",
    "SweepSummary",
    "export_results",
    "load_spec",
    "paper_outside_studies",
    "paper_specs",
    "report_from_stores",
    "resolve_experiment",
    "run_cell",
    "run_paper",
    "run_sweep",
    "studies_from_stores",
]
