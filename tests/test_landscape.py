"""Landscape tools, the Taylor-model maximum, and fopa.testing on theorems."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa.testing import (
    assert_kkt_point,
    assert_monotone_ascent,
    assert_strict_local_max,
    problems,
)

from . import reference as ref
from .test_certify import _circle_maxima


@pytest.mark.parametrize("seed", [0, 3])
def test_local_maxima_match_the_circle_grid(seed):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(2, 8, activation="tanh", rng=gen)
    x, y, eps = gen.standard_normal(2), float(gen.standard_normal()), 1.5
    land = fopa.local_maxima(net, x, y, eps, n_starts=64, rng=seed)
    truth = _circle_maxima(net, x, y, eps)
    boundary = [mx for mx in land.maxima if mx.certificate.on_boundary]
    assert len(boundary) == len(truth)
    for mx in boundary:
        assert np.min(np.linalg.norm(truth - mx.point, axis=1)) < 1e-5
    losses = [mx.loss for mx in land.maxima]
    assert losses == sorted(losses, reverse=True) and land.best.loss == losses[0]
    fractions = np.array([mx.basin_fraction for mx in land.maxima])
    assert np.all(fractions > 0) and fractions.sum() <= 1 + 1e-12
    for k, mx in enumerate(land.maxima):
        np.testing.assert_allclose(np.mean(land.labels == k), mx.basin_fraction)
        assert mx.certificate.kind == "strict_local_max"
    assert np.all((land.labels >= 0) == (land.kinds == "strict_local_max"))


def test_taylor_model_is_exact_for_a_linear_network():
    # linear f and quadratic loss: L is exactly quadratic in delta
    net = fopa.TwoLayerNet.random(4, 6, activation="linear", rng=1)
    x, y, eps = np.ones(4), 0.3, 0.6
    model = fopa.taylor_model_maximum(net, x, y, eps)
    assert model.value == pytest.approx(fopa.loss(net, x + model.point, y), rel=1e-12)
    land = fopa.local_maxima(net, x, y, eps, n_starts=16, rng=0)
    np.testing.assert_allclose(land.best.point, model.point, atol=1e-8)


def test_small_inputs_approach_the_taylor_model():
    # x = tau x_hat with eps / tau fixed: the best maximum tends to the model's
    net = fopa.TwoLayerNet.random(5, 20, activation="tanh", rng=2)
    x_hat, y = np.random.default_rng(2).standard_normal(5), 0.5
    gaps = []
    for tau in (1.0, 0.1, 0.01):
        eps = 0.5 * tau
        land = fopa.local_maxima(net, tau * x_hat, y, eps, n_starts=24, rng=0)
        model = fopa.taylor_model_maximum(net, tau * x_hat, y, eps)
        gaps.append(np.linalg.norm(land.best.point - model.point) / eps)
    assert gaps[2] < gaps[0] and gaps[2] < 1e-2


@given(problems(max_d=8, max_m=16, max_scale=10.0))
@settings(max_examples=25)
def test_pga_fixed_points_are_kkt_points(problem):
    net, x, y, eps = problem
    res = fopa.projected_gradient_ascent(net, x, y, eps, tol=1e-9, max_iter=20_000)
    if res.converged:
        assert_kkt_point(res)


@given(problems(max_d=8, max_m=16, max_scale=10.0))
@settings(max_examples=25)
def test_lipschitz_ascent_is_monotone(problem):
    net, x, y, eps = problem
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, max_iter=300, init="ball", rng=0, record_history=True
    )
    assert_monotone_ascent(res)


@given(problems(max_d=6, max_m=12, max_scale=3.0))
@settings(max_examples=25)
def test_no_strict_interior_maximum_unless_grad_f_vanishes(problem):
    # quadratic loss: grad L = (f - y) grad f, so an interior critical point with
    # f != y has grad f = 0
    net, x, y, eps = problem
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, tol=1e-11, max_iter=50_000, init="ball", n_restarts=4, rng=1
    )
    ends = res.restarts.end
    certs = fopa.certify(net, np.tile(x, (4, 1)), y, ends, eps)
    for p in ends[(certs.kind == "strict_local_max") & ~certs.on_boundary]:
        residual = abs(ref.predict(net, x + p) - y)
        assert residual * np.linalg.norm(ref.network_gradient(net, x + p)) <= 1e-7


def test_assertions_fail_with_the_reason():
    net = fopa.TwoLayerNet(np.eye(3), [1.0, 0.5, 0.25], activation="quadratic")
    with pytest.raises(AssertionError, match="saddle"):
        assert_strict_local_max(net, np.zeros(3), -10.0, 0.5 * np.eye(3)[1], 0.5)
    cert = assert_strict_local_max(net, np.zeros(3), -10.0, 0.5 * np.eye(3)[0], 0.5)
    assert cert.radius > 0
    res = fopa.projected_gradient_ascent(net, np.ones(3), 0.0, 0.5, max_iter=5)
    with pytest.raises(ValueError, match="record_history"):
        assert_monotone_ascent(res)
    with pytest.raises(TypeError):
        assert_kkt_point("result")


def test_landscape_bad_input():
    net = fopa.TwoLayerNet.random(3, 4, rng=0)
    with pytest.raises(ValueError, match="one point"):
        fopa.local_maxima(net, np.ones((2, 3)), 0.0, 0.5)
    with pytest.raises(ValueError, match="n_starts"):
        fopa.local_maxima(net, np.ones(3), 0.0, 0.5, n_starts=0)
    with pytest.raises(ValueError, match="eps"):
        fopa.taylor_model_maximum(net, np.ones(3), 0.0, -1.0)


def test_progress_bars_show_the_run_and_change_nothing(capsys, monkeypatch):
    net = fopa.TwoLayerNet.random(40, 64, rng=3)
    x = np.random.default_rng(4).standard_normal(40)
    eps = 0.5 * np.linalg.norm(x)
    quiet = fopa.local_maxima(net, x, 1.0, eps, n_starts=6, rng=5, tol=0.0, max_iter=400)
    capsys.readouterr()
    shown = fopa.local_maxima(net, x, 1.0, eps, n_starts=6, rng=5, tol=0.0, max_iter=400,
                              progress=True)  # fmt: skip
    err = capsys.readouterr().err
    assert "local_maxima: 6 starts" in err and "400/400" in err and "running" in err
    np.testing.assert_array_equal(quiet.ends, shown.ends)
    np.testing.assert_array_equal(quiet.labels, shown.labels)
    # a run in pieces (here a piece ends at a checkpoint of certify_every iterations
    # at least 50 iterations into it): the bar moves between them
    import fopa._pga_pieces as pieces

    monkeypatch.setattr(pieces, "piece_length", lambda rows, d, m: 50)
    res = fopa.projected_gradient_ascent(net, x, 1.0, eps, max_iter=250, tol=0.0,
                                         certify_every=50, progress="my run")  # fmt: skip
    err = capsys.readouterr().err
    assert "my run" in err and res.iterations == 250
    assert all(f"{k}/250" in err for k in (50, 100, 150, 200, 250))
    fopa.local_maxima(net, x, 1.0, eps, n_starts=2, rng=5, max_iter=50, progress="maxima here")
    assert "maxima here" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress must be a bool or a label"):
        fopa.projected_gradient_ascent(net, x, 1.0, eps, progress=1)
    with pytest.raises(TypeError, match="progress must be a bool or a label"):
        fopa.local_maxima(net, x, 1.0, eps, n_starts=2, progress=1)


# the uniqueness threshold of the regularity study


def _model_circle_maxima(g, H, eps, points=20_000):
    """Local maxima of q = g.delta + delta^T H delta / 2 on the circle of radius eps."""
    theta = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    D = eps * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    q = D @ g + 0.5 * np.einsum("ij,jk,ik->i", D, H, D)
    return int(np.sum((q > np.roll(q, 1)) & (q >= np.roll(q, -1))))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31), log_eps=st.floats(-3.0, 2.0))
def test_below_the_spread_ratio_the_quadratic_model_has_one_maximum(seed, log_eps):
    # docs/experiments/3-scale-regularity.md, "A threshold": a second local maximum on
    # the sphere needs ||g|| <= eps (lambda_max - lambda_min)
    gen = np.random.default_rng(seed)
    A = gen.standard_normal((2, 2))
    H = A + A.T
    eps = 10.0**log_eps
    lam = np.linalg.eigvalsh(H)
    g = gen.standard_normal(2)
    g *= eps * (lam[-1] - lam[0]) * gen.uniform(1.05, 3.0) / np.linalg.norm(g)
    assert _model_circle_maxima(g, H, eps) == 1


def test_above_the_spread_ratio_a_second_maximum_can_appear():
    H = np.diag([1.0, -1.0])  # spread 2: with eps = 1 the threshold is ||g|| = 2
    assert _model_circle_maxima(np.array([0.0, 0.5]), H, 1.0) == 2  # ratio 4: two maxima


def test_spread_ratio_is_measured_at_x():
    from fopa.experiments.regularity import spread_ratio

    net = fopa.TwoLayerNet.random(4, 9, rng=2)
    x = np.random.default_rng(3).standard_normal(4)
    g = fopa.input_gradient(net, x, 0.4)
    lam = np.linalg.eigvalsh(fopa.input_hessian(net, x, 0.4))
    assert spread_ratio(net, x, 0.4, 0.3) == pytest.approx(
        0.3 * (lam[-1] - lam[0]) / np.linalg.norm(g), rel=1e-12)  # fmt: skip


def test_threshold_table_counts_cells_on_each_side():
    from fopa.experiments.regularity import threshold_table

    count = np.array([[1, 1, 2], [0, 3, 1]])
    ratio = np.array([[0.2, 0.5, 2.0], [0.1, 4.0, -1.0]])  # -1: not measured
    table = threshold_table(count, ratio)
    assert (table["below"]["n"], table["below"]["multiple"]) == (2, 0)  # no-max cell left out
    assert (table["above"]["n"], table["above"]["multiple"]) == (2, 2)
    assert table["below"]["high"] < 1 and table["above"]["share"] == 1.0
