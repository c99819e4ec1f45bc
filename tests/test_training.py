"""Parameter gradients against the reference and central finite differences."""

import numpy as np
import pytest

import fopa

from . import reference as ref


def _loss_of(params, act, c, X, Y, lossname):
    W, a, b, b0 = params
    net = fopa.TwoLayerNet(W, a, b, act, c, float(b0[0]))
    return np.mean([ref.loss(net, x, y, lossname) for x, y in zip(X, Y, strict=True)])


@pytest.mark.parametrize("act", fopa.ACTIVATIONS)
@pytest.mark.parametrize("lossname", fopa.LOSSES)
def test_against_finite_differences(act, lossname):
    gen = np.random.default_rng(0)
    d, m, n = 3, 4, 5
    net = fopa.TwoLayerNet(
        gen.standard_normal((m, d)), gen.standard_normal(m), gen.standard_normal(m), act, 0.5,
        0.3,
    )  # fmt: skip
    X = gen.standard_normal((n, d))
    Y = gen.choice([-1.0, 1.0], n) if lossname == "logistic" else gen.standard_normal(n)
    grad = fopa.parameter_gradient(net, X, Y, loss=lossname)
    params = [net.W.copy(), net.a.copy(), net.b.copy(), np.array([net.output_bias])]
    h = 1e-6
    for k, got in enumerate((grad.W, grad.a, grad.b, np.array([grad.output_bias]))):
        fd = np.zeros_like(params[k])
        for idx in np.ndindex(fd.shape):
            up = [p.copy() for p in params]
            down = [p.copy() for p in params]
            up[k][idx] += h
            down[k][idx] -= h
            fd[idx] = (
                _loss_of(up, act, 0.5, X, Y, lossname) - _loss_of(down, act, 0.5, X, Y, lossname)
            ) / (2 * h)
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_reductions_agree():
    gen = np.random.default_rng(1)
    net = fopa.TwoLayerNet.random(4, 6, rng=gen)
    X, Y = gen.standard_normal((7, 4)), gen.standard_normal(7)
    each = fopa.parameter_gradient(net, X, Y, reduce="none")
    total = fopa.parameter_gradient(net, X, Y, reduce="sum")
    mean = fopa.parameter_gradient(net, X, Y)
    assert each.W.shape == (7, 6, 4) and each.a.shape == (7, 6)
    np.testing.assert_allclose(each.W.sum(axis=0), total.W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(total.a / 7, mean.a, rtol=1e-12)
    one = fopa.parameter_gradient(net, X[2], Y[2])
    np.testing.assert_allclose(one.b, each.b[2], rtol=1e-12)
    assert each.output_bias.shape == (7,)
    assert total.output_bias == pytest.approx(each.output_bias.sum(), rel=1e-12)
    assert mean.output_bias == pytest.approx(total.output_bias / 7, rel=1e-12)
    assert one.output_bias == pytest.approx(each.output_bias[2], rel=1e-12)


def test_bad_reduce():
    net = fopa.TwoLayerNet.random(2, 3, rng=0)
    with pytest.raises(ValueError, match="unknown reduce"):
        fopa.parameter_gradient(net, np.ones(2), 0.0, reduce="max")
