"""Claim 1 from starts at and near saddles: does PGA leave a saddle, and how fast?

The iteration studies start at the origin or on the sphere. Here the starts are the
saddles of the problem itself, found by Newton's method (:func:`fopa.critical_points`)
at input scales where the landscape has them, and points at distance ``r eps`` from
them. Near a strict saddle the projected step is linear on the tangent space with
factor ``q = 1 + eta lambda_max / (1 + eta mu)`` along the most unstable direction
(:func:`fopa.local_rate`), so a start at distance r needs ``ln(1/r) / ln q``
iterations plus a constant to leave: the first certified iteration grows linearly in
``ln(1/r)`` with slope ``1 / ln q`` (``docs/experiments/1-iterations.md``, "Starts at
saddles").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_positive_scalar, as_rng
from ..ascent import Perturbation, projected_gradient_ascent
from ..bounds import ball_constants
from ..certify import certify, local_rate, tangent_spectrum
from ..critical import critical_points
from ..derivatives import input_hessian
from ..losses import loss_code
from ..stats import bootstrap_interval
from ..stats._bootstrap import json_ready
from ..stats._verdict import Verdict
from .common import StudyResult, claims_row, random_instance
from .iterations import CLAIM
from .tail_rates import RATE_BAND
from .verdicts import HIGH_PROBABILITY, MAJORITY

__all__ = [
    "ESCAPE_CLAIM",
    "ESCAPE_RULE",
    "SADDLE_RULE",
    "SaddleStudy",
    "escape_verdict",
    "saddle_claims",
    "saddle_escape",
    "saddle_figure",
    "saddle_study",
    "saddle_verdict",
]

ESCAPE_CLAIM = (
    "local: PGA leaves a strict saddle at distance r in ln(1/r) / ln q iterations plus a "
    "constant, q from the saddle's most unstable tangent eigenvalue (fopa's hypothesis)"
)

#: Radii up to this (as a fraction of eps) are in the linear regime of the escape fit.
LINEAR_RADIUS = 1e-4
#: A run whose end is farther than this (x eps) from the saddle has left it.
LEFT_DISTANCE = 1e-2
#: The step policies a saddle study runs (the escape prediction needs the fixed 1/beta).
SADDLE_POLICIES = ("lipschitz", "backtracking")

SADDLE_RULE = (
    "per radius r > 0, the share of runs started at distance r eps from a certified "
    "saddle that are certified a strict local maximum within the budget (a fixed "
    "budget, tol = 0), with its 95 % cluster-bootstrap interval (instances resampled): "
    f"agrees if no radius's interval lies below {HIGH_PROBABILITY}, disagrees if some "
    f"radius's interval lies below {MAJORITY}, not tested if no saddle was found, else "
    "inconclusive"
)

ESCAPE_RULE = (
    "per saddle, the median over start directions (the same direction at every radius) "
    "of the least-squares slope of the first certified iteration against ln(1/r) over "
    f"the radii r <= {LINEAR_RADIUS:g} (directions certified at all of them), times ln q "
    "(q: fopa.local_rate at the saddle with the run's step 1/beta; 1 is the linear "
    "theory); the 95 % cluster-bootstrap interval (instances resampled) of the median over "
    f"saddles: agrees if within [{RATE_BAND[0]}, {RATE_BAND[1]}], disagrees if wholly "
    "outside, not tested with fewer than 2 saddles with a slope, else inconclusive"
)


@dataclass(frozen=True)
class SaddleStudy(StudyResult):
    """PGA from the saddles of random instances and from points near them.

    Per saddle s (over every instance and tau; ``instance[s]`` and ``tau[s]`` say
    which): ``saddle_loss``, ``index`` (positive tangent eigenvalues), ``unstable``
    (the largest tangent eigenvalue), ``multiplier``, ``step`` (1/beta) and
    ``escape_factor`` (``q``, :func:`fopa.local_rate`). ``first_certified[s, k, j]``:
    the first certified iteration (-1: not within ``max_iter``; censored) from
    ``saddle + radii[k] eps z_j`` (projected), a fixed budget (tol = 0); the same
    direction ``z_j`` at every radius. ``stops_at_saddle[s, k, j]``: the same start
    with the default tol 1e-8 stopped at a point that is not a strict local maximum;
    ``left_saddle[s, k, j]``: the fixed-budget run ended farther than
    :data:`LEFT_DISTANCE` eps from the saddle.
    From the saddle itself: ``exact_stuck[s]`` (default tol: stopped at once, end not a
    strict maximum), ``exact_first_certified[s]`` (tol = 0: rounding alone),
    ``perturbed_certified[s]`` (perturbed ascent, :class:`fopa.Perturbation` of radius
    ``1e-3 eps``, threshold ``1e-7`` x the gradient scale, interval ``max_iter / 4``:
    1 if its end is certified a strict maximum, 0 if not, -1 not run: the backtracking
    step has no perturbed variant) and ``perturbed_iterations[s]`` (-1: not run).
    ``slope_ratio[s]``: the measured escape slope times ln q (-1: not measured).
    ``share[k]``: ``(share, low, high)`` certified within budget per radius; ``ratio``:
    ``(median, low, high)`` of ``slope_ratio`` (None: fewer than 2). Instances per tau
    with a saddle: ``instances_with_saddles``; per tau,
    ``by_tau[t]``: ``runs`` (from near its saddles, every radius), ``certified`` (the
    share within the budget), ``censored`` and ``censored_left`` (censored runs that
    had left the saddle: slow at the maximum, not stuck). ``step`` is the run's
    ``step_size`` (1/beta for ``"lipschitz"``; the first trial step for
    ``"backtracking"``, whose ``escape_factor`` is -1: no prediction).
    """

    radii: tuple
    taus: tuple
    instance: np.ndarray
    tau: np.ndarray
    saddle_loss: np.ndarray
    index: np.ndarray
    unstable: np.ndarray
    multiplier: np.ndarray
    step: np.ndarray
    escape_factor: np.ndarray
    first_certified: np.ndarray
    stops_at_saddle: np.ndarray
    left_saddle: np.ndarray
    exact_stuck: np.ndarray
    exact_first_certified: np.ndarray
    perturbed_certified: np.ndarray
    perturbed_iterations: np.ndarray
    slope_ratio: np.ndarray
    share: tuple
    ratio: tuple | None
    instances_with_saddles: tuple
    by_tau: tuple
    verdict: dict
    escape: dict
    settings: dict


def _start(saddle, offset, eps):
    start = saddle + offset
    norm = float(np.linalg.norm(start))
    return start * (eps / norm) if norm > eps else start


def _saddle_runs(net, x, y, eps, saddle, cert, radii, directions, max_iter, loss, step):
    """Every run from one saddle with the step policy ``step``, as a dict of outputs."""

    def run(init, tol, **kw):
        return projected_gradient_ascent(net, x, y, eps, init=init, tol=tol, step_size=step,
                                         max_iter=max_iter, loss=loss, **kw)  # fmt: skip

    exact = run(saddle, 1e-8)
    end = certify(net, x, y, exact.delta, eps, loss=loss)
    budget = run(saddle, 0.0, certify_every="auto")
    perturbed_certified, perturbed_iterations = -1, -1  # not run: backtracking has none
    if step == "lipschitz":
        scale = float(ball_constants(net, x, y, eps, loss=loss, method="fast").gradient_bound)
        noise = Perturbation(radius=1e-3 * eps, threshold=1e-7 * scale,
                             interval=max(1, max_iter // 4))  # fmt: skip
        perturbed = run(saddle, 1e-8, perturbation=noise, rng=0)
        p_end = certify(net, x, y, perturbed.delta, eps, loss=loss)
        perturbed_certified = int(p_end.kind == "strict_local_max")
        perturbed_iterations = int(perturbed.iterations)
    first = np.full((len(radii), len(directions)), -1, np.int64)
    stops = np.zeros((len(radii), len(directions)), bool)
    left = np.zeros((len(radii), len(directions)), bool)
    for k, r in enumerate(radii):
        starts = np.array([_start(saddle, r * eps * z, eps) for z in directions])
        X = np.tile(x, (len(directions), 1))
        Y = np.full(len(directions), y)
        fixed = projected_gradient_ascent(net, X, Y, eps, init=starts, tol=0.0, step_size=step,
                                          max_iter=max_iter, loss=loss,
                                          certify_every="auto")  # fmt: skip
        first[k] = fixed.first_certified_iteration
        left[k] = np.linalg.norm(fixed.delta - saddle, axis=1) > LEFT_DISTANCE * eps
        tolled = projected_gradient_ascent(net, X, Y, eps, init=starts, tol=1e-8, step_size=step,
                                           max_iter=max_iter, loss=loss)  # fmt: skip
        kinds = certify(net, X, Y, tolled.delta, eps, loss=loss).kind
        stops[k] = np.asarray(kinds) != "strict_local_max"
    eta = float(exact.step_size)  # 1/beta for "lipschitz"; the escape needs a fixed step
    factor = float(local_rate(cert, eta)) if step == "lipschitz" else -1.0
    spectrum = tangent_spectrum(net, x, y, saddle, eps, loss=loss) if cert.on_boundary else (
        np.linalg.eigvalsh(input_hessian(net, x + saddle, y, loss=loss)))  # fmt: skip
    return dict(
        index=int(np.sum(spectrum > 1e-7 * cert.curvature_scale)),
        unstable=float(cert.max_tangent_eigenvalue), multiplier=float(cert.multiplier),
        step=eta, escape_factor=factor, first=first, stops=stops, left=left,
        exact_stuck=bool(end.kind != "strict_local_max"),
        exact_first=int(budget.first_certified_iteration),
        perturbed_certified=perturbed_certified, perturbed_iterations=perturbed_iterations,
    )  # fmt: skip


def saddle_escape(
    taus=(3.0, 10.0), *, d=5, m=20, ratio=0.5, n_runs=10, saddles_per_instance=2,
    n_directions=5, radii=(1e-10, 1e-8, 1e-6, 1e-4, 1e-2), newton_starts=64,
    max_iter=20_000, step_policy="lipschitz", activation="tanh", loss="quadratic", rng=0,
) -> SaddleStudy:  # fmt: skip
    """Find the saddles of ``n_runs`` instances at each tau (``x = tau x_hat``, ``eps =
    ratio ||x||``) by :func:`fopa.critical_points` (``newton_starts`` starts), keep up to
    ``saddles_per_instance`` of them (largest loss first), and run PGA with ``eta =
    1/beta`` from each and from ``n_directions`` points at each distance ``radii[k] *
    eps`` (directions drawn from ``rng``, the same at every radius)."""
    gen = as_rng(rng)
    loss_code(loss)
    if step_policy not in SADDLE_POLICIES:
        raise ValueError(f"step_policy must be one of {', '.join(SADDLE_POLICIES)}; got "
                         f"{step_policy!r}")  # fmt: skip
    n_runs = as_int("n_runs", n_runs, minimum=1)
    taus = tuple(as_positive_scalar("tau", float(t)) for t in taus)
    radii = tuple(as_positive_scalar("radius", float(r)) for r in radii)
    instances = [random_instance(d, m, activation, gen) for _ in range(n_runs)]
    rows, found = [], []
    for t, tau in enumerate(taus):
        with_saddle = 0
        for i, (net, x_hat, y) in enumerate(instances):
            x = tau * x_hat
            eps = ratio * float(np.linalg.norm(x))
            cp = critical_points(net, x, y, eps, n_starts=newton_starts,
                                 rng=int(gen.integers(2**63)), loss=loss)  # fmt: skip
            chosen = cp.of_kind("saddle")[:saddles_per_instance]
            with_saddle += bool(chosen.size)
            for s in chosen:
                directions = gen.standard_normal((n_directions, d))
                directions /= np.linalg.norm(directions, axis=1)[:, None]
                cert = certify(net, x, y, cp.points[s], eps, loss=loss)
                out = _saddle_runs(net, x, y, eps, cp.points[s], cert, radii, directions,
                                   max_iter, loss, step_policy)  # fmt: skip
                rows.append(dict(out, instance=i, tau=t, loss=float(cp.loss[s])))
        found.append(with_saddle)
    settings = dict(d=d, m=m, ratio=ratio, n_runs=n_runs, saddles_per_instance=saddles_per_instance,
                    n_directions=n_directions, newton_starts=newton_starts, max_iter=max_iter,
                    step_policy=step_policy, activation=activation, loss=loss)  # fmt: skip
    return saddle_study(taus, radii, rows, found, settings, rng=gen)


def escape_slopes(radii, first, factor):
    """Per saddle, the median over directions of the slope of the first certified
    iteration against ln(1/r) (radii up to :data:`LINEAR_RADIUS`, at least 2, every one
    certified) times ``ln factor``; -1 where no direction has such a slope."""
    radii = np.asarray(radii, dtype=float)
    use = radii <= LINEAR_RADIUS
    out = np.full(first.shape[0], -1.0)
    if use.sum() < 2:
        return out
    s_axis = np.log(1.0 / radii[use])
    for s in range(first.shape[0]):
        counts = first[s][use]  # (radii, directions)
        slopes = [np.polyfit(s_axis, counts[:, j], 1)[0]
                  for j in range(counts.shape[1]) if np.all(counts[:, j] >= 0)]  # fmt: skip
        if slopes and factor[s] > 1:
            out[s] = float(np.median(slopes)) * math.log(factor[s])
    return out


def _cluster_interval(statistic, values, clusters, gen):
    if values.size < 2:
        return None
    out = bootstrap_interval(statistic, values, cluster=clusters, n_boot=1000, rng=gen)
    return (float(out.estimate), float(out.low), float(out.high))


def saddle_study(taus, radii, rows, found, settings, *, rng=None):
    """A :class:`SaddleStudy` from the per-saddle outputs of :func:`_saddle_runs`."""
    gen = as_rng(rng)
    n, K, J = len(rows), len(radii), int(settings["n_directions"])

    def column(key, dtype=float):
        return np.array([r[key] for r in rows], dtype=dtype)

    first = np.array([r["first"] for r in rows], np.int64).reshape(n, K, J)
    stops = np.array([r["stops"] for r in rows], bool).reshape(n, K, J)
    left = np.array([r["left"] for r in rows], bool).reshape(n, K, J)
    factor = column("escape_factor")
    instance = column("instance", np.int64)
    tau_index = column("tau", np.int64)
    clusters = tau_index * (int(instance.max()) + 1 if n else 1) + instance
    share = []
    for k in range(K):
        certified = (first[:, k, :] >= 0).mean(axis=1) if n else np.zeros(0)
        share.append(_cluster_interval(np.mean, certified, clusters, gen))
    ratios = escape_slopes(radii, first, factor) if n else np.zeros(0)
    measured = ratios >= 0
    ratio = _cluster_interval(np.median, ratios[measured], clusters[measured], gen)
    return SaddleStudy(
        radii=tuple(radii), taus=tuple(taus), instance=instance, tau=tau_index,
        saddle_loss=column("loss"), index=column("index", np.int64), unstable=column("unstable"),
        multiplier=column("multiplier"), step=column("step"), escape_factor=factor,
        first_certified=first, stops_at_saddle=stops, left_saddle=left,
        exact_stuck=column("exact_stuck", bool),
        exact_first_certified=column("exact_first", np.int64),
        perturbed_certified=column("perturbed_certified", np.int64),
        perturbed_iterations=column("perturbed_iterations", np.int64), slope_ratio=ratios,
        share=tuple(share), ratio=ratio, instances_with_saddles=tuple(found),
        by_tau=tuple(_tau_summary(t, tau_index, first, left) for t in range(len(taus))),
        verdict=saddle_verdict(radii, share).to_dict(),
        escape=escape_verdict(ratio, settings.get("step_policy", "lipschitz")).to_dict(),
        settings=dict(settings),
    )  # fmt: skip


def saddle_verdict(radii, share) -> Verdict:
    """:data:`SADDLE_RULE` on the per-radius ``(share, low, high)`` (None: no saddle)."""
    tested = [(r, s) for r, s in zip(radii, share, strict=True) if s is not None]
    if not tested:
        return Verdict("not tested", SADDLE_RULE, "no saddle was found (or only one)")
    text = "; ".join(f"r {r:g}: {s[0]:.2f} [{s[1]:.2f}, {s[2]:.2f}]" for r, s in tested)
    if any(s[2] < MAJORITY for _, s in tested):
        return Verdict("disagrees", SADDLE_RULE, text)
    if all(s[2] >= HIGH_PROBABILITY for _, s in tested):
        return Verdict("agrees", SADDLE_RULE, text)
    return Verdict("inconclusive", SADDLE_RULE, text)


def _tau_summary(t, tau_index, first, left):
    """At one tau: runs from near its saddles (every radius), the share certified within
    the budget, and how many of the censored runs had left their saddle."""
    runs = first[tau_index == t]
    censored = runs < 0
    return dict(runs=int(runs.size), certified=float(np.mean(~censored)) if runs.size else None,
                censored=int(censored.sum()),
                censored_left=int(np.sum(censored & left[tau_index == t])))  # fmt: skip


def escape_verdict(ratio, step_policy="lipschitz") -> Verdict:
    """:data:`ESCAPE_RULE` on ``(median, low, high)`` of the slope ratios (None: < 2)."""
    if step_policy != "lipschitz":
        return Verdict("not tested", ESCAPE_RULE, f"the {step_policy} step is not one fixed "
                       "step, so ln q has no single value to predict the slope")  # fmt: skip
    if ratio is None:
        return Verdict("not tested", ESCAPE_RULE, "fewer than 2 saddles with a measured slope")
    text = f"median slope x ln q {ratio[0]:.3f} [{ratio[1]:.3f}, {ratio[2]:.3f}]"
    low, high = RATE_BAND
    if ratio[2] < low or ratio[1] > high:
        return Verdict("disagrees", ESCAPE_RULE, text)
    if low <= ratio[1] and ratio[2] <= high:
        return Verdict("agrees", ESCAPE_RULE, text)
    return Verdict("inconclusive", ESCAPE_RULE, text)


STEP_NAMES = {"lipschitz": "step 1/beta", "backtracking": "backtracking step"}


def saddle_claims(name, study):
    """The claims-table rows of a :class:`SaddleStudy`: claim 1 from near saddles, and
    (with the fixed step 1/beta) the escape time against the linear theory."""
    st = study.settings
    policy = st.get("step_policy", "lipschitz")
    n = len(study.saddle_loss)
    per_tau = ", ".join(f"tau {t:g}: {k} of {st['n_runs']}" for t, k in
                        zip(study.taus, study.instances_with_saddles, strict=True))  # fmt: skip
    settings = (f"{st['loss']} loss, {STEP_NAMES[policy]}, d={st['d']}, m={st['m']}, "
                f"eps/||x||={st['ratio']:g}, tau in {json_ready(list(study.taus))}, "
                f"budget {st['max_iter']}")  # fmt: skip
    ran = study.perturbed_certified >= 0
    perturbed = (f"perturbed ascent certified {int(study.perturbed_certified[ran].sum())} of "
                 f"{int(ran.sum())}" if ran.any() else "perturbed ascent not run (no "
                 "perturbed variant of this step)")  # fmt: skip
    exact = (f"from the saddle itself: with tol 1e-8 {int(study.exact_stuck.sum())} of {n} "
             f"stop at once (not a maximum); {perturbed}")  # fmt: skip
    shares = "; ".join(
        f"r {r:g}: {s[0]:.2f}" if s else f"r {r:g}: n/a" for r, s in zip(study.radii, study.share,
                                                                       strict=True))  # fmt: skip
    stop_share = "; ".join(f"r {r:g}: {v:.2f}" for r, v in zip(
        study.radii, study.stops_at_saddle.mean(axis=(0, 2)) if n else [0.0] * len(study.radii),
        strict=True))  # fmt: skip
    tau_text = "; ".join(
        f"tau {t:g}: {b['certified']:.2f} of {b['runs']} runs ({b['censored_left']} of "
        f"{b['censored']} censored runs had left the saddle)"
        for t, b in zip(study.taus, study.by_tau, strict=True) if b["runs"]
    )  # fmt: skip
    size = f"{n} saddles ({per_tau} instances with one), {st['n_directions']} directions each"
    rows = [
        claims_row(
            claim=CLAIM, experiment=name,
            statistic=(f"share certified within the budget from distance r eps: {shares}; per "
                       f"tau (radii pooled): {tau_text or 'no runs'}; with tol 1e-8 instead, "
                       f"share that stop short of a maximum: {stop_share}; {exact}"),
            verdict=study.verdict, n=size, settings=settings,
        ),
    ]  # fmt: skip
    if policy == "lipschitz":
        rows.append(claims_row(
            claim=ESCAPE_CLAIM, experiment=name,
            statistic=("escape slope (first certified iteration per unit ln(1/r)) x ln q: "
                       + (f"median {study.ratio[0]:.3f}" if study.ratio else "n/a")
                       + f" over {int(np.sum(study.slope_ratio >= 0))} saddles"),
            verdict=study.escape, n=size, settings=settings,
        ))  # fmt: skip
    return rows


def _escape_panel(ax, study):
    radii = np.array(study.radii)
    use = radii <= LINEAR_RADIUS
    s_axis = np.log(1.0 / radii)
    predicted = bool(np.any(study.escape_factor > 1))
    unreached = 0
    for s in range(len(study.saddle_loss)):
        first = study.first_certified[s].astype(float)
        first[first < 0] = np.inf  # censored: more than the budget, kept in the median
        med = np.median(first, axis=1)
        unreached += int(np.sum(~np.isfinite(med)))
        if predicted:
            if study.escape_factor[s] <= 1 or not use.any() or not np.isfinite(med[use]).all():
                continue
            scaled = med * math.log(study.escape_factor[s])
            scaled = scaled - scaled[use][np.argmin(s_axis[use])]
        else:
            scaled = med
        ax.plot(s_axis, scaled, "o-", lw=0.8, ms=3, alpha=0.6, color="tab:blue")
    if predicted:
        base = s_axis[use].min() if use.any() else 0.0
        theory = s_axis - base
        ax.plot(s_axis, theory, "k--", label="theory: slope 1")
        ax.set_ylabel("(median first certified iteration) x ln q, shifted")
        span = theory.max() - theory.min()
        low, high = theory.min() - span / 2, theory.max() + span / 2
        ax.set_ylim(low, high)  # lines that leave it (index-2 saddles, another maximum)
        outside = sum(bool(np.any((ln.get_ydata() < low) | (ln.get_ydata() > high)))
                      for ln in ax.get_lines()[:-1])  # fmt: skip
        if outside:
            ax.plot([], [], " ", label=f"{outside} saddles leave the axis range")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("median first certified iteration")
    if unreached:
        ax.plot([], [], " ", label=f"{unreached} medians not reached in the budget: not drawn")
    ax.set_xticks(s_axis)
    ax.set_xticklabels([f"{r:g}" for r in radii], fontsize=8)
    ax.set_xlabel("start distance r (x eps), ln(1/r) axis")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)


def _share_panel(ax, study):
    radii = np.array(study.radii)
    shown = [k for k, v in enumerate(study.share) if v is not None]
    if shown:
        est = np.array([study.share[k][0] for k in shown])
        low = np.array([study.share[k][1] for k in shown])
        high = np.array([study.share[k][2] for k in shown])
        ax.errorbar(radii[shown], est, yerr=[est - low, high - est], marker="o", capsize=3,
                    label="certified within the budget (95 % cluster bootstrap)")  # fmt: skip
    ax.axhline(HIGH_PROBABILITY, color="0.5", ls=":", label=f"{HIGH_PROBABILITY}")
    ax.set_xscale("log")
    ax.set_xticks(radii)
    ax.set_xticklabels([f"{r:g}" for r in radii], fontsize=8)
    ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set(xlabel="start distance r (x eps)", ylabel="share of runs")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, alpha=0.3)


def saddle_figure(study):
    """The first certified iteration against ln(1/r) per saddle (with the step 1/beta in
    units of the predicted slope, ``N ln q`` shifted to 0 at the largest linear radius,
    where the theory is the line of slope 1), the share certified within the budget per
    radius, and (1/beta) the measured over the predicted slope per saddle."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    predicted = bool(np.any(study.escape_factor > 1))
    fig = Figure(figsize=(13 if predicted else 9, 4), layout="constrained")
    axes = fig.subplots(1, 3 if predicted else 2)
    _escape_panel(axes[0], study)
    _share_panel(axes[1], study)
    if predicted:
        right = axes[2]
        ok = study.slope_ratio >= 0
        right.plot(np.flatnonzero(ok), study.slope_ratio[ok], "o", color="tab:blue",
                   label="per saddle")  # fmt: skip
        if study.ratio:
            right.axhline(study.ratio[0], color="tab:red",
                          label=f"median {study.ratio[0]:.3f} [{study.ratio[1]:.3f}, "
                                f"{study.ratio[2]:.3f}]")  # fmt: skip
            right.axhspan(study.ratio[1], study.ratio[2], color="tab:red", alpha=0.15)
        right.axhspan(*RATE_BAND, color="0.5", alpha=0.1, label=f"band {list(RATE_BAND)}")
        above = int(np.sum(study.slope_ratio[ok] > 2.0))
        right.set_ylim(0.0, 2.0)
        if above:
            right.plot([], [], " ", label=f"{above} saddles above 2 (not shown)")
        right.set(xlabel="saddle (in the order found)", ylabel="measured / predicted escape slope")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.legend(fontsize=8)
        right.grid(True, alpha=0.3)
    st = study.settings
    fig.suptitle(f"{st['loss']} loss, {STEP_NAMES[st.get('step_policy', 'lipschitz')]}, "
                 f"d={st['d']}, m={st['m']}, eps = {st['ratio']:g} ||x||: PGA from near "
                 f"{len(study.saddle_loss)} saddles (n = {st['n_directions']} directions each)",
                 fontsize=9)  # fmt: skip
    return fig
