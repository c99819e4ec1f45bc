"""Claim 2 beyond the initial phase: the reproduction's iteration and regularity
measurements repeated on checkpoints of adversarially trained networks
(``docs/experiments/4-adversarial-training.md``, "Beyond the initial phase").

For every seed one initial network is drawn and trained at every input scale tau
(inputs ``tau x``, rows of norm ``sqrt(d)`` before scaling, radius
``eps = ratio tau sqrt(d)``) under protocol P2 (the first layer's SGD rate
``lr / tau^2``: the input scale as a first-layer initialization scale), with two
inner maximizations (arms):

* ``pgd``: the attack-library PGD (normalized steps of ``step_factor eps``);
* ``pga``: fopa's ascent with the backtracking step from zero, stopped by its KKT
  rule or at ``pga_budget`` iterations (its iterations and share converged per
  epoch are the training's own inner cost).

On each checkpoint, at the same fixed training points:

* the first iteration at which fopa's ascent from zero is certified a strict local
  maximum, with the tight ``1/beta`` step and with the backtracking step (censored
  at ``probe_budget``), and the gradient evaluations of each run to its stop;
* the distinct certified maxima from ``n_starts`` starts on the sphere
  (:func:`fopa.local_maxima`, backtracking step, budget ``landscape_budget``), the
  share of starts ending at a certified maximum and at a saddle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_rng
from ..adversarial import CertifiedPGA, NormalizedPGD, adversarial_training
from ..ascent import projected_gradient_ascent
from ..landscape import local_maxima
from ..network import TwoLayerNet
from ..stats import censored_times, km_quantile
from .common import StudyResult, claims_row
from .datasets import load_training_split
from .figures import median_with_interval
from .protocols import protocol_rates
from .verdicts import censored_cell, regularity_verdict, speed_verdict

__all__ = ["ARMS", "POLICIES", "CheckpointStudy", "training_checkpoints", "checkpoint_claims",
           "checkpoint_figure"]  # fmt: skip

#: The inner maximizations of the training, in array order.
ARMS = ("pgd", "pga")
ARM_NAMES = {"pgd": "attack-library PGD", "pga": "fopa's ascent (backtracking)"}
#: The step policies of the iteration measurement, in array order.
POLICIES = ("lipschitz", "backtracking")
POLICY_NAMES = {"lipschitz": "tight 1/beta step", "backtracking": "backtracking step"}


@dataclass(frozen=True)
class CheckpointStudy(StudyResult):
    """Iterations and regularity on checkpoints of adversarially trained networks.

    Arrays are indexed ``[arm, tau, seed, checkpoint, ...]`` in the order of
    :data:`ARMS`, ``taus``, the seeds and ``checkpoints``.

    Attributes
    ----------
    measured : ndarray of bool, shape (2, T, S, K)
        Whether the checkpoint was measured (an arm trained to fewer epochs, or a
        run that diverged before the checkpoint, is not).
    first_certified : ndarray of int, shape (2, 2, T, S, K, P)
        ``[policy, arm, ...]`` in :data:`POLICIES` order: the first certified
        iteration of fopa's ascent from zero at each of the P probe points (-1:
        censored at ``probe_budget``; -2: not measured).
    gradient_evaluations : ndarray of int, shape (2, 2, T, S, K, P)
        Gradient evaluations of the same runs to their stop (KKT rule or budget).
    n_maxima : ndarray of int, shape (2, T, S, K, R)
        Distinct certified maxima from ``n_starts`` starts at each of the first R
        probe points (-1: not measured).
    share_maxima, share_saddles : ndarray, shape (2, T, S, K, R)
        Share of the starts ending at a certified strict maximum, at a saddle.
    train_loss : ndarray, shape (2, T, S, E)
        Robust training loss per epoch (NaN beyond the arm's epochs).
    inner_iterations, inner_converged : ndarray, shape (2, T, S, E)
        The training's inner maximization per epoch: mean iterations per point and
        the share stopped by the KKT rule (NaN for PGD, which has no such rule).
    """

    dataset: str
    taus: tuple
    checkpoints: tuple
    measured: np.ndarray
    first_certified: np.ndarray
    gradient_evaluations: np.ndarray
    n_maxima: np.ndarray
    share_maxima: np.ndarray
    share_saddles: np.ndarray
    train_loss: np.ndarray
    inner_iterations: np.ndarray
    inner_converged: np.ndarray
    settings: dict


def training_checkpoints(
    rng=0, *, dataset="mnist_4_9", taus=(0.1, 0.3, 1.0, 3.0), m=32, n_seeds=5,
    checkpoints=(0, 1, 5, 20, 100), pga_epochs=20, ratio=0.1, learning_rate=0.5,
    batch_size=100, pgd_steps=10, step_factor=0.25, pga_budget=50, probe_points=10,
    probe_budget=2000, landscape_points=5, n_starts=8, landscape_budget=5000,
    activation="tanh", loss="quadratic",
) -> CheckpointStudy:  # fmt: skip
    """Train under P2 with both arms and measure every checkpoint (module docstring).

    ``checkpoints`` are epochs (0: the initial network); the PGD arm trains to the
    last of them, the PGA arm to ``pga_epochs`` (its checkpoints beyond that are not
    measured). ``rng`` seeds the initial networks (one per seed, the same at every
    tau and arm), the probe points, the shuffling and the landscape's starts (the
    same directions at every tau). ``loss`` ("quadratic" or "logistic", labels
    +-1) is the loss of the training and of every measurement.
    """
    Xtr, ytr, _, _ = load_training_split(dataset)
    n_seeds = as_int("n_seeds", n_seeds, minimum=1)
    checkpoints = tuple(sorted({as_int("checkpoints", e, minimum=0) for e in checkpoints}))
    if not checkpoints:
        raise ValueError("checkpoints must name at least one epoch")
    epochs = {
        "pgd": max(checkpoints[-1], 1),
        "pga": max(min(as_int("pga_epochs", pga_epochs, minimum=0), checkpoints[-1]), 1),
    }
    probe_points = as_int("probe_points", probe_points, minimum=1)
    landscape_points = min(as_int("landscape_points", landscape_points, minimum=0), probe_points)
    d = Xtr.shape[1]
    gen = as_rng(rng)
    seeds = gen.integers(0, 2**63 - 1, size=n_seeds + 1)  # the last: probe points
    probe = np.random.default_rng(int(seeds[-1])).choice(len(ytr), probe_points, False)
    arms = {
        "pgd": NormalizedPGD(steps=pgd_steps, step_factor=step_factor),
        "pga": CertifiedPGA(step_size="backtracking", max_iter=pga_budget, certify=False),
    }
    A, T, S, K, E = len(ARMS), len(taus), n_seeds, len(checkpoints), checkpoints[-1]
    measured = np.zeros((A, T, S, K), dtype=bool)
    first = np.full((len(POLICIES), A, T, S, K, probe_points), -2, dtype=np.int64)
    evals = np.full(first.shape, -1, dtype=np.int64)
    n_max = np.full((A, T, S, K, landscape_points), -1, dtype=np.int64)
    share_max, share_sad = np.full(n_max.shape, np.nan), np.full(n_max.shape, np.nan)
    train = np.full((A, T, S, max(E, 1)), np.nan)
    inner_it, inner_conv = np.full(train.shape, np.nan), np.full(train.shape, np.nan)

    def measure(model, X, eps, seed, a, t, s, k):
        for q, policy in enumerate(POLICIES):
            res = projected_gradient_ascent(
                model, X[probe], ytr[probe], eps, step_size=policy, max_iter=probe_budget,
                certify_every="auto", loss=loss,
            )  # fmt: skip
            got = np.asarray(res.first_certified_iteration, dtype=np.int64).reshape(-1)
            first[q, a, t, s, k] = got
            evals[q, a, t, s, k] = np.asarray(res.gradient_evaluations).reshape(-1)
        for i in range(landscape_points):
            land = local_maxima(
                model, X[probe[i]], ytr[probe[i]], eps, n_starts=n_starts,
                rng=int(seed) % 2**32 + 1000 + i, step_size="backtracking",
                max_iter=landscape_budget, loss=loss,
            )  # fmt: skip
            n_max[a, t, s, k, i] = len(land.maxima)
            share_max[a, t, s, k, i] = float(np.mean(land.labels >= 0))
            share_sad[a, t, s, k, i] = float(np.mean(land.kinds == "saddle"))
        measured[a, t, s, k] = True

    for s in range(S):
        net0 = TwoLayerNet.random(d, m, activation=activation, rng=int(seeds[s]))
        for t, tau in enumerate(taus):
            X = tau * Xtr
            eps = ratio * tau * np.sqrt(d)
            optimizer, rates = protocol_rates("P2", tau, learning_rate)
            for a, arm in enumerate(ARMS):
                keep = tuple(e for e in checkpoints if e <= epochs[arm])
                res = adversarial_training(
                    net0, X, ytr, eps, epochs=epochs[arm], learning_rate=rates,
                    optimizer=optimizer, batch_size=batch_size, attack=arms[arm],
                    rng=int(seeds[s]) + 7, checkpoints=keep, loss=loss,
                )  # fmt: skip
                n = res.epochs
                train[a, t, s, :n] = res.robust_loss
                inner_it[a, t, s, :n] = res.inner.iterations_mean
                inner_conv[a, t, s, :n] = res.inner.share_converged
                for k, e in enumerate(checkpoints):
                    if e == 0 and a > 0:  # the initial network: the first arm measured it
                        for arr in (first, evals):
                            arr[:, a, t, s, k] = arr[:, 0, t, s, k]
                        for arr in (n_max, share_max, share_sad, measured):
                            arr[a, t, s, k] = arr[0, t, s, k]
                    elif e in res.checkpoints:
                        measure(res.checkpoints[e], X, eps, seeds[s], a, t, s, k)
    settings = dict(
        dataset=dataset, n_train=len(ytr), d=d, m=m, n_seeds=n_seeds, epochs=epochs,
        ratio=ratio, learning_rate=learning_rate, protocol="P2", batch_size=batch_size,
        pgd_steps=pgd_steps, step_factor=step_factor, pga_budget=pga_budget,
        probe_points=probe_points, probe_budget=probe_budget,
        landscape_points=landscape_points, n_starts=n_starts,
        landscape_budget=landscape_budget, activation=activation, loss=loss,
    )  # fmt: skip
    return CheckpointStudy(
        dataset=dataset, taus=tuple(float(t) for t in taus), checkpoints=checkpoints,
        measured=measured, first_certified=first, gradient_evaluations=evals,
        n_maxima=n_max, share_maxima=share_max, share_saddles=share_sad, train_loss=train,
        inner_iterations=inner_it, inner_converged=inner_conv, settings=settings,
    )  # fmt: skip


def _paired(r, a, k):
    """The seeds measured at every tau at checkpoint k of arm a (pairs stay paired)."""
    return np.flatnonzero(r.measured[a, :, :, k].all(axis=0))


def _km_median(first, budget):
    first = np.asarray(first).reshape(-1)
    return float(km_quantile(*censored_times(first, budget))) if first.size else np.nan


def checkpoint_claims(name, r):
    """Per arm and measured checkpoint: the speed verdict under each step policy and
    the regularity verdict, across tau."""
    st = r.settings
    budget = st["probe_budget"]
    lossy = "logistic loss, " if st.get("loss") == "logistic" else ""  # quadratic: unsaid
    rows = []
    for a, arm in enumerate(ARMS):
        for k, e in enumerate(r.checkpoints):
            seeds = _paired(r, a, k)
            if seeds.size == 0:
                continue
            where = f"{name}: {ARM_NAMES[arm]}-trained, epoch {e} (P2, {r.dataset})"
            n = f"{st['probe_points']} probe points x {seeds.size} seeds per tau (paired)"
            for q, policy in enumerate(POLICIES):
                first = r.first_certified[q, a][:, seeds, k].reshape(len(r.taus), -1)
                verdict, _ = speed_verdict(r.taus, first, budget, rng=0)
                meds = [_km_median(row, budget) for row in first]
                rows.append(claims_row(
                    claim="2. smaller input scale, faster convergence of PGA",
                    experiment=f"{where}, {POLICY_NAMES[policy]}",
                    statistic=(f"median first certified iteration per tau {list(r.taus)}: "
                               + ", ".join("not reached" if not np.isfinite(v) else f"{v:g}"
                                           for v in meds)
                               + "; share certified "
                               + ", ".join(f"{np.mean(row >= 0):.2f}" for row in first)),
                    verdict=verdict, n=n,
                    settings=f"{lossy}from zero, budget {budget}, eps = {st['ratio']} ||x||",
                ))  # fmt: skip
            if st["landscape_points"]:
                counts = r.n_maxima[a][:, seeds, k].reshape(len(r.taus), -1)
                verdict, _ = regularity_verdict(r.taus, counts, rng=0)
                means = [row[row > 0].mean() if np.any(row > 0) else np.nan for row in counts]
                rows.append(claims_row(
                    claim="2. smaller input scale, more regular landscape",
                    experiment=where,
                    statistic=("mean distinct certified maxima per tau: "
                               + ", ".join(f"{v:.2f}" for v in means)
                               + "; share of starts certified "
                               + ", ".join(f"{np.nanmean(r.share_maxima[a, t][seeds, k]):.2f}"
                                           for t in range(len(r.taus)))),
                    verdict=verdict,
                    n=f"{st['landscape_points']} points x {seeds.size} seeds per tau (paired)",
                    settings=(f"{lossy}{st['n_starts']} starts on the sphere, backtracking step, "
                              f"budget {st['landscape_budget']}"),
                ))  # fmt: skip
    return rows


def checkpoint_figure(r):
    """Median first certified iteration (both step policies), mean distinct maxima
    and the training's own inner iterations, against the epoch, per tau (solid: the
    PGD-trained arm, dashed: the PGA-trained arm; open markers: median not reached,
    drawn at the budget; bars: Brookmeyer-Crowley 95 % intervals)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(17, 3.8), layout="constrained")
    axes = fig.subplots(1, 4)
    budget = r.settings["probe_budget"]
    ticks = [max(e, 0.5) for e in r.checkpoints]  # epoch 0 drawn at 0.5 on the log axis
    for a, arm in enumerate(ARMS):
        ls = "-" if arm == "pgd" else "--"
        for t, tau in enumerate(r.taus):
            color = f"C{t}"
            label = f"tau = {tau:g}" if a == 0 else None
            ks = [k for k in range(len(r.checkpoints)) if r.measured[a, t, :, k].any()]
            for q in range(len(POLICIES)):
                cells = [censored_cell(r.first_certified[q, a, t][r.measured[a, t, :, k], k]
                                       .reshape(-1), budget) for k in ks]  # fmt: skip
                median_with_interval(
                    axes[q], [ticks[k] for k in ks], [c["median"] for c in cells],
                    [c["median_low"] for c in cells], [c["median_high"] for c in cells],
                    budget, label=label, marker="o", shift=0.02 * (a - 0.5), color=color,
                    linestyle=ls,
                )  # fmt: skip
            means = []
            for k in ks:
                c = r.n_maxima[a, t][r.measured[a, t, :, k], k].reshape(-1)
                means.append(c[c > 0].mean() if np.any(c > 0) else np.nan)
            axes[2].plot([ticks[k] for k in ks], means, ls=ls, marker="o", color=color,
                         label=label)  # fmt: skip
            if arm == "pga":
                it = np.nanmean(r.inner_iterations[a, t, :, : r.settings["epochs"]["pga"]],
                                axis=0)  # fmt: skip
                axes[3].plot(np.arange(1, it.size + 1), it, color=color, label=f"tau = {tau:g}")
    for q, policy in enumerate(POLICIES):
        axes[q].set(
            xscale="log",
            yscale="log",
            xlabel="epoch (0 drawn at 0.5)",
            ylabel="median first certified iteration",
            title=f"fopa's ascent from zero,\n{POLICY_NAMES[policy]} (budget {budget})",
        )
    axes[2].set(
        xscale="log",
        xlabel="epoch (0 drawn at 0.5)",
        ylabel="mean distinct maxima",
        title=f"certified maxima from {r.settings['n_starts']} starts\n(points with one)",
    )
    axes[3].axhline(r.settings["pga_budget"], color="k", lw=0.8, ls=":")
    axes[3].set(
        xlabel="epoch",
        ylabel="mean inner iterations per point",
        title=f"the PGA arm's own inner cost\n(budget {r.settings['pga_budget']})",
    )
    for ax in axes:
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle("solid: PGD-trained, dashed: PGA-trained; open: median not reached",
                 fontsize=9)  # fmt: skip
    return fig
