"""Kernels against the plain NumPy reference and against central finite differences."""

import itertools

import numpy as np
import pytest
from hypothesis import given

import fopa
from fopa.testing import loss_problems as problems

from . import reference as ref

CASES = list(itertools.product(fopa.ACTIVATIONS, fopa.LOSSES))


def _setup(act, lossname, n=3, d=7, m=11, seed=0):
    gen = np.random.default_rng(seed)
    base = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    b0 = 0.4 * gen.standard_normal()  # an output bias: it shifts f, so every loss derivative
    net = fopa.TwoLayerNet(base.W, base.a, 0.2 * gen.standard_normal(m), act, base.output_scale, b0)
    X = gen.standard_normal((n, d))
    if lossname == "logistic":
        Y = gen.choice([-1.0, 1.0], size=n)
    else:
        Y = gen.standard_normal(n)
    return net, X, Y, gen.standard_normal((n, d)), gen.standard_normal((n, d))


def _close(got, want, rtol=1e-10):
    scale = max(np.max(np.abs(want)), 1e-300)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("act,lossname", CASES)
def test_against_reference_single_and_batched(act, lossname):
    net, X, Y, U, V = _setup(act, lossname)
    kw = dict(loss=lossname)
    batch = {
        "loss": fopa.loss(net, X, Y, **kw),
        "grad": fopa.input_gradient(net, X, Y, **kw),
        "hess": fopa.input_hessian(net, X, Y, **kw),
        "hvp": fopa.hessian_vector_product(net, X, Y, V, **kw),
        "third": fopa.third_derivative(net, X, Y, U, V, **kw),
    }
    np.testing.assert_allclose(fopa.predict(net, X), [ref.predict(net, x) for x in X], rtol=1e-12)
    for i in range(X.shape[0]):
        x, y, u, v = X[i], Y[i], U[i], V[i]
        want = {
            "loss": ref.loss(net, x, y, lossname),
            "grad": ref.gradient(net, x, y, lossname),
            "hess": ref.hessian(net, x, y, lossname),
            "hvp": ref.hessian(net, x, y, lossname) @ v,
            "third": ref.third(net, x, y, u, v, lossname),
        }
        single = {
            "loss": fopa.loss(net, x, y, **kw),
            "grad": fopa.input_gradient(net, x, y, **kw),
            "hess": fopa.input_hessian(net, x, y, **kw),
            "hvp": fopa.hessian_vector_product(net, x, y, v, **kw),
            "third": fopa.third_derivative(net, x, y, u, v, **kw),
        }
        assert isinstance(single["loss"], float)
        for key in want:
            _close(single[key], want[key])
            _close(batch[key][i], want[key])
            assert np.shape(single[key]) == np.shape(want[key])


@pytest.mark.parametrize("act,lossname", CASES)
def test_against_central_finite_differences(act, lossname):
    net, X, Y, U, V = _setup(act, lossname, n=1, seed=3)
    x, y, u, v = X[0], Y[0], U[0], V[0]
    kw = dict(loss=lossname)
    h = 1e-5
    d = x.size
    eye = np.eye(d)
    fd_grad = np.array(
        [
            (fopa.loss(net, x + h * e, y, **kw) - fopa.loss(net, x - h * e, y, **kw)) / (2 * h)
            for e in eye
        ]
    )
    fd_hess = np.array(
        [
            (
                fopa.input_gradient(net, x + h * e, y, **kw)
                - fopa.input_gradient(net, x - h * e, y, **kw)
            )
            / (2 * h)
            for e in eye
        ]
    )
    fd_third = (
        fopa.hessian_vector_product(net, x + h * u, y, v, **kw)
        - fopa.hessian_vector_product(net, x - h * u, y, v, **kw)
    ) / (2 * h)
    _close(fopa.input_gradient(net, x, y, **kw), fd_grad, rtol=1e-7)
    _close(fopa.input_hessian(net, x, y, **kw), fd_hess, rtol=1e-7)
    _close(fopa.third_derivative(net, x, y, u, v, **kw), fd_third, rtol=1e-6)


@given(problems(max_d=64, max_m=128, batch=True))
def test_hessian_symmetric_and_hvp_matches(problem):
    net, X, Y, lossname = problem
    H = fopa.input_hessian(net, X, Y, loss=lossname)
    np.testing.assert_array_equal(H, np.swapaxes(H, 1, 2))
    V = np.random.default_rng(0).standard_normal(X.shape)
    hv = fopa.hessian_vector_product(net, X, Y, V, loss=lossname)
    want = np.einsum("nij,nj->ni", H, V)
    scale = np.max(np.abs(H), axis=(1, 2)) * np.linalg.norm(V, axis=1) + 1e-300
    assert np.all(np.max(np.abs(hv - want), axis=1) <= 1e-11 * scale)


@given(problems(max_d=12, max_m=24))
def test_third_derivative_symmetric_in_its_arguments(problem):
    net, x, y, lossname = problem
    gen = np.random.default_rng(1)
    u, v, w = gen.standard_normal((3, x.size))
    uvw = fopa.third_derivative(net, x, y, u, v, loss=lossname) @ w
    vuw = fopa.third_derivative(net, x, y, v, u, loss=lossname) @ w
    uwv = fopa.third_derivative(net, x, y, u, w, loss=lossname) @ v
    wvu = fopa.third_derivative(net, x, y, w, v, loss=lossname) @ u
    tensor = ref.third_tensor(net, x, y, lossname)
    norms = np.linalg.norm(u) * np.linalg.norm(v) * np.linalg.norm(w)
    scale = max(np.max(np.abs(tensor)) * norms, abs(uvw), abs(vuw), abs(uwv), abs(wvu))
    for other in (vuw, uwv, wvu):
        assert abs(uvw - other) <= 1e-11 * scale + 1e-300


@given(problems(max_d=16, max_m=32, batch=True))
def test_batched_equals_one_by_one(problem):
    net, X, Y, lossname = problem
    G = fopa.input_gradient(net, X, Y, loss=lossname)
    for i in range(X.shape[0]):
        one = fopa.input_gradient(net, X[i], Y[i], loss=lossname)
        # equal up to rounding: BLAS sums a batch in another order than one point,
        # so the tolerance scales with the terms summed, not with the (cancelled) sum
        # and l' itself is known only to the rounding of f times |l''|
        scale = ref.gradient_magnitude(net, X[i], Y[i], lossname)
        slope = ref.slope_rounding(net, X[i], Y[i], lossname)
        atol = 1e-13 * np.max(scale) + 1e-14 * np.max(slope) + 1e-300
        np.testing.assert_allclose(G[i], one, rtol=1e-12, atol=atol)


def test_scalar_target_broadcasts_over_a_batch():
    net, X, _, _, _ = _setup("tanh", "quadratic")
    np.testing.assert_array_equal(
        fopa.input_gradient(net, X, 0.5), fopa.input_gradient(net, X, np.full(len(X), 0.5))
    )


def test_no_nan_at_extreme_inputs():
    for act in fopa.ACTIVATIONS:
        if act == "quadratic":
            continue
        net = fopa.TwoLayerNet.random(4, 6, activation=act, rng=0)
        X = np.array([[1e200, -1e200, 1e150, 3.0], [-1e300, 1e300, 0.0, 0.0]])
        for lossname in ("logistic",):
            out = [
                fopa.loss(net, X, 1.0, loss=lossname),
                fopa.input_gradient(net, X, 1.0, loss=lossname),
                fopa.input_hessian(net, X, 1.0, loss=lossname),
            ]
            if act not in ("linear", "softplus", "gelu", "silu"):  # unbounded outputs overflow L
                assert all(np.all(np.isfinite(o)) for o in out), act
            assert not any(np.any(np.isnan(o)) for o in out), act


@given(problems(max_d=40, max_m=12))
def test_hessian_rank_is_at_most_m_plus_one(problem):
    net, x, y, lossname = problem
    H = fopa.input_hessian(net, x, y, loss=lossname)
    eig = np.abs(np.linalg.eigvalsh(H))
    scale = max(eig.max(), 1e-300)
    assert np.sum(eig > 1e-9 * scale) <= net.m + 1


def test_derivatives_in_pieces_give_the_bits_of_one_call(monkeypatch):
    # large batches run in pieces with Ctrl-C noticed between them: the pieces
    # follow from the shapes alone (the same call, the same bits), and a product of
    # fewer rows rounds differently, so they agree with one call to rounding
    import fopa.derivatives as D

    net, X, Y, U, V = _setup("tanh", "quadratic", n=7)
    whole = {
        "loss": fopa.loss(net, X, Y), "grad": fopa.input_gradient(net, X, Y),
        "hess": fopa.input_hessian(net, X, Y), "f": fopa.predict(net, X),
        "hvp": fopa.hessian_vector_product(net, X, Y, V),
        "third": fopa.third_derivative(net, X, Y, U, V),
    }  # fmt: skip
    monkeypatch.setattr(D, "PIECE_WORK", 1.0)  # one row per piece
    pieces = {
        "loss": fopa.loss(net, X, Y), "grad": fopa.input_gradient(net, X, Y),
        "hess": fopa.input_hessian(net, X, Y), "f": fopa.predict(net, X),
        "hvp": fopa.hessian_vector_product(net, X, Y, V),
        "third": fopa.third_derivative(net, X, Y, U, V),
    }  # fmt: skip
    for key, value in whole.items():
        _close(pieces[key], value, rtol=1e-13)
    np.testing.assert_array_equal(fopa.input_hessian(net, X, Y), pieces["hess"])
