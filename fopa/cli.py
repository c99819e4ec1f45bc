"""Command line interface: ``fopa demo``."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _demo(args) -> int:
    import fopa

    gen = np.random.default_rng(args.seed)
    net = fopa.TwoLayerNet.random(args.d, args.m, activation=args.activation, rng=gen)
    x = gen.standard_normal(args.d) * args.scale / np.sqrt(args.d)
    y = float(gen.choice([-1.0, 1.0])) if args.loss == "logistic" else float(gen.standard_normal())
    value = fopa.loss(net, x, y, loss=args.loss)
    grad = fopa.input_gradient(net, x, y, loss=args.loss)
    eig = np.linalg.eigvalsh(fopa.input_hessian(net, x, y, loss=args.loss))
    tol = 1e-12 * max(np.max(np.abs(eig)), 1e-300)
    bounds = fopa.ball_constants(net, x, y, args.eps, loss=args.loss)
    gcheck = fopa.check_gradient(net, x, y, loss=args.loss, rng=gen)
    hcheck = fopa.check_hessian(net, x, y, loss=args.loss, rng=gen)
    print(f"network      {net!r}")
    print(f"input        d={args.d}, ||x||={np.linalg.norm(x):.4g}, y={y:.4g}, loss={args.loss}")
    print(f"loss         {value:.10g}")
    print(f"||grad L||   {np.linalg.norm(grad):.6g}")
    print(
        f"hess L       eigenvalues in [{eig[0]:.6g}, {eig[-1]:.6g}]; "
        f"{np.sum(eig > tol)} positive, {np.sum(eig < -tol)} negative, "
        f"{np.sum(np.abs(eig) <= tol)} zero (rank <= m + 1 = {args.m + 1})"
    )
    print(
        f"ball eps={args.eps:g}  gradient bound {bounds.gradient_bound:.4g}, "
        f"beta {bounds.beta:.4g}, rho {bounds.rho:.4g}, loss max {bounds.loss_max:.4g}"
    )
    print(
        f"checks       gradient Taylor slopes {np.array2string(gcheck.slopes, precision=2)} "
        f"({'pass' if gcheck.passed else 'FAIL'}), Hessian "
        f"{np.array2string(hcheck.slopes, precision=2)} ({'pass' if hcheck.passed else 'FAIL'})"
    )
    return 0


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import ACTIVATIONS, LOSSES

    parser = argparse.ArgumentParser(prog="fopa", description="First-order adversaries.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="derivatives of a random network at a random input")
    demo.add_argument("--d", type=_positive_int, default=10, help="input dimension")
    demo.add_argument("--m", type=_positive_int, default=50, help="width")
    demo.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
    demo.add_argument("--loss", choices=LOSSES, default="quadratic")
    demo.add_argument("--scale", type=_positive_float, default=1.0, help="norm of the input")
    demo.add_argument("--eps", type=_positive_float, default=0.5, help="ball radius")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"fopa {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
