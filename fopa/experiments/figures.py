"""What the studies' figures share: medians with interval bars, censored points and
log axes ticked at the grid values."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import LogLocator, NullLocator, ScalarFormatter

__all__ = ["median_with_interval", "count_axis", "shifts"]


def median_with_interval(ax, x, median, low, high, budget, *, label, marker, shift=0.0,
                         color=None, linestyle="-"):  # fmt: skip
    """Plot medians with their interval as bars on log-log axes.

    A median that is not reached within the budget (inf) is drawn as an open marker
    at the budget (the count is beyond it); an interval end that is not reached is
    drawn up to the budget. ``shift`` moves the series sideways by that share of a
    decade so that bars of several series do not hide each other; ``color`` (None:
    the axes' next) and ``linestyle`` style the series.
    """
    x = np.asarray(x, dtype=float) * 10.0**shift
    median, low, high = (np.asarray(v, dtype=float) for v in (median, low, high))
    reached = np.isfinite(median) & (median > 0)
    top = np.where(np.isfinite(high), high, budget)
    line = ax.errorbar(
        x[reached], median[reached],
        yerr=[median[reached] - np.maximum(low[reached], 1e-300),
              top[reached] - median[reached]],
        marker=marker, capsize=3, label=label, linewidth=1.2, markersize=5, color=color,
        linestyle=linestyle,
    )  # fmt: skip
    open_ = ~reached
    if np.any(open_):
        color = line[0].get_color()
        ax.plot(x[open_], np.full(open_.sum(), float(budget)), marker=marker, linestyle="none",
                markerfacecolor="none", color=color)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")


def count_axis(ax, grid, xlabel, ylabel, *, counts=True):
    """A log x axis ticked at the grid values, labels set; with ``counts`` the log y
    axis is ticked at 1-2-5 values in plain numbers (otherwise matplotlib's powers)."""
    grid = [float(g) for g in grid]
    ax.set_xticks(grid)
    ax.set_xticklabels([f"{g:g}" for g in grid])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if not counts:
        return
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=8))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_locator(NullLocator())


def shifts(k):
    """Sideways shifts (shares of a decade) for k series."""
    return [0.012 * (i - (k - 1) / 2) for i in range(k)]
