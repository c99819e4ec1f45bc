"""Time fopa's adversarial training against a PyTorch PGD-AT loop on the same iterates.

The PyTorch loop is written the way PGD adversarial training is usually written
(Madry et al.; the L2 attack of torchattacks): for each minibatch, 10 steps of
``delta <- Proj(delta + alpha g / ||g||)`` from zero with ``torch.autograd.grad``
on the input, then ``loss.backward()`` and ``torch.optim.SGD.step()`` at the
perturbed batch. fopa runs :func:`fopa.adversarial_training` with
``NormalizedPGD(steps=10)`` and SGD. Same network (tanh, output scale 1 so the
two parameterizations agree), same data, same batch order (permutations from one
NumPy generator), float64, CPU; torch uses all cores (``torch.set_num_threads``)
as fopa's BLAS does. Before timing, the two trained networks are compared: they
must agree to 1e-9 (the same algorithm, not only the same shapes).

Shape: MNIST size, n = 4,000 points, d = 784, m = 256, batch sizes 128 and 4,000
(full batch). Random inputs of MNIST's size (timing does not depend on the
pixels). ``--repeats`` interleaved rounds of one epoch each; ratios are medians
of within-round ratios with their range (``_timing.py``).

Usage::

    python benchmarks/bench_training.py [--repeats 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from _peers import write_table  # (script folder)
from _timing import interleaved_times, paired_ratio

import fopa
from fopa import NormalizedPGD, adversarial_training

N, D, M, STEPS, FACTOR = 4000, 784, 256, 10, 0.25
BATCHES = (128, None)


def problem(seed=0):
    gen = np.random.default_rng(seed)
    net0 = fopa.TwoLayerNet.random(D, M, rng=gen)
    net = fopa.TwoLayerNet(net0.W, net0.a * net0.output_scale, net0.b, "tanh", 1.0)
    X = gen.standard_normal((N, D))
    y = gen.choice([-1.0, 1.0], N)
    eps = 0.5 * float(np.sqrt(D))
    return net, X, y, eps


def torch_epoch(net, X, y, eps, batch, lr, seed, epochs=1):
    """PGD-AT in PyTorch; returns the trained (W, a, b, b0) as NumPy arrays."""
    import torch

    model = net.to_torch()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    alpha = FACTOR * eps
    gen = np.random.default_rng(seed)
    n = X.shape[0]
    size = n if batch is None else batch
    for _ in range(epochs):
        order = np.arange(n) if size >= n else gen.permutation(n)
        for start in range(0, n, size):
            idx = torch.from_numpy(order[start : start + size])
            xb, yb = Xt[idx], yt[idx]
            delta = torch.zeros_like(xb, requires_grad=True)
            for _ in range(STEPS):
                out = model(xb + delta).squeeze(1)
                loss = 0.5 * ((out - yb) ** 2).sum()  # per-point gradients, as fopa's
                (g,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    delta = delta + alpha * g / g.norm(dim=1, keepdim=True)
                    delta = delta * torch.clamp(eps / delta.norm(dim=1, keepdim=True), max=1.0)
                delta.requires_grad_(True)
            opt.zero_grad()
            loss = 0.5 * ((model(xb + delta.detach()).squeeze(1) - yb) ** 2).mean()
            loss.backward()
            opt.step()
    lin1, lin2 = model[0], model[2]
    return (lin1.weight.detach().numpy(), lin2.weight.detach().numpy()[0],
            lin1.bias.detach().numpy(), float(lin2.bias.detach().numpy()[0]))  # fmt: skip


def fopa_epoch(net, X, y, eps, batch, lr, seed, epochs=1):
    attack = NormalizedPGD(STEPS, FACTOR)
    res = adversarial_training(net, X, y, eps, epochs=epochs, learning_rate=lr,
                               batch_size=batch, attack=attack, rng=seed)  # fmt: skip
    return res.net.W, res.net.a, res.net.b, res.net.output_bias


def product_floor(batch):
    """Seconds per epoch that fopa's products alone take at the BLAS rate measured here.

    Per batch of b rows (row-space inner step, m < d): ``X W^T``, ``C W`` and
    ``B^T P`` (b m d each), ten ``Q K`` (b m^2 each) and the Gram blocks of ``K``
    (``(2P + 1) / 4P`` of m^2 d with P parts). The rate is that of one
    (b, d, m) product on numba's BLAS with every core, the best of 20.
    """
    import time

    from fopa._kernels.linalg import product_into
    from fopa._training_epoch import part_count

    b = min(N if batch is None else batch, N)
    parts = part_count(b, D, M)
    gram = (2 * parts + 1) / (4 * parts) * M * M * D  # lower-triangle blocks, 2P a side
    per_batch = 3 * b * M * D + STEPS * b * M * M + gram
    gen = np.random.default_rng(0)
    A, B, out = gen.random((b, D)), gen.random((D, M)), np.empty((b, M))
    product_into(A, B, out)
    best = np.inf
    for _ in range(20):
        t = time.perf_counter()
        product_into(A, B, out)
        best = min(best, time.perf_counter() - t)
    rate = b * D * M / best
    return per_batch * -(-N // b) / rate, rate


def agreement(net, X, y, eps, batch, lr):
    """Largest relative difference of the trained parameters after two epochs."""
    ours = fopa_epoch(net, X, y, eps, batch, lr, 3, epochs=2)
    theirs = torch_epoch(net, X, y, eps, batch, lr, 3, epochs=2)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))
               for a, b in zip(ours, theirs, strict=True))  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count())
    net, X, y, eps = problem()
    lr = 0.01
    rows = []
    for batch in BATCHES:
        diff = agreement(net, X, y, eps, batch, lr)
        if not diff < 1e-9:
            raise SystemExit(f"batch {batch}: fopa and torch trained different networks "
                             f"(relative difference {diff:.3g})")  # fmt: skip
        funcs = {
            "fopa": lambda b=batch: fopa_epoch(net, X, y, eps, b, lr, 0),
            "torch": lambda b=batch: torch_epoch(net, X, y, eps, b, lr, 0),
        }
        times = interleaved_times(funcs, args.repeats)
        med, lo, hi = paired_ratio(times["torch"], times["fopa"])
        floor, rate = product_floor(batch)
        rows.append(
            f"| {N if batch is None else batch} | {1 / min(times['fopa']):.2f} | "
            f"{1 / min(times['torch']):.2f} | {med:.2f}x ({lo:.2f}-{hi:.2f}) | "
            f"{min(times['fopa']):.3f} s / {floor:.3f} s ({rate / 1e9:.0f} GMA/s) | {diff:.1e} |"
        )
    table = "\n".join([
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}, torch {torch.__version__}; n = {N}, d = {D}, m = {M}, "
        f"{STEPS} inner steps, float64, {args.repeats} interleaved rounds of one epoch "
        "(best shown).",
        "",
        "| batch | fopa epochs/s | torch epochs/s | torch time / fopa time, median (range) | "
        "fopa's best epoch / its products alone at the measured BLAS rate | "
        "trained networks' relative difference (2 epochs) |",
        "|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    write_table(table, args.markdown)


if __name__ == "__main__":
    main()
