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
    )
    path = tmp_path / "net.npz"
    net.save(path)
    back = fopa.TwoLayerNet.load(path)
    for field in ("W", "a", "b"):
        np.testing.assert_array_equal(getattr(back, field), getattr(net, field))
    assert back.activation == activation and back.output_scale == 0.37


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
