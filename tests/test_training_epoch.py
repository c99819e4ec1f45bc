"""The compiled epoch of PGD adversarial training (fopa._training_epoch) against the
per-batch driver it replaces for NormalizedPGD with SGD or Adam, at shapes where
each phase is split into parts on two threads."""

import numba
import numpy as np
import pytest

import fopa._training_epoch as team_module
import fopa.adversarial as driver
from fopa import NormalizedPGD, adversarial_training

from .test_adversarial import _problem as adversarial_problem


def _problem(d, m, n, act="tanh"):
    return adversarial_problem(d=d, m=m, n=n, act=act)


def _train(net, X, y, monkeypatch=None, per_batch=False, **kw):
    if per_batch:
        monkeypatch.setattr(driver, "EPOCH_OPTIMIZERS", {})
    try:
        return adversarial_training(net, X, y, 0.4 * np.sqrt(X.shape[1]), rng=3, **kw)
    finally:
        if per_batch:
            monkeypatch.undo()


def _close(a, b, tol):
    for x, z in ((a.net.W, b.net.W), (a.net.a, b.net.a), (a.net.b, b.net.b),
                 (a.robust_loss, b.robust_loss)):  # fmt: skip
        np.testing.assert_allclose(x, z, rtol=tol, atol=tol * np.max(np.abs(z)))
    assert abs(a.net.output_bias - b.net.output_bias) <= tol * max(1.0, abs(b.net.output_bias))


@pytest.mark.parametrize(
    "d, m, act, loss, start, optimizer",
    [
        (100, 200, "tanh", "quadratic", "zero", "sgd"),  # row-space inner step (m < d)
        (100, 200, "sigmoid", "logistic", "ball", "adam"),
        (60, 300, "gelu", "quadratic", "sphere", "sgd"),  # plain inner step (m >= d)
        (60, 300, "softplus", "logistic", "zero", "adam"),
    ],
)
def test_the_compiled_epoch_trains_the_per_batch_drivers_network(
    monkeypatch, d, m, act, loss, start, optimizer
):
    net, X, y = _problem(d, m, 150, act)
    assert team_module.part_count(64, d, m) >= min(2, numba.config.NUMBA_NUM_THREADS)
    kw = dict(epochs=3, learning_rate=0.05 if optimizer == "sgd" else 0.01, optimizer=optimizer,
              batch_size=64, attack=NormalizedPGD(steps=5, start=start), loss=loss)  # fmt: skip
    ours = _train(net, X, y, **kw)
    theirs = _train(net, X, y, monkeypatch, per_batch=True, **kw)
    assert ours.status == theirs.status == "completed"
    _close(ours, theirs, 1e-11)
    np.testing.assert_array_equal(ours.robust_accuracy, theirs.robust_accuracy)
    np.testing.assert_array_equal(ours.inner.gradient_evaluations,
                                  theirs.inner.gradient_evaluations)  # fmt: skip


def test_parts_not_threads_set_the_bits(monkeypatch):
    """Two parts on one thread give the bits of two parts on two threads."""
    net, X, y = _problem(100, 200, 150)
    assert team_module.part_count(64, 100, 200) >= min(2, numba.config.NUMBA_NUM_THREADS)
    kw = dict(epochs=2, learning_rate=0.05, batch_size=64, attack=NormalizedPGD(steps=4))
    two = _train(net, X, y, **kw)
    monkeypatch.setattr(team_module, "thread_count", lambda: 1)
    one = _train(net, X, y, **kw)
    np.testing.assert_array_equal(one.net.W, two.net.W)
    np.testing.assert_array_equal(one.robust_loss, two.robust_loss)


def test_the_gram_blocks_cover_the_lower_triangle_once():
    for m, parts in ((200, 2), (7, 2), (3, 1), (256, 3)):
        edges, dealt = team_module._gram_blocks(m, parts)
        cover = np.zeros((m, m), int)
        for blocks in dealt:
            for i, j in blocks:
                assert i >= j
                cover[edges[i] : edges[i + 1], edges[j] : edges[j + 1]] += 1
        np.testing.assert_array_equal(np.tril(cover), np.tril(np.ones((m, m), int)))
        assert max(len(b) for b in dealt) - min(len(b) for b in dealt) <= 1


def test_divergence_in_an_epoch_returns_the_network_after_the_epoch_before():
    net, X, y = _problem(100, 200, 150)
    res = adversarial_training(net, 1e3 * X, y, 1.0, epochs=30, learning_rate=1e5,
                               batch_size=64, rng=0, checkpoints=range(31))  # fmt: skip
    assert res.status == "diverged" and res.epochs < 30
    assert f"epoch {res.epochs + 1};" in res.message
    np.testing.assert_array_equal(res.net.W, res.checkpoints[res.epochs].W)
    assert np.all(np.isfinite(res.net.W)) and len(res.robust_loss) == res.epochs
