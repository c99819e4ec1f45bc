"""fopa.stats on synthetic data with known answers, and against scipy's own estimators."""

import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

from fopa.stats import (
    VERDICTS,
    Interval,
    Verdict,
    bootstrap_interval,
    censored_times,
    growth_fit,
    kaplan_meier,
    km_quantile,
    proportion_interval,
    sign_verdict,
)

# --- Kaplan-Meier ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The confidence interval is undefined")
@settings(max_examples=60, deadline=None)
@given(
    n=hs.integers(2, 60),
    share_censored=hs.floats(0.0, 0.8),
    seed=hs.integers(0, 2**32 - 1),
    scale=hs.sampled_from([1e-3, 1.0, 1e3]),
)
def test_kaplan_meier_equals_scipy_ecdf(n, share_censored, seed, scale):
    gen = np.random.default_rng(seed)
    t = np.round(gen.exponential(10.0, n)) * scale  # ties on purpose
    obs = gen.random(n) >= share_censored
    if not obs.any():
        obs[0] = True
    km = kaplan_meier(t, obs)
    ref = st.ecdf(st.CensoredData(uncensored=t[obs], right=t[~obs])).sf
    np.testing.assert_allclose(km.survival, ref.evaluate(km.times), rtol=0, atol=1e-14)
    alive = km.survival > 0
    band = ref.confidence_interval(method="log-log")
    # scipy leaves the band undefined (NaN) where S = 0 or S = 1
    for mine, theirs in ((km.low, band.low), (km.high, band.high)):
        theirs = theirs.evaluate(km.times)
        ok = alive & np.isfinite(theirs)
        np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-12, atol=1e-14)
    assert np.all(km.low <= km.survival + 1e-15) and np.all(km.survival <= km.high + 1e-15)
    assert km.n == n and km.n_observed + km.n_censored == n


def test_kaplan_meier_without_censoring_is_the_empirical_survival():
    t = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    km = kaplan_meier(t, np.ones(8, bool))
    for u in (0.0, 1.0, 2.5, 6.0, 9.0):
        assert km.survival_at(u) == pytest.approx(np.mean(t > u), abs=1e-15)
    # the median min{t: S(t) <= 1/2} is the n/2-th order statistic
    assert km.median.estimate == np.sort(t)[3]
    assert km_quantile(t, np.ones(8, bool)) == km.median.estimate
    with pytest.raises(ValueError, match="beyond the follow-up"):
        km.survival_at(10.0)


def test_median_not_reached_when_most_runs_are_censored():
    times, observed = censored_times(np.array([5, 7, -1, -1, -1, -1, 9]), budget=100)
    assert times.tolist() == [5, 7, 100, 100, 100, 100, 9] and observed.sum() == 3
    km = kaplan_meier(times, observed)
    assert km.median.estimate == math.inf and km.median.high == math.inf
    assert km.quantile(0.25).estimate == 7.0
    share = km.share_observed()
    ref = st.binomtest(3, 7).proportion_ci(confidence_level=0.95, method="exact")
    assert (share.low, share.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert km.to_dict()["quantiles"]["0.5"]["estimate"] == "inf"


def test_median_interval_covers_the_true_median():
    # exponential times with mean 10 (median 10 ln 2), independent censoring
    gen = np.random.default_rng(5)
    truth, hits, reps = 10 * math.log(2), 0, 300
    for _ in range(reps):
        event = gen.exponential(10.0, 60)
        censor = gen.exponential(40.0, 60)
        km = kaplan_meier(np.minimum(event, censor), event <= censor)
        hits += km.median.contains(truth)
    assert 0.90 <= hits / reps <= 0.99  # nominal 0.95; 300 reps: +-0.025 standard error x 2


def test_kaplan_meier_errors():
    with pytest.raises(ValueError, match="times must be finite"):
        kaplan_meier([1.0, -1.0], [True, True])
    with pytest.raises(ValueError, match="observed must have the shape"):
        kaplan_meier([1.0, 2.0], [True])
    with pytest.raises(TypeError, match="observed must hold booleans"):
        kaplan_meier([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        kaplan_meier([], [])
    with pytest.raises(ValueError, match="p must be in"):
        kaplan_meier([1.0, 2.0], [True, True]).quantile(1.0)


# --- bootstrap ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_matches_scipy_within_monte_carlo_error(method):
    x = np.random.default_rng(1).lognormal(0.0, 1.0, 60)  # skewed: BCa differs
    mine = bootstrap_interval(np.mean, x, n_boot=20_000, method=method, rng=0)
    ref = st.bootstrap(
        (x,), np.mean, n_resamples=20_000, method="BCa" if method == "bca" else method,
        random_state=1,
    ).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert abs(mine.low - ref.low) < 0.05 * width and abs(mine.high - ref.high) < 0.05 * width
    assert mine.estimate == pytest.approx(np.mean(x)) and mine.n_samples == 60


def test_bootstrap_interval_coverage_of_a_mean():
    gen = np.random.default_rng(2)
    hits = sum(
        bootstrap_interval(np.mean, gen.standard_normal(40), n_boot=400, rng=gen).contains(0.0)
        for _ in range(150)
    )
    assert 0.86 <= hits / 150 <= 0.99  # the percentile interval undercovers a little at n = 40


def test_paired_resampling_uses_the_pairing():
    gen = np.random.default_rng(3)
    base = gen.standard_normal(50) * 10  # a large instance effect shared by both arms
    a, b = base + gen.standard_normal(50) * 0.1, base + 0.5 + gen.standard_normal(50) * 0.1

    def diff(u, v):
        return np.mean(v) - np.mean(u)

    paired = bootstrap_interval(diff, (a, b), paired=True, rng=0)
    unpaired = bootstrap_interval(diff, (a, b), rng=0)
    assert paired.low > 0  # the shift of 0.5 is seen through the pairing
    assert unpaired.low < 0 < unpaired.high  # and drowned without it
    with pytest.raises(ValueError, match="same number of units"):
        bootstrap_interval(diff, (a, b[:-1]), paired=True)


def test_cluster_resampling_widens_for_correlated_rows():
    gen = np.random.default_rng(4)
    effects = gen.standard_normal(12) * 3.0
    labels = np.repeat(np.arange(12), 20)  # 12 networks, 20 rows each
    rows = effects[labels] + gen.standard_normal(labels.size) * 0.1
    naive = bootstrap_interval(np.mean, rows, rng=0)
    cluster = bootstrap_interval(np.mean, rows, cluster=labels, rng=0)
    assert cluster.n_samples == 12 and naive.n_samples == 240
    assert (cluster.high - cluster.low) > 3 * (naive.high - naive.low)
    # the rows of one cluster travel together into every group
    second = rows * 2
    both = bootstrap_interval(lambda u, v: np.mean(v) - 2 * np.mean(u), (rows, second),
                              cluster=labels, paired=True, rng=0)  # fmt: skip
    assert both.low == pytest.approx(0.0, abs=1e-12) and both.high == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="cluster labels of group 0"):
        bootstrap_interval(np.mean, rows, cluster=labels[:-1])


def test_bootstrap_keeps_infinite_replicates_and_refuses_nan():
    times = np.array([3.0, 5.0, 100.0, 100.0, 100.0, 4.0, 100.0])
    observed = times < 100

    def median(arr):
        return km_quantile(arr[:, 0], arr[:, 1] > 0)

    out = bootstrap_interval(median, np.c_[times, observed], rng=0)
    assert out.estimate == math.inf and out.high == math.inf and out.n_nonfinite > 0
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_interval(lambda x: math.nan, np.ones(5))
    with pytest.raises(ValueError, match="BCa needs a finite estimate"):
        bootstrap_interval(median, np.c_[times, observed], method="bca")
    with pytest.raises(ValueError, match="at least 2 units"):
        bootstrap_interval(np.mean, [1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        bootstrap_interval(np.mean, [1.0, 2.0], method="normal")


def test_bootstrap_same_seed_same_bits():
    x = np.random.default_rng(0).standard_normal(30)
    assert bootstrap_interval(np.median, x, rng=7) == bootstrap_interval(np.median, x, rng=7)


def test_proportion_interval_is_scipy_exact():
    for k, n in ((0, 10), (3, 10), (10, 10), (97, 100)):
        mine = proportion_interval(k, n)
        ref = st.binomtest(k, n).proportion_ci(method="exact")
        assert (mine.low, mine.high) == pytest.approx((ref.low, ref.high), rel=1e-10, abs=1e-15)
    with pytest.raises(ValueError, match="successes must be <= n"):
        proportion_interval(11, 10)


# --- growth ---------------------------------------------------------------------------

DS = np.array([8, 16, 32, 64, 128, 256])


def _counts(law, gen, n=30, noise=0.2):
    return [law(d) * np.exp(noise * gen.standard_normal(n)) for d in DS]


def test_power_law_counts_are_polynomial_with_the_right_exponent():
    gen = np.random.default_rng(10)
    fit = growth_fit(DS, _counts(lambda d: 3.0 * d**1.5, gen), rng=0)
    assert fit.model == "polynomial", fit.reason
    assert fit.exponent_interval[0] <= 1.5 <= fit.exponent_interval[1]
    assert fit.evidence["delta_aic"] > 0 and not fit.evidence["slopes_increase"]
    assert all(s["interval"][0] <= 1.5 <= s["interval"][1] for s in fit.local_slopes[1:])


def test_exponential_counts_are_not_polynomial():
    gen = np.random.default_rng(11)
    fit = growth_fit(DS, _counts(lambda d: 2.0 * np.exp(d / 16), gen), rng=0)
    assert fit.model == "exponential", fit.reason
    assert fit.rate_interval[0] <= 1 / 16 <= fit.rate_interval[1]
    assert fit.evidence["slopes_increase"]


def test_flat_noisy_counts_over_a_narrow_range_are_inconclusive():
    gen = np.random.default_rng(12)
    sizes = [10, 12, 14, 16]
    fit = growth_fit(sizes, [50 * np.exp(0.3 * gen.standard_normal(20)) for _ in sizes], rng=0)
    assert fit.model == "inconclusive" and "factor 1.6" in fit.reason
    # flat over a wide range: neither model is preferred either
    flat = growth_fit(DS, _counts(lambda d: 50.0, gen, noise=0.3), rng=0)
    assert flat.model == "inconclusive"
    assert flat.exponent_interval[0] < 0 < flat.exponent_interval[1]


def test_censored_counts_are_kept_not_dropped():
    gen = np.random.default_rng(13)
    counts = _counts(lambda d: 3.0 * d**1.5, gen, n=60)
    budget = np.quantile(counts[-1], 0.8)  # 20 % of the largest size do not finish
    censored = [c > budget for c in counts]
    clipped = [np.minimum(c, budget) for c in counts]
    fit = growth_fit(DS, clipped, censored=censored, rng=0)
    assert fit.model == "polynomial" and fit.n_censored[-1] > 0
    assert fit.exponent_interval[0] <= 1.5 <= fit.exponent_interval[1]
    # dropping the unfinished runs biases the largest median down
    dropped = growth_fit(DS, [c[~k] for c, k in zip(clipped, censored, strict=True)], rng=0)
    assert dropped.medians[-1] < fit.medians[-1]
    # a median not reached: nothing to fit
    low_budget = np.quantile(counts[-1], 0.4)
    fit = growth_fit(DS, [np.minimum(c, low_budget) for c in counts],
                     censored=[c > low_budget for c in counts], rng=0)  # fmt: skip
    assert fit.model == "inconclusive" and "not reached" in fit.reason


def test_a_tail_quantile_is_fitted_when_asked():
    # 96 % of the runs follow 3 d^1.5, 4 % a slow mode 2 exp(d/16) + 3 d^1.5 (heavy tail):
    # the median grows polynomially, the 0.99 quantile exponentially
    gen = np.random.default_rng(14)
    n = 1000

    def mixture(d):
        slow = gen.random(n) < 0.04
        base = 3.0 * d**1.5 * np.exp(0.2 * gen.standard_normal(n))
        return np.where(slow, base + 2.0 * np.exp(d / 16) * np.exp(0.2 * gen.standard_normal(n)),
                        base)  # fmt: skip

    samples = [mixture(d) for d in DS]
    median = growth_fit(DS, samples, n_boot=200, rng=0)
    tail = growth_fit(DS, samples, quantile=0.99, n_boot=200, rng=0)
    assert median.model == "polynomial" and median.quantile == 0.5, median.reason
    assert median.quantiles == median.medians
    assert median.exponent_interval[0] <= 1.5 <= median.exponent_interval[1]
    assert tail.model == "exponential" and tail.quantile == 0.99, tail.reason
    assert tail.medians == median.medians
    for d, got, s in zip(DS, tail.quantiles, samples, strict=True):
        assert got == np.sort(s)[int(np.ceil(0.99 * n)) - 1], d  # the plain order statistic
    # a polynomial tail: counts drawn from 3 d^1.5 lognormal, every quantile grows like d^1.5
    poly = growth_fit(DS, _counts(lambda d: 3.0 * d**1.5, gen, n=500), quantile=0.99,
                      n_boot=200, rng=0)  # fmt: skip
    assert poly.model == "polynomial", poly.reason
    assert poly.exponent_interval[0] <= 1.5 <= poly.exponent_interval[1]
    # a quantile beyond the runs that finished is not reached: nothing to fit
    counts = _counts(lambda d: 3.0 * d**1.5, gen, n=200)
    budget = np.quantile(counts[-1], 0.95)
    fit = growth_fit(DS, [np.minimum(c, budget) for c in counts],
                     censored=[c > budget for c in counts], quantile=0.99, rng=0)  # fmt: skip
    assert fit.model == "inconclusive" and "0.99 quantile count is not reached" in fit.reason
    with pytest.raises(ValueError, match="quantile must be in"):
        growth_fit(DS, counts, quantile=1.0)


def test_growth_fit_errors():
    with pytest.raises(ValueError, match="strictly increasing"):
        growth_fit([4, 2, 8], [[1, 2]] * 3)
    with pytest.raises(ValueError, match="one array per size"):
        growth_fit([2, 4, 8], [[1, 2]] * 2)
    with pytest.raises(ValueError, match="censored\\[0\\] must be a boolean"):
        growth_fit([2, 4, 8], [[1, 2]] * 3, censored=[[1, 0]] * 3)


# --- verdicts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "expected", "outcome"),
    [
        (0.1, 0.5, "positive", "agrees"),
        (-0.5, -0.1, "positive", "disagrees"),
        (-0.1, 0.5, "positive", "inconclusive"),
        (-0.5, -0.1, "negative", "agrees"),
        (0.1, 0.5, "negative", "disagrees"),
    ],
)
def test_sign_verdict_gives_every_outcome(low, high, expected, outcome):
    interval = Interval((low + high) / 2, low, high, 0.95, "percentile", 10)
    verdict = sign_verdict(interval, expected=expected, what="slope")
    assert verdict.outcome == outcome and "slope" in verdict.reason
    assert sign_verdict(None, expected=expected, what="slope").outcome == "not tested"


def test_verdict_outcomes_are_closed():
    assert VERDICTS == ("agrees", "disagrees", "inconclusive", "not tested")
    with pytest.raises(ValueError, match="outcome must be one of"):
        Verdict("yes", "rule", "reason")


def test_every_run_at_one_time_gives_a_finite_median_interval():
    km = kaplan_meier(np.full(10, 4.0), np.ones(10, bool))
    assert km.survival.tolist() == [0.0]
    upper = st.binomtest(0, 10).proportion_ci(method="exact").high
    assert km.high[-1] == pytest.approx(upper, rel=1e-12) and km.low[-1] == 0.0
    median = km.median
    assert (median.estimate, median.low, median.high) == (4.0, 4.0, 4.0)


def test_a_sample_with_every_run_censored_has_no_event_and_no_median():
    km = kaplan_meier(np.full(5, 100.0), np.zeros(5, bool))
    assert km.times.size == 0 and km.n_censored == 5 and km.survival_at(50.0) == 1.0
    assert km.median.estimate == math.inf and km.share_observed().estimate == 0.0
    from fopa.experiments.verdicts import censored_cell

    cell = censored_cell(np.full(4, -1), 100)
    assert cell["median"] == math.inf and cell["max"] == -1.0 and cell["share"] == 0.0


@settings(max_examples=80, deadline=None)
@given(
    n=hs.integers(2, 25),
    k=hs.integers(2, 5),
    mode=hs.sampled_from(["none", "all", "some", "ties"]),
    seed=hs.integers(0, 2**32 - 1),
)
def test_stats_never_crash_nor_return_nan_on_any_censoring_pattern(n, k, mode, seed):
    gen = np.random.default_rng(seed)
    sizes = np.cumprod(np.full(k, 2.0)) * 4
    samples, censored = [], []
    for _ in range(k):
        t = np.round(gen.exponential(50.0, n)) if mode != "ties" else np.full(n, 7.0)
        c = {"none": np.zeros(n, bool), "all": np.ones(n, bool)}.get(mode, gen.random(n) < 0.4)
        samples.append(t)
        censored.append(c)
        km = kaplan_meier(t, ~c)
        for p in (0.1, 0.5, 0.9):
            q = km.quantile(p)
            assert not any(math.isnan(v) for v in (q.estimate, q.low, q.high))
            assert q.low <= q.estimate <= q.high
        assert np.all(np.isfinite(km.low)) and np.all(km.low <= km.high + 1e-15)
    fit = growth_fit(sizes, samples, censored=censored, n_boot=50, rng=seed)
    assert fit.model in ("polynomial", "exponential", "inconclusive") and fit.reason
    if mode == "all":
        assert fit.model == "inconclusive" and "not reached" in fit.reason


# joint fits over a grid of two sizes


def _grid_counts(exponent_d, exponent_m, interaction, runs=40, noise=0.3, seed=0):
    from fopa.stats._joint import _design

    ds = np.array([8.0, 16, 32, 64, 128])
    ms = np.array([16.0, 64, 256, 1024])
    basis, _, _ = _design(ds, ms)
    log_mean = basis @ np.array([5.0, exponent_d, exponent_m, interaction])
    gen = np.random.default_rng(seed)
    noise = gen.normal(0.0, noise, (ds.size, ms.size, runs))
    times = np.round(np.exp(log_mean.reshape(ds.size, ms.size, 1) + noise))
    return ds, ms, times


@pytest.mark.parametrize("b_d, b_m, b_dm", [(1.5, 0.5, 0.0), (0.3, 1.0, 0.2), (2.0, 0.0, -0.3)])
def test_joint_power_fit_recovers_exponents_and_interaction(b_d, b_m, b_dm):
    from fopa.stats import joint_power_fit

    ds, ms, times = _grid_counts(b_d, b_m, b_dm)
    fit = joint_power_fit(ds, ms, times, np.ones(times.shape, bool), rng=1)
    assert fit.fitted and fit.share_failed == 0.0
    for term, truth in (("log_d", b_d), ("log_m", b_m), ("log_d_log_m", b_dm)):
        low, high = fit.intervals[term]
        assert low <= truth <= high, (term, truth, fit.intervals[term])
        assert high - low < 0.1
    # the exponent along d at the smallest and largest m follows the interaction
    v = np.log(ms) - np.log(ms).mean()
    assert fit.exponent_d_range == pytest.approx(
        (fit.coefficients["log_d"] + fit.coefficients["log_d_log_m"] * v[0],
         fit.coefficients["log_d"] + fit.coefficients["log_d_log_m"] * v[-1]))  # fmt: skip
    again = joint_power_fit(ds, ms, times, np.ones(times.shape, bool), rng=1)
    assert again.to_dict() == fit.to_dict()  # same seed, same numbers


def test_joint_power_fit_keeps_censored_runs_and_says_when_it_cannot_fit():
    from fopa.stats import joint_power_fit

    ds, ms, times = _grid_counts(1.0, 0.5, 0.0)
    budget = np.quantile(times[-1, -1], 0.8)  # a fifth of the largest cell censored
    observed = times <= budget
    capped = np.minimum(times, budget)
    fit = joint_power_fit(ds, ms, capped, observed, rng=0)
    # censoring only the top of the largest cells: Kaplan-Meier medians are unchanged there
    assert fit.fitted and fit.intervals["log_d"][0] <= 1.0 <= fit.intervals["log_d"][1]
    observed[-1, -1] = False  # one cell where no run finished: its median is not reached
    none = joint_power_fit(ds, ms, capped, observed, rng=0)
    assert not none.fitted and "not reached" in none.reason
    assert math.isnan(none.coefficients["log_d"]) and none.medians[-1][-1] == math.inf
    assert none.to_dict()["medians"][-1][-1] == "inf"


def test_joint_power_fit_errors():
    from fopa.stats import joint_power_fit

    ds, ms, times = _grid_counts(1.0, 0.5, 0.0, runs=3)
    ok = np.ones(times.shape, bool)
    with pytest.raises(ValueError, match="times must have shape"):
        joint_power_fit(ds, ms, times[:, :2], ok[:, :2])
    with pytest.raises(ValueError, match="ds must be increasing"):
        joint_power_fit(ds[::-1], ms, times, ok)
    with pytest.raises(ValueError, match="observed must have the shape"):
        joint_power_fit(ds, ms, times, ok[..., :2])
    with pytest.raises(ValueError, match="finite"):
        joint_power_fit(ds, ms, np.where(ok, np.nan, 0), ok)
    single = joint_power_fit(ds[:1], ms, times[:1], ok[:1])
    assert not single.fitted and "2 sizes" in single.reason


@settings(max_examples=60, deadline=None)
@given(
    n=hs.integers(1, 40),
    n_boot=hs.integers(1, 30),
    distinct=hs.integers(1, 8),
    censor_share=hs.sampled_from([0.0, 0.3, 1.0]),
    p=hs.sampled_from([0.1, 0.5, 0.9, 0.99]),
    seed=hs.integers(0, 2**32 - 1),
)
def test_resampled_quantiles_are_km_quantile_of_each_resample_to_the_bit(
    n, n_boot, distinct, censor_share, p, seed
):
    # growth_fit's bootstrap reads every resample's Kaplan-Meier quantile at once; each
    # must be the number km_quantile gives for that resample alone (ties, censoring,
    # quantiles not reached included)
    from fopa.stats._growth import _resampled_quantiles
    from fopa.stats._survival import km_quantile

    gen = np.random.default_rng(seed)
    t = gen.integers(0, distinct, n).astype(float) * 7.0
    obs = gen.random(n) >= censor_share
    index = gen.integers(0, n, (n_boot, n))
    got = _resampled_quantiles(t, obs, index, p)
    want = np.array([km_quantile(t[i], obs[i], p) for i in index])
    np.testing.assert_array_equal(got, want)
