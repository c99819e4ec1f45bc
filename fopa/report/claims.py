"""The claims table: each study's rows (from the registry), grouped by claim."""

from __future__ import annotations

from ..experiments.registry import CLAIMS, STUDIES
from ..stats import VERDICTS


def claims_table(results, *, computed=None):
    """Rows ``{claim, experiment, statistic, verdict, rule, reason, n, settings}`` for
    the studies in ``results`` (``{name: result}``), in the order of :data:`CLAIMS`.

    ``verdict`` is one of :data:`fopa.stats.VERDICTS`, ``rule`` the rule that decided
    it, ``reason`` what it saw and ``n`` the samples behind it. ``computed`` holds
    ``{name: rows}`` of studies whose rows were already made (by their registry
    ``claims``, in the process that ran the study); they are not made again."""
    computed = {} if computed is None else computed
    rows = []
    for name, result in results.items():
        rows += computed[name] if name in computed else STUDIES[name].claims(name, result)
    for row in rows:
        if row["verdict"] not in VERDICTS:
            raise ValueError(f"{row['experiment']}: verdict {row['verdict']!r} is not one of "
                             f"{', '.join(VERDICTS)}")  # fmt: skip
    return sorted(rows, key=lambda row: CLAIMS.index(row["claim"]))
