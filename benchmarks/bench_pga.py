"""Time projected gradient ascent: fopa against NumPy, JAX and PyTorch peers.

Setting (issue 3): float64, tanh, quadratic loss, l2 ball, constant step, 50
iterations, no early stop, the same data for every method in the same process.
Reported: time per iteration (best of ``--repeats`` interleaved rounds after a
warm-up; see ``_timing.py``), the speed-up of fopa over the fastest peer and
fopa's time over the *floor* as medians of ratios taken within each round, and
the floor itself: the two matrix products of
an iteration (``(X + D) W^T`` and ``Q W``) alone, timed with NumPy's BLAS, and
where ``m < 2d`` the one product ``Q K`` of the row-space iteration alone (a
lower bound for fopa's iteration there).

fopa runs ``max_iter=50``: 51 gradient evaluations (the last one measures the
final point) against the peers' 50; the per-iteration time divides by 50 for all.

Usage::

    python benchmarks/bench_pga.py [--repeats 9] [--shapes small,medium,large] [--markdown FILE]

JAX and PyTorch are optional (``pip install -e ".[bench]"``; PyTorch from the
local wheel with ``pip install torch==2.13.0``); a missing peer is reported as such.
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from _timing import fastest_per_round, interleaved_times, paired_ratio  # (script folder)

import fopa

SHAPES = {"small": (1, 10, 50), "medium": (64, 100, 512), "large": (256, 784, 1024)}
ITERATIONS = 50


def make_problem(n, d, m, seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation="tanh", rng=gen)
    X = gen.standard_normal((n, d))
    Y = gen.standard_normal(n)
    eps = 0.5 * np.sqrt(d) / 10
    eta = 0.5 * float(np.min(1.0 / fopa.ball_constants(net, X, Y, eps).beta))
    return net, X, Y, eps, eta


def run_fopa(net, X, Y, eps, eta):
    def fn():
        return fopa.projected_gradient_ascent(
            net, X, Y, eps, step_size=eta, max_iter=ITERATIONS, tol=0.0, init="zero"
        ).delta

    return fn


def run_fopa_plain(net, X, Y, eps, eta):
    def fn():
        return fopa.projected_gradient_ascent(
            net, X, Y, eps, step_size=eta, max_iter=ITERATIONS, tol=0.0, method="plain"
        ).delta

    return fn


def run_numpy(net, X, Y, eps, eta):
    W, a, c = net.W, net.a, net.output_scale

    def fn():
        D = np.zeros_like(X)
        for _ in range(ITERATIONS):
            T = np.tanh((X + D) @ W.T)
            r = c * (T @ a) - Y
            G = ((r[:, None] * (c * a)) * (1.0 - T * T)) @ W
            V = D + eta * G
            D = V * (eps / np.maximum(np.linalg.norm(V, axis=1), eps))[:, None]
        return D

    return fn


def floor(net, X, Y, eps, eta):
    W = net.W
    Q = np.ones((X.shape[0], W.shape[0]))

    def fn():
        for _ in range(ITERATIONS):
            (X @ W.T)
            (Q @ W)

    return fn


def gram_floor(net, X, Y, eps, eta):
    """The row-space iteration's one product ``Q K`` (rows x m x m) alone, NumPy."""
    K = net.W @ net.W.T
    Q = np.ones((X.shape[0], K.shape[0]))

    def fn():
        for _ in range(ITERATIONS):
            (Q @ K)

    return fn


def run_jax(net, X, Y, eps, eta):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    W, a, c = jnp.asarray(net.W), jnp.asarray(net.a), net.output_scale
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    def loss(delta, x, y):
        f = c * jnp.dot(a, jnp.tanh(W @ (x + delta)))
        return 0.5 * (f - y) ** 2

    grad = jax.vmap(jax.grad(loss))

    @jax.jit
    def attack(Xb, Yb):
        def body(_, D):
            V = D + eta * grad(D, Xb, Yb)
            norms = jnp.linalg.norm(V, axis=1)
            return V * (eps / jnp.maximum(norms, eps))[:, None]

        return jax.lax.fori_loop(0, ITERATIONS, body, jnp.zeros_like(Xb))

    def fn():
        return np.asarray(attack(Xj, Yj).block_until_ready())

    return fn


def run_torch(net, X, Y, eps, eta):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    W = torch.tensor(net.W, dtype=torch.float64)
    a = torch.tensor(net.a, dtype=torch.float64)
    c = net.output_scale
    Xt = torch.tensor(X, dtype=torch.float64)
    Yt = torch.tensor(Y, dtype=torch.float64)

    def fn():
        delta = torch.zeros_like(Xt)
        for _ in range(ITERATIONS):
            delta.requires_grad_(True)
            f = c * torch.tanh((Xt + delta) @ W.T) @ a
            loss = 0.5 * ((f - Yt) ** 2).sum()
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                v = delta + eta * g
                norms = v.norm(dim=1, keepdim=True)
                delta = v * (eps / norms.clamp(min=eps))
        return delta.detach().numpy()

    return fn


PEERS = {"numpy": run_numpy, "jax": run_jax, "torch": run_torch}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--shapes", default="small,medium,large")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = []
    for name in args.shapes.split(","):
        n, d, m = SHAPES[name]
        problem = make_problem(n, d, m)
        reference = run_numpy(*problem)()
        functions = {}
        for label, maker in [("fopa", run_fopa), ("fopa plain", run_fopa_plain), *PEERS.items()]:
            try:
                fn = maker(*problem)
                out = fn()
            except ImportError:
                continue
            # fopa does one extra final evaluation but no extra step: same iterate
            err = np.max(np.abs(np.asarray(out) - reference))
            if err > 1e-8:
                raise AssertionError(f"{label} disagrees with the NumPy loop by {err:.2e}")
            functions[label] = fn
        functions["floor"] = floor(*problem)
        if m < 2 * d:  # where fopa picks the row-space iteration
            functions["gram product"] = gram_floor(*problem)
        rows.append(((n, d, m), interleaved_times(functions, args.repeats)))
    print(render(rows, args.repeats))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(render(rows, args.repeats) + "\n")


def render(rows, repeats):
    peers = ["numpy", "jax", "torch"]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}; "
        f"{ITERATIONS} iterations, float64, tanh, quadratic loss; microseconds per iteration "
        f"(best of {repeats} interleaved rounds, see benchmarks/_timing.py). Ratios: median "
        "over rounds of the ratio within a round [range].",
        "",
        "| (n, d, m) | fopa | fopa plain | NumPy | JAX | PyTorch | floor (2 GEMMs) "
        "| Gram product | fastest peer / fopa | fopa / floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, t in rows:

        def us(key, t=t):
            return "n/a" if key not in t else f"{1e6 * min(t[key]) / ITERATIONS:.1f}"

        speedup = paired_ratio(fastest_per_round(t, peers), t["fopa"])
        to_floor = paired_ratio(t["fopa"], t["floor"])
        lines.append(
            f"| {shape} | {us('fopa')} | {us('fopa plain')} | {us('numpy')} | {us('jax')} "
            f"| {us('torch')} | {us('floor')} | {us('gram product')} | {_ratio(speedup)}x "
            f"| {_ratio(to_floor)} |"
        )
    return "\n".join(lines)


def _ratio(r):
    return f"{r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}]"


if __name__ == "__main__":
    main()
