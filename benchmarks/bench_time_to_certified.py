"""Time from a start to a certified strict local maximum: fopa against JAX and PyTorch.

The job users run: for a batch of inputs, projected gradient ascent from delta = 0
over the l2 ball to a relative KKT residual of 1e-8, then a second-order check of
the end. Three pipelines on the same problems (float64, tanh, quadratic loss,
eps = 0.5):

* fopa: ``projected_gradient_ascent`` with its default policy (step ``1/beta``
  from the tight bounds, computed inside the call) and ``certify`` on the ends;
* JAX: a jitted ``lax.while_loop`` PGA vmapped over the batch, with fopa's step
  and gradient scale handed in (their computation is not timed for JAX: in its
  favour), the same stopping rule, then the jitted, vmapped Hessian and
  ``eigvalsh`` of the tangent block;
* PyTorch: the same loop on the batch in eager mode (one autograd gradient of
  the summed loss per iteration), then ``torch.func.vmap`` of the Hessian and
  ``torch.linalg.eigvalsh``.

The peers check the same conditions (KKT residual, multiplier, top tangent
eigenvalue) but prove no bound and no radius. The share of ends that fopa
certifies is printed; the peers' iteration counts are checked against fopa's.

Usage::

    python benchmarks/bench_time_to_certified.py [--repeats 5] [--markdown FILE] [--figure PNG]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from _peers import jax_functions, jax_modules, torch_functions, write_table  # (script folder)
from _timing import fastest_per_round, interleaved_times, paired_ratio

import fopa
from fopa._pga_runs import steps_and_scales

CASES = [(64, 10, 50), (64, 100, 512), (16, 784, 1024)]
TOL, EPS, MAX_ITER = 1e-8, 0.5, 10_000


def make_problem(n, d, m, seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation="tanh", rng=gen)
    return net, gen.standard_normal((n, d)), gen.standard_normal(n)


def fopa_pipeline(net, X, Y):
    def run():
        res = fopa.projected_gradient_ascent(net, X, Y, EPS, tol=TOL, max_iter=MAX_ITER)
        return res, fopa.certify(net, X, Y, res.delta, EPS)

    return run


def jax_pipeline(net, X, Y, eta, scale):
    jax, jnp = jax_modules()
    from jax import lax

    loss, spectrum = jax_functions(net, EPS)
    grad = jax.grad(loss)

    def kkt(delta, g, unit):
        norm = jnp.linalg.norm(delta)
        on = norm >= EPS * (1 - 1e-9)
        u = delta / jnp.maximum(norm, 1e-300)
        radial = jnp.where(on, jnp.dot(u, g), 0.0)
        residual = jnp.where(on, jnp.linalg.norm(g - radial * u), jnp.linalg.norm(g))
        return (residual <= TOL * unit) & (radial >= -TOL * unit)

    def ascend(x, y, step, unit):
        def cond(state):
            delta, t, done = state
            return (~done) & (t < MAX_ITER)

        def body(state):
            delta, t, _ = state
            g = grad(x + delta, y)
            new = delta + step * g
            new = new * jnp.minimum(1.0, EPS / jnp.maximum(jnp.linalg.norm(new), 1e-300))
            return new, t + 1, kkt(new, grad(x + new, y), unit)

        delta0 = jnp.zeros_like(x)
        state = (delta0, 0, kkt(delta0, grad(x, y), unit))
        delta, t, _ = lax.while_loop(cond, body, state)
        return delta, t

    asc = jax.jit(jax.vmap(ascend))
    spec = jax.jit(jax.vmap(spectrum))
    Xj, Yj, ej, sj = (jnp.asarray(v) for v in (X, Y, eta, scale))

    def run():
        delta, t = asc(Xj, Yj, ej, sj)
        _, eig = spec(Xj, Yj, delta)
        return np.asarray(t), np.asarray(eig[:, -1].block_until_ready())

    return run


def torch_pipeline(net, X, Y, eta, scale):
    import torch
    from torch.func import vmap

    _, spectrum = torch_functions(net, EPS)
    W = torch.tensor(net.W, dtype=torch.float64)
    a = torch.tensor(net.a, dtype=torch.float64)
    c = net.output_scale
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    et, st = torch.tensor(eta)[:, None], torch.tensor(scale)

    def batch_grad(P):
        P = P.detach().requires_grad_(True)
        total = (0.5 * (c * torch.tanh(P @ W.T) @ a - Yt) ** 2).sum()
        (g,) = torch.autograd.grad(total, P)
        return g

    def kkt(D, G):
        norm = D.norm(dim=1)
        on = norm >= EPS * (1 - 1e-9)
        U = D / norm.clamp_min(1e-300)[:, None]
        radial = torch.where(on, (U * G).sum(1), torch.zeros_like(norm))
        res = torch.where(on, (G - radial[:, None] * U).norm(dim=1), G.norm(dim=1))
        return (res <= TOL * st) & (radial >= -TOL * st)

    def top(x, y, delta):
        return spectrum(x, y, delta)[1][-1]

    def run():
        D = torch.zeros_like(Xt)
        done = kkt(D, batch_grad(Xt + D))
        t = torch.zeros(Xt.shape[0], dtype=torch.int64)
        for _ in range(MAX_ITER):
            if bool(done.all()):
                break
            G = batch_grad(Xt + D)
            new = D + et * G
            new = new * torch.clamp(EPS / new.norm(dim=1).clamp_min(1e-300), max=1.0)[:, None]
            D = torch.where(done[:, None], D, new)
            t = t + (~done).long()
            done = done | kkt(D, batch_grad(Xt + D))
        return t.numpy(), vmap(top)(Xt, Yt, D).numpy()

    return run


def measure(repeats):
    rows = []
    for n, d, m in CASES:
        net, X, Y = make_problem(n, d, m)
        code = 0
        _, eta, scale, _ = steps_and_scales("lipschitz", net, X, Y, EPS, code, "ball")
        run_fopa = fopa_pipeline(net, X, Y)
        res, cert = run_fopa()
        functions = {"fopa": run_fopa}
        checks = {}
        for label, maker in (("jax", jax_pipeline), ("torch", torch_pipeline)):
            try:
                fn = maker(net, X, Y, eta, scale)
            except ImportError:
                continue
            t, top = fn()
            checks[label] = (
                float(np.median(np.abs(t - res.iterations))),
                int(np.sum(top < 0)),
            )
            functions[label] = fn
        share = float(np.mean(cert.kind == "strict_local_max"))
        rows.append(((n, d, m), share, checks, interleaved_times(functions, repeats)))
    return rows


def render(rows, repeats):
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; milliseconds per batch, "
        f"best of {repeats} interleaved rounds; speed-up: median over rounds of the "
        "fastest peer's time / fopa's within a round [range]. Relative KKT tolerance "
        f"{TOL:g}, eps = {EPS}, start 0, step 1/beta (tight), float64, tanh, quadratic.",
        "",
        "| (n, d, m) | fopa PGA + certify | certified | JAX | PyTorch | fopa vs fastest "
        "| peers: median iteration difference, ends with top eigenvalue < 0 |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, share, checks, t in rows:
        best = fastest_per_round(t, ["jax", "torch"])
        r = paired_ratio(best, t["fopa"])

        def ms(key, t=t):
            return "n/a" if key not in t else f"{1e3 * min(t[key]):.2f}"

        check = "; ".join(f"{k}: {v[0]:g}, {v[1]}/{shape[0]}" for k, v in checks.items())
        lines.append(
            f"| {shape} | {ms('fopa')} | {share:.2f} | {ms('jax')} | {ms('torch')} "
            f"| {r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}] | {check} |"
        )
    return "\n".join(lines)


def figure(rows, path):
    """Time per batch against d for the three pipelines (log-log), saved to ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for label, marker in (("fopa", "o"), ("jax", "s"), ("torch", "^")):
        pts = [(shape[1], 1e3 * min(t[label])) for shape, _, _, t in rows if label in t]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("d (batches: " + ", ".join(f"n={s[0]}, m={s[2]}" for s, *_ in rows) + ")")
    ax.set_ylabel("ms per batch, start to checked maximum")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--figure", default=None, help="PNG of time against d")
    args = parser.parse_args(argv)
    rows = measure(args.repeats)
    if args.figure:
        figure(rows, args.figure)
    table = render(rows, args.repeats)
    write_table(table, args.markdown)


if __name__ == "__main__":
    main()
