"""Networks users bring: PyTorch and scikit-learn models in and out, to rounding."""

import warnings

import numpy as np
import pytest

import fopa


def _relative_gap(got, want):
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


# ---------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _module(torch, act, d=5, m=9, dtype=None, bias=True):
    torch.manual_seed(0)
    nn = torch.nn
    mod = nn.Sequential(nn.Linear(d, m, bias=bias), act, nn.Linear(m, 1, bias=bias))
    return mod.to(dtype or torch.float64)


def _torch_acts(torch):
    nn = torch.nn
    return {
        "tanh": nn.Tanh(),
        "sigmoid": nn.Sigmoid(),
        "softplus": nn.Softplus(threshold=40),
        "gelu": nn.GELU(),
        "silu": nn.SiLU(),
        "linear": nn.Identity(),
    }


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu", "silu", "linear"])
def test_from_torch_and_back_agree_to_rounding(torch, name):
    mod = _module(torch, _torch_acts(torch)[name])
    net = fopa.TwoLayerNet.from_torch(mod)
    assert net.activation == name and net.output_scale == 1.0
    np.testing.assert_array_equal(net.W, mod[0].weight.detach().numpy())
    assert net.output_bias == float(mod[2].bias.detach())
    X = 3.0 * np.random.default_rng(0).standard_normal((50, 5))
    want = mod(torch.from_numpy(X)).detach().numpy()[:, 0]
    assert _relative_gap(fopa.predict(net, X), want) <= 1e-15
    back = net.to_torch()
    assert type(back[1]) is type(mod[1])
    assert _relative_gap(back(torch.from_numpy(X)).detach().numpy()[:, 0], want) <= 1e-15
    again = fopa.TwoLayerNet.from_torch(back)
    np.testing.assert_array_equal(again.W, net.W)
    np.testing.assert_array_equal(again.a, net.a)
    assert again.output_bias == net.output_bias


def test_to_torch_folds_the_output_scale_and_keeps_gradients(torch):
    gen = np.random.default_rng(1)
    base = fopa.TwoLayerNet.random(6, 20, rng=gen)
    net = fopa.TwoLayerNet(base.W, base.a, 0.3 * gen.standard_normal(20), "tanh", 0.2, -0.7)
    mod = net.to_torch()
    X = gen.standard_normal((4, 6))
    xt = torch.from_numpy(X).requires_grad_(True)
    out = mod(xt)[:, 0]
    assert _relative_gap(out.detach().numpy(), fopa.predict(net, X)) <= 1e-15
    # the input gradient of the quadratic loss at y = 0 is f grad f
    (0.5 * (out**2).sum()).backward()
    assert _relative_gap(xt.grad.numpy(), fopa.input_gradient(net, X, 0.0)) <= 1e-14


def test_from_torch_reads_float32_and_no_bias(torch):
    mod = _module(torch, torch.nn.Tanh(), dtype=torch.float32, bias=False)
    net = fopa.TwoLayerNet.from_torch(mod)
    assert net.W.dtype == np.float64 and net.output_bias == 0.0
    np.testing.assert_array_equal(net.b, np.zeros(9))
    np.testing.assert_array_equal(net.W, mod[0].weight.detach().double().numpy())


def test_from_torch_refusals_say_why(torch):
    nn = torch.nn
    cases = [
        (nn.ReLU(), ValueError, "ReLU is refused.*C\\^3.*jumps at 0.*softplus"),
        (nn.ELU(), ValueError, "ELU is refused.*second derivative"),
        (nn.GELU(approximate="tanh"), ValueError, "approximate='none'"),
        (nn.Softplus(beta=2.0), ValueError, "beta = 1"),
        (nn.Hardshrink(), ValueError, "not supported: expected one of"),
    ]
    for act, exc, match in cases:
        with pytest.raises(exc, match=match):
            fopa.TwoLayerNet.from_torch(_module(torch, act))
    with pytest.raises(TypeError, match="Sequential"):
        fopa.TwoLayerNet.from_torch(nn.Linear(3, 1))
    with pytest.raises(ValueError, match="exactly three layers"):
        fopa.TwoLayerNet.from_torch(nn.Sequential(nn.Linear(3, 4), nn.Tanh()))
    two_outputs = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="one output"):
        fopa.TwoLayerNet.from_torch(two_outputs)
    with pytest.raises(ValueError, match="first and last layers must be nn.Linear"):
        fopa.TwoLayerNet.from_torch(nn.Sequential(nn.Tanh(), nn.Tanh(), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="quadratic.*no torch.nn module"):
        fopa.TwoLayerNet.random(3, 4, activation="quadratic", rng=0).to_torch()


def test_torch_default_softplus_threshold_is_flagged(torch):
    mod = _module(torch, torch.nn.Softplus())  # threshold 20: linear above it
    with pytest.warns(UserWarning, match="threshold=20"):
        net = fopa.TwoLayerNet.from_torch(mod)
    X = np.random.default_rng(2).standard_normal((30, 5))  # pre-activations well below 20
    want = mod(torch.from_numpy(X)).detach().numpy()[:, 0]
    assert _relative_gap(fopa.predict(net, X), want) <= 1e-15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fopa.TwoLayerNet.from_torch(net.to_torch())  # threshold 40: exact, no warning


# ---------------------------------------------------------------- scikit-learn


FIT = dict(max_iter=100, random_state=0)


def _data(n=120, d=4, seed=3):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_from_sklearn_regressor_matches_predict(activation):
    from sklearn.neural_network import MLPRegressor

    X, y = _data()
    est = MLPRegressor(hidden_layer_sizes=(7,), activation=activation, **FIT)
    est.fit(X, y)
    net = fopa.TwoLayerNet.from_sklearn(est)
    assert net.d == 4 and net.m == 7
    assert net.output_bias == float(est.intercepts_[1][0])
    assert _relative_gap(fopa.predict(net, X), est.predict(X)) <= 1e-15


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_from_sklearn_classifier_gives_its_log_loss():
    from sklearn.neural_network import MLPClassifier

    X, y = _data()
    labels = np.where(y > 0.3, "yes", "no")
    est = MLPClassifier(hidden_layer_sizes=5, activation="tanh", **FIT).fit(X, labels)
    net = fopa.TwoLayerNet.from_sklearn(est)
    proba = est.predict_proba(X)[:, 1]  # classes_[1] = "yes"
    f = fopa.predict(net, X)
    assert _relative_gap(1.0 / (1.0 + np.exp(-f)), proba) <= 1e-14
    signs = np.where(labels == est.classes_[1], 1.0, -1.0)
    want = -np.log(np.where(signs > 0, proba, 1.0 - proba))
    got = fopa.loss(net, X, signs, loss="logistic")
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_from_sklearn_refusals_say_why():
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = _data()
    with pytest.raises(ValueError, match="not fitted"):
        fopa.TwoLayerNet.from_sklearn(MLPRegressor(hidden_layer_sizes=(4,)))
    relu = MLPRegressor(hidden_layer_sizes=(4,), activation="relu", **FIT).fit(X, y)
    with pytest.raises(ValueError, match="relu is refused.*C\\^3"):
        fopa.TwoLayerNet.from_sklearn(relu)
    deep = MLPRegressor(hidden_layer_sizes=(4, 3), activation="tanh", **FIT).fit(X, y)
    with pytest.raises(ValueError, match="one hidden layer; got 2"):
        fopa.TwoLayerNet.from_sklearn(deep)
    multi = MLPClassifier(hidden_layer_sizes=4, activation="tanh", **FIT)
    multi.fit(X, np.digitize(y, [-0.5, 0.5]))
    with pytest.raises(ValueError, match="scalar output.*got 3 classes"):
        fopa.TwoLayerNet.from_sklearn(multi)
    two = MLPRegressor(hidden_layer_sizes=(4,), activation="tanh", **FIT)
    two.fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="got 2 outputs"):
        fopa.TwoLayerNet.from_sklearn(two)
    with pytest.raises(TypeError, match="MLPRegressor or MLPClassifier"):
        fopa.TwoLayerNet.from_sklearn(LinearRegression().fit(X, y))


def test_torch_and_sklearn_are_imported_only_when_used():
    import subprocess
    import sys

    code = (
        "import sys, fopa, numpy as np\n"
        "net = fopa.TwoLayerNet.random(3, 4, rng=0)\n"
        "fopa.attacks.pgd(net, np.ones((2, 3)), 0.0, 0.5, steps=2)\n"
        "fopa.compare_attacks(net, np.ones((1, 3)), 0.0, 0.5, budget=3, n_starts=2, rng=0,\n"
        "                     global_bound=False)\n"
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
