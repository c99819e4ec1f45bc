"""Time ``fopa.certify`` against forming the Hessian by automatic differentiation.

``certify`` does the whole job (gradient, multiplier, top and bottom tangent
eigenvalues, ``||hess L - mu I||``, the Hessian-Lipschitz bound and the certified
radius); the peers only form the d x d input Hessian: ``jax.hessian`` (jitted)
and ``torch.func.hessian``. A third peer does the certificate's core work:
``jnp.linalg.eigvalsh(jax.hessian(loss)(p))``, jitted together. float64, tanh,
quadratic loss, at a point where PGA converged. Best of ``--repeats`` interleaved
rounds after a warm-up; ratios are medians of ratios within a round (see
``_timing.py``).

Usage::

    python benchmarks/bench_certify.py [--repeats 15] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from _timing import interleaved_times, paired_ratio  # (script folder)

import fopa

SHAPES = [(10, 50), (100, 512), (784, 1024)]


def make_point(d, m, seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation="tanh", rng=gen)
    x = gen.standard_normal(d)
    y = float(gen.standard_normal())
    eps = 0.5
    res = fopa.projected_gradient_ascent(net, x, y, eps, tol=1e-9, max_iter=100_000)
    return net, x, y, eps, res.delta


def jax_hessian(net, x, y, eps, delta):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    W, a, c = jnp.asarray(net.W), jnp.asarray(net.a), net.output_scale

    def loss(p):
        return 0.5 * (c * jnp.dot(a, jnp.tanh(W @ p)) - y) ** 2

    hess = jax.jit(jax.hessian(loss))
    p = jnp.asarray(x + delta)

    def fn():
        return np.asarray(hess(p).block_until_ready())

    return fn


def jax_hessian_spectrum(net, x, y, eps, delta):
    """The peer doing the certificate's core work: the Hessian and its eigenvalues."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    W, a, c = jnp.asarray(net.W), jnp.asarray(net.a), net.output_scale

    def loss(p):
        return 0.5 * (c * jnp.dot(a, jnp.tanh(W @ p)) - y) ** 2

    spectrum = jax.jit(lambda p: jnp.linalg.eigvalsh(jax.hessian(loss)(p)))
    p = jnp.asarray(x + delta)

    def fn():
        return np.asarray(spectrum(p).block_until_ready())

    return fn


def torch_hessian(net, x, y, eps, delta):
    import torch
    from torch.func import hessian

    torch.set_num_threads(os.cpu_count() or 1)
    W = torch.tensor(net.W, dtype=torch.float64)
    a = torch.tensor(net.a, dtype=torch.float64)
    c = net.output_scale
    p = torch.tensor(x + delta, dtype=torch.float64)

    def loss(q):
        return 0.5 * (c * torch.tanh(W @ q) @ a - y) ** 2

    def fn():
        return hessian(loss)(p).numpy()

    return fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    rows = []
    for d, m in SHAPES:
        net, x, y, eps, delta = make_point(d, m)
        cert = fopa.certify(net, x, y, delta, eps)
        want = fopa.input_hessian(net, x + delta, y)

        def run_certify(net=net, x=x, y=y, delta=delta, eps=eps):
            return fopa.certify(net, x, y, delta, eps)

        def run_hessian(net=net, x=x, y=y, delta=delta):
            return fopa.input_hessian(net, x + delta, y)

        functions = {"certify": run_certify, "hessian": run_hessian}
        for label, maker in (("jax", jax_hessian), ("torch", torch_hessian)):
            try:
                fn = maker(net, x, y, eps, delta)
                err = np.max(np.abs(fn() - want))
            except ImportError:
                continue
            if err > 1e-8 * max(1.0, np.max(np.abs(want))):
                raise AssertionError(f"{label} Hessian disagrees with fopa's by {err:.2e}")
            functions[label] = fn
        try:
            fn = jax_hessian_spectrum(net, x, y, eps, delta)
            err = np.max(np.abs(fn() - np.linalg.eigvalsh(want)))
            if err > 1e-8 * max(1.0, np.max(np.abs(want))):
                raise AssertionError(f"JAX's Hessian spectrum disagrees with fopa's by {err:.2e}")
            functions["jax spectrum"] = fn
        except ImportError:
            pass
        rows.append(((d, m), cert.kind, cert.method, interleaved_times(functions, args.repeats)))
    table = render(rows, args.repeats)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")


def render(rows, repeats):
    def ms(t, key):
        return "n/a" if key not in t else f"{1e3 * min(t[key]):.3f}"

    def ratio(t, key):
        if key not in t:
            return "n/a"
        r = paired_ratio(t["certify"], t[key])
        return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; milliseconds, best of "
        f"{repeats} interleaved rounds; ratios: median over rounds of the ratio within a "
        "round [range].",
        "",
        "| (d, m) | certify (method, kind) | fopa.input_hessian | jax.hessian | "
        "torch.func.hessian | jax.hessian + eigvalsh | certify / jax.hessian "
        "| certify / torch | certify / (jax.hessian + eigvalsh) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, kind, method, t in rows:
        lines.append(
            f"| {shape} | {ms(t, 'certify')} ({method}, {kind}) | {ms(t, 'hessian')} "
            f"| {ms(t, 'jax')} | {ms(t, 'torch')} | {ms(t, 'jax spectrum')} "
            f"| {ratio(t, 'jax')} | {ratio(t, 'torch')} | {ratio(t, 'jax spectrum')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
