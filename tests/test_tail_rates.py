"""The tail-rate study across input scales: its verdict rule says each outcome, and
its rates are those of the runs (recomputed by hand)."""

import math

import numpy as np
import pytest

import fopa
from fopa.experiments.common import random_instance
from fopa.experiments.tail_rates import (
    RATE_BAND,
    rate_verdict,
    tail_rate_claims,
    tail_rate_study,
    tail_rates_against_scale,
)


@pytest.mark.parametrize(
    "ratios, outcome",
    [
        ([(1.0, 0.99, 1.02), (1.01, 1.0, 1.03)], "agrees"),
        ([(1.0, 0.99, 1.02), (1.5, 1.3, 1.7)], "disagrees"),  # wholly above the band
        ([(1.0, 0.99, 1.02), (0.5, 0.4, 0.6)], "disagrees"),  # wholly below
        ([(1.0, 0.99, 1.02), (1.05, 0.95, 1.3)], "inconclusive"),  # straddles the edge
        ([(1.0, 0.99, 1.02), None], "inconclusive"),  # one scale not measured
        ([None, None], "not tested"),
    ],
)
def test_rate_verdict_gives_every_outcome(ratios, outcome):
    assert rate_verdict((0.1, 1.0), ratios).outcome == outcome
    assert RATE_BAND == (0.9, 1.1)


def test_the_study_holds_the_rates_of_its_runs():
    study = tail_rates_against_scale(taus=(0.03, 1.0), d=5, m=12, n_runs=4, rng=7)
    gen = np.random.default_rng(7)
    instances = [random_instance(5, 12, "tanh", gen) for _ in range(4)]
    for t, tau in enumerate((0.03, 1.0)):
        for r, (net, x_hat, y) in enumerate(instances):
            x = tau * x_hat
            eps = 0.5 * float(np.linalg.norm(x))
            res = fopa.projected_gradient_ascent(
                net, x, y, eps, step_size="lipschitz", tol=5e-11, max_iter=20_000,
                record_history=True,
            )  # fmt: skip
            residual = res.history.kkt_residual
            window = np.flatnonzero((residual >= 1e-10) & (residual <= 1e-4))
            if window.size < 2:
                assert study.measured_rate[t, r] == -1.0
                continue
            slope = np.polyfit(window.astype(float), np.log(residual[window]), 1)[0]
            assert study.measured_rate[t, r] == pytest.approx(math.exp(slope), rel=1e-12)
            cert = fopa.certify(net, x, y, res.delta, eps)
            if cert.kind == "strict_local_max":
                want = fopa.local_rate(cert, res.step_size)
                assert study.predicted_rate[t, r] == pytest.approx(want, rel=1e-12)
    # the local theory holds at these scales: measured and predicted rates agree
    assert study.verdict["outcome"] == "agrees", study.verdict
    row = tail_rate_claims("tail", study)[0]
    assert "tau 0.03: ratio" in row["statistic"] and row["verdict"] == "agrees"


def test_missing_rates_are_reported_not_dropped():
    measured = np.array([[0.5, 0.6, -1.0], [-1.0, -1.0, -1.0]])
    predicted = np.array([[0.5, 0.6, 0.7], [0.4, -1.0, -1.0]])
    settings = dict(n_runs=3, loss="quadratic", d=2, m=3, ratio=0.5)
    study = tail_rate_study((0.1, 1.0), measured, predicted, settings, rng=0)
    assert study.rate_ratio[0][0] == pytest.approx(1.0) and study.rate_ratio[1] is None
    assert study.per_decade_measured[1] is None
    assert study.per_decade_predicted[1] == pytest.approx(math.log(10) / -math.log(0.4))
    assert study.verdict["outcome"] == "inconclusive"
    assert "n/a" in tail_rate_claims("x", study)[0]["statistic"]
