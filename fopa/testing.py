"""Tools for property-based tests of landscape claims (needs ``hypothesis``).

Strategies draw random adversarial problems; assertions check what fopa can
prove about a point or a run and fail with the reason.

Examples
--------
>>> from hypothesis import given
>>> import fopa
>>> from fopa.testing import problems, assert_kkt_point
>>> @given(problems(max_d=8, max_m=16))
... def test_pga_ends_at_kkt_points(problem):
...     net, x, y, eps = problem
...     res = fopa.projected_gradient_ascent(net, x, y, eps, tol=1e-9, max_iter=50_000)
...     if res.converged:
...         assert_kkt_point(res)
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .activations import ACTIVATIONS
from .ascent import AscentResult
from .certify import certify
from .losses import LOSSES
from .network import TwoLayerNet

__all__ = [
    "networks",
    "inputs",
    "radii",
    "problems",
    "loss_problems",
    "assert_strict_local_max",
    "assert_monotone_ascent",
    "assert_kkt_point",
]


@st.composite
def networks(draw, min_d=1, max_d=16, min_m=1, max_m=32, activations=ACTIVATIONS, bias=True):
    """Random initial-phase networks (``TwoLayerNet.random``), optionally with biases.

    With ``bias=True`` half the draws get first-layer biases ``b ~ 0.3 N(0, 1)``
    and, independently, half an output bias ``b0 ~ N(0, 1)``.
    """
    d = draw(st.integers(min_d, max_d))
    m = draw(st.integers(min_m, max_m))
    act = draw(st.sampled_from(tuple(activations)))
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = TwoLayerNet.random(d, m, activation=act, rng=gen)
    if bias and draw(st.booleans()):
        net = TwoLayerNet(net.W, net.a, 0.3 * gen.standard_normal(m), act, net.output_scale)
    if bias and draw(st.booleans()):
        net = TwoLayerNet(net.W, net.a, net.b, act, net.output_scale, gen.standard_normal())
    return net


@st.composite
def inputs(draw, d, min_scale=1e-3, max_scale=1e2):
    """A point of R^d with norm between ``min_scale`` and ``max_scale`` (log-uniform)."""
    scale = 10 ** draw(st.floats(np.log10(min_scale), np.log10(max_scale)))
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    v = gen.standard_normal(d)
    return scale * v / max(np.linalg.norm(v), 1e-300)


def radii(min_eps=1e-3, max_eps=10.0):
    """Ball radii, log-uniform."""
    return st.floats(np.log10(min_eps), np.log10(max_eps)).map(lambda t: float(10**t))


@st.composite
def problems(draw, max_d=16, max_m=32, activations=ACTIVATIONS, min_scale=1e-3, max_scale=1e2):
    """``(net, x, y, eps)`` for the quadratic loss."""
    net = draw(networks(max_d=max_d, max_m=max_m, activations=activations))
    x = draw(inputs(net.d, min_scale, max_scale))
    y = draw(st.floats(-2.0, 2.0))
    eps = draw(radii())
    return net, x, y, eps


@st.composite
def loss_problems(
    draw, max_d=16, max_m=32, activations=ACTIVATIONS, losses=LOSSES, min_scale=1e-3,
    max_scale=1e2, batch=False,
):  # fmt: skip
    """``(net, x, y, loss)`` for either loss: a random network, an input and a target.

    ``x`` is one point of shape (d,) (``batch=False``) or a batch of 1 to 4 points,
    with norms about a log-uniform scale in ``[min_scale, max_scale]``; ``y`` is a
    label in {-1, +1} for the logistic loss and a standard normal target for the
    quadratic one (a float for one point, shape (n,) for a batch).
    """
    net = draw(networks(max_d=max_d, max_m=max_m, activations=activations))
    loss = draw(st.sampled_from(tuple(losses)))
    scale = 10 ** draw(st.floats(np.log10(min_scale), np.log10(max_scale)))
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 4)), net.d) if batch else (net.d,)
    x = gen.standard_normal(shape) * scale / np.sqrt(net.d)
    if loss == "logistic":
        y = gen.choice([-1.0, 1.0], size=shape[:-1])
    else:
        y = gen.standard_normal(shape[:-1])
    return net, x, (y if batch else float(y)), loss


def assert_strict_local_max(net, x, y, delta, eps, **kwargs):
    """Fail unless :func:`fopa.certify` proves ``delta`` a strict local maximum.

    Returns the certificate.
    """
    cert = certify(net, x, y, delta, eps, **kwargs)
    if cert.kind != "strict_local_max":
        raise AssertionError(f"not a certified strict local maximum: {cert.kind} ({cert.reason})")
    return cert


def assert_monotone_ascent(result: AscentResult, rtol=1e-12):
    """Fail unless the recorded loss never decreases (run with ``record_history``)."""
    if not isinstance(result, AscentResult):
        raise TypeError("result must be a fopa.AscentResult")
    histories = result.history if isinstance(result.history, tuple) else (result.history,)
    if histories == (None,):
        raise ValueError("the run has no history: pass record_history=True")
    for k, h in enumerate(histories):
        drops = np.diff(h.loss) < -rtol * np.maximum(np.abs(h.loss[:-1]), 1e-300)
        if np.any(drops):
            t = int(np.flatnonzero(drops)[0])
            raise AssertionError(
                f"input {k}: loss fell from {h.loss[t]!r} to {h.loss[t + 1]!r} at iteration {t}"
            )


def assert_kkt_point(result: AscentResult, atol=None):
    """Fail unless every returned point is a KKT point of the ball problem.

    Tangent gradient at most ``atol`` (default ``2 (1 + eta mu) tol``-scale:
    ``10 * grad_mapping_norm + 1e-12``) and multiplier >= ``-atol``.
    """
    if not isinstance(result, AscentResult):
        raise TypeError("result must be a fopa.AscentResult")
    tangent = np.atleast_1d(result.tangent_gradient_norm)
    mult = np.atleast_1d(result.multiplier)
    gmap = np.atleast_1d(result.grad_mapping_norm)
    eta = np.atleast_1d(result.step_size)
    limit = (
        2.0 * (1.0 + eta * np.maximum(mult, 0.0)) * gmap + 1e-12
        if atol is None
        else np.full_like(gmap, atol)
    )
    bad = (tangent > limit) | (mult < -limit)
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"input {k}: tangent gradient {tangent[k]:.3g} and multiplier {mult[k]:.3g} "
            f"(limit {limit[k]:.3g}) do not make a KKT point"
        )
