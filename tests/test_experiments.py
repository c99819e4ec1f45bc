"""The experiments in tiny configurations: content, not just existence."""

import json

import numpy as np
import pytest

import fopa
from fopa import experiments as E
from fopa.stats import censored_times, kaplan_meier


def test_polynomial_iterations_numbers_match_their_raw_data():
    r = E.polynomial_iterations(ds=(3, 6), ms=(6, 12), n_runs=3, rng=1)
    assert r.first_certified.shape == (2, 2, 3)
    for i in range(2):
        for j in range(2):
            runs = r.first_certified[i, j]
            ok = runs[runs >= 0]
            assert r.share_certified[i, j] == ok.size / 3
            # censored runs are kept: the Kaplan-Meier quantiles of all three runs
            km = kaplan_meier(*censored_times(runs, r.settings["max_iter"]))
            assert r.median[i, j] == km.median.estimate
            assert r.p90[i, j] == km.quantile(0.9).estimate
            if ok.size == 3:
                assert r.median[i, j] == np.sort(ok)[1] and r.max[i, j] == ok.max()
    # certified on the "auto" schedule: every iteration up to 100, then every ceil(t/100)
    assert r.settings["certify_every"] == "auto"
    assert r.all_within_bound
    assert np.all(r.first_stationary[r.first_stationary >= 0] <= r.bound[r.first_stationary >= 0])
    # two sizes per axis: too few to tell a power law from an exponential
    assert r.growth_d == () and r.growth_m == ()
    assert r.verdict["outcome"] == "not tested"
    back = json.loads(json.dumps(r.to_dict()))
    assert back["first_certified"] == r.first_certified.tolist()


def test_iteration_tails_runs_the_ascents_of_the_iteration_study():
    kw = dict(ds=(3, 6), ms=(6,), n_runs=12, rng=4)
    tails, grid = E.iteration_tails(**kw), E.polynomial_iterations(**kw)
    np.testing.assert_array_equal(tails.first_certified, grid.first_certified)
    assert tails.quantiles == (0.5, 0.9, 0.99) and tails.quantile.shape == (2, 1, 3)
    for i in range(2):
        km = kaplan_meier(*censored_times(tails.first_certified[i, 0], 20_000))
        for k, p in enumerate(tails.quantiles):
            q = km.quantile(p)
            assert (tails.quantile[i, 0, k], tails.quantile_low[i, 0, k],
                    tails.quantile_high[i, 0, k]) == (q.estimate, q.low, q.high)  # fmt: skip
        assert tails.share_certified[i, 0] == grid.share_certified[i, 0]
    assert tails.quantile[0, 0, 0] == grid.median[0, 0]
    assert tails.quantile[0, 0, 2] == grid.p99[0, 0]
    assert tails.verdict["outcome"] == "not tested"  # two sizes: no growth to fit
    back = json.loads(json.dumps(tails.to_dict()))
    assert back["first_certified"] == tails.first_certified.tolist()


def test_input_scale_speed_is_paired_and_reproducible():
    kw = dict(taus=(0.05, 0.5), d=4, m=8, n_runs=3, rng=2)
    a = E.input_scale_speed(**kw)
    b = E.input_scale_speed(**kw)
    np.testing.assert_array_equal(a.first_certified, b.first_certified)
    assert a.first_certified.shape == (len(E.POLICIES), 2, 3)
    # recompute one cell from scratch with the same instance
    gen = np.random.default_rng(2)
    net, x_hat, y = E.random_instance(4, 8, "tanh", gen)
    x = 0.5 * x_hat
    eps = 0.5 * np.linalg.norm(x)
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size="lipschitz", tol=1e-8, max_iter=20_000, certify_every="auto"
    )
    assert a.first_certified[2, 1, 0] == res.first_certified_iteration
    assert len(a.slope) == len(E.POLICIES)


def test_input_scale_regularity_counts_certified_maxima():
    r = E.input_scale_regularity(taus=(0.05, 1.0), d=3, m=6, n_runs=2, n_starts=8, rng=3)
    assert r.n_maxima.shape == (2, 2)
    assert np.all(r.n_maxima >= 0)
    assert np.all((r.best_basin > 0) == (r.n_maxima > 0))
    for t in range(2):  # instances without a certified maximum are left out of the mean
        certified = r.n_maxima[t][r.n_maxima[t] > 0]
        assert r.mean_maxima[t] == (certified.mean() if certified.size else 0.0)
    assert np.all((r.taylor_distance >= 0) == (r.n_maxima > 0))
    json.dumps(r.to_dict())


def test_logistic_loss_runs_through_the_same_experiments():
    r = E.input_scale_speed(taus=(0.1, 1.0), d=3, m=6, n_runs=2, loss="logistic", rng=4)
    assert r.settings["loss"] == "logistic" and r.first_certified.shape == (len(E.POLICIES), 2, 2)


def test_bad_study_inputs():
    with pytest.raises(ValueError, match="unknown policy"):
        E.input_scale_speed(policies=("adam",), n_runs=1)


def test_chao1_estimates_unseen_maxima_from_singletons():
    from fopa.experiments.regularity import chao1

    assert chao1([1, 1, 2, 5]) == 4 + 2**2 / (2 * 1)  # two singletons, one doubleton
    assert chao1([3, 4]) == 2.0  # no singleton: nothing unseen
    assert chao1([1, 1, 1]) == 3 + 3 * 2 / 2  # no doubleton: the bias-corrected form
    r = E.input_scale_regularity(taus=(0.05, 1.0), d=3, m=6, n_runs=2, n_starts=8, rng=3)
    assert np.all(r.chao1 >= r.n_maxima) and np.all((0 <= r.share_saddles) & (r.share_saddles <= 1))
    assert np.all(r.best_curvature[r.n_maxima > 0] < 0)


def test_measured_tail_rate_is_the_rate_local_rate_predicts():
    from fopa.experiments.tolerance import iterations_against_tolerance

    r = iterations_against_tolerance(d=6, m=20, n_runs=4, policies=("lipschitz",), rng=5)
    median, low, high = r.rate_ratio[0]
    assert 0.95 < median < 1.05 and low <= median <= high
    ok = r.predicted_rate[0] > 0
    assert ok.all()
    np.testing.assert_allclose(r.measured_rate[0], r.predicted_rate[0], rtol=0.02)
