"""``fopa.precompile``: its table of kernel signatures is the one fopa calls, and it
splits the work over processes."""

import json
import os
import subprocess
import sys

import pytest

from fopa.precompile import (
    PART_SECONDS,
    REPRODUCTION_PARTS,
    Precompiled,
    cold_parts,
    precompile,
    signatures,
    split_parts,
)

# In a fresh process (so that only what it calls counts): public functions on every
# path that reaches a kernel, and one study of each kind of the reproduction; then
# the signatures each kernel dispatcher holds, against the table.
_WORKLOAD = r"""
import importlib, json, pkgutil
import numpy as np
from numba.core.registry import CPUDispatcher
import fopa, fopa._kernels
from fopa import attacks
from fopa.experiments.registry import configuration, STUDIES
from fopa.precompile import signatures

tiny = configuration("tiny")
for name in ("polynomial_iterations", "polynomial_iterations_backtracking",
             "input_scale_regularity", "tolerance_iterations", "adversarial_training",
             "training_protocols_even_odd", "saddle_escape"):
    STUDIES[name].run(rng=0, **tiny[name])
rng = np.random.default_rng(0)
for act in ("tanh", "quadratic"):
    net = fopa.TwoLayerNet.random(5, 7, activation=act, rng=0)
    X = rng.normal(size=(3, 5))
    for loss in ("quadratic", "logistic"):
        y = rng.normal(size=3) if loss == "quadratic" else np.array([1.0, -1.0, 1.0])
        x, yy = X[0], y[0]
        for box in (None, (-3.0, 3.0)):
            attacks.pgd(net, X, y, 0.5, loss=loss, box=box, steps=3)
            attacks.fgm(net, X, y, 0.5, loss=loss, box=box)
            attacks.apgd(net, X, y, 0.5, loss=loss, box=box, n_iter=3)
            attacks.momentum_pga(net, X, y, 0.5, loss=loss, box=box, steps=3)
        attacks.frank_wolfe(net, X, y, 0.5, loss=loss, steps=3)
        attacks.riemannian_ascent(net, X, y, 0.5, loss=loss, steps=3)
        fopa.third_derivative(net, x, yy, x, x, loss=loss)
        fopa.hessian_vector_product(net, x, yy, x, loss=loss)
        fopa.input_gradient(net, X, y, loss=loss)
        fopa.input_hessian(net, X, y, loss=loss)
        fopa.loss(net, X, y, loss=loss)
        fopa.predict(net, X)
        r = fopa.projected_gradient_ascent(net, X, y, 0.5, loss=loss)
        for method in ("dense", "factor", "lowrank", "auto"):
            fopa.certify(net, x, yy, r.delta[0], 0.5, loss=loss, method=method)
        fopa.certify(net, X, y, r.delta, 0.5, loss=loss)
        fopa.ball_constants(net, X, y, 0.5, loss=loss)
        fopa.activation_derivatives(act, X)
        fopa.sup_abs_derivatives(act, X, X + 1)
        fopa.local_maxima(net, x, yy, 0.5, loss=loss, n_starts=4, rng=0)
        fopa.tangent_spectrum(net, x, yy, r.delta[0], 0.5, loss=loss)
        fopa.parameter_gradient(net, X, y, loss=loss)
        fopa.critical_points(net, x, yy, 0.5, loss=loss, n_starts=4, rng=0)
        fopa.taylor_model_maximum(net, x, yy, 0.5, loss=loss)
narrow = fopa.TwoLayerNet.random(12, 3, rng=0)  # the low-rank route (radius in Python)
x = rng.normal(size=12)
r = fopa.projected_gradient_ascent(narrow, x, 0.3, 0.5)
fopa.certify(narrow, x, 0.3, r.delta, 0.5, method="lowrank")
used = set()
for info in pkgutil.iter_modules(fopa._kernels.__path__):
    module = importlib.import_module("fopa._kernels." + info.name)
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
            used |= {(info.name, name, str(tuple(s))) for s in value.signatures}
table = {(k.py_func.__module__.rsplit(".", 1)[1], k.py_func.__name__, str(a))
         for k, a in signatures()}
print(json.dumps(dict(missing=sorted(used - table), unused=sorted(table - used))))
"""


def test_the_table_is_what_fopa_calls():
    # A kernel called from Python with a signature missing from the table would be
    # compiled by every worker after precompile (missing); one in the table that
    # nothing calls would be compiled for nothing (unused). With a warm cache a
    # dispatcher holds exactly the signatures it was called with from Python.
    done = subprocess.run([sys.executable, "-c", _WORKLOAD], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == dict(missing=[], unused=[]), found


def test_split_parts_balances_and_keeps_every_part_once():
    parts = tuple(PART_SECONDS)
    for jobs in (1, 2, 3, 5, 8):
        groups = split_parts(parts, jobs)
        assert len(groups) == min(jobs, len(parts))
        assert sorted(p for g in groups for p in g) == sorted(parts)
    two = split_parts(REPRODUCTION_PARTS, 2)
    loads = [sum(PART_SECONDS[p] for p in g) for g in two]
    assert max(loads) - min(loads) <= min(PART_SECONDS.values())
    assert split_parts(("bounds",), 4) == [("bounds",)]


def test_signatures_cover_every_part_in_order():
    chosen = signatures(("bounds",))
    assert chosen and all(k.py_func.__module__.startswith("fopa._kernels.") for k, _ in chosen)
    assert len(signatures()) == sum(len(signatures((p,))) for p in PART_SECONDS)


def test_precompile_in_processes_reports_what_it_did():
    done = precompile(2, parts=("network", "ascent"))
    assert isinstance(done, Precompiled)
    assert sorted(p for g in done.parts for p in g) == ["ascent", "network"]
    assert len(done.part_seconds) == len(done.parts) == 2
    assert done.kernels == len(signatures(("network", "ascent")))
    assert done.seconds >= max(done.part_seconds)
    assert cold_parts(("network", "ascent")) == ()  # now in the cache
    assert precompile(2, parts=("network",), only_cold=True).parts == ()


@pytest.mark.parametrize("jobs", [0, -1, 1.5, "2", True])
def test_precompile_rejects_bad_jobs(jobs):
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        precompile(jobs)


@pytest.mark.parametrize("parts", [("nope",), ()])
def test_precompile_rejects_unknown_parts(parts):
    with pytest.raises(ValueError, match="parts:"):
        precompile(1, parts=parts)


def test_cache_holds_the_compiled_signature_and_not_others():
    from numba import types

    from fopa._kernels.jit import cache_holds
    from fopa._kernels.linalg import norm2

    precompile(1, parts=("network",))
    (kernel, args), *_ = [(k, a) for k, a in signatures(("network",)) if k is norm2]
    assert cache_holds(kernel, args) is True
    assert cache_holds(kernel, (types.Array(types.float32, 1, "C"),)) is False


def test_every_part_is_cold_in_an_empty_cache(tmp_path):
    code = "from fopa.precompile import cold_parts; print(list(cold_parts()))"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.replace("'", '"')) == list(PART_SECONDS)


def test_nothing_to_compile_with_the_jit_disabled():
    # NUMBA_DISABLE_JIT=1 makes every kernel a plain function: no part is cold and
    # precompile compiles nothing instead of failing (reproduce calls it)
    code = ("from fopa.precompile import cold_parts, precompile; "
            "print(len(cold_parts()), precompile(2).kernels)")  # fmt: skip
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["0", "0"]
