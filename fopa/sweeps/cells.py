"""Built-in sweep cells: one run of a reproduction experiment, from parameters and a seed.

Each cell draws everything from ``np.random.default_rng(seed)``, so its result
depends only on its parameters and seed. Cells that share a seed share their
random instance (network, input direction, label) wherever the shapes agree: a
paired design across scales, radii and step policies, as in
:func:`fopa.experiments.input_scale_speed`.

A cell function takes keyword parameters annotated ``int``, ``float``, ``str``
or ``bool`` plus ``seed``, returns a JSON-ready dict, and may carry a ``check``
attribute that validates one cell's parameters (a dict) before any work starts.
User cells follow the same contract (``experiment = "package.module:function"``).
"""

from __future__ import annotations

import numpy as np

from ..activations import ACTIVATIONS
from ..experiments.common import RELATIVE_FACTOR, random_instance
from ..experiments.datasets import DATASETS, load_binary_dataset
from ..experiments.iterations import pga_outcome
from ..experiments.regularity import landscape_outcome
from ..experiments.scale_speed import POLICIES, policy_step
from ..experiments.training import training_curves
from ..losses import LOSSES
from ..network import TwoLayerNet

__all__ = ["pga", "landscape", "training"]


def _positive(params, *names, integer=False):
    for name in names:
        value = params[name]
        if not value > 0:
            kind = "an integer >= 1" if integer else "a number > 0"
            raise ValueError(f"{name} must be {kind}; got {value!r}")


def _choice(params, name, choices):
    if params[name] not in choices:
        raise ValueError(f"unknown {name} {params[name]!r}; expected one of {', '.join(choices)}")


def _non_negative(params, *names):
    for name in names:
        if params[name] < 0:
            raise ValueError(f"{name} must be >= 0; got {params[name]!r}")


def pga(
    *, d: int, m: int, seed: int, scale: float = 1.0, ratio: float = 0.5,
    step_policy: str = "lipschitz", fixed_step: float = 0.5,
    relative_factor: float = RELATIVE_FACTOR, tol: float = 1e-8, max_iter: int = 20_000,
    certify_every: int | str = 10,
    activation: str = "tanh", loss: str = "quadratic", init: str = "zero",
) -> dict:  # fmt: skip
    """One certified ascent on a random instance (the unit of experiments 1, 2 and 5).

    ``x = scale * x_hat`` with ``||x_hat|| = sqrt(d)``, ``eps = ratio ||x||``, PGA
    from ``init`` (``"zero"``, or ``"sphere"``: uniform on the sphere, drawn from the
    seed after the instance) with the step policy (``"fixed"``: ``fixed_step``;
    ``"relative"``: ``relative_factor * eps``; ``"lipschitz"``: ``1/beta``;
    ``"backtracking"``: the backtracking step from ``1/beta``),
    certified every ``certify_every`` iterations (an integer, or ``"auto"``: every
    iteration up to 100, then every ``ceil(t / 100)``, as the reproduction's own
    studies do). Returns the dict of
    :func:`fopa.experiments.pga_outcome`.
    """
    gen = np.random.default_rng(seed)
    instance = random_instance(d, m, activation, gen)
    return pga_outcome(
        *instance, scale=scale, ratio=ratio,
        step_size=policy_step(step_policy, fixed_step, relative_factor), tol=tol,
        max_iter=max_iter, certify_every=certify_every, loss=loss, init=init,
        rng=gen if init != "zero" else None,
    )  # fmt: skip


def _check_pga(params):
    _positive(params, "d", "m", integer=True)
    _positive(params, "scale", "ratio", "fixed_step", "relative_factor")
    _non_negative(params, "tol", "max_iter")
    every = params["certify_every"]
    if every != "auto" and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"certify_every must be an integer >= 1 or 'auto'; got {every!r}")
    _choice(params, "step_policy", POLICIES)
    _choice(params, "activation", ACTIVATIONS)
    _choice(params, "loss", LOSSES)
    _choice(params, "init", ("zero", "sphere"))


pga.check = _check_pga


def landscape(
    *, d: int, m: int, seed: int, scale: float = 1.0, ratio: float = 0.5, n_starts: int = 32,
    activation: str = "tanh", loss: str = "quadratic",
) -> dict:  # fmt: skip
    """Certified maxima of one random instance (the unit of experiment 3).

    Returns the dict of :func:`fopa.experiments.landscape_outcome`: ``n_maxima``,
    ``best_basin`` and ``taylor_distance``.
    """
    gen = np.random.default_rng(seed)
    instance = random_instance(d, m, activation, gen)
    return landscape_outcome(
        *instance, scale=scale, ratio=ratio, n_starts=n_starts, loss=loss, rng=gen
    )


def _check_landscape(params):
    _positive(params, "d", "m", "n_starts", integer=True)
    _positive(params, "scale", "ratio")
    _choice(params, "activation", ACTIVATIONS)
    _choice(params, "loss", LOSSES)


landscape.check = _check_landscape


def training(
    *, dataset: str, seed: int, scale: float = 1.0, m: int = 32, epochs: int = 30,
    ratio: float = 0.1, learning_rate: float = 0.5, pga_steps: int = 10,
    pga_step_factor: float = 0.25, target_fraction: float = 0.5, activation: str = "tanh",
) -> dict:  # fmt: skip
    """Adversarial training on a scikit-learn data set at one input scale (experiment 4).

    The initial network is drawn from the seed (the same for every scale with that
    seed, as in :func:`fopa.experiments.adversarial_training`). Returns the curves
    of :func:`fopa.experiments.training_curves`; ``target_fraction`` is used when
    a study is built from the cells.
    """
    X, y = load_binary_dataset(dataset)
    net0 = TwoLayerNet.random(X.shape[1], m, activation=activation, rng=seed)
    return training_curves(
        X, y, net0, scale, epochs=epochs, ratio=ratio, learning_rate=learning_rate,
        pga_steps=pga_steps, pga_step_factor=pga_step_factor,
    )  # fmt: skip


def _check_training(params):
    _choice(params, "dataset", DATASETS)
    _positive(params, "m", "epochs", "pga_steps", integer=True)
    _positive(params, "scale", "ratio", "learning_rate", "pga_step_factor", "target_fraction")
    _choice(params, "activation", ACTIVATIONS)


training.check = _check_training
