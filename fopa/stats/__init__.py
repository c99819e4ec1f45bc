"""Statistics for censored counts and growth claims (``docs/stats.md``).

* :func:`bootstrap_interval`: percentile or BCa intervals, with paired and cluster
  resampling; :func:`proportion_interval`: the exact interval of a share;
* :func:`kaplan_meier`: survival curves of counts where unfinished runs are censored,
  with quantiles and their intervals;
* :func:`growth_fit`: power law or exponential, with the evidence;
* :func:`joint_power_fit`: a power law in two sizes with their interaction, over a grid;
* :class:`Verdict` and :func:`sign_verdict`: verdicts that can say "disagrees".
"""

from ._bootstrap import Interval, bootstrap_interval, proportion_interval
from ._growth import GROWTH_MODELS, MIN_SIZES, MIN_SPAN, GrowthFit, growth_decidable, growth_fit
from ._joint import JointPowerFit, joint_power_fit
from ._survival import SurvivalCurve, censored_times, kaplan_meier, km_quantile
from ._verdict import VERDICTS, Verdict, sign_verdict

__all__ = [
    "GROWTH_MODELS",
    "MIN_SIZES",
    "MIN_SPAN",
    "VERDICTS",
    "GrowthFit",
    "Interval",
    "JointPowerFit",
    "SurvivalCurve",
    "Verdict",
    "bootstrap_interval",
    "censored_times",
    "growth_decidable",
    "growth_fit",
    "joint_power_fit",
    "kaplan_meier",
    "km_quantile",
    "proportion_interval",
    "sign_verdict",
]
