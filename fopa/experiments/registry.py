"""The one table of studies: what runs, with which parameters, and how it is reported.

Every study of the reproduction has one :class:`Study` entry here: the function
that runs it, its parameters per configuration, the claim it tests, its claims
rows and figure, and how it is rebuilt from a sweep's cells. The report
(:mod:`fopa.report`), the sweep results (:mod:`fopa.sweeps.results`) and the
command line read this table; no study name is written anywhere else.

Adding a study: write its module in this package (the run function, a frozen
result with ``to_dict``, ``claims(name, result)``, ``figure(result)`` and, if a
sweep cell can build it, ``from_cells(seeds, rows, rng=...)``), then add one entry
to :data:`STUDIES` (``docs/architecture.md``, "Recipes").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import (
    checkpoints,
    iteration_quantiles,
    iterations,
    protocols,
    regularity,
    saddles,
    scale_speed,
    tail_rates,
    tolerance,
    training,
)

__all__ = ["CLAIMS", "CONFIG_NAMES", "STUDIES", "Study", "configuration", "study_for_cells"]

#: The paper's claims, in the order of the claims table.
CLAIMS = (
    iterations.CLAIM,
    "2. smaller input scale, faster convergence of PGA",
    "2. smaller input scale, more regular landscape",
    "2. smaller input scale, faster adversarial training",
    tolerance.CLAIM,
    scale_speed.CONTROL_CLAIM,
    saddles.ESCAPE_CLAIM,
)

#: Configurations: "quick" (under 3 minutes on 2 cores), "full" (the default, under 30
#: minutes), "tiny" (seconds, for tests).
CONFIG_NAMES = ("full", "quick", "tiny")


@dataclass(frozen=True)
class Study:
    """One study of the reproduction.

    Attributes
    ----------
    name : str
        The key of its results in ``results.json`` and of its figure file.
    run : callable
        ``run(rng=seed, **params)`` returns the study's result (``to_dict()``).
    configs : dict
        Parameters per configuration name (every name of :data:`CONFIG_NAMES`).
    claim : str
        The claim of :data:`CLAIMS` it tests.
    claims : callable
        ``claims(name, result)``: its rows of the claims table.
    figure : callable
        ``figure(result)``: a matplotlib Figure.
    cell : str or None
        The built-in sweep cell whose stores rebuild it (``"pga"``, ``"landscape"``,
        ``"training"``), with ``cell_axes`` the parameters such a sweep may vary
        and ``cell_loss`` the loss its cells must have (None: any); ``cell_fixed``
        holds parameters its cells must have (e.g. the step policy), with their
        defaults.
    from_cells : callable or None
        ``from_cells(seeds, rows, rng=generator)``: the result from a store's rows.
    """

    name: str
    run: Callable
    configs: dict
    claim: str
    claims: Callable
    figure: Callable
    cell: str | None = None
    cell_axes: frozenset = field(default_factory=frozenset)
    cell_loss: str | None = None
    cell_fixed: dict = field(default_factory=dict)
    from_cells: Callable | None = None


#: The arms of the iteration study: (name suffix, step policy, start).
ITERATION_ARMS = (
    ("", "lipschitz", "zero"),
    ("_backtracking", "backtracking", "zero"),
    ("_fixed_step", "fixed", "zero"),
    ("_sphere_start", "lipschitz", "sphere"),
)

#: The iteration study's grids per configuration (the same for every arm and loss).
ITERATION_GRIDS = {
    "tiny": dict(ds=(3, 6), ms=(6, 12), n_runs=3),
    "quick": dict(ds=(4, 8, 16, 32, 64), ms=(16, 32, 64, 128, 256), n_runs=10),
    "full": dict(ds=(4, 8, 16, 32, 64, 128), ms=(16, 32, 64, 128, 256, 512, 1024), n_runs=30),
}


#: The tail study's grids: enough runs per cell for a 0.99 quantile with an interval,
#: and an axis of 4 sizes spanning a factor of at least 4 for its growth (tiny: none).
TAIL_GRIDS = {
    "tiny": dict(ds=(3, 6), ms=(6,), n_runs=4),
    "quick": dict(ds=(4, 8, 16, 32), ms=(16,), n_runs=200),
    "full": dict(ds=(4, 8, 16, 32, 64), ms=(16, 256), n_runs=1000),
}


def _iteration_studies():
    common = dict(
        run=iterations.polynomial_iterations, claim=CLAIMS[0], claims=iterations.iteration_claims,
        figure=iterations.iteration_figure, cell="pga", cell_axes=frozenset({"d", "m"}),
        from_cells=iterations.iteration_study_from_cells,
    )  # fmt: skip
    out = []
    prefixes = (("quadratic", "polynomial_iterations"), ("logistic", "logistic_iterations"))
    for loss, prefix in prefixes:
        for suffix, policy, init in ITERATION_ARMS:
            configs = {
                name: dict(grid, step_policy=policy, init=init, loss=loss)
                for name, grid in ITERATION_GRIDS.items()
            }
            out.append(Study(
                prefix + suffix, configs=configs, cell_loss=loss,
                cell_fixed={"step_policy": policy, "init": init}, **common,
            ))  # fmt: skip
    return out


#: The regularity study at larger d (256 starts per instance; at d = 784 fewer instances
#: and scales: one instance at tau = 3 took 52 s there, with no maximum certified).
WIDE_REGULARITY = {
    100: {
        "tiny": dict(taus=(0.1, 3.0), d=12, m=12, n_runs=2, n_starts=16),
        "quick": dict(taus=(0.1, 3.0), d=100, m=100, n_runs=3, n_starts=256),
        "full": dict(taus=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0), d=100, m=100, n_runs=30,
                     n_starts=256),
    },
    784: {
        "tiny": dict(taus=(0.1, 1.0), d=16, m=8, n_runs=2, n_starts=16),
        "quick": dict(taus=(0.1, 1.0), d=784, m=64, n_runs=2, n_starts=64),
        "full": dict(taus=(0.01, 0.1, 0.3, 1.0), d=784, m=64, n_runs=8, n_starts=256),
    },
}  # fmt: skip

#: The speed study's radii: eps / ||x|| (the paper's setting, one study each), and
#: the control at a fixed absolute radius (``absolute_eps * sqrt(d)`` at every tau).
SPEED_RATIOS = (0.5, 0.01, 0.1, 1.0)
CONTROL_ABSOLUTE_EPS = 0.05


def _speed_studies(speed, speed_configs, with_loss):
    out = []
    for loss, prefix in (("quadratic", "input_scale_speed"), ("logistic", "logistic_speed")):
        configs = with_loss(speed_configs, loss)
        for ratio in SPEED_RATIOS:
            name = prefix if ratio == 0.5 else f"{prefix}_ratio_{ratio:g}"
            fixed = {} if ratio == 0.5 else {"ratio": ratio}
            out.append(Study(name, configs={k: dict(v, ratio=ratio) for k, v in configs.items()},
                             cell_loss=loss, cell_fixed=fixed, **speed))  # fmt: skip
        out.append(Study(
            f"{prefix}_fixed_eps", configs={
                k: dict(v, absolute_eps=CONTROL_ABSOLUTE_EPS) for k, v in configs.items()
            }, **{**speed, "claim": CLAIMS[5], "cell": None, "from_cells": None},
        ))  # fmt: skip
    return out


def _entries():
    speed = dict(
        run=scale_speed.input_scale_speed, claim=CLAIMS[1], claims=scale_speed.speed_claims,
        figure=scale_speed.speed_figure, cell="pga",
        cell_axes=frozenset({"scale", "step_policy"}),
        from_cells=scale_speed.speed_study_from_cells,
    )  # fmt: skip
    regular = dict(
        run=regularity.input_scale_regularity, claim=CLAIMS[2],
        claims=regularity.regularity_claims, figure=regularity.regularity_figure,
        cell="landscape", cell_axes=frozenset({"scale"}),
        from_cells=regularity.regularity_study_from_cells,
    )  # fmt: skip
    regular_configs = {
        "tiny": dict(taus=(0.05, 1.0), d=3, m=6, n_runs=2, n_starts=8),
        "quick": dict(taus=(0.01, 0.1, 1.0, 3.0), n_runs=10, n_starts=32),
        "full": dict(taus=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0), n_runs=30, n_starts=64),
    }
    speed_configs = {
        "tiny": dict(taus=(0.05, 0.5), d=4, m=8, n_runs=3),
        "quick": dict(taus=(0.01, 0.1, 1.0), n_runs=20),
        "full": dict(taus=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), n_runs=50),
    }
    tol = dict(run=tolerance.iterations_against_tolerance, claim=CLAIMS[4],
               claims=tolerance.tolerance_claims, figure=tolerance.tolerance_figure)  # fmt: skip
    tol_configs = {
        "tiny": dict(d=4, m=8, n_runs=3, tolerances=(1e-2, 1e-4, 1e-6, 1e-8)),
        "quick": dict(n_runs=20),
        "full": dict(n_runs=50),
    }

    rates = dict(
        run=tail_rates.tail_rates_against_scale, claim=CLAIMS[4],
        claims=tail_rates.tail_rate_claims, figure=tail_rates.tail_rate_figure,
    )  # fmt: skip
    rate_configs = {
        "tiny": dict(taus=(0.05, 0.5), d=4, m=8, n_runs=3),
        "quick": dict(taus=(0.01, 0.1, 1.0), n_runs=10),
        "full": dict(taus=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), n_runs=50),
    }

    saddle = dict(run=saddles.saddle_escape, claim=CLAIMS[0], claims=saddles.saddle_claims,
                  figure=saddles.saddle_figure)  # fmt: skip
    saddle_configs = {
        "tiny": dict(taus=(3.0,), d=4, m=8, n_runs=3, n_directions=2, radii=(1e-8, 1e-6, 1e-4),
                     newton_starts=16, max_iter=5_000),
        "quick": dict(taus=(3.0,), n_runs=12, max_iter=20_000),
        "full": dict(taus=(3.0, 10.0), n_runs=30, max_iter=50_000),
    }  # fmt: skip

    def with_loss(configs, loss):
        return {name: dict(params, loss=loss) for name, params in configs.items()}

    protocol_study = Study(
        "training_protocols",
        run=protocols.training_protocols,
        configs={
            "tiny": dict(
                dataset="breast_cancer",
                taus=(0.3, 1.0),
                m=6,
                epochs=3,
                n_seeds=2,
                lr_grid=(0.1, 1.0),
                probe_epochs=(0, 3),
                probe_points=3,
                probe_budget=100,
                eval_points=10,
                batch_size=None,
            ),
            "quick": dict(
                taus=(0.1, 1.0, 3.0),
                m=16,
                epochs=10,
                n_seeds=3,
                lr_grid=(0.1, 0.3, 1.0, 3.0),
                probe_epochs=(0, 1, 5, 10),
                probe_points=5,
                probe_budget=200,
                eval_points=30,
            ),
            "full": dict(
                taus=(0.1, 0.3, 1.0, 3.0),
                m=32,
                epochs=20,
                n_seeds=10,
                probe_epochs=(0, 1, 5, 20),
                probe_points=10,
                probe_budget=500,
                eval_points=100,
            ),
        },
        claim=CLAIMS[3],
        claims=protocols.protocol_claims,
        figure=protocols.protocol_figure,
    )

    even_odd = {
        "tiny": dict(protocol_study.configs["tiny"], dataset="mnist_even_odd",
                     taus=(0.3, 1.0), m=4, epochs=1, probe_epochs=(0, 1),
                     probe_points=2, probe_budget=50, eval_points=4),
        "quick": dict(protocol_study.configs["quick"], dataset="mnist_even_odd",
                      epochs=5, n_seeds=2, probe_epochs=(0, 5)),
        "full": dict(protocol_study.configs["full"], dataset="mnist_even_odd"),
    }  # fmt: skip
    checkpoint_study = Study(
        "training_checkpoints",
        run=checkpoints.training_checkpoints,
        configs={
            "tiny": dict(
                dataset="breast_cancer",
                taus=(0.3, 1.0),
                m=6,
                n_seeds=2,
                checkpoints=(0, 3),
                pga_epochs=2,
                probe_points=3,
                probe_budget=100,
                landscape_points=2,
                n_starts=4,
                landscape_budget=500,
                batch_size=None,
            ),
            "quick": dict(
                taus=(0.1, 1.0, 3.0),
                m=16,
                n_seeds=2,
                checkpoints=(0, 1, 5, 20),
                pga_epochs=5,
                probe_points=5,
                probe_budget=1000,
                landscape_points=3,
                n_starts=6,
                landscape_budget=2000,
            ),
            "full": dict(),
        },
        claim=CLAIMS[2],
        claims=checkpoints.checkpoint_claims,
        figure=checkpoints.checkpoint_figure,
    )
    return (
        *_iteration_studies(),
        *_speed_studies(speed, speed_configs, with_loss),
        Study(
            "input_scale_regularity", configs=regular_configs, cell_loss="quadratic", **regular
        ),  # fmt: skip
        Study(
            "logistic_regularity",
            configs=with_loss(regular_configs, "logistic"),
            cell_loss="logistic",
            **regular,
        ),  # fmt: skip
        Study("tolerance_iterations", configs=tol_configs, **tol),
        Study("logistic_tolerance", configs=with_loss(tol_configs, "logistic"), **tol),
        Study(
            "adversarial_training",
            run=training.adversarial_training_all,
            configs={
                "tiny": dict(taus=(0.3, 1.0), m=8, epochs=3),
                "quick": dict(taus=(0.1, 0.3, 1.0), epochs=20),
                "full": dict(taus=(0.03, 0.1, 0.3, 1.0), epochs=100),
            },
            claim=CLAIMS[3],
            claims=training.training_claims,
            figure=training.training_figure,
            cell="training",
            cell_axes=frozenset({"scale", "dataset"}),
            from_cells=training.training_studies_from_cells,
        ),
        protocol_study,
        checkpoint_study,
        Study(
            "logistic_training_checkpoints",
            run=checkpoint_study.run,
            configs=with_loss(checkpoint_study.configs, "logistic"),
            claim=CLAIMS[2],
            claims=checkpoints.checkpoint_claims,
            figure=checkpoints.checkpoint_figure,
        ),
        # last: study seeds are spawned by position, so the studies above keep theirs
        Study("tail_rates_across_scales", configs=rate_configs, **rates),
        Study("logistic_tail_rates", configs=with_loss(rate_configs, "logistic"), **rates),
        Study(
            "logistic_training_protocols",
            run=protocols.training_protocols,
            configs=with_loss(protocol_study.configs, "logistic"),
            claim=CLAIMS[3],
            claims=protocols.protocol_claims,
            figure=protocols.protocol_figure,
        ),
        *(Study(prefix + suffix, configs={k: dict(v, step_policy=policy) for k, v in
                                          with_loss(saddle_configs, loss).items()}, **saddle)
          for prefix, loss in (("saddle_escape", "quadratic"),
                               ("logistic_saddle_escape", "logistic"))
          for suffix, policy in (("", "lipschitz"), ("_backtracking", "backtracking"))),
        *(Study(f"{prefix}_d{d}", configs=with_loss(configs, loss),
                **{**regular, "cell": None, "from_cells": None})
          for d, configs in WIDE_REGULARITY.items()
          for prefix, loss in (("input_scale_regularity", "quadratic"),
                               ("logistic_regularity", "logistic"))),
        # the second MNIST task, with the design of training_protocols (same target,
        # epochs and seeds); 5x the training digits, about 1.8x its time
        Study(
            "training_protocols_even_odd",
            run=protocols.training_protocols,
            configs=even_odd,
            claim=CLAIMS[3],
            claims=protocols.protocol_claims,
            figure=protocols.protocol_figure,
        ),
        # the tail of polynomial_iterations' counts: the same ascents, many runs per cell
        Study(
            "polynomial_iterations_tail",
            run=iteration_quantiles.iteration_tails,
            configs={
                name: dict(grid, step_policy="lipschitz", init="zero", loss="quadratic")
                for name, grid in TAIL_GRIDS.items()
            },
            claim=CLAIMS[0], claims=iteration_quantiles.tail_claims,
            figure=iteration_quantiles.tail_figure, cell="pga", cell_axes=frozenset({"d", "m"}),
            cell_loss="quadratic", cell_fixed={"step_policy": "lipschitz", "init": "zero"},
            from_cells=iteration_quantiles.tail_study_from_cells,
        ),
        Study(
            "logistic_training_protocols_even_odd",
            run=protocols.training_protocols,
            configs=with_loss(even_odd, "logistic"),
            claim=CLAIMS[3],
            claims=protocols.protocol_claims,
            figure=protocols.protocol_figure,
        ),
    )  # fmt: skip


#: Every study, in the order the reproduction runs them.
STUDIES = {study.name: study for study in _entries()}


def configuration(name):
    """``{study name: parameters}`` of a configuration, in :data:`STUDIES` order."""
    if name not in CONFIG_NAMES:
        raise ValueError(f"unknown config {name!r}; expected one of {', '.join(CONFIG_NAMES)}")
    return {study.name: study.configs[name] for study in STUDIES.values()}


def study_for_cells(cell, swept, loss, params=None, *, name=None):
    """The study that a store of ``cell`` cells sweeping ``swept`` gives for ``loss``
    (the loss of the rows at hand; None for cells without one) and ``params`` (one
    cell's parameters, matched against each study's ``cell_fixed``).

    A store whose spec is ``name``d after a study that such cells build gives that
    study (``polynomial_iterations_tail`` reads the same cells as
    ``polynomial_iterations``, with more runs); otherwise the most specific study
    such cells build, the first in :data:`STUDIES` order among equals.

    Raises
    ------
    ValueError
        If no study is built from such cells.
    """
    swept = set(swept)
    # the most specific study first: the one whose fixed parameters say the most
    candidates = sorted((s for s in STUDIES.values() if s.cell == cell),
                        key=lambda s: -len(s.cell_fixed))  # fmt: skip
    if not candidates:
        raise ValueError(f"no reproduction study is built from experiment {cell!r}")

    def fits(study):
        # a study for one loss takes the rows of that loss from a store that sweeps it
        axes = study.cell_axes | ({"loss"} if study.cell_loss else set())
        fixed = all(
            (params or {}).get(k, v) == v for k, v in study.cell_fixed.items() if k not in swept
        )
        return swept <= axes and study.cell_loss in (None, loss) and fixed

    for study in [s for s in candidates if s.name == name] + candidates:
        if fits(study):
            return study
    axes = "; ".join(f"{s.name} sweeps {sorted(s.cell_axes)}" for s in candidates)
    raise ValueError(f"no study sweeps {sorted(swept)} with {cell} cells ({axes})")
