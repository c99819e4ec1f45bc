"""Hypothesis strategies for the core tests: random networks, points and radii."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import fopa

activations = st.sampled_from(fopa.ACTIVATIONS)
losses = st.sampled_from(fopa.LOSSES)


@st.composite
def problems(draw, max_d=64, max_m=128, min_scale=1e-3, max_scale=1e2, batch=False):
    """(net, x, y, loss): a random network, input point (or batch) and target."""
    d = draw(st.integers(1, max_d))
    m = draw(st.integers(1, max_m))
    act = draw(activations)
    lossname = draw(losses)
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(min_scale, max_scale))
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    if draw(st.booleans()):
        net = fopa.TwoLayerNet(net.W, net.a, 0.3 * gen.standard_normal(m), act, net.output_scale)
    shape = (draw(st.integers(1, 4)), d) if batch else (d,)
    x = gen.standard_normal(shape) * scale / np.sqrt(d)
    if lossname == "logistic":
        y = gen.choice([-1.0, 1.0], size=shape[:-1])
    else:
        y = gen.standard_normal(shape[:-1])
    return net, x, (float(y) if not batch else y), lossname
