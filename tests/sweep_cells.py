"""User-defined sweep cells for the sweep tests (``experiment = "tests.sweep_cells:..."``)."""

import time

import numpy as np

from fopa.sweeps import cells


def slow_pga(*, d: int, m: int, seed: int, scale: float = 1.0, delay: float = 0.05) -> dict:
    """A built-in pga cell followed by a pause, so a sweep can be killed midway."""
    out = cells.pga(d=d, m=m, seed=seed, scale=scale)
    time.sleep(delay)
    return out


def draw(*, n: int, seed: int, fail_on: int = -1, nan: bool = False) -> dict:
    """Random numbers from the seed; raises when ``seed == fail_on``."""
    if seed == fail_on:
        raise RuntimeError(f"cell with seed {seed} fails on purpose")
    values = np.random.default_rng(seed).standard_normal(n)
    if nan:
        values[0] = np.nan
    return {"values": values, "total": float(values.sum())}


def no_seed(*, n: int) -> dict:
    return {"n": n}


def crash(*, n: int, seed: int) -> dict:
    """Kills its worker process when the environment says so (a segfault stand-in)."""
    import os

    if os.environ.get("FOPA_TEST_CRASH_SEED") == str(seed):
        os._exit(3)
    return {"n": n, "seed": seed}


def exits(*, n: int, seed: int) -> dict:
    """Calls sys.exit for seed 1 (a cell that ends the interpreter, on purpose)."""
    import sys

    if seed == 1:
        sys.exit(4)
    return {"n": n}


def named(*, status: int, error: int, seed: int) -> dict:
    """Parameters named like the store's bookkeeping columns."""
    return {"sum": status + error + seed}


def hangs_deaf(*, n: int, seed: int) -> dict:
    """Hangs where no alarm reaches it when ``seed == n`` (SIGALRM ignored: a stand-in
    for a cell stuck inside one long call of foreign compiled code)."""
    import signal

    if seed == n:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            pass
    return {"seed": seed}


def hangs(*, n: int, seed: int) -> dict:
    """Hangs (a busy loop in Python) when ``seed == n``, else returns at once."""
    while seed == n:
        pass
    return {"seed": seed}


def interrupts_at(*, n: int, seed: int) -> dict:
    """Raises KeyboardInterrupt at ``seed == n`` (a Ctrl-C after n cells)."""
    if seed == n:
        raise KeyboardInterrupt
    return {"seed": seed}


def checked_pair(*, a: int, b: int, seed: int) -> dict:
    return {"sum": a + b + seed}


def _check_pair(params):
    if params["a"] == 2 and params["b"] == 3:
        raise ValueError("a = 2 with b = 3 is not allowed")


checked_pair.check = _check_pair
