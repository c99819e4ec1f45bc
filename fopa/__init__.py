"""fopa: first-order adversaries on two-layer networks.

Exact input derivatives of the loss, compiled with numba, and the tools built
on them. See ``docs/`` for the mathematics and the API, and
``docs/architecture.md`` for the layers.
"""

from . import attacks, stats
from ._version import __version__
from .activations import ACTIVATIONS, activation_derivatives, sup_abs_derivatives
from .adversarial import (
    CertifiedPGA,
    EpochRecord,
    InnerStatistics,
    NormalizedPGD,
    TrainingResult,
    adversarial_training,
    robust_evaluation,
)
from .ascent import AscentResult, History, Perturbation, Restarts, projected_gradient_ascent
from .audit import BoundAudit, audit_ball_constants
from .bounds import BallConstants, IterationBound, ball_constants, iteration_bound
from .certify import Certificate, certify, local_rate, tangent_hessian, tangent_spectrum
from .compare import AttackComparison, compare_attacks
from .critical import CriticalPoints, critical_points
from .derivatives import (
    hessian_vector_product,
    input_gradient,
    input_hessian,
    loss,
    predict,
    third_derivative,
)
from .diagnostics import TaylorCheck, check_gradient, check_hessian
from .global_max import GlobalBound, global_maximum
from .landscape import Landscape, LocalMaximum, local_maxima, taylor_model_maximum
from .losses import LOSSES
from .network import TwoLayerNet
from .precompile import Precompiled, precompile
from .sweeps import (
    ResultStore,
    StoreError,
    SweepSpec,
    export_results,
    load_spec,
    report_from_stores,
    run_sweep,
)
from .training import ParameterGradient, parameter_gradient
from .trust_region import TrustRegionSolution, maximize_quadratic_on_ball

__all__ = [
    "__version__",
    "stats",
    "attacks",
    "ACTIVATIONS",
    "LOSSES",
    "TwoLayerNet",
    "activation_derivatives",
    "sup_abs_derivatives",
    "predict",
    "loss",
    "input_gradient",
    "input_hessian",
    "hessian_vector_product",
    "third_derivative",
    "BallConstants",
    "ball_constants",
    "BoundAudit",
    "audit_ball_constants",
    "TaylorCheck",
    "check_gradient",
    "check_hessian",
    "AscentResult",
    "History",
    "Perturbation",
    "Restarts",
    "projected_gradient_ascent",
    "iteration_bound",
    "IterationBound",
    "Certificate",
    "certify",
    "local_rate",
    "tangent_hessian",
    "tangent_spectrum",
    "TrustRegionSolution",
    "maximize_quadratic_on_ball",
    "Landscape",
    "LocalMaximum",
    "local_maxima",
    "CriticalPoints",
    "critical_points",
    "taylor_model_maximum",
    "adversarial_training",
    "robust_evaluation",
    "NormalizedPGD",
    "CertifiedPGA",
    "EpochRecord",
    "InnerStatistics",
    "TrainingResult",
    "GlobalBound",
    "global_maximum",
    "AttackComparison",
    "compare_attacks",
    "ParameterGradient",
    "parameter_gradient",
    "SweepSpec",
    "load_spec",
    "run_sweep",
    "ResultStore",
    "StoreError",
    "export_results",
    "report_from_stores",
    "Precompiled",
    "precompile",
]
