"""What the studies share: the random instance, result objects, number formats and
the arrangement of sweep cells into arrays (statistics: :mod:`fopa.stats`; verdicts:
:mod:`.verdicts`).

The setting is the initial phase of training: ``TwoLayerNet.random`` (``W_rj ~ N(0,
1/d)``, ``a_r = +-1``, ``c = 1/sqrt(m)``), an input direction ``x_hat`` with
``||x_hat|| = sqrt(d)`` (so pre-activations are of order 1 at unit scale), a label
``y = +-1``, and the radius tied to the input: ``eps = ratio * ||x||``.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from .._json import jsonable
from .._pga_runs import RELATIVE_FACTOR
from ..network import TwoLayerNet

__all__ = [
    "POLICIES", "RELATIVE_FACTOR", "StudyResult", "claims_row", "policy_step", "random_instance",
]  # fmt: skip

#: Step-size policies of the speed study: a fixed eta, eta proportional to eps, 1/beta
#: (tight) and the backtracking step that starts there.
POLICIES = ("fixed", "relative", "lipschitz", "backtracking")


def policy_step(policy, fixed_step, relative_factor):
    """The ``step_size`` argument of :func:`fopa.projected_gradient_ascent` for a policy."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if policy == "fixed":
        return fixed_step
    if policy == "relative":
        return ("relative", relative_factor)
    return policy


class StudyResult:
    """Base of the frozen study dataclasses: ``to_dict()`` is JSON-ready."""

    def to_dict(self) -> dict:
        """Every field as JSON-ready lists and numbers."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


def random_instance(d, m, activation, gen):
    """``(net, x_hat, y)``: an initial-phase network, a direction of norm sqrt(d) and a
    label +-1, drawn from the Generator ``gen`` in that order."""
    net = TwoLayerNet.random(d, m, activation=activation, rng=gen)
    x_hat = gen.standard_normal(d)
    x_hat *= np.sqrt(d) / np.linalg.norm(x_hat)
    y = float(gen.choice([-1.0, 1.0]))
    return net, x_hat, y


def claims_row(*, claim, experiment, statistic, verdict, n, settings):
    """One row of the claims table: the verdict (a :class:`fopa.stats.Verdict` or its
    ``to_dict()``) as ``verdict``, ``rule`` and ``reason``, with the samples ``n``."""
    v = verdict if isinstance(verdict, dict) else verdict.to_dict()
    return dict(claim=claim, experiment=experiment, statistic=statistic,
                verdict=v["outcome"], rule=v["rule"], reason=v["reason"], n=n,
                settings=settings)  # fmt: skip


def fmt(v):
    """A slope to two decimals, or n/a."""
    return "n/a" if v is None else f"{v:.2f}"


def fmt_interval(interval):
    """``[low, high]`` to two decimals, or nothing."""
    return "" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


# Sweep cells (rows of a store: dicts with "params", "outputs" and "seed") as arrays.


def cell_axis(rows, name, *, order=None):
    """The values a parameter takes over the rows, sorted (or in ``order``)."""
    values = list(dict.fromkeys(r["params"][name] for r in rows))
    if order is None:
        return sorted(values)
    return [v for v in order if v in values]


def constant_settings(rows, names):
    """The parameters ``names`` of the first row (constant over a study's rows)."""
    return {k: rows[0]["params"][k] for k in names}


def cell_array(rows, axes, seeds, output, dtype, fill):
    """``outputs[output]`` arranged by the axes' values and the seeds."""
    shape = tuple(len(values) for _, values in axes) + (len(seeds),)
    out = np.full(shape, fill, dtype)
    position = [{v: i for i, v in enumerate(values)} for _, values in axes]
    seed_at = {s: i for i, s in enumerate(seeds)}
    for r in rows:
        index = tuple(p[r["params"][name]] for p, (name, _) in zip(position, axes, strict=True))
        value = r["outputs"].get(output)  # None (or absent, older stores): fill
        out[index + (seed_at[r["seed"]],)] = fill if value is None else value
    return out
