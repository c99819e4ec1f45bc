"""PNG figures of the reproduction report, one per experiment (needs matplotlib)."""

from __future__ import annotations

import os

import numpy as np


def _save(fig, out, name):
    path = os.path.join(out, f"{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    panels = len(fig.axes)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"file": f"{name}.png", "panels": panels}


def _iterations_figure(r, title):
    import matplotlib.pyplot as plt

    fig, (ax_d, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    median = np.array(r["median"])
    for j, m in enumerate(r["ms"]):
        ok = median[:, j] > 0
        ax_d.loglog(np.array(r["ds"])[ok], median[ok, j], "o-", label=f"m={m}")
    for i, d in enumerate(r["ds"]):
        ok = median[i] > 0
        ax_m.loglog(np.array(r["ms"])[ok], median[i, ok], "s-", label=f"d={d}")
    ax_d.set(xlabel="d", ylabel="median first certified iteration", title=f"{title}: vs d")
    ax_m.set(xlabel="m", title=f"{title}: vs m")
    ax_d.legend(fontsize=7)
    ax_m.legend(fontsize=7)
    return fig


def _speed_figure(r, title):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    median = np.array(r["median"])
    for p, policy in enumerate(r["policies"]):
        ok = median[p] > 0
        ax.loglog(np.array(r["taus"])[ok], median[p, ok], "o-", label=policy)
    ax.set(xlabel="input scale tau", ylabel="median first certified iteration", title=title)
    ax.legend(fontsize=8)
    return fig


def _regularity_figure(r):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    taus = np.array(r["taus"])
    axes[0].semilogx(taus, r["mean_maxima"], "o-")
    axes[0].set(xlabel="tau", ylabel="mean certified maxima", title="distinct maxima")
    axes[1].semilogx(taus, r["mean_best_basin"], "o-")
    axes[1].set(xlabel="tau", ylabel="share of starts", title="basin of the best maximum")
    dist = np.array(r["median_taylor_distance"])
    ok = dist > 0
    axes[2].loglog(taus[ok], dist[ok], "o-")
    axes[2].set(xlabel="tau", ylabel="distance / eps", title="to the Taylor model's maximizer")
    return fig


def _training_figure(runs):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6))
    for ax, (ds, r) in zip(np.atleast_1d(axes), runs.items(), strict=True):
        for t, tau in enumerate(r["taus"]):
            ax.plot(r["robust_loss"][t], label=f"tau={tau}")
        ax.set(xlabel="epoch", ylabel="robust training loss", title=ds, yscale="log")
        ax.legend(fontsize=8)
    return fig


def write_figures(results, out):
    """Write one PNG per experiment into ``out``; return {name: {file, panels}}."""
    import matplotlib

    matplotlib.use("Agg")
    makers = {
        "polynomial_iterations": lambda: _iterations_figure(
            results["polynomial_iterations"], "quadratic loss"
        ),
        "input_scale_speed": lambda: _speed_figure(results["input_scale_speed"], "quadratic loss"),
        "input_scale_regularity": lambda: _regularity_figure(results["input_scale_regularity"]),
        "adversarial_training": lambda: _training_figure(results["adversarial_training"]),
        "logistic_iterations": lambda: _iterations_figure(
            results["logistic_iterations"], "logistic loss"
        ),
        "logistic_speed": lambda: _speed_figure(results["logistic_speed"], "logistic loss"),
    }
    return {name: _save(make(), out, name) for name, make in makers.items() if name in results}
