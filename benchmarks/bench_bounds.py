"""How tight and how cheap the ball bounds are, over a grid of shapes and scales.

For every cell: a random initial-phase network (``TwoLayerNet.random``), an input
of norm ``tau sqrt(d)``, ``eps = ratio ||x||`` and a label; the bounds of
``fopa.ball_constants`` (tight and row-sum) are held against the largest values
that :func:`fopa.audit.audit_ball_constants` finds (sampling plus adversarial
maximization). A value found above its bound is a bug and stops the run.

Grid: d in {4, 16, 64, 256, 784} x m in {16, 64, 256, 1024, 4096} x tau in {0.01,
0.1, 1} x eps/||x|| in {0.01, 0.1, 0.5, 1} with tanh and both losses, plus every
activation with both losses at (d, m) = (16, 256) and (64, 1024). The
small-ball regime is ``eps max_r ||w_r|| <= 1`` (every pre-activation moves by
at most 1 over the ball).

Cost: for a batch of 64 inputs per shape, the time of the tight constants
against 10 PGA iterations (plain iteration, fixed step, tol = 0) at the same
shape, interleaved rounds (see _timing.py).

    python benchmarks/bench_bounds.py [--quick] [--json FILE] [--markdown FILE]
                                      [--no-cost | --no-audit]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fopa  # noqa: E402
from fopa.audit import audit_ball_constants  # noqa: E402

DS = (4, 16, 64, 256, 784)
MS = (16, 64, 256, 1024, 4096)
TAUS = (0.01, 0.1, 1.0)
RATIOS = (0.01, 0.1, 0.5, 1.0)
BOUNDS = ("gradient_bound", "beta", "rho", "loss_max")
#: Shapes of the cost rounds: two where the tight form also forms the center tensor
#: (r = min(m, d) <= 8), and three above.
COST_SHAPES = ((4, 4096), (8, 1024), (16, 256), (100, 512), (784, 1024))


def cells(quick):
    ds, ms = ((4, 16, 64), (16, 256, 1024)) if quick else (DS, MS)
    out = []
    for d in ds:
        for m in ms:
            for tau in TAUS:
                for ratio in RATIOS:
                    for loss in fopa.LOSSES:
                        out.append((d, m, tau, ratio, "tanh", loss))
    for d, m in ((16, 256), (64, 1024)):
        for act in fopa.ACTIVATIONS:
            if act == "tanh":
                continue
            for tau in TAUS:
                for ratio in RATIOS:
                    for loss in fopa.LOSSES:
                        out.append((d, m, tau, ratio, act, loss))
    return out


def audit_cell(d, m, tau, ratio, act, loss, seed):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    x = gen.standard_normal(d)
    x *= tau * np.sqrt(d) / np.linalg.norm(x)
    y = float(gen.choice([-1.0, 1.0]))
    eps = ratio * np.linalg.norm(x)
    audit = audit_ball_constants(net, x, y, eps, loss=loss, rng=gen)
    if not audit.passed:
        raise AssertionError(f"bound below a found value at {(d, m, tau, ratio, act, loss)}: "
                             f"{audit.violations}, found {audit.found}")  # fmt: skip
    old = fopa.ball_constants(net, x, y, eps, loss=loss, method="row_sum")
    fast = fopa.ball_constants(net, x, y, eps, loss=loss, method="fast")
    for name in BOUNDS:
        tight_value, fast_value = getattr(audit.bounds, name), getattr(fast, name)
        if not tight_value <= fast_value * (1 + 1e-12) <= getattr(old, name) * (1 + 2e-12):
            raise AssertionError(f"{name}: tight <= fast <= row-sum fails at {(d, m, tau, ratio)}")
        if fast_value < audit.found[name]:
            raise AssertionError(f"fast {name} below a found value at {(d, m, tau, ratio)}")
    return dict(
        d=d, m=m, tau=tau, ratio=ratio, activation=act, loss=loss,
        small_ball=bool(eps * float(np.max(net.row_norms)) <= 1.0),
        found=audit.found,
        tight={k: float(getattr(audit.bounds, k)) for k in BOUNDS},
        fast={k: float(getattr(fast, k)) for k in BOUNDS},
        row_sum={k: float(getattr(old, k)) for k in BOUNDS},
    )  # fmt: skip


def cost(d, m, n=64, rounds=5):
    """Median over rounds of (tight constants time) / (10 PGA iterations time)."""
    from _timing import interleaved_times, paired_ratio

    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(d, m, rng=gen)
    X = gen.standard_normal((n, d))
    Y = gen.choice([-1.0, 1.0], n)
    eps = 0.5
    net.row_space_factor  # noqa: B018 - the per-network SVD, made once (cached), not timed

    def constants():
        fopa.ball_constants(net, X, Y, eps)

    def fast_constants():
        fopa.ball_constants(net, X, Y, eps, method="fast")

    def pga10():
        fopa.projected_gradient_ascent(net, X, Y, eps, step_size=0.1, max_iter=10, tol=0.0,
                                       method="plain")  # fmt: skip

    times = interleaved_times(
        {"constants": constants, "fast": fast_constants, "pga10": pga10}, rounds
    )
    return (paired_ratio(times["constants"], times["pga10"]),
            paired_ratio(times["fast"], times["pga10"]))  # fmt: skip


def summarize(rows):
    """Median and worst of bound / found, per m and regime, tight and row-sum."""
    out = []
    for regime in ("small", "large"):
        for m in sorted({r["m"] for r in rows}):
            part = [r for r in rows if r["m"] == m and r["small_ball"] == (regime == "small")]
            if not part:
                continue
            entry = dict(regime=regime, m=m, cells=len(part))
            for name in BOUNDS:
                for kind in ("tight", "fast", "row_sum"):
                    ratio = np.array([r[kind][name] / r["found"][name] for r in part
                                      if r["found"][name] > 0])  # fmt: skip
                    entry[f"{kind}.{name}"] = (float(np.median(ratio)), float(np.max(ratio)))
            out.append(entry)
    return out


def markdown(summary, costs, n_rows, seconds):
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{n_rows} cells, {seconds:.0f} s.",
        "",
        "bound / largest value found, median (worst): tight / fast / row-sum:",
        "",
        "| regime | m | cells | gradient | beta | rho | loss_max |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        cols = []
        for name in BOUNDS:
            (tm, tw), (fm, fw) = e[f"tight.{name}"], e[f"fast.{name}"]
            om, ow = e[f"row_sum.{name}"]
            cols.append(f"{tm:.3g} ({tw:.3g}) / {fm:.3g} ({fw:.3g}) / {om:.3g} ({ow:.3g})")
        lines.append(f"| {e['regime']} | {e['m']} | {e['cells']} | " + " | ".join(cols) + " |")
    if costs:
        lines += ["", "Cost of the constants for 64 inputs, in units of 10 PGA iterations "
                  "on the same batch (median [range] of 5 interleaved rounds):", "",
                  "| (d, m) | tight / 10 iterations | fast / 10 iterations |",
                  "|---|---|---|"]  # fmt: skip
        for (d, m), ((med, lo, hi), (fmed, flo, fhi)) in costs.items():
            lines.append(f"| ({d}, {m}) | {med:.2f} [{lo:.2f}, {hi:.2f}] | "
                         f"{fmed:.2f} [{flo:.2f}, {fhi:.2f}] |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--json", default=None, help="write every cell here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost rounds")
    parser.add_argument("--no-audit", action="store_true", help="only the cost rounds")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    grid = [] if args.no_audit else cells(args.quick)
    for k, cell in enumerate(grid):
        rows.append(audit_cell(*cell, seed=k))
        if k % 50 == 0:
            print(f"{k}/{len(grid)} cells, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - start
    summary = summarize(rows)
    costs = {}
    if not args.no_cost:
        for d, m in COST_SHAPES:
            costs[(d, m)] = cost(d, m)
    text = markdown(summary, costs, len(rows), seconds)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(rows=rows, summary=summary), fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
