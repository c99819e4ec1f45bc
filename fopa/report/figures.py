"""PNG figures of the reproduction report, one per study (needs matplotlib).

Each study draws its own :class:`matplotlib.figure.Figure` (the ``figure`` of its
registry entry); nothing here touches pyplot or the matplotlib backend.
"""

from __future__ import annotations

import os

from ..experiments.registry import STUDIES


def write_figures(results, out):
    """Write one PNG per study of ``results`` into ``out``; return {name: {file, panels}}."""
    written = {}
    for name, result in results.items():
        fig = STUDIES[name].figure(result)
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}.png"), dpi=110, bbox_inches="tight")
        written[name] = {"file": f"{name}.png", "panels": len(fig.axes)}
    return written
