"""Time ``fopa.certify`` against peers that do the same job, and against the floor.

``certify`` does the whole job (gradient, multiplier, both ends of the tangent
spectrum proved, ``||hess L - mu I||``, the Hessian-Lipschitz bound over the ball,
the certified radius). Peers, jitted or compiled, float64, tanh, quadratic loss, at
a point where PGA converged:

* ``jax.hessian`` alone, and ``jax.hessian`` then ``eigvalsh`` of the tangent
  block ``B^T (H - mu I) B`` (B from a Householder reflection), jitted together;
* ``torch.func.hessian`` alone, and then ``torch.linalg.eigvalsh`` of the block;
* batched: ``jax.vmap`` of the jitted Hessian-plus-spectrum over 256 points
  against one ``certify`` call on the batch.

The floor: the multiply-adds of forming the tangent block (``(d-1)^2 m / 2`` in a
symmetric product) and of one Cholesky factorization (``(d-1)^3 / 3``), timed
with BLAS on this machine (half a full product ``Z^T Z`` plus scipy's ``dpotrf``).

Also: ``certify_every=10`` against a plain run of PGA at (64, 100, 512), in a small
ball (eps = 0.5, about 0.05 ||x||) and a large one (eps = 5, about 0.5 ||x||).

Best of ``--repeats`` interleaved rounds; ratios are medians of ratios within a
round, with their range (see ``_timing.py``).

Usage::

    python benchmarks/bench_certify.py [--repeats 9] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from _peers import jax_functions, jax_modules, torch_functions, write_table  # (script folder)
from _timing import interleaved_times, paired_ratio
from scipy.linalg import lapack

import fopa

SHAPES = [(10, 50), (100, 512), (784, 1024)]
#: Narrow networks, where ``method="auto"`` takes the low-rank (row-space) route.
LOWRANK_SHAPES = [(784, 16), (784, 64)]
BATCH = (256, 100, 512)


def make_points(n, d, m, seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation="tanh", rng=gen)
    X = gen.standard_normal((n, d))
    Y = gen.standard_normal(n)
    eps = 0.5
    res = fopa.projected_gradient_ascent(net, X, Y, eps, tol=1e-9, max_iter=100_000)
    return net, X, Y, eps, res.delta


def jax_peers(net, eps):
    """(hessian, hessian + tangent spectrum) of one point, jitted; and the vmapped one."""
    jax, _ = jax_modules()
    loss, spectrum = jax_functions(net, eps)

    def eig(x, y, delta):
        return spectrum(x, y, delta)[1]

    hess = jax.jit(lambda x, y, delta: jax.hessian(loss)(x + delta, y))
    return hess, jax.jit(eig), jax.jit(jax.vmap(eig))


def torch_peers(net, eps):
    from torch.func import hessian

    loss, spectrum = torch_functions(net, eps)

    def hess(x, y, delta):
        return hessian(loss)(x + delta, y)

    def eig(x, y, delta):
        return spectrum(x, y, delta)[1]

    return hess, eig


def floor_functions(d, m, seed=0):
    """Half of a full product Z^T Z with Z (m, d-1), and one dpotrf of order d-1."""
    gen = np.random.default_rng(seed)
    Z = gen.standard_normal((d - 1, m))
    A = Z @ Z.T + d * np.eye(d - 1)

    def product():
        return Z @ Z.T

    def factor():
        return lapack.dpotrf(A, lower=1, clean=0)

    return product, factor


def single_rows(repeats):
    return [_single_row(d, m, repeats) for d, m in SHAPES + LOWRANK_SHAPES]


def _single_row(d, m, repeats):
    net, X, Y, eps, D = make_points(1, d, m)
    x, y, delta = X[0], float(Y[0]), D[0]
    cert = fopa.certify(net, x, y, delta, eps)
    dense = fopa.certify(net, x, y, delta, eps, method="dense")
    want = np.array([dense.min_tangent_eigenvalue, dense.max_tangent_eigenvalue])
    functions = {
        "certify": lambda net=net, x=x, y=y, delta=delta, eps=eps: fopa.certify(
            net, x, y, delta, eps
        ),
        "dense": lambda net=net, x=x, y=y, delta=delta, eps=eps: fopa.certify(
            net, x, y, delta, eps, method="dense"
        ),
    }
    try:
        jh, js, _ = jax_peers(net, eps)
        got = np.asarray(js(x, y, delta))
        if not np.allclose(got[[0, -1]], want, rtol=1e-8, atol=1e-12):
            raise AssertionError(f"JAX's tangent spectrum disagrees: {got[[0, -1]]}, {want}")
        functions["jax hessian"] = lambda: jh(x, y, delta).block_until_ready()
        functions["jax spectrum"] = lambda: js(x, y, delta).block_until_ready()
    except ImportError:
        pass
    try:
        import torch

        th, ts = torch_peers(net, eps)
        tx, tdel = torch.tensor(x), torch.tensor(delta)
        got = ts(tx, y, tdel).numpy()
        if not np.allclose(got[[0, -1]], want, rtol=1e-8, atol=1e-12):
            raise AssertionError(f"torch's tangent spectrum disagrees: {got[[0, -1]]}, {want}")
        functions["torch hessian"] = lambda: th(tx, y, tdel)
        functions["torch spectrum"] = lambda: ts(tx, y, tdel)
    except ImportError:
        pass
    product, factor = floor_functions(d, m)
    functions["floor product"] = product
    functions["floor factor"] = factor
    return (d, m), f"{cert.kind}, {cert.method}", interleaved_times(functions, repeats)


def batch_row(repeats):
    n, d, m = BATCH
    net, X, Y, eps, D = make_points(n, d, m, seed=1)
    functions = {"certify": lambda: fopa.certify(net, X, Y, D, eps)}
    try:
        _, _, jv = jax_peers(net, eps)
        functions["jax vmap"] = lambda: jv(X, Y, D).block_until_ready()
    except ImportError:
        pass
    kinds = fopa.certify(net, X, Y, D, eps).kind
    return (
        (n, d, m),
        dict(zip(*np.unique(kinds, return_counts=True), strict=True)),
        (interleaved_times(functions, repeats)),
    )


#: Radii of the certify_every rows: eps = 0.5 is about 0.05 ||x|| (unit-variance
#: inputs, d = 100), where the norm test settles the checkpoints; 5.0 is about
#: 0.5 ||x||, a large ball, where most rows need the full certificate.
EVERY_RADII = (0.5, 5.0)


def certify_every_rows(repeats):
    n, d, m = 64, 100, 512
    gen = np.random.default_rng(2)
    net = fopa.TwoLayerNet.random(d, m, activation="tanh", rng=gen)
    X, Y = gen.standard_normal((n, d)), gen.standard_normal(n)
    rows = []
    for eps in EVERY_RADII:
        functions = {
            "plain": lambda eps=eps: fopa.projected_gradient_ascent(net, X, Y, eps),
            "certify_every=10": lambda eps=eps: fopa.projected_gradient_ascent(
                net, X, Y, eps, certify_every=10
            ),
        }
        res = fopa.projected_gradient_ascent(net, X, Y, eps, certify_every=10)
        certified = int(np.sum(res.first_certified_iteration >= 0))
        ratio = eps / float(np.linalg.norm(X, axis=1).mean())
        rows.append((eps, ratio, certified, int(np.max(res.iterations)),
                     interleaved_times(functions, repeats)))  # fmt: skip
    return (n, d, m), rows


def _ms(t, key):
    return "n/a" if key not in t else f"{1e3 * min(t[key]):.3f}"


def _ratio(t, a, b):
    if a not in t or b not in t:
        return "n/a"
    r = paired_ratio(t[b], t[a])  # how many times faster a is than b
    return f"{r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}]"


def render(single, batch, every, repeats):
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; milliseconds, best of "
        f"{repeats} interleaved rounds; speed-ups: median over rounds of peer time / "
        "fopa time within a round [range]. float64, tanh, quadratic loss, one point at a "
        "converged PGA end (eps = 0.5). The floor is that of the factorization route "
        "(the low-rank route's work is O(d min(m, d)) per point after one SVD per network).",
        "",
        "| (d, m) | certify (kind, method) | method='dense' | jax.hessian | jax.hessian + tangent "
        "eigvalsh | torch hessian | torch hessian + eigvalsh | floor (product/2 + dpotrf) "
        "| vs jax.hessian | vs jax spectrum | vs torch spectrum |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, kind, t in single:
        floor = 1e3 * (0.5 * min(t["floor product"]) + min(t["floor factor"]))
        lines.append(
            f"| {shape} | {_ms(t, 'certify')} ({kind}) | {_ms(t, 'dense')} "
            f"| {_ms(t, 'jax hessian')} | {_ms(t, 'jax spectrum')} | {_ms(t, 'torch hessian')} "
            f"| {_ms(t, 'torch spectrum')} | {floor:.3f} | {_ratio(t, 'certify', 'jax hessian')} "
            f"| {_ratio(t, 'certify', 'jax spectrum')} | {_ratio(t, 'certify', 'torch spectrum')} |"
        )
    shape, kinds, t = batch
    lines += [
        "",
        f"Batched, {shape[0]} points at (d, m) = {shape[1:]} (kinds {kinds}): certify "
        f"{_ms(t, 'certify')} ms, jax.vmap(hessian + tangent eigvalsh) {_ms(t, 'jax vmap')} "
        f"ms; speed-up {_ratio(t, 'certify', 'jax vmap')}.",
    ]
    shape, rows = every
    lines += ["", f"Inside the ascent, (n, d, m) = {shape}, default step:", ""]
    for eps, ratio, certified, iters, t in rows:
        lines.append(
            f"* eps = {eps} ({ratio:.2f} of the mean ||x||): plain run {_ms(t, 'plain')} ms, "
            f"certify_every=10 {_ms(t, 'certify_every=10')} ms ({certified} of {shape[0]} "
            f"rows certified, at most {iters} iterations); ratio "
            f"{_ratio(t, 'plain', 'certify_every=10')}."
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    table = render(
        single_rows(args.repeats), batch_row(args.repeats), certify_every_rows(args.repeats),
        args.repeats,
    )  # fmt: skip
    write_table(table, args.markdown)


if __name__ == "__main__":
    main()
