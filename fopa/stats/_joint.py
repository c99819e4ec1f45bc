"""A power law in two sizes at once: log median count on log d, log m and their product
(``docs/stats.md``, "Joint fits over a grid")."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ._bootstrap import json_ready
from ._survival import km_quantile

__all__ = ["JointPowerFit", "joint_power_fit"]

#: The fitted terms, in the order of :attr:`JointPowerFit.coefficients`.
TERMS = ("intercept", "log_d", "log_m", "log_d_log_m")


@dataclass(frozen=True)
class JointPowerFit:
    """``log median = c + b_d u + b_m v + b_dm u v`` over a grid of two sizes, with
    ``u = log d - mean(log d)`` and ``v = log m - mean(log m)`` (centred, so that
    ``b_d`` and ``b_m`` are the exponents at the grid's geometric centre, and the
    exponent along d at a given m is ``b_d + b_dm v``).

    Attributes
    ----------
    fitted : bool
        False when a cell's Kaplan-Meier median is not reached (infinite) on the data
        or the grid has fewer than 2 sizes on an axis; then every number is NaN and
        :attr:`reason` says why.
    reason : str
    coefficients : dict
        ``{term: estimate}`` for :data:`TERMS`.
    intervals : dict
        ``{term: (low, high)}``: percentile intervals from the cluster bootstrap (the
        run index resampled jointly across every cell: the k-th runs of all cells are
        one cluster, which keeps any pairing of a design and is valid without one).
    exponent_d_range, exponent_m_range : tuple
        The exponent along d (``b_d + b_dm v``) at the smallest and the largest m, and
        the exponent along m at the smallest and the largest d.
    residual_sd : float
        Root mean square residual of log median (0 for a grid fitted exactly).
    share_failed : float
        Share of bootstrap replicates with a median not reached in some cell (they
        are left out of the intervals; an interval from fewer than half of the
        replicates is not reported: NaN).
    ds, ms : tuple
    medians : tuple of tuple
        Kaplan-Meier median per (d, m) (inf: not reached).
    n_runs : int
        Runs per cell (the clusters).
    level : float
    n_boot : int
    """

    fitted: bool
    reason: str
    coefficients: dict
    intervals: dict
    exponent_d_range: tuple
    exponent_m_range: tuple
    residual_sd: float
    share_failed: float
    ds: tuple
    ms: tuple
    medians: tuple
    n_runs: int
    level: float
    n_boot: int

    def to_dict(self) -> dict:
        """JSON-ready fields (infinities as strings, NaN as None)."""
        return {k: json_ready(v) for k, v in self.__dict__.items()}


def _design(ds, ms):
    u = np.log(ds) - np.mean(np.log(ds))
    v = np.log(ms) - np.mean(np.log(ms))
    U, V = np.meshgrid(u, v, indexing="ij")
    return np.column_stack([np.ones(U.size), U.ravel(), V.ravel(), (U * V).ravel()]), u, v


def _cell_medians(times, observed):
    nd, nm = times.shape[:2]
    return np.array([[km_quantile(times[i, j], observed[i, j]) for j in range(nm)]
                     for i in range(nd)])  # fmt: skip


def _solve(basis, medians):
    """Least-squares coefficients of log medians, or None when one is not reached."""
    if not np.all(np.isfinite(medians)) or np.any(medians <= 0):
        return None
    y = np.log(medians).ravel()
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return coef, y - basis @ coef


def joint_power_fit(ds, ms, times, observed, *, level=0.95, n_boot=1000, rng=None):
    """Fit a power law with an interaction to a grid of censored counts.

    Parameters
    ----------
    ds, ms : sequence of float
        The two sizes (e.g. input dimension and width), each increasing, > 0.
    times : array_like, shape (len(ds), len(ms), runs)
        The count of each run (a censored run: its censoring time, e.g. the budget).
    observed : array_like of bool, same shape
        False for a censored run (see :func:`fopa.stats.censored_times`).
    level : float
    n_boot : int
    rng : None, int or Generator

    Returns
    -------
    JointPowerFit
    """
    ds = np.asarray(ds, dtype=float)
    ms = np.asarray(ms, dtype=float)
    times = np.asarray(times, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    for name, sizes in (("ds", ds), ("ms", ms)):
        if sizes.ndim != 1 or sizes.size < 1 or not np.all(sizes > 0):
            raise ValueError(f"{name} must be a non-empty 1-d sequence of sizes > 0")
        if np.any(np.diff(sizes) <= 0):
            raise ValueError(f"{name} must be increasing; got {sizes.tolist()}")
    want = (ds.size, ms.size)
    if times.ndim != 3 or times.shape[:2] != want or times.shape[2] < 2:
        raise ValueError(
            f"times must have shape (len(ds), len(ms), runs >= 2) = {want + ('runs',)}; "
            f"got {times.shape}"
        )
    if observed.shape != times.shape:
        raise ValueError(
            f"observed must have the shape of times {times.shape}; got {observed.shape}"
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be finite and >= 0")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    n_boot = as_int("n_boot", n_boot, minimum=10)
    gen = as_rng(rng)
    medians = _cell_medians(times, observed)
    basis, u, v = _design(ds, ms)
    nan2 = (math.nan, math.nan)
    empty = dict(
        fitted=False, coefficients=dict.fromkeys(TERMS, math.nan),
        intervals=dict.fromkeys(TERMS, nan2), exponent_d_range=nan2, exponent_m_range=nan2,
        residual_sd=math.nan, share_failed=math.nan, ds=tuple(ds.tolist()),
        ms=tuple(ms.tolist()), medians=tuple(tuple(row) for row in medians.tolist()),
        n_runs=times.shape[2], level=level, n_boot=n_boot,
    )  # fmt: skip
    if ds.size < 2 or ms.size < 2:
        return JointPowerFit(reason="needs at least 2 sizes on each axis", **empty)
    if ds.size * ms.size <= len(TERMS):
        return JointPowerFit(reason="needs more cells than the 4 fitted terms", **empty)
    solved = _solve(basis, medians)
    if solved is None:
        return JointPowerFit(reason="a cell's median is not reached within the budget",
                             **empty)  # fmt: skip
    coef, resid = solved
    runs = times.shape[2]
    replicates = []
    for _ in range(n_boot):
        idx = gen.integers(0, runs, runs)
        fit = _solve(basis, _cell_medians(times[:, :, idx], observed[:, :, idx]))
        if fit is not None:
            replicates.append(fit[0])
    failed = 1.0 - len(replicates) / n_boot
    alpha = 1.0 - level
    if len(replicates) >= n_boot / 2:
        reps = np.array(replicates)
        low = np.quantile(reps, alpha / 2, axis=0)
        high = np.quantile(reps, 1.0 - alpha / 2, axis=0)
        intervals = {t: (float(low[k]), float(high[k])) for k, t in enumerate(TERMS)}
    else:
        intervals = dict.fromkeys(TERMS, nan2)
    b_d, b_m, b_dm = coef[1], coef[2], coef[3]
    return JointPowerFit(
        fitted=True, reason="fitted",
        coefficients={t: float(c) for t, c in zip(TERMS, coef, strict=True)}, intervals=intervals,
        exponent_d_range=(float(b_d + b_dm * v[0]), float(b_d + b_dm * v[-1])),
        exponent_m_range=(float(b_m + b_dm * u[0]), float(b_m + b_dm * u[-1])),
        residual_sd=float(np.sqrt(np.mean(resid**2))), share_failed=float(failed),
        ds=empty["ds"], ms=empty["ms"], medians=empty["medians"], n_runs=runs, level=level,
        n_boot=n_boot,
    )  # fmt: skip
