import numpy as np
import pytest

import fopa


def test_random_matches_the_initial_phase_distribution():
    net = fopa.TwoLayerNet.random(50, 4000, rng=7)
    assert net.W.shape == (4000, 50) and net.a.shape == (4000,)
    assert np.all(net.b == 0.0)
    assert set(np.unique(net.a)) == {-1.0, 1.0}
    assert net.output_scale == pytest.approx(1 / np.sqrt(4000))
    # W_rj ~ N(0, 1/d): variance within a few standard errors
    assert net.W.var() * 50 == pytest.approx(1.0, abs=0.02)
    assert abs(net.W.mean()) < 0.002
    assert abs(net.a.mean()) < 0.05


def test_same_seed_same_bits_and_generator_accepted():
    a = fopa.TwoLayerNet.random(5, 9, rng=3)
    b = fopa.TwoLayerNet.random(5, 9, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.a, b.a)


def test_frozen_and_read_only():
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    with pytest.raises(AttributeError):
        net.activation = "gelu"
    with pytest.raises(ValueError):
        net.W[0, 0] = 1.0


def test_constructor_copies_its_input():
    W = np.ones((2, 3))
    net = fopa.TwoLayerNet(W, [1.0, -1.0])
    W[0, 0] = 5.0
    assert net.W[0, 0] == 1.0


@pytest.mark.parametrize("activation", fopa.ACTIVATIONS)
def test_save_load_round_trip_is_exact(tmp_path, activation):
    gen = np.random.default_rng(1)
    net = fopa.TwoLayerNet(
        gen.standard_normal((6, 4)),
        gen.standard_normal(6),
        gen.standard_normal(6),
        activation,
        0.37,
        -1.25,
    )
    path = tmp_path / "net.npz"
    net.save(path)
    back = fopa.TwoLayerNet.load(path)
    for field in ("W", "a", "b"):
        np.testing.assert_array_equal(getattr(back, field), getattr(net, field))
    assert back.activation == activation and back.output_scale == 0.37
    assert back.output_bias == -1.25


def test_files_of_format_version_1_still_load(tmp_path):
    # what fopa wrote before the output bias: no format_version, no output_bias
    gen = np.random.default_rng(2)
    W, a, b = gen.standard_normal((3, 2)), gen.standard_normal(3), gen.standard_normal(3)
    path = tmp_path / "v1.npz"
    np.savez(path, W=W, a=a, b=b, activation=np.array("tanh"), output_scale=np.array(0.5))
    back = fopa.TwoLayerNet.load(path)
    assert back.output_bias == 0.0
    np.testing.assert_array_equal(back.W, W)
    x = gen.standard_normal(2)
    assert fopa.predict(back, x) == fopa.predict(fopa.TwoLayerNet(W, a, b, "tanh", 0.5), x)


def test_a_newer_format_version_is_refused(tmp_path):
    net = fopa.TwoLayerNet.random(2, 3, rng=0)
    path = tmp_path / "net.npz"
    net.save(path)
    with np.load(path) as data:
        fields = dict(data)
    fields["format_version"] = np.array(99)
    np.savez(path, **fields)
    with pytest.raises(ValueError, match="format version 99.*upgrade fopa"):
        fopa.TwoLayerNet.load(path)


def test_output_bias_shifts_the_output_and_nothing_else():
    gen = np.random.default_rng(3)
    base = fopa.TwoLayerNet.random(4, 9, rng=gen)
    net = fopa.TwoLayerNet(base.W, base.a, base.b, "tanh", base.output_scale, 0.8)
    X = gen.standard_normal((5, 4))
    np.testing.assert_allclose(fopa.predict(net, X), fopa.predict(base, X) + 0.8, rtol=1e-15)
    np.testing.assert_allclose(
        fopa.input_gradient(net, X, 0.8), fopa.input_gradient(base, X, 0.0), rtol=1e-12
    )
    assert "output_bias=0.8" in repr(net) and "output_bias" not in repr(base)
    for bad, exc in ((np.inf, ValueError), ("1", TypeError), (np.nan, ValueError)):
        with pytest.raises(exc, match="output_bias"):
            fopa.TwoLayerNet(base.W, base.a, None, "tanh", 1.0, bad)


def test_output_bias_is_the_target_shift_of_the_quadratic_loss():
    # (f + b0 - y)^2 / 2 = (f - (y - b0))^2 / 2: derivatives, bounds, ascent and
    # certificate with the bias equal those without it at the shifted target
    gen = np.random.default_rng(4)
    base = fopa.TwoLayerNet.random(5, 12, rng=gen)
    b0 = 0.6
    net = fopa.TwoLayerNet(base.W, base.a, base.b, "tanh", base.output_scale, b0)
    X, Y, eps = gen.standard_normal((3, 5)), gen.standard_normal(3), 0.7
    np.testing.assert_allclose(
        fopa.input_hessian(net, X, Y), fopa.input_hessian(base, X, Y - b0), rtol=1e-12, atol=1e-14
    )
    for method in fopa.bounds.METHODS:
        got = fopa.ball_constants(net, X, Y, eps, method=method)
        want = fopa.ball_constants(base, X, Y - b0, eps, method=method)
        for name in ("gradient_bound", "beta", "rho", "loss_max"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-9)
    run = fopa.projected_gradient_ascent(net, X, Y, eps, max_iter=500)
    ref_run = fopa.projected_gradient_ascent(base, X, Y - b0, eps, max_iter=500)
    np.testing.assert_allclose(run.delta, ref_run.delta, rtol=1e-9, atol=1e-12)
    got = fopa.certify(net, X, Y, run.delta, eps)
    want = fopa.certify(base, X, Y - b0, run.delta, eps)
    np.testing.assert_array_equal(got.kind, want.kind)
    np.testing.assert_allclose(got.max_eigenvalue_bound, want.max_eigenvalue_bound, rtol=1e-9)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        fopa.TwoLayerNet.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", W=np.ones((2, 2)))
    with pytest.raises(ValueError, match="not a fopa network file"):
        fopa.TwoLayerNet.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        fopa.TwoLayerNet.load(tmp_path / "junk.npz")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(W=np.ones(3), a=np.ones(3)), ValueError, "W must be 2-D"),
        (dict(W=np.ones((3, 2)), a=np.ones(2)), ValueError, r"a must have shape \(3,\)"),
        (dict(W=np.ones((3, 2)), a=np.ones(3), b=np.ones(4)), ValueError, r"b must have shape"),
        (dict(W=np.full((3, 2), np.nan), a=np.ones(3)), ValueError, "W must be finite"),
        (dict(W=np.ones((3, 2)), a=[1, np.inf, 1]), ValueError, "a must be finite"),
        (dict(W=np.ones((3, 2)) * 1j, a=np.ones(3)), TypeError, "W must hold real numbers"),
        (dict(W=np.ones((0, 2)), a=np.ones(0)), ValueError, "at least one row"),
        (
            dict(W=np.ones((3, 2)), a=np.ones(3), activation="relu"),
            ValueError,
            "unknown activation",
        ),
        (
            dict(W=np.ones((3, 2)), a=np.ones(3), output_scale=0.0),
            ValueError,
            "output_scale must be > 0",
        ),
        (dict(W=np.ones((3, 2)), a=np.ones(3), output_scale="1"), TypeError, "output_scale"),
    ],
)
def test_constructor_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        fopa.TwoLayerNet(**kwargs)


def test_integer_arrays_are_accepted_and_converted():
    net = fopa.TwoLayerNet(np.ones((2, 3), dtype=np.int64), np.array([1, -1]))
    assert net.W.dtype == np.float64


@pytest.mark.parametrize(
    "args, error", [((0, 3), ValueError), ((3, 2.5), TypeError), ((True, 3), TypeError)]
)
def test_random_rejects_bad_sizes(args, error):
    with pytest.raises(error):
        fopa.TwoLayerNet.random(*args)


def test_random_rejects_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        fopa.TwoLayerNet.random(3, 3, rng="seed")


def test_row_norms_are_right_over_the_whole_float_range():
    mpmath = pytest.importorskip("mpmath")
    W = np.array([[1e200, -1e200, 3e199], [3e-200, 4e-200, 0.0], [0.3, -1.2, 2.5],
                  [0.0, 0.0, 0.0], [1e300, 1e300, 1e300]])  # fmt: skip
    net = fopa.TwoLayerNet(W, np.ones(5))
    norms = net.row_norms
    for row, got in zip(W, norms, strict=True):
        exact = float(mpmath.sqrt(mpmath.fsum(mpmath.mpf(v) ** 2 for v in row)))
        assert got == pytest.approx(exact, rel=4e-16, abs=0.0)
    # in range, the bits of the plain formula (no rescaling where none is needed)
    assert norms[2] == np.linalg.norm(W[2])
    assert not norms.flags.writeable
