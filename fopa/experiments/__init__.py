"""Experiments that put the paper's claims to the test.

One module per study (:mod:`.iterations`, :mod:`.iteration_quantiles`, :mod:`.scale_speed`,
:mod:`.regularity`, :mod:`.training`, :mod:`.protocols`, :mod:`.checkpoints`,
:mod:`.tolerance`, :mod:`.tail_rates`), the helpers they share
(:mod:`.common`), the data sets (:mod:`.datasets`) and the table of studies that the
report and the sweeps read (:mod:`.registry`). Each experiment is a function with its
parameters, drawing everything from one ``rng``, and returns a frozen result whose
``to_dict()`` is JSON-ready. Nothing here assumes the paper's answer: the statistics
are reported as measured, with bootstrap intervals, and the claims rows say what they
show.
"""

from .checkpoints import CheckpointStudy, training_checkpoints
from .common import random_instance
from .datasets import DATASETS, MNIST_TASKS, load_binary_dataset, load_training_split
from .iteration_quantiles import TailStudy, iteration_tails, tail_study
from .iterations import IterationStudy, iteration_study, pga_outcome, polynomial_iterations
from .protocols import PROTOCOLS, ProtocolStudy, training_protocols
from .regularity import (
    ScaleRegularityStudy,
    input_scale_regularity,
    landscape_outcome,
    regularity_study,
)
from .scale_speed import POLICIES, ScaleSpeedStudy, input_scale_speed, policy_step, speed_study
from .tail_rates import TailRateStudy, tail_rates_against_scale
from .tolerance import ToleranceStudy, iterations_against_tolerance
from .training import (
    TrainingStudies,
    TrainingStudy,
    adversarial_training,
    training_curves,
    training_study,
)

__all__ = [
    "DATASETS",
    "MNIST_TASKS",
    "PROTOCOLS",
    "ProtocolStudy",
    "training_protocols",
    "CheckpointStudy",
    "training_checkpoints",
    "load_training_split",
    "POLICIES",
    "IterationStudy",
    "ScaleSpeedStudy",
    "ScaleRegularityStudy",
    "TrainingStudy",
    "TrainingStudies",
    "adversarial_training",
    "load_binary_dataset",
    "polynomial_iterations",
    "input_scale_speed",
    "input_scale_regularity",
    "pga_outcome",
    "landscape_outcome",
    "training_curves",
    "policy_step",
    "random_instance",
    "iteration_study",
    "speed_study",
    "regularity_study",
    "training_study",
    "TailRateStudy",
    "tail_rates_against_scale",
    "ToleranceStudy",
    "iterations_against_tolerance",
    "TailStudy",
    "iteration_tails",
    "tail_study",
]
