"""Attacks side by side against ground truth that no attack library has.

For each attack and input, :func:`compare_attacks` reports the loss the attack
reached, how far that is from the best certified maximum that many-start
``local_maxima`` finds (and, where it can be known, from the certified global
upper bound of :func:`fopa.global_maximum`), whether the attack's best point is
certified a strict local maximum, whether it is the best known one, gradient
evaluations until it came within a relative 1e-6 of its final best loss, and
its time. ``docs/attacks.md``, "Ground truth".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._inputs import problem_arrays
from ._validate import as_int, as_positive_scalar, as_rng
from .attacks import ATTACKS
from .certify import certify
from .global_max import global_maximum
from .landscape import local_maxima

__all__ = ["AttackComparison", "compare_attacks"]

#: The attacks compared by default, in the table's order.
DEFAULT_ATTACKS = ("fgm", "pgd", "apgd", "momentum_pga", "frank_wolfe", "riemannian_ascent")
#: "Came within" means a relative gap of at most this to the final best loss.
WITHIN = 1e-6
#: The global bound is computed by default up to this input dimension.
GLOBAL_MAX_D = 6


@dataclass(frozen=True)
class AttackComparison:
    """Per attack (rows, in ``attacks`` order) and input (columns).

    Attributes
    ----------
    attacks : tuple of str
    best_known : ndarray, shape (n,)
        The largest loss known per input: the best certified maximum of
        ``local_maxima``, any attack's best, and the global lower bound.
    global_upper : ndarray, shape (n,), or None
        Certified upper bound of the loss over the ball (None when not computed).
    loss, best_loss : ndarray, shape (k, n)
        Final loss and best loss seen.
    gap : ndarray, shape (k, n)
        ``best_known - best_loss`` (>= 0).
    certified : ndarray of bool, shape (k, n)
        The attack's best point is certified a strict local maximum.
    is_best : ndarray of bool, shape (k, n)
        Certified and within relative 1e-9 of ``best_known``.
    evaluations_to_final : ndarray of int, shape (k, n)
        Gradient evaluations until the loss came within relative 1e-6 of the
        final best loss.
    gradient_evaluations : ndarray of int, shape (k,)
    seconds : ndarray, shape (k,)
        Wall time of each attack's batch run (after an untimed call on one input
        that loads its compiled kernel; the tight bounds that ``momentum_pga``'s
        default step needs are included).
    curves : tuple of ndarray, each (n, T_k + 1)
        ``best_known - (best loss so far)`` at every iterate, per attack.
    evaluations : tuple of ndarray, each (T_k + 1,)
        Gradient evaluations at each iterate of ``curves``.
    """

    attacks: tuple
    best_known: np.ndarray
    global_upper: np.ndarray | None
    loss: np.ndarray
    best_loss: np.ndarray
    gap: np.ndarray
    certified: np.ndarray
    is_best: np.ndarray
    evaluations_to_final: np.ndarray
    gradient_evaluations: np.ndarray
    seconds: np.ndarray
    curves: tuple
    evaluations: tuple

    def table(self) -> str:
        """A markdown table: per attack, medians over inputs and shares."""
        n = self.best_known.shape[0]
        lines = [
            f"{n} inputs; gap = best known loss - attack's best loss (median, max); "
            "certified = its best point is a certified strict local maximum",
            "",
            "| attack | grads | median gap | max gap | certified | best known | "
            "grads to within 1e-6 (median) | ms per input |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, name in enumerate(self.attacks):
            lines.append(
                f"| {name} | {self.gradient_evaluations[k]} | {np.median(self.gap[k]):.3g} | "
                f"{np.max(self.gap[k]):.3g} | {int(self.certified[k].sum())}/{n} | "
                f"{int(self.is_best[k].sum())}/{n} | "
                f"{np.median(self.evaluations_to_final[k]):.0f} | "
                f"{1e3 * self.seconds[k] / n:.3g} |"
            )
        if self.global_upper is not None:
            slack = self.global_upper - self.best_known
            lines += [
                "",
                "Certified global upper bound minus best known: median "
                f"{np.median(slack):.3g}, max {np.max(slack):.3g}.",
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready values (curves left out)."""
        out = {
            "attacks": list(self.attacks),
            "best_known": self.best_known.tolist(),
            "global_upper": None if self.global_upper is None else self.global_upper.tolist(),
        }
        for name in ("loss", "best_loss", "gap", "certified", "is_best", "evaluations_to_final"):
            values = getattr(self, name)
            out[name] = {a: values[k].tolist() for k, a in enumerate(self.attacks)}
        out["gradient_evaluations"] = dict(
            zip(self.attacks, self.gradient_evaluations.tolist(), strict=True)
        )
        out["seconds"] = dict(zip(self.attacks, self.seconds.tolist(), strict=True))
        return out

    def figure(self):
        """Gap against gradient evaluations, one curve per attack (median over
        inputs) with a band between the quartiles; log-log axes.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        floor = 1e-16 * max(1.0, float(np.max(np.abs(self.best_known))))
        for name, curve, evals in zip(self.attacks, self.curves, self.evaluations, strict=True):
            used = evals >= 1  # the start (no gradient yet) has no place on a log axis
            c = np.maximum(curve[:, used], floor)
            q1, med, q3 = np.quantile(c, [0.25, 0.5, 0.75], axis=0)
            x = evals[used]
            (line,) = ax.plot(x, med, label=name, marker="o" if len(x) <= 2 else None)
            ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("gradient evaluations")
        ax.set_ylabel("best known loss - best loss so far")
        ax.set_title(f"{self.best_known.shape[0]} inputs: median and quartiles")
        ax.legend(fontsize="small")
        return fig


def _evaluations(result):
    """Gradient evaluations used at each iterate of an attack's trajectory, shape (T + 1,).

    One gradient per update, plus the start's when the attack counts it (APGD and
    Riemannian ascent use ``iterations + 1``): iterate t has used ``offset + t``, the
    last one exactly ``gradient_evaluations``.
    """
    offset = result.gradient_evaluations - result.iterations
    return offset + np.arange(result.iterations + 1)


def _budgets(budget):
    """Keyword arguments giving each attack ``budget`` gradient evaluations."""
    return {
        "fgm": {},
        "pgd": {"steps": budget},
        "apgd": {"n_iter": max(budget - 1, 1)},
        "momentum_pga": {"steps": budget},
        "frank_wolfe": {"steps": budget},
        "riemannian_ascent": {"steps": max(budget - 1, 1)},
    }


def compare_attacks(
    net, X, y, eps, *, attacks=DEFAULT_ATTACKS, budget=100, n_starts=32, rng=None,
    global_bound=None, max_regions=20_000, tol=1e-7, loss="quadratic",
) -> AttackComparison:  # fmt: skip
    """Run attacks on the same inputs and hold them against certified ground truth.

    Parameters
    ----------
    net : TwoLayerNet
    X : array_like, shape (n, d) (or (d,))
    y : float or array_like, shape (n,)
    eps : float
    attacks : sequence of str
        Names in :data:`fopa.attacks.ATTACKS`.
    budget : int
        Gradient evaluations per attack and input (fgm uses one).
    n_starts : int
        Starts of the many-start ``local_maxima`` that gives the best certified
        maximum of each input.
    rng : None, int or numpy.random.Generator
        Seeds the random starts of the attacks and of ``local_maxima``.
    global_bound : None or bool
        Compute :func:`fopa.global_maximum`'s certified upper bound (default: for
        the quadratic activation, or when ``d <= 6``).
    max_regions : int
        The branch and bound's budget per input.
    tol : float
        The certificate's tolerance for the attacks' best points.
    loss : "quadratic" or "logistic"

    Returns
    -------
    AttackComparison
    """
    code, Xa, Y, _, _ = problem_arrays(net, X, y, loss)
    eps = as_positive_scalar("eps", eps)
    budget = as_int("budget", budget, minimum=1)
    names = tuple(attacks)
    for name in names:
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; expected some of {', '.join(ATTACKS)}")
    gen = as_rng(rng)
    n, d = Xa.shape
    kwargs = _budgets(budget)
    results, seconds = [], []
    for name in names:
        kw = dict(kwargs[name])
        if name in ("apgd", "riemannian_ascent"):
            kw["rng"] = gen
        # untimed first: the first call in a process loads the compiled kernel
        ATTACKS[name](net, Xa[:1], Y[:1], eps, loss=loss, **_budgets(2)[name])
        t0 = time.perf_counter()
        results.append(ATTACKS[name](net, Xa, Y, eps, loss=loss, **kw))
        seconds.append(time.perf_counter() - t0)
    best_known = np.max([r.best_loss for r in results], axis=0)
    for i in range(n):
        land = local_maxima(net, Xa[i], Y[i], eps, n_starts=n_starts, rng=gen, loss=loss)
        if land.maxima:
            best_known[i] = max(best_known[i], land.maxima[0].loss)
    if global_bound is None:
        global_bound = net.activation == "quadratic" or d <= GLOBAL_MAX_D
    upper = None
    if global_bound:
        upper = np.empty(n)
        for i in range(n):
            starts = np.array([r.best_delta[i] for r in results])
            gb = global_maximum(
                net, Xa[i], Y[i], eps, max_regions=max_regions, starts=starts, loss=loss
            )
            best_known[i] = max(best_known[i], gb.lower)
            upper[i] = gb.upper
    k = len(names)
    loss_final = np.array([r.loss for r in results]).reshape(k, n)
    best = np.array([r.best_loss for r in results]).reshape(k, n)
    gap = np.maximum(best_known[None, :] - best, 0.0)
    certified = np.empty((k, n), dtype=bool)
    for j, r in enumerate(results):
        kinds = certify(net, Xa, Y, r.best_delta, eps, tol=tol, loss=loss).kind
        certified[j] = np.asarray(kinds) == "strict_local_max"
    scale = np.maximum(1.0, np.abs(best_known))
    is_best = certified & (gap <= 1e-9 * scale[None, :])
    to_final = np.empty((k, n), dtype=np.int64)
    curves, evals = [], []
    for j, r in enumerate(results):
        traj = np.maximum.accumulate(r.loss_trajectory, axis=1)
        e = _evaluations(r)
        close = np.abs(traj - traj[:, -1:]) <= WITHIN * np.maximum(1.0, np.abs(traj[:, -1:]))
        to_final[j] = e[np.argmax(close, axis=1)]
        curves.append(best_known[:, None] - traj)
        evals.append(e)
    return AttackComparison(
        names, best_known, upper, loss_final, best, gap, certified, is_best, to_final,
        np.array([r.gradient_evaluations for r in results]), np.array(seconds), tuple(curves),
        tuple(evals),
    )  # fmt: skip
