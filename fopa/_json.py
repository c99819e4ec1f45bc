"""Plain JSON values from fopa's results: arrays, numpy scalars, tuples and dicts."""

from __future__ import annotations

import numpy as np


def jsonable(value):
    """``value`` with arrays as lists, numpy scalars as Python numbers, tuples as lists
    and dicts converted entry by entry; anything else is returned as it is."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
