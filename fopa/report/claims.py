"""The claims table: each study's rows (from the registry), grouped by claim."""

from __future__ import annotations

from ..experiments.registry import CLAIMS, STUDIES


def claims_table(results):
    """Rows ``{claim, experiment, statistic, agrees, settings}`` for the studies in
    ``results`` (``{name: result}``), in the order of :data:`CLAIMS`."""
    rows = []
    for name, result in results.items():
        rows += STUDIES[name].claims(name, result)
    return sorted(rows, key=lambda row: CLAIMS.index(row["claim"]))
