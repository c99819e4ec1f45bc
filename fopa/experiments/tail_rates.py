"""The tail rate of PGA across input scales, against the local rate at the maximum.

Near a strict local maximum PGA with step ``eta`` contracts its error by the factor
:func:`fopa.local_rate` predicts per iteration (``docs/certify.md``, "Rates and
bounds"); the tolerance study checks it at one scale. Here the same comparison
runs at every input scale tau of the speed study's design (``x = tau x_hat``,
``eps = ratio ||x||``, the same instances at every tau), with the ``1/beta`` step:
does the local theory hold at every scale, and how many iterations does each
decade of accuracy cost at each tau (``docs/experiments/6-tolerance.md``,
"Across input scales")?
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import as_int, as_positive_scalar, as_rng
from ..ascent import projected_gradient_ascent
from ..losses import loss_code
from ..stats import bootstrap_interval
from ..stats._bootstrap import json_ready
from ..stats._verdict import Verdict
from .common import StudyResult, claims_row, random_instance
from .tolerance import CLAIM, RATE_WINDOW, rate_ratio, tail_rates

__all__ = [
    "RATE_BAND",
    "RATE_RULE",
    "TailRateStudy",
    "tail_rate_claims",
    "tail_rate_figure",
    "tail_rate_study",
    "tail_rates_against_scale",
]

#: The band of ``log measured / log predicted`` that counts as "as predicted".
RATE_BAND = (0.9, 1.1)

RATE_RULE = (
    "per tau, the 95 % bootstrap interval (runs resampled) of the median of log "
    "measured / log predicted tail contraction factor (measured: slope of log relative "
    "KKT residual over the iterations with residual in [1e-10, 1e-4], at least 2; "
    "predicted: "
    "fopa.local_rate at the certified final point with the run's step 1/beta): agrees if "
    f"at every tau it lies within [{RATE_BAND[0]}, {RATE_BAND[1]}], disagrees if at some "
    "tau it lies wholly outside that band, not tested if no tau has 2 runs with both "
    "rates, else inconclusive"
)


@dataclass(frozen=True)
class TailRateStudy(StudyResult):
    """Measured and predicted tail contraction factors per input scale.

    ``measured_rate[t, r]`` and ``predicted_rate[t, r]`` for ``tau = taus[t]``, run r
    (-1: not available: fewer than 3 iterations in the tail window, or the end not
    certified a strict maximum for the prediction). ``rate_ratio[t]``: the median of
    ``log measured / log predicted`` with its bootstrap interval ``(median, low,
    high)`` (None: fewer than 2 runs with both). ``per_decade_measured[t]`` and
    ``per_decade_predicted[t]``: the median iterations per decade of the residual,
    ``log(10) / -log(rate)``, with the interval of the measured one ``(median, low,
    high)`` (None where not available); ``n_measured[t]`` and ``n_both[t]`` count the
    runs with a measured rate and with both. ``verdict``: :data:`RATE_RULE`. A run whose
    residual crosses the window in fewer than 2 iterations (contraction faster than
    a factor 1e6 per iteration) or never reaches it has no measured rate.
    """

    taus: tuple
    measured_rate: np.ndarray
    predicted_rate: np.ndarray
    rate_ratio: tuple
    per_decade_measured: tuple
    per_decade_predicted: tuple
    n_measured: tuple
    n_both: tuple
    verdict: dict
    settings: dict


def tail_rates_against_scale(
    taus=(0.01, 0.1, 1.0), *, d=10, m=50, ratio=0.5, n_runs=20, max_iter=20_000,
    activation="tanh", loss="quadratic", rng=0,
) -> TailRateStudy:  # fmt: skip
    """For each tau and instance, PGA with ``eta = 1/beta`` from the origin to a relative
    KKT residual of ``RATE_WINDOW[0] / 2``, its residuals recorded, and the tail rate
    measured and predicted (:func:`fopa.experiments.tolerance.tail_rates`)."""
    gen = as_rng(rng)
    loss_code(loss)
    n_runs = as_int("n_runs", n_runs, minimum=2)
    taus = tuple(as_positive_scalar("tau", float(t)) for t in taus)
    instances = [random_instance(d, m, activation, gen) for _ in range(n_runs)]
    measured = np.full((len(taus), n_runs), -1.0)
    predicted = np.full((len(taus), n_runs), -1.0)
    for t, tau in enumerate(taus):
        for r, (net, x_hat, y) in enumerate(instances):
            x = tau * x_hat
            eps = ratio * float(np.linalg.norm(x))
            res = projected_gradient_ascent(
                net, x, y, eps, step_size="lipschitz", tol=RATE_WINDOW[0] / 2,
                max_iter=max_iter, record_history=True, loss=loss,
            )  # fmt: skip
            measured[t, r], predicted[t, r] = tail_rates(net, x, y, eps, res, loss,
                                                         min_points=2)  # fmt: skip
    settings = dict(d=d, m=m, ratio=ratio, n_runs=n_runs, max_iter=max_iter,
                    activation=activation, loss=loss)  # fmt: skip
    return tail_rate_study(taus, measured, predicted, settings, rng=gen)


def _usable(rates):
    return (rates > 0) & (rates < 1)


def _median_interval(values, gen):
    if values.size < 2:
        return None
    out = bootstrap_interval(np.median, values, n_boot=1000, rng=gen)
    return (out.estimate, out.low, out.high)


def tail_rate_study(taus, measured, predicted, settings, *, rng=None):
    """A :class:`TailRateStudy` from the rates (shape (len(taus), runs), -1: none)."""
    gen = as_rng(rng)
    measured = np.asarray(measured, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    ratios, decades, decades_predicted = [], [], []
    for t in range(len(taus)):
        ratios.append(rate_ratio(measured[t], predicted[t], rng=gen))
        seen = _usable(measured[t])
        decades.append(_median_interval(math.log(10) / -np.log(measured[t, seen]), gen))
        shown = _usable(predicted[t])
        decades_predicted.append(
            float(np.median(math.log(10) / -np.log(predicted[t, shown]))) if shown.any() else None
        )
    return TailRateStudy(
        taus=tuple(taus), measured_rate=measured, predicted_rate=predicted,
        rate_ratio=tuple(ratios), per_decade_measured=tuple(decades),
        per_decade_predicted=tuple(decades_predicted),
        n_measured=tuple(int(v) for v in _usable(measured).sum(axis=1)),
        n_both=tuple(int(v) for v in (_usable(measured) & _usable(predicted)).sum(axis=1)),
        verdict=rate_verdict(taus, ratios).to_dict(), settings=dict(settings),
    )  # fmt: skip


def rate_verdict(taus, ratios) -> Verdict:
    """:data:`RATE_RULE` on the per-tau intervals ``(median, low, high)`` (None: none)."""
    tested = [(tau, r) for tau, r in zip(taus, ratios, strict=True) if r is not None]
    if not tested:
        return Verdict("not tested", RATE_RULE, "no tau has 2 runs with both rates")
    text = "; ".join(f"tau {tau:g}: {r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]" for tau, r in tested)
    low, high = RATE_BAND
    if any(r[2] < low or r[1] > high for _, r in tested):
        return Verdict("disagrees", RATE_RULE, text)
    if len(tested) == len(taus) and all(low <= r[1] and r[2] <= high for _, r in tested):
        return Verdict("agrees", RATE_RULE, text)
    return Verdict("inconclusive", RATE_RULE, text)


def _fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}g}"


def tail_rate_claims(name, study):
    """The claims-table row of a :class:`TailRateStudy`."""
    per_tau = ", ".join(
        f"tau {tau:g}: ratio {_fmt(r[0] if r else None)} ({both} runs with both), "
        f"{_fmt(m[0] if m else None)} iterations per decade ({seen} runs; predicted {_fmt(p)})"
        for tau, r, m, p, seen, both in zip(
            study.taus, study.rate_ratio, study.per_decade_measured,
            study.per_decade_predicted, study.n_measured, study.n_both, strict=True)
    )  # fmt: skip
    st = study.settings
    return [claims_row(
        claim=CLAIM, experiment=name,
        statistic=f"measured / predicted log tail rate (fopa.local_rate) per tau: {per_tau}",
        verdict=study.verdict, n=f"{st['n_runs']} instances, paired across tau",
        settings=(f"{st['loss']} loss, step 1/beta, d={st['d']}, m={st['m']}, "
                  f"eps/||x||={st['ratio']:g}, tau in {json_ready(list(study.taus))}"),
    )]  # fmt: skip


def tail_rate_figure(study):
    """Iterations per decade of the residual against tau: measured (median and 95 %
    interval) and predicted by the local rate (median)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    taus = np.array(study.taus)
    shown = [k for k, v in enumerate(study.per_decade_measured) if v is not None]
    if shown:
        med = np.array([study.per_decade_measured[k][0] for k in shown])
        low = np.array([study.per_decade_measured[k][1] for k in shown])
        high = np.array([study.per_decade_measured[k][2] for k in shown])
        ax.errorbar(taus[shown], med, yerr=[med - low, high - med], marker="o", capsize=3,
                    label="measured (median, 95 % interval)")  # fmt: skip
    pred = [k for k, v in enumerate(study.per_decade_predicted) if v is not None]
    if pred:
        ax.plot(taus[pred], [study.per_decade_predicted[k] for k in pred], "s--",
                fillstyle="none", label="predicted by fopa.local_rate (median)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(taus)
    ax.set_xticklabels([f"{t:g}" for t in taus])
    ax.minorticks_off()
    st = study.settings
    ax.set(xlabel="input scale tau",
           ylabel=f"iterations per decade of the residual (n={st['n_runs']})")  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{st['loss']} loss, step 1/beta, d={st['d']}, m={st['m']}, "
                 f"eps = {st['ratio']:g} ||x||: the tail rate per scale", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return fig
