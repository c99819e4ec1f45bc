"""PNG figures of the reproduction report, one per study (needs matplotlib).

Each study draws its own :class:`matplotlib.figure.Figure` (the ``figure`` of its
registry entry); nothing here touches pyplot or the matplotlib backend.
"""

from __future__ import annotations

import os

from ..experiments.registry import STUDIES


def write_figure(name, result, out):
    """Draw study ``name``'s figure of ``result`` and write it to ``out/<name>.png``.

    The PNG is written to a temporary file first and then renamed, so an
    interrupted write never leaves a half-written figure. Returns
    ``{"file": ..., "panels": ...}``, its entry in ``results.json``.
    """
    fig = STUDIES[name].figure(result)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    path = os.path.join(out, f"{name}.png")
    partial = path + ".tmp"
    try:
        fig.savefig(partial, dpi=110, bbox_inches="tight", format="png")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return {"file": f"{name}.png", "panels": len(fig.axes)}


def write_figures(results, out, *, drawn=None):
    """Write one PNG per study of ``results`` into ``out``; return {name: {file, panels}}.

    ``drawn`` holds the entries of figures already written (by
    :func:`write_figure`, in the process that ran the study); they are not drawn
    again.
    """
    drawn = {} if drawn is None else drawn
    return {name: drawn[name] if name in drawn else write_figure(name, result, out)
            for name, result in results.items()}  # fmt: skip
