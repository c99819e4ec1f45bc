"""The checkpoint study measures what it says, on the networks it says."""

import numpy as np
import pytest

import fopa
from fopa.adversarial import CertifiedPGA, NormalizedPGD, adversarial_training
from fopa.experiments.checkpoints import (
    ARMS,
    POLICIES,
    checkpoint_claims,
    checkpoint_figure,
    training_checkpoints,
)
from fopa.experiments.datasets import load_training_split

ARGS = dict(dataset="breast_cancer", taus=(0.3, 1.0), m=5, n_seeds=2, checkpoints=(0, 1, 3),
            pga_epochs=1, probe_points=3, probe_budget=200, landscape_points=2, n_starts=4,
            landscape_budget=500, batch_size=None, pga_budget=20)  # fmt: skip


@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
def test_the_checkpoints_are_measured_as_an_independent_rerun_measures_them(loss):
    r = training_checkpoints(5, **ARGS, loss=loss)
    A, T, S, K = len(ARMS), 2, 2, 3
    assert r.measured.shape == (A, T, S, K)
    # the PGD arm trains to the last checkpoint, the PGA arm to pga_epochs only
    assert (
        r.measured[0].all() and r.measured[1, :, :, :2].all() and not r.measured[1, :, :, 2].any()
    )
    assert np.all(r.first_certified[:, 1, :, :, 2] == -2) and np.all(r.n_maxima[1, :, :, 2] == -1)
    assert np.all(np.isnan(r.inner_converged[0])) and np.all(r.inner_iterations[0, :, :, :3] == 10)
    assert np.all((r.inner_converged[1, :, :, :1] >= 0) & (r.inner_converged[1, :, :, :1] <= 1))
    assert np.all(np.isnan(r.train_loss[1, :, :, 1:]))

    # rerun by hand: seed 1, tau = 1, each arm's initial network and last checkpoint
    Xtr, ytr, _, _ = load_training_split("breast_cancer")
    seeds = np.random.default_rng(5).integers(0, 2**63 - 1, size=3)
    probe = np.random.default_rng(int(seeds[-1])).choice(len(ytr), 3, False)
    d, tau, lr = Xtr.shape[1], 1.0, 0.5
    X, eps = tau * Xtr, 0.1 * tau * np.sqrt(d)
    net0 = fopa.TwoLayerNet.random(d, 5, activation="tanh", rng=int(seeds[1]))
    rates = dict(W=lr / tau**2, a=lr, b=lr, output_bias=lr)
    arms = ((NormalizedPGD(steps=10, step_factor=0.25), 3),
            (CertifiedPGA(step_size="backtracking", max_iter=20, certify=False), 1))  # fmt: skip
    for a, (attack, epochs) in enumerate(arms):
        res = adversarial_training(net0, X, ytr, eps, epochs=epochs, learning_rate=rates,
                                   batch_size=None, attack=attack, rng=int(seeds[1]) + 7,
                                   checkpoints=(epochs,), loss=loss)  # fmt: skip
        np.testing.assert_array_equal(r.train_loss[a, 1, 1, :epochs], res.robust_loss)
        for net, k in ((net0, 0), (res.checkpoints[epochs], (0, 1, 3).index(epochs))):
            for q, policy in enumerate(POLICIES):
                run = fopa.projected_gradient_ascent(net, X[probe], ytr[probe], eps,
                                                     step_size=policy, max_iter=200,
                                                     certify_every="auto", loss=loss)  # fmt: skip
                np.testing.assert_array_equal(r.first_certified[q, a, 1, 1, k],
                                              run.first_certified_iteration)  # fmt: skip
                np.testing.assert_array_equal(r.gradient_evaluations[q, a, 1, 1, k],
                                              run.gradient_evaluations)  # fmt: skip
            land = fopa.local_maxima(net, X[probe[1]], ytr[probe[1]], eps, n_starts=4,
                                     rng=int(seeds[1]) % 2**32 + 1001, step_size="backtracking",
                                     max_iter=500, loss=loss)  # fmt: skip
            assert r.n_maxima[a, 1, 1, k, 1] == len(land.maxima)
            assert r.share_saddles[a, 1, 1, k, 1] == np.mean(land.kinds == "saddle")
            assert r.share_maxima[a, 1, 1, k, 1] == np.mean(land.labels >= 0)


def test_claims_rows_cover_the_measured_checkpoints_and_the_figure_draws():
    r = training_checkpoints(2, **ARGS)
    rows = checkpoint_claims("training_checkpoints", r)
    # PGD arm: 3 checkpoints, PGA arm: 2; per checkpoint two speed rows, one regularity row
    assert len(rows) == (3 + 2) * 3
    assert sum("regular" in row["claim"] for row in rows) == 5
    assert all(row["verdict"] in ("agrees", "disagrees", "inconclusive", "not tested")
               for row in rows)  # fmt: skip
    assert not any("trained, epoch 3" in row["experiment"] and "fopa's ascent" in row["experiment"]
                   for row in rows)  # fmt: skip
    assert len(checkpoint_figure(r).axes) == 4
