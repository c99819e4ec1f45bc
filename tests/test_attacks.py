"""fopa.attacks: naive NumPy references, properties, and the attack libraries themselves."""

import sys

import numpy as np
import pytest

import fopa
from fopa import attacks

from . import reference as ref


def _problem(d=12, m=30, n=6, seed=0, weight=3.0, loss="logistic"):
    gen = np.random.default_rng(seed)
    base = fopa.TwoLayerNet.random(d, m, rng=gen)
    net = fopa.TwoLayerNet(base.W * weight, base.a, 0.2 * gen.standard_normal(m), "tanh", 1.0, 0.1)
    X = gen.uniform(0.2, 0.8, (n, d))
    Y = gen.choice([-1.0, 1.0], n) if loss == "logistic" else gen.standard_normal(n)
    return net, X, Y, gen


def _grad(net, x, y, loss):
    return ref.gradient(net, x, y, loss)


def _naive_pgd(net, X, Y, eps, alpha, steps, guard, order, box, loss):
    """torchattacks' and ART's loops, written out on one input at a time."""
    out = []
    for x, y in zip(X, Y, strict=True):
        p = x.copy()
        for _ in range(steps):
            g = _grad(net, p, y, loss)
            norm = np.linalg.norm(g)
            p = p + (0.0 if norm == 0 and guard == 0 else alpha / (norm + guard)) * g
            if order == "clip_then_project" and box:
                p = np.clip(p, *box)
            u = p - x
            p = x + u * min(1.0, eps / np.linalg.norm(u))
            if order == "project_then_clip" and box:
                p = np.clip(p, *box)
        out.append(p - x)
    return np.array(out)


@pytest.mark.parametrize("order", attacks.ORDERS)
@pytest.mark.parametrize("box", [None, (0.0, 1.0)])
def test_pgd_against_the_naive_loop(order, box):
    net, X, Y, _ = _problem()
    got = attacks.pgd(
        net, X, Y, 0.5, steps=15, alpha=0.1, guard=1e-10, order=order, box=box, loss="logistic"
    )
    want = _naive_pgd(net, X, Y, 0.5, 0.1, 15, 1e-10, order, box, "logistic")
    np.testing.assert_allclose(got.delta, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.loss, fopa.loss(net, X + got.delta, Y, loss="logistic"))
    assert got.loss_trajectory.shape == (6, 16) and got.gradient_evaluations == 15


def test_fgm_is_one_normalized_step():
    net, X, Y, _ = _problem(loss="quadratic")
    res = attacks.fgm(net, X, Y, 0.3)
    G = fopa.input_gradient(net, X, Y)
    np.testing.assert_allclose(res.delta, 0.3 * G / np.linalg.norm(G, axis=1)[:, None])
    one = attacks.fgm(net, X[0], Y[0], 0.3)
    assert one.delta.shape == (12,) and isinstance(one.loss, float)
    np.testing.assert_array_equal(one.delta, res.delta[0])


def _naive_momentum(net, X, Y, eps, h, mu, steps, nesterov, loss):
    out = []
    for x, y in zip(X, Y, strict=True):
        delta = np.zeros_like(x)
        prev = delta.copy()

        def proj(v):
            n = np.linalg.norm(v)
            return v if n <= eps else v * (eps / n)

        for _ in range(steps):
            if nesterov:
                z = proj(delta + mu * (delta - prev))
                new = proj(z + h * _grad(net, x + z, y, loss))
            else:
                new = proj(delta + h * _grad(net, x + delta, y, loss) + mu * (delta - prev))
            prev, delta = delta, new
        out.append(delta)
    return np.array(out)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_pga_against_the_naive_loop(nesterov):
    net, X, Y, _ = _problem(loss="quadratic", weight=1.0)
    res = attacks.momentum_pga(
        net, X, Y, 0.7, steps=30, step_size=0.4, momentum=0.8, nesterov=nesterov
    )
    want = _naive_momentum(net, X, Y, 0.7, 0.4, 0.8, 30, nesterov, "quadratic")
    np.testing.assert_allclose(res.delta, want, rtol=0, atol=1e-12)
    assert res.attack == ("nesterov_pga" if nesterov else "momentum_pga")


def test_frank_wolfe_against_the_naive_loop_and_its_gap():
    net, X, Y, _ = _problem(loss="quadratic", weight=1.0)
    res = attacks.frank_wolfe(net, X, Y, 0.6, steps=25)
    for i in range(X.shape[0]):
        delta = np.zeros(12)
        for t in range(25):
            g = _grad(net, X[i] + delta, Y[i], "quadratic")
            gap = 0.6 * np.linalg.norm(g) - g @ delta
            assert res.extra["frank_wolfe_gap"][i, t] == pytest.approx(gap, rel=1e-10, abs=1e-14)
            delta = delta + 2.0 / (t + 2.0) * (0.6 * g / np.linalg.norm(g) - delta)
        np.testing.assert_allclose(res.delta[i], delta, rtol=0, atol=1e-12)
    assert np.all(res.extra["frank_wolfe_gap"] >= -1e-12)  # s maximizes <g, .> on the ball


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_every_attack_stays_feasible_and_records_its_best(name):
    net, X, Y, gen = _problem(n=5, loss="logistic")
    kw = {} if name == "fgm" else {"start": "ball", "rng": 3}
    if name in ("pgd", "apgd", "momentum_pga", "fgm"):
        kw["box"] = (0.0, 1.0)
    res = attacks.ATTACKS[name](net, X, Y, 0.4, loss="logistic", **kw)
    for D in (res.delta, res.best_delta):
        assert np.all(np.linalg.norm(D, axis=1) <= 0.4 * (1 + 1e-12))
        if "box" in kw:
            assert np.all(X + D >= 0.0) and np.all(X + D <= 1.0)
    np.testing.assert_array_equal(res.best_loss, res.loss_trajectory.max(axis=1))
    np.testing.assert_allclose(
        res.best_loss, fopa.loss(net, X + res.best_delta, Y, loss="logistic"), rtol=1e-13
    )
    np.testing.assert_allclose(
        res.loss, fopa.loss(net, X + res.delta, Y, loss="logistic"), rtol=1e-13
    )
    assert res.loss_trajectory.shape == (5, res.iterations + 1)


def test_apgd_halves_only_at_checkpoints_and_results_do_not_alias():
    net, X, Y, gen = _problem()
    start = gen.standard_normal(X.shape)
    start *= 0.2 / np.linalg.norm(start, axis=1)[:, None]
    keep = start.copy()
    res = attacks.apgd(net, X, Y, 0.5, n_iter=100, start=start, box=(0, 1), loss="logistic")
    np.testing.assert_array_equal(start, keep)
    steps = res.extra["step_size"]
    assert steps[:, 0].tolist() == [1.0] * 6  # 2 eps
    checkpoints = [22]  # k = 22, then 19, 16, ..., down to 6
    k = 22
    while checkpoints[-1] < 100:
        k = max(k - 3, 6)
        checkpoints.append(checkpoints[-1] + k)
    changes = {int(t) for t in np.nonzero(np.diff(steps, axis=1))[1] + 1}
    assert changes <= set(checkpoints)
    assert set(np.unique(np.log2(steps))) <= {float(-j) for j in range(0, 60)}
    paper = attacks.apgd(net, X, Y, 0.5, n_iter=100, start=start, box=(0, 1), convention="paper",
                         loss="logistic")  # fmt: skip
    assert paper.best_loss.shape == (6,)


def test_bad_arguments_are_named():
    net, X, Y, _ = _problem()
    cases = [
        (lambda: attacks.pgd(net, X, Y, 0.5, steps=0), ValueError, "steps"),
        (lambda: attacks.pgd(net, X, Y, -1.0), ValueError, "eps"),
        (lambda: attacks.pgd(net, X, Y, 0.5, order="clip"), ValueError, "order"),
        (lambda: attacks.pgd(net, X, Y, 0.5, box=(1.0, 0.0)), ValueError, "lo < hi"),
        (lambda: attacks.pgd(net, X + 5, Y, 0.5, box=(0.0, 1.0)), ValueError, "box"),
        (lambda: attacks.pgd(net, X, Y, 0.5, start=np.ones_like(X)), ValueError, "start"),
        (lambda: attacks.pgd(net, X, Y, 0.5, start="cube"), ValueError, "start"),
        (lambda: attacks.apgd(net, X, Y, 0.5, rho=2.0), ValueError, "rho"),
        (lambda: attacks.pgd(net, X, Y, 0.5, steps=10**9), ValueError, "GiB"),
        (lambda: attacks.apgd(net, X, Y, 0.5, convention="x"), ValueError, "convention"),
        (lambda: attacks.momentum_pga(net, X, Y, 0.5, momentum=1.0), ValueError, "momentum"),
        (lambda: attacks.momentum_pga(net, X, Y, 0.5, step_size="big"), ValueError, "step_size"),
        (lambda: attacks.pgd(net, X, np.full(6, 0.5), 0.5, loss="logistic"), ValueError, "y"),
    ]  # fmt: skip
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


# ---------------------------------------------------------------- the libraries


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _logit_model(torch, net):
    """The network as a two-class classifier with logits (0, f): cross-entropy on it
    is fopa's logistic loss with y = +1 for class 1."""

    class TwoLogits(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            out = self.body(x.reshape(x.shape[0], -1))
            return torch.cat([torch.zeros_like(out), out], dim=1)

    return TwoLogits(net.to_torch()).eval()


def test_pgd_equals_torchattacks_pgdl2(torch):
    torchattacks = pytest.importorskip("torchattacks")
    net, X, Y, _ = _problem()
    n, d = X.shape
    model = _logit_model(torch, net)
    labels = torch.from_numpy((Y > 0).astype(np.int64))
    atk = torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=20, random_start=False)
    adv = atk(torch.from_numpy(X).reshape(n, 1, 1, d), labels).reshape(n, d).numpy()
    # torchattacks normalizes the gradient of the batch-mean loss with a 1e-10 guard:
    # on fopa's per-input gradient that guard is n * 1e-10
    res = attacks.pgd(
        net, X, Y, 0.5, steps=20, alpha=0.1, box=(0.0, 1.0), guard=n * 1e-10, loss="logistic"
    )
    np.testing.assert_allclose(X + res.delta, adv, rtol=0, atol=1e-10)


def test_pgd_equals_art_projected_gradient_descent(torch, monkeypatch):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    # ART computes in float32 (art.config.ART_NUMPY_DTYPE, bound at import in each
    # module): run it in float64 for the comparison
    for module in list(sys.modules.values()):
        if getattr(module, "ART_NUMPY_DTYPE", None) is np.float32:
            monkeypatch.setattr(module, "ART_NUMPY_DTYPE", np.float64)
    net, X, Y, _ = _problem(seed=1)
    n, d = X.shape
    clf = PyTorchClassifier(
        model=_logit_model(torch, net), loss=torch.nn.CrossEntropyLoss(), input_shape=(d,),
        nb_classes=2, clip_values=(0.0, 1.0),
    )  # fmt: skip
    art_pgd = ProjectedGradientDescent(
        clf, norm=2, eps=0.5, eps_step=0.1, max_iter=20, num_random_init=0, batch_size=n,
        verbose=False,
    )  # fmt: skip
    adv = art_pgd.generate(X, y=(Y > 0).astype(int))
    assert adv.dtype == np.float64
    res = attacks.pgd(
        net, X, Y, 0.5, steps=20, alpha=0.1, box=(0.0, 1.0), order="clip_then_project",
        loss="logistic",
    )  # fmt: skip
    np.testing.assert_allclose(X + res.delta, adv, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "d,m,eps,n_iter,weight",
    [(12, 30, 0.5, 20, 3.0), (40, 64, 1.0, 50, 1.0), (40, 64, 2.0, 100, 1.0)],
)
def test_apgd_equals_autoattack(torch, d, m, eps, n_iter, weight):
    autopgd = pytest.importorskip("pyautoattack.autopgd_base")
    net, X, Y, gen = _problem(d=d, m=m, n=8, weight=weight)
    start = gen.standard_normal(X.shape)
    start *= 0.3 * eps / np.linalg.norm(start, axis=1)[:, None]
    peer = autopgd.APGDAttack(
        _logit_model(torch, net), n_iter=n_iter, norm="L2", eps=eps, loss="ce", device="cpu"
    )
    peer.init_hyperparam(torch.from_numpy(X))
    labels = torch.from_numpy((Y > 0).astype(np.int64))
    x_best, _, loss_best, _ = peer.attack_single_run(
        torch.from_numpy(X), labels, x_init=torch.from_numpy(X + start)
    )
    res = attacks.apgd(net, X, Y, eps, n_iter=n_iter, start=start, box=(0.0, 1.0), loss="logistic")
    np.testing.assert_allclose(X + res.best_delta, x_best.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.best_loss, loss_best.numpy(), rtol=1e-10)


def test_a_batch_split_in_row_blocks_gives_each_row_its_own_run():
    from fopa._parallel import row_blocks

    net, X, Y, gen = _problem(d=100, m=200, n=64, weight=1.0)
    assert len(row_blocks(64, 100, 200)) >= 2 or pytest.skip("one core: no split")
    start = gen.standard_normal(X.shape)
    start *= 0.2 / np.linalg.norm(start, axis=1)[:, None]
    kw = dict(box=(0.0, 1.0), loss="logistic")
    batch = attacks.apgd(net, X, Y, 0.5, n_iter=30, start=start, **kw)
    for i in (0, 31, 32, 63):
        one = attacks.apgd(net, X[i], Y[i], 0.5, n_iter=30, start=start[i], **kw)
        np.testing.assert_allclose(batch.best_delta[i], one.best_delta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch.loss_trajectory[i], one.loss_trajectory, rtol=1e-12)


def test_riemannian_ascent_against_the_naive_loop_and_ends_certified():
    net, X, Y, _ = _problem(d=8, m=20, n=4, loss="quadratic", weight=1.0)
    eps = 0.8
    start = np.random.default_rng(5).standard_normal(X.shape)
    res = attacks.riemannian_ascent(net, X, Y, eps, steps=12, start=start)
    for i in range(4):
        delta = eps * start[i] / np.linalg.norm(start[i])
        t = 0.0
        evals = 0
        for it in range(12):
            g = _grad(net, X[i] + delta, Y[i], "quadratic")
            u = delta / eps
            r = g - (u @ g) * u
            t = eps / np.linalg.norm(r) if it == 0 or t == 0.0 else 2.0 * t
            now = ref.loss(net, X[i] + delta, Y[i])
            for _ in range(51):
                trial = delta + t * r
                trial *= eps / np.linalg.norm(trial)
                evals += 1
                if ref.loss(net, X[i] + trial, Y[i]) >= now + 1e-4 * t * (r @ r):
                    delta = trial
                    break
                t *= 0.5
            else:
                t = 0.0
        np.testing.assert_allclose(res.delta[i], delta, rtol=0, atol=1e-10)
        assert res.extra["loss_evaluations"][i] == evals
    long = attacks.riemannian_ascent(net, X, Y, eps, steps=300, start=start)
    np.testing.assert_allclose(np.linalg.norm(long.delta, axis=1), eps, rtol=1e-14)
    assert np.all(np.diff(long.loss_trajectory, axis=1) >= 0)  # Armijo: never down
    kinds = fopa.certify(net, X, Y, long.delta, eps).kind
    assert set(kinds) <= {"strict_local_max", "saddle", "degenerate"}
    with pytest.raises(ValueError, match="not on the sphere"):
        attacks.riemannian_ascent(net, X, Y, eps, start="zero")


def test_pgd_equals_art_on_a_regressor_with_the_quadratic_loss(torch, monkeypatch):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.regression import PyTorchRegressor

    for module in list(sys.modules.values()):
        if getattr(module, "ART_NUMPY_DTYPE", None) is np.float32:
            monkeypatch.setattr(module, "ART_NUMPY_DTYPE", np.float64)
    net, X, Y, _ = _problem(seed=2, loss="quadratic")
    body = net.to_torch()

    class Output(torch.nn.Module):
        def forward(self, x):
            return body(x)[:, 0]

    # mean squared error on f: its gradient is a positive multiple of fopa's (f - y) g_f
    reg = PyTorchRegressor(
        model=Output(), loss=torch.nn.MSELoss(), input_shape=(12,), clip_values=(0.0, 1.0)
    )
    art_pgd = ProjectedGradientDescent(
        reg, norm=2, eps=0.5, eps_step=0.1, max_iter=20, num_random_init=0, batch_size=6,
        verbose=False,
    )  # fmt: skip
    adv = art_pgd.generate(X, y=Y)
    res = attacks.pgd(
        net, X, Y, 0.5, steps=20, alpha=0.1, box=(0.0, 1.0), order="clip_then_project"
    )
    np.testing.assert_allclose(X + res.delta, adv, rtol=0, atol=1e-10)
