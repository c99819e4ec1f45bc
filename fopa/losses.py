"""Losses l(f, y) of the network output f, with derivatives in f up to order three.

* ``"quadratic"``: ``l = (f - y)^2 / 2``, so ``l' = f - y``, ``l'' = 1``, ``l''' = 0``.
* ``"logistic"``: ``l = log(1 + exp(-y f))`` for labels ``y in {-1, +1}``. With
  ``u = y f`` and the logistic function ``s``: ``l' = -y s(-u)``,
  ``l'' = s(u) s(-u)`` and ``l''' = y s(u) s(-u) (s(-u) - s(u))``.

The derivatives are compiled in :mod:`fopa._kernels.loss`; this module names the
losses and validates targets.
"""

from __future__ import annotations

import numpy as np

from ._kernels.loss import LOGISTIC_LOSS, LOSSES

__all__ = ["LOSSES", "check_targets", "loss_code"]


def loss_code(loss) -> int:
    """Integer code of a loss name; raise a clear error for anything else."""
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a string, one of {LOSSES}; got {loss!r}")
    try:
        return LOSSES.index(loss)
    except ValueError:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}") from None


def check_targets(code: int, Y: np.ndarray) -> None:
    """Logistic targets must be labels in {-1, +1}."""
    if code == LOGISTIC_LOSS and not np.all(np.abs(Y) == 1.0):
        raise ValueError("y must be labels in {-1, +1} for the logistic loss")
