"""Every verdict rule of the reproduction produces every outcome on synthetic data."""

import numpy as np
import pytest

from fopa.experiments.verdicts import (
    ITERATION_RULE,
    TAIL_RULE,
    censored_cell,
    iteration_verdict,
    regularity_verdict,
    speed_verdict,
    tail_verdict,
    training_verdict,
)

DS, MS, BUDGET = (8, 16, 32, 64, 128, 256, 512), (16, 32, 64, 128, 256), 10**7


def _grid(law, gen, n=30, noise=0.15):
    first = np.empty((len(DS), len(MS), n), np.int64)
    for i, d in enumerate(DS):
        for j, m in enumerate(MS):
            first[i, j] = np.round(law(d, m) * np.exp(noise * gen.standard_normal(n)))
    return first


def test_iteration_rule_agrees_on_power_law_counts():
    gen = np.random.default_rng(0)
    first = _grid(lambda d, m: 3.0 * d**1.2 * m**0.5, gen)
    verdict, fits = iteration_verdict(DS, MS, first, BUDGET, rng=1)
    assert verdict.outcome == "agrees", verdict.reason
    assert verdict.rule == ITERATION_RULE
    assert len(fits["d"]) == len(MS) and len(fits["m"]) == len(DS)
    assert all(f.exponent_interval[0] <= 1.2 <= f.exponent_interval[1] for f in fits["d"])


def test_iteration_rule_disagrees_on_exponential_counts():
    gen = np.random.default_rng(1)
    first = _grid(lambda d, m: 2.0 * np.exp(d / 64) * m**0.3, gen)
    verdict, fits = iteration_verdict(DS, MS, first, BUDGET, rng=1)
    assert verdict.outcome == "disagrees", verdict.reason
    assert all(f.model == "exponential" for f in fits["d"])


def test_iteration_rule_disagrees_when_most_runs_never_certify():
    gen = np.random.default_rng(2)
    first = _grid(lambda d, m: 3.0 * d**1.2 * m**0.5, gen)
    first[-1, -1, :25] = -1  # 25 of 30 runs censored in one cell
    verdict, _ = iteration_verdict(DS, MS, first, BUDGET, rng=1)
    assert verdict.outcome == "disagrees", verdict.reason
    assert "0.17 to 1.00" in verdict.reason


def test_iteration_rule_is_inconclusive_on_flat_counts_and_untested_on_a_small_grid():
    gen = np.random.default_rng(3)
    first = _grid(lambda d, m: 200.0, gen, noise=0.3)
    verdict, _ = iteration_verdict(DS, MS, first, BUDGET, rng=1)
    assert verdict.outcome == "inconclusive", verdict.reason
    small = np.full((2, 2, 5), 100, np.int64)
    verdict, fits = iteration_verdict((3, 6), (6, 12), small, BUDGET, rng=1)
    assert verdict.outcome == "not tested" and fits["d"] == [] and fits["m"] == []


def _mixture_grid(slow_law, gen, n=600, share_slow=0.04, ds=(8, 16, 32, 64, 128, 256), ms=(16, 64)):
    """Counts whose bulk grows like 3 d^1.2 m^0.3 and whose slowest 4 % grow by ``slow_law``:
    the median is polynomial whatever the tail does."""
    first = np.empty((len(ds), len(ms), n), np.int64)
    for i, d in enumerate(ds):
        for j, m in enumerate(ms):
            bulk = 3.0 * d**1.2 * m**0.3 * np.exp(0.15 * gen.standard_normal(n))
            slow = gen.random(n) < share_slow
            tail = slow_law(d, m) * np.exp(0.15 * gen.standard_normal(n))
            first[i, j] = np.round(np.where(slow, bulk + tail, bulk))
    return ds, ms, first


@pytest.mark.parametrize(
    ("slow_law", "outcome"),
    [
        (lambda d, m: 20.0 * d**1.5, "agrees"),
        (lambda d, m: 5.0 * np.exp(d / 24), "disagrees"),
    ],
)
def test_tail_rule_decides_on_the_p99_not_on_the_median(slow_law, outcome):
    ds, ms, first = _mixture_grid(slow_law, np.random.default_rng(5))
    verdict, fits = tail_verdict(ds, ms, first, BUDGET, rng=1, n_boot=200)
    assert verdict.outcome == outcome, verdict.reason
    assert verdict.rule == TAIL_RULE and len(fits["d"]) == len(ms) and fits["m"] == []
    assert all(f.quantile == 0.99 for f in fits["d"])
    # the median rule on the same counts calls them polynomial either way
    median, median_fits = iteration_verdict(ds, ms, first, BUDGET, rng=1, n_boot=200)
    assert all(f.model == "polynomial" for f in median_fits["d"]), median.reason


def test_tail_rule_is_inconclusive_beyond_the_budget_and_untested_on_a_small_grid():
    ds, ms, first = _mixture_grid(lambda d, m: 20.0 * d**1.5, np.random.default_rng(6))
    first[-1, 0, :12] = -1  # 2 % of one cell censored: its p99 is beyond the budget
    verdict, fits = tail_verdict(ds, ms, first, BUDGET, rng=1, n_boot=200)
    assert verdict.outcome == "inconclusive", verdict.reason
    assert "beyond the budget in 1 of 12 cells" in verdict.reason
    assert fits["d"][0].model == "inconclusive" and "not reached" in fits["d"][0].reason
    small = np.full((2, 1, 50), 100, np.int64)
    verdict, fits = tail_verdict((3, 6), (6,), small, BUDGET, rng=1)
    assert verdict.outcome == "not tested" and fits == {"d": [], "m": []}


def test_censored_cell_keeps_unfinished_runs():
    cell = censored_cell(np.array([10, 20, -1, -1, 30]), 100)
    assert cell["n"] == 5 and cell["n_censored"] == 2 and cell["share"] == 0.6
    assert cell["median"] == 30.0 and cell["max"] == 30.0  # dropping them would give 20
    assert cell["p90"] == np.inf and cell["share_low"] < 0.6 < cell["share_high"]


TAUS = (0.01, 0.1, 1.0)


def _speed(law, gen, n=20):
    base = np.exp(0.3 * gen.standard_normal(n))  # a per-instance effect shared across tau
    return np.array([np.round(law(t) * base * np.exp(0.1 * gen.standard_normal(n))) for t in TAUS],
                    dtype=np.int64)  # fmt: skip


@pytest.mark.parametrize(
    ("law", "outcome"),
    [
        (lambda t: 50.0 * t**0.4, "agrees"),
        (lambda t: 50.0 * t**-0.4, "disagrees"),
        (lambda t: 50.0, "inconclusive"),
    ],
)
def test_speed_rule_gives_each_outcome(law, outcome):
    gen = np.random.default_rng(4)
    verdict, interval = speed_verdict(TAUS, _speed(law, gen), 20_000, rng=1)
    assert verdict.outcome == outcome, verdict.reason
    assert interval.n_samples == 20  # instances, resampled in pairs across tau


def test_speed_rule_not_tested_and_censoring():
    gen = np.random.default_rng(5)
    first = _speed(lambda t: 50.0 * t**0.4, gen)
    assert speed_verdict((0.1,), first[:1], 20_000)[0].outcome == "not tested"
    assert speed_verdict(TAUS, np.full((3, 20), -1), 20_000)[0].outcome == "not tested"
    # the largest scale never certifies within the budget: still "fewer at small tau"
    first[-1] = -1
    verdict, _ = speed_verdict(TAUS, first, 1000, rng=1)
    assert verdict.outcome == "agrees" and "not reached at tau = 1 " in verdict.reason


def test_capped_medians_only_bound_the_slope_from_one_side():
    gen = np.random.default_rng(8)
    # more iterations at small tau, the smallest scale censored: capping there can only
    # raise the slope, so "disagrees" stands
    first = _speed(lambda t: 50.0 * t**-0.4, gen)
    first[0] = -1
    verdict, _ = speed_verdict(TAUS, first, 150, rng=1)
    assert verdict.outcome == "disagrees", verdict.reason
    # four scales, a low median, a censored one below the mean log tau, then rising
    # medians under the budget: the capped slope is positive, but the censored scale's
    # median may be any size beyond the budget, so the sign is not decided
    taus = (0.01, 0.1, 1.0, 10.0)
    rows = [np.full(20, 2), np.full(20, -1), np.full(20, 60), np.full(20, 90)]
    first = np.array([r + gen.integers(0, 3, 20) * (r > 0) for r in rows])
    verdict, interval = speed_verdict(taus, first, 100, rng=1)
    assert interval.low > 0  # what the rule said before it bounded capped medians
    assert verdict.outcome == "inconclusive", verdict.reason
    assert "the capped slope alone would read agrees" in verdict.reason
    assert "not reached at tau = 0.1 " in verdict.reason
    # censored at both ends of the range: neither sign can be decided
    rows = [np.full(20, -1), np.full(20, 5), np.full(20, 50), np.full(20, -1)]
    verdict, _ = speed_verdict(taus, np.array(rows), 100, rng=1)
    assert verdict.outcome == "inconclusive", verdict.reason


@pytest.mark.parametrize(
    ("means", "outcome"),
    [
        ((1.0, 2.0, 4.0), "agrees"),
        ((4.0, 2.0, 1.0), "disagrees"),
        ((1.0, 1.0, 1.0), "inconclusive"),
    ],
)
def test_regularity_rule_gives_each_outcome(means, outcome):
    gen = np.random.default_rng(6)
    counts = np.array([1 + gen.poisson(mu - 1, 30) if mu > 1 else np.ones(30, int) for mu in means])
    verdict, _ = regularity_verdict(TAUS, counts, rng=1)
    assert verdict.outcome == outcome, verdict.reason


def test_regularity_rule_not_tested_and_left_out_instances():
    counts = np.ones((3, 10), np.int64)
    counts[1] = 0
    assert regularity_verdict(TAUS, counts)[0].outcome == "not tested"
    counts[1, :5] = 1
    verdict, _ = regularity_verdict(TAUS, counts, rng=1)
    assert "5 of 30" in verdict.reason


def test_training_rule_says_why_it_is_not_tested():
    verdict = training_verdict()
    assert verdict.outcome == "not tested" and "lr tau^2" in verdict.rule


def test_one_exponential_line_among_polynomial_ones_is_not_a_disagreement():
    gen = np.random.default_rng(7)
    first = _grid(lambda d, m: 3.0 * d**1.2 * m**0.5, gen)
    n = first.shape[-1]
    # the line at the largest m grows exponentially in d, between the same end values
    m, low, high = MS[-1], DS[0], DS[-1]
    rate = np.log((high / low) ** 1.2) / (high - low)
    for i, d in enumerate(DS):
        level = 3.0 * low**1.2 * m**0.5 * np.exp(rate * (d - low))
        first[i, -1] = np.round(level * np.exp(0.15 * gen.standard_normal(n)))
    verdict, fits = iteration_verdict(DS, MS, first, BUDGET, rng=1)
    assert fits["d"][-1].model == "exponential"
    assert verdict.outcome == "inconclusive", verdict.reason


@pytest.mark.parametrize(
    ("law", "outcome"),
    [
        (lambda t: 50.0 * t**0.4, "agrees"),
        (lambda t: 50.0 * t**-0.4, "disagrees"),
        (lambda t: 50.0, "inconclusive"),
    ],
)
def test_protocol_rule_gives_each_outcome(law, outcome):
    from fopa.experiments.verdicts import PROTOCOL_RULE, protocol_verdict

    gen = np.random.default_rng(6)
    verdict, _ = protocol_verdict("P2", TAUS, _speed(law, gen), 20_000, rng=1)
    assert verdict.outcome == outcome, verdict.reason
    assert verdict.rule == PROTOCOL_RULE


def test_protocol_rule_censoring_and_p1():
    from fopa.experiments.verdicts import P1_CONFOUND, protocol_verdict

    gen = np.random.default_rng(7)
    first = _speed(lambda t: 50.0 * t**0.4, gen)
    verdict, _ = protocol_verdict("P1", TAUS, first, 20_000, rng=1)
    assert verdict.outcome == "agrees" and P1_CONFOUND in verdict.reason
    first[-1] = -1  # censored at the largest scale: the capped slope is a lower bound
    verdict, _ = protocol_verdict("P3", TAUS, first, 1000, rng=1)
    assert verdict.outcome == "agrees" and "not reached at tau = 1 " in verdict.reason
    first[0] = -1  # and at the smallest: no bound either way
    verdict, _ = protocol_verdict("P3", TAUS, first, 1000, rng=1)
    assert verdict.outcome == "inconclusive" and "lower bound [-inf" in verdict.reason
    assert protocol_verdict("P4", TAUS, np.full((3, 20), -1), 100)[0].outcome == "not tested"


def test_a_median_at_the_budget_counts_as_capped_and_the_reason_says_so():
    # every seed reaches the target exactly at the last epoch at the smallest tau, never
    # elsewhere: the Kaplan-Meier median there is the budget, which the rule cannot tell
    # from a capped one (the reason must not claim that nothing was reached)
    from fopa.experiments.verdicts import protocol_verdict

    first = np.full((3, 10), -1)
    first[0] = 20
    verdict, interval = protocol_verdict("P2", TAUS, first, 20, rng=0)
    assert verdict.outcome == "not tested" and interval is None
    assert "no median below the budget" in verdict.reason
    assert "a median at the budget counts as capped" in verdict.rule
    first[0] = 19  # one epoch earlier: below the budget, so the rule can decide a side
    assert protocol_verdict("P2", TAUS, first, 20, rng=0)[0].outcome != "not tested"
