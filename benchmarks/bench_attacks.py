"""Time fopa's attacks against the attack libraries running the same iterates.

Same network (tanh, logistic loss as cross-entropy on the logits ``(0, f)``),
same batch, same start, float64, CPU, inputs in ``[0, 1]`` with ``box=(0, 1)``:

* ``fopa.attacks.pgd`` (project then clip, guard ``n 1e-10``) against
  torchattacks' ``PGDL2``, and ``pgd(order="clip_then_project")`` against ART's
  ``ProjectedGradientDescent(norm=2)`` (run in float64);
* ``fopa.attacks.apgd`` against AutoAttack's ``APGDAttack(norm="L2")``
  ``attack_single_run`` from the same start.

Each pair computes the same iterates (``tests/test_attacks.py`` holds them to
1e-10), so "time to the same final loss" is the time of the whole run, and the
time per gradient evaluation is that over the gradients used. torch uses all
cores (``torch.set_num_threads``), as fopa's BLAS does.

Best of ``--repeats`` interleaved rounds; ratios are medians of ratios within a
round, with their range (``_timing.py``).

Usage::

    python benchmarks/bench_attacks.py [--repeats 7] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
from _peers import write_table  # (script folder)
from _timing import interleaved_times, paired_ratio

import fopa
from fopa import attacks

SHAPES = [(64, 100, 512), (256, 784, 1024)]
STEPS = 20


def problem(n, d, m, seed=0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, rng=gen)
    X = gen.uniform(0.0, 1.0, (n, d))
    Y = gen.choice([-1.0, 1.0], n)
    eps = 0.1 * float(np.median(np.linalg.norm(X, axis=1)))
    start = gen.standard_normal((n, d))
    start *= 0.5 * eps / np.linalg.norm(start, axis=1)[:, None]
    return net, X, Y, eps, start


def peers(net, X, Y, eps, start):
    import torch
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier
    from pyautoattack.autopgd_base import APGDAttack

    torch.set_num_threads(os.cpu_count() or 1)
    for module in list(sys.modules.values()):  # ART in float64, as fopa
        if getattr(module, "ART_NUMPY_DTYPE", None) is np.float32:
            module.ART_NUMPY_DTYPE = np.float64
    body = net.to_torch()

    class TwoLogits(torch.nn.Module):
        def forward(self, x):
            out = body(x.reshape(x.shape[0], -1))
            return torch.cat([torch.zeros_like(out), out], dim=1)

    model = TwoLogits().eval()
    n, d = X.shape
    Xt = torch.from_numpy(X)
    labels = torch.from_numpy((Y > 0).astype(np.int64))
    alpha = 2.5 * eps / STEPS
    ta = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=STEPS, random_start=False)
    clf = PyTorchClassifier(
        model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(d,), nb_classes=2,
        clip_values=(0.0, 1.0),
    )  # fmt: skip
    art = ProjectedGradientDescent(
        clf, norm=2, eps=eps, eps_step=alpha, max_iter=STEPS, num_random_init=0,
        batch_size=n, verbose=False,
    )  # fmt: skip
    ap = APGDAttack(model, n_iter=STEPS, norm="L2", eps=eps, loss="ce", device="cpu")
    ap.init_hyperparam(Xt)
    start_t = torch.from_numpy(X + start)
    X4 = Xt.reshape(n, 1, 1, d)
    y_art = (Y > 0).astype(int)
    return {
        "torchattacks PGDL2": lambda: ta(X4, labels),
        "ART PGD": lambda: art.generate(X, y=y_art),
        "AutoAttack APGD": lambda: ap.attack_single_run(Xt, labels, x_init=start_t),
    }


def measure(n, d, m, repeats, rows, floors):
    """Time every method at one shape; append table rows and the floor."""
    net, X, Y, eps, start = problem(n, d, m)
    alpha = 2.5 * eps / STEPS
    kw = dict(steps=STEPS, alpha=alpha, box=(0.0, 1.0), loss="logistic")
    funcs = {
        "fopa pgd": lambda: attacks.pgd(net, X, Y, eps, guard=n * 1e-10, **kw),
        "fopa pgd (ART order)": lambda: attacks.pgd(
            net, X, Y, eps, order="clip_then_project", **kw
        ),
        "fopa apgd": lambda: attacks.apgd(
            net, X, Y, eps, n_iter=STEPS, start=start, box=(0.0, 1.0), loss="logistic"
        ),
    }
    funcs.update(peers(net, X, Y, eps, start))
    # the floor: the two products of one gradient, P W^T and Q W, for STEPS steps
    Z, Qm, G = np.empty((n, m)), np.random.default_rng(1).random((n, m)), np.empty((n, d))
    WT = np.ascontiguousarray(net.W.T)

    def floor():
        for _ in range(STEPS):
            np.dot(X, WT, out=Z)
            np.dot(Qm, net.W, out=G)

    funcs["floor"] = floor
    times = interleaved_times(funcs, repeats)
    gflops = 4.0 * n * d * m * STEPS / min(times["floor"]) / 1e9
    floors.append(
        f"({n}, {d}, {m}): {min(times['floor']) / STEPS * 1e6:.0f} us per gradient "
        f"({gflops:.0f} GFLOP/s)"
    )
    pairs = [
        ("fopa pgd", "torchattacks PGDL2", STEPS),
        ("fopa pgd (ART order)", "ART PGD", STEPS),
        ("fopa apgd", "AutoAttack APGD", STEPS + 1),
    ]
    for ours, theirs, grads in pairs:
        med, lo, hi = paired_ratio(times[theirs], times[ours])
        rows.append(
            f"| ({n}, {d}, {m}) | {theirs} | {min(times[ours]) * 1e3:.2f} ms "
            f"({min(times[ours]) / grads * 1e6:.0f} us/grad) | "
            f"{min(times[theirs]) * 1e3:.2f} ms ({min(times[theirs]) / grads * 1e6:.0f} "
            f"us/grad) | {med:.1f}x ({lo:.1f}-{hi:.1f}) |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    rows, floors = [], []
    for n, d, m in SHAPES:
        measure(n, d, m, args.repeats, rows, floors)
    import torch

    table = "\n".join(
        [
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"numpy {np.__version__}, torch {torch.__version__}; {STEPS} iterations, "
            f"float64, {args.repeats} interleaved rounds (best time shown).",
            "",
            "| (n, d, m) | peer | fopa | peer | peer / fopa, median (range) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Floor (the two matrix products of a gradient, NumPy's BLAS, all cores): "
            + "; ".join(floors)
            + ".",
        ]
    )
    write_table(table, args.markdown)


if __name__ == "__main__":
    main()
