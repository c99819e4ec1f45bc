"""Command line interface: ``fopa reproduce``, ``sweep``, ``demo``, ``ascend``, ``certify``,
``attacks``.

``fopa ...`` and ``python -m fopa ...`` are the same program. Every choice the
parser offers (activations, losses, inits, methods, configurations) comes from
the module that owns it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from . import bounds, derivatives, diagnostics
from ._json import jsonable
from ._pga_runs import RELATIVE_FACTOR
from ._version import __version__
from .activations import ACTIVATIONS
from .ascent import INITS, STEP_POLICIES, projected_gradient_ascent
from .certify import DEFAULT_TOL as CERTIFY_TOL
from .certify import METHODS as CERTIFY_METHODS
from .certify import certify
from .compare import DEFAULT_ATTACKS, compare_attacks
from .experiments.registry import CONFIG_NAMES
from .losses import LOSSES
from .network import TwoLayerNet
from .precompile import PART_SECONDS, precompile
from .report import reproduce
from .sweeps import (
    PAPER_CONFIG,
    ResultStore,
    export_results,
    load_spec,
    report_from_stores,
    run_paper,
    run_sweep,
)
from .sweeps.runner import CELL_TIME_LIMIT


def _demo(args) -> int:

    gen = np.random.default_rng(args.seed)
    net = TwoLayerNet.random(args.d, args.m, activation=args.activation, rng=gen)
    x = gen.standard_normal(args.d)
    x *= args.scale / np.linalg.norm(x)  # ||x|| = scale exactly
    y = float(gen.choice([-1.0, 1.0])) if args.loss == "logistic" else float(gen.standard_normal())
    value = derivatives.loss(net, x, y, loss=args.loss)
    grad = derivatives.input_gradient(net, x, y, loss=args.loss)
    eig = np.linalg.eigvalsh(derivatives.input_hessian(net, x, y, loss=args.loss))
    tol = 1e-12 * max(np.max(np.abs(eig)), 1e-300)
    ball = bounds.ball_constants(net, x, y, args.eps, loss=args.loss)
    gcheck = diagnostics.check_gradient(net, x, y, loss=args.loss, rng=gen)
    hcheck = diagnostics.check_hessian(net, x, y, loss=args.loss, rng=gen)
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
        f"ball eps={args.eps:g}  gradient bound {ball.gradient_bound:.4g}, "
        f"beta {ball.beta:.4g}, rho {ball.rho:.4g}, loss max {ball.loss_max:.4g}"
    )
    print(
        f"checks       gradient Taylor slopes {np.array2string(gcheck.slopes, precision=2)} "
        f"({'pass' if gcheck.passed else 'FAIL'}), Hessian "
        f"{np.array2string(hcheck.slopes, precision=2)} ({'pass' if hcheck.passed else 'FAIL'})"
    )
    return 0


def _array(name, text):
    """An array from a ``.npy`` file or a comma-separated list of numbers."""
    if text.endswith(".npy"):
        if not os.path.exists(text):
            raise ValueError(f"{name}: file {text!r} does not exist")
        try:
            return np.load(text, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{name}: {text!r} is not a readable .npy file ({exc})") from None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{name} must be a .npy file or comma-separated numbers; got {text!r}"
        ) from None
    return np.array(values)


def _targets(text):
    arr = _array("--y", text)
    return float(arr[0]) if arr.size == 1 and "," not in text and not text.endswith(".npy") else arr


def _step_size(text):
    """The API's step_size from the words the sweeps use too: a number or
    ``fixed:STEP`` (a fixed step), ``relative:FACTOR`` (``FACTOR * eps``), or a policy."""
    if text in STEP_POLICIES:
        return text
    kind, _, value = text.partition(":")
    try:
        if kind == "fixed" and value:
            return _positive_float(value)
        if kind == "relative" and value:
            return ("relative", _positive_float(value))
        return _positive_float(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"must be a number > 0, fixed:STEP, relative:FACTOR or one of "
            f"{', '.join(STEP_POLICIES)}; got {text!r}"
        ) from None


def _cell(value):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def _print_record(record, as_json):
    """One ``key  value`` line per field; a batch (fields of shape (n,) or (n, d)) as a
    table with one row per input, where an (n, d) field shows as its row norms."""
    if as_json:
        print(json.dumps({k: jsonable(v) for k, v in record.items()}))
        return
    arrays = {k: v for k, v in record.items() if isinstance(v, np.ndarray) and v.ndim >= 1}
    if not arrays:
        width = max(len(k) for k in record)
        for key, value in record.items():
            text = np.array2string(value, precision=6) if isinstance(value, np.ndarray) else value
            print(f"{key:<{width}}  {text}")
        return
    scalars = {k: v for k, v in record.items() if k not in arrays}
    width = max((len(k) for k in scalars), default=0)
    for key, value in scalars.items():
        print(f"{key:<{width}}  {_cell(value)}")
    columns = {}
    for key, value in arrays.items():
        if value.ndim == 2:
            columns[f"||{key}||"] = np.linalg.norm(value, axis=1)
        else:
            columns[key] = value
    n = len(next(iter(columns.values())))
    rows = [["input", *columns]] + [[str(i), *(_cell(c[i]) for c in columns.values())]
                                     for i in range(n)]  # fmt: skip
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _check_writable(path, option):
    """An output path's directory exists (checked before the work, not after it)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{option}: directory {folder!r} does not exist")


def _ascend(args) -> int:
    if args.save_delta:
        _check_writable(args.save_delta, "--save-delta")
    net = TwoLayerNet.load(args.network)
    x = _array("--x", args.x)
    res = projected_gradient_ascent(
        net, x, _targets(args.y), args.eps, step_size=args.step_size, max_iter=args.max_iter,
        tol=args.tol, init=args.init, n_restarts=args.restarts, rng=args.seed, loss=args.loss,
    )  # fmt: skip
    keys = (
        "delta", "loss", "initial_loss", "iterations", "converged", "stopping_criterion",
        "grad_mapping_norm", "tangent_gradient_norm", "kkt_residual", "gradient_scale",
        "multiplier", "step_size", "min_step_size", "gradient_evaluations", "method", "message",
    )  # fmt: skip
    _print_record({k: getattr(res, k) for k in keys}, args.json)
    if args.save_delta:
        np.save(args.save_delta, res.delta)
    return 0


def _certify(args) -> int:
    net = TwoLayerNet.load(args.network)
    cert = certify(
        net, _array("--x", args.x), _targets(args.y), _array("--delta", args.delta), args.eps,
        tol=args.tol, loss=args.loss, method=args.method,
    )  # fmt: skip
    _print_record(dict(vars(cert)), args.json)
    return 0


def _attacks(args) -> int:
    if args.figure:
        _check_writable(args.figure, "--figure")
    net = TwoLayerNet.load(args.network)
    x = _array("--x", args.x)
    comparison = compare_attacks(
        net, x, _targets(args.y), args.eps, attacks=args.attack or DEFAULT_ATTACKS,
        budget=args.budget, n_starts=args.starts, rng=args.seed, loss=args.loss,
    )  # fmt: skip
    if args.json:
        print(json.dumps(jsonable(comparison.to_dict())))
    else:
        print(comparison.table())
    if args.figure:
        comparison.figure().savefig(args.figure, dpi=110, bbox_inches="tight")
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


def _reproduce(args) -> int:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            f"fopa reproduce needs the 'reproduce' extra ({exc.name} is missing): "
            'pip install -e ".[reproduce]"'
        ) from None
    if args.quick and args.config not in (None, "quick"):
        raise ValueError(f"--quick and --config {args.config} conflict: give one of them")
    config = "quick" if args.quick else (args.config or "full")
    if config == PAPER_CONFIG:
        return _reproduce_paper(args)
    if args.scheduler is not None:
        raise ValueError("--scheduler runs only with --config paper (its cells are sweeps)")
    payload = reproduce(args.out, config=config, seed=args.seed, jobs=args.jobs,
                        studies=args.study)  # fmt: skip
    print(
        f"wrote {os.path.join(args.out, 'report.md')}, results.json and "
        f"{len(payload['figures'])} figures in {payload['meta']['seconds']:.0f} s"
    )
    for row in payload["claims"]:
        print(f"  {row['verdict']:<12s} {row['claim']} [{row['experiment']}: {row['settings']}]")
    return 0


def _precompile(args) -> int:
    done = precompile(args.jobs, parts=args.part, only_cold=not args.force)
    if not done.parts:
        print("every kernel asked for is in numba's cache already (--force compiles anyway)")
        return 0
    for group, seconds in zip(done.parts, done.part_seconds, strict=True):
        print(f"  {', '.join(group)}: {seconds:.1f} s")
    print(f"compiled {done.kernels} kernel signatures in {done.seconds:.1f} s")
    return 0


def _reproduce_paper(args) -> int:
    if args.study or args.seed != 0:
        raise ValueError("--config paper runs its fixed specs (seeds from 0): no --study, "
                         "no --seed; run one of them with fopa sweep")  # fmt: skip
    if args.scheduler is not None and args.jobs != 1:
        raise ValueError("give either --jobs (a local pool) or --scheduler, not both")
    payload = run_paper(args.out, jobs=args.jobs, scheduler=args.scheduler)
    print(
        f"wrote {os.path.join(args.out, 'report.md')} from the stores in "
        f"{os.path.join(args.out, 'stores')} ({payload['meta']['seconds']:.0f} cell seconds)"
    )
    for row in payload["claims"]:
        print(f"  {row['verdict']:<12s} {row['claim']} [{row['experiment']}: {row['settings']}]")
    return 0


def _sweep(args) -> int:
    stores = args.store
    if args.report is None and len(stores) > 1:
        raise ValueError("several --store are only for --report")
    if args.spec is None and not (args.status or args.export or args.report):
        raise ValueError("give a sweep SPEC to run, or --status, --export or --report")
    # a spec imports its experiment's module (user code): read it only to run cells;
    # --status, --export and --report read the store's own record of its sweep
    spec = None if args.spec is None or args.status else load_spec(args.spec)
    if spec is not None and not args.status:
        summary = run_sweep(
            spec, stores[0], jobs=args.jobs, scheduler=args.scheduler,
            retry_failed=args.retry_failed, progress=not args.quiet,
            cell_time_limit=args.cell_time_limit or None,
        )  # fmt: skip
        print(
            f"sweep {summary.name}: {summary.ran} cells ran ({summary.ran_failed} failed), "
            f"{summary.skipped} already in the store; {summary.done}/{summary.total} done, "
            f"{summary.failed} failed, in {summary.seconds:.1f} s"
        )
    if args.status:
        with ResultStore(stores[0]) as store:
            print(store.status())
            _print_failed(store.rows(status="failed"))
    if args.export:
        count = export_results(stores[0], args.export)
        print(f"wrote {count} cells to {args.export}")
    if args.report:
        payload = report_from_stores(stores, args.report)
        print(
            f"wrote {os.path.join(args.report, 'report.md')} with {len(payload['claims'])} "
            f"claims and {len(payload['figures'])} figures"
        )
    return 1 if spec is not None and not args.status and summary.failed else 0


#: Failed cells listed by ``fopa sweep --status`` (the export has them all).
_FAILED_SHOWN = 20


def _print_failed(rows):
    """One line per failed cell: index, seed, parameters and the error's last line."""
    for row in rows[:_FAILED_SHOWN]:
        lines = (row["error"] or "").strip().splitlines()
        why = lines[-1] if lines else "no error text"
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"failed       cell {row['cell_index']} (seed {row['seed']}; {params}): {why}")
    if len(rows) > _FAILED_SHOWN:
        print(f"failed       ... and {len(rows) - _FAILED_SHOWN} more (--export lists them all)")


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


class _Formatter(argparse.HelpFormatter):
    """Every option's help says its default (and allowed values come from ``choices``)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings and action.nargs != 0:
            text = (text + " " if text else "") + "(default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line (and exit status 2), without the usage block;
    help shows every default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fopa", description="First-order adversaries.")
    parser.add_argument("--version", action="version", version=f"fopa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rep = sub.add_parser("reproduce", help="run the experiments on the paper's claims")
    rep.add_argument("--quick", action="store_true", help="the quick configuration (minutes)")
    rep.add_argument(
        "--config", choices=(*CONFIG_NAMES, PAPER_CONFIG), default=None,
        help="the configuration (default: full; --quick is --config quick; paper: the "
        "research-scale grids as resumable sweeps (stores in OUT/stores) and the other studies "
        "at full size (saved in OUT/studies): rerun to resume)",
    )  # fmt: skip
    rep.add_argument("--out", default="fopa-report", help="output directory")
    rep.add_argument("--seed", type=int, default=0, help="the root seed of every study")
    rep.add_argument("--jobs", type=_positive_int, default=1, help="worker processes")
    rep.add_argument(
        "--study", action="append", default=None, metavar="NAME",
        help="run only this study (repeatable; default: all); its seed and numbers are "
        "those it has in the whole report",
    )  # fmt: skip
    rep.add_argument(
        "--scheduler", default=None,
        help="with --config paper: run the cells on a Dask scheduler (tcp://host:8786)",
    )  # fmt: skip
    rep.set_defaults(run=_reproduce)
    pre = sub.add_parser(
        "precompile", help="compile the numba kernels into the cache, in parallel",
        description="Compile fopa's numba kernels into numba's cache (NUMBA_CACHE_DIR if "
        "set) before a first run, each part in its own process. Nothing runs, so no result "
        "depends on it.",
    )  # fmt: skip
    pre.add_argument("--jobs", type=_positive_int, default=1, help="processes")
    pre.add_argument(
        "--part", action="append", default=None, choices=tuple(PART_SECONDS),
        help="only this part (repeatable; default: all)",
    )  # fmt: skip
    pre.add_argument(
        "--force", action="store_true", help="also the parts the cache holds (loads them)"
    )
    pre.set_defaults(run=_precompile)
    sweep = sub.add_parser(
        "sweep", help="run a grid of experiment cells into a resumable SQLite store"
    )
    sweep.add_argument("spec", nargs="?", help="sweep spec (TOML); omit with --status/--export")
    sweep.add_argument(
        "--store", required=True, action="append", help="SQLite results store (repeat for --report)"
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive_int, default=1, help="local worker processes")
    where.add_argument("--scheduler", default=None, help="Dask scheduler, e.g. tcp://host:8786")
    sweep.add_argument("--retry-failed", action="store_true", help="rerun cells that failed")
    sweep.add_argument(
        "--cell-time-limit", type=float, default=CELL_TIME_LIMIT, metavar="SECONDS",
        help="stop a cell after this long and record it as failed (0: no limit)",
    )  # fmt: skip
    sweep.add_argument("--status", action="store_true", help="show progress; run nothing")
    sweep.add_argument("--export", default=None, help="write the cells to a .csv or .json file")
    sweep.add_argument("--report", default=None, help="build the reproduction report in DIR")
    sweep.add_argument("--quiet", action="store_true", help="no progress line")
    sweep.set_defaults(run=_sweep)
    demo = sub.add_parser("demo", help="derivatives of a random network at a random input")
    demo.add_argument("--d", type=_positive_int, default=10, help="input dimension")
    demo.add_argument("--m", type=_positive_int, default=50, help="width")
    demo.add_argument("--activation", choices=ACTIVATIONS, default="tanh", help="sigma")
    demo.add_argument("--loss", choices=LOSSES, default="quadratic", help="the loss")
    demo.add_argument(
        "--scale", type=_positive_float, default=1.0,
        help="the norm of the input (a random direction of norm SCALE)",
    )  # fmt: skip
    demo.add_argument("--eps", type=_positive_float, default=0.5, help="ball radius")
    demo.add_argument("--seed", type=int, default=0, help="seed of the network and input")
    demo.set_defaults(run=_demo)

    def problem_arguments(p):
        p.add_argument("network", help="a network saved with TwoLayerNet.save (.npz)")
        p.add_argument("--x", required=True, help="input: .npy file or comma list")
        p.add_argument("--y", required=True, help="target(s): number, comma list or .npy")
        p.add_argument("--eps", type=_positive_float, required=True, help="ball radius")
        p.add_argument("--loss", choices=LOSSES, default="quadratic", help="the loss")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    ascend = sub.add_parser("ascend", help="projected gradient ascent on a saved network")
    problem_arguments(ascend)
    ascend.add_argument(
        "--step-size", type=_step_size, default="lipschitz",
        help=f"a number > 0 (or fixed:STEP), relative:FACTOR (FACTOR x eps; 'relative' alone "
        f"is {RELATIVE_FACTOR:g} x eps) or one of {', '.join(STEP_POLICIES)} (default: lipschitz)",
    )  # fmt: skip
    ascend.add_argument(
        "--max-iter", type=int, default=10_000, help="maximum number of steps (default: 10000)"
    )
    ascend.add_argument(
        "--tol", type=float, default=1e-8,
        help="stop at a KKT residual <= tol x the ball's gradient scale (default: 1e-8)",
    )  # fmt: skip
    ascend.add_argument("--init", choices=INITS, default="zero", help="the start")
    ascend.add_argument("--restarts", type=_positive_int, default=1, help="starts per input")
    ascend.add_argument("--seed", type=int, default=None, help="seed of random starts")
    ascend.add_argument("--save-delta", default=None, help="write the result's delta (.npy)")
    ascend.set_defaults(run=_ascend)

    cert = sub.add_parser("certify", help="second-order certificate of a point")
    problem_arguments(cert)
    cert.add_argument("--delta", required=True, help="the point: .npy file or comma list")
    cert.add_argument(
        "--tol", type=float, default=CERTIFY_TOL,
        help=f"relative tolerance, as the solver's (default: {CERTIFY_TOL:g})",
    )  # fmt: skip
    cert.add_argument(
        "--method", choices=CERTIFY_METHODS, default="auto", help="how the spectrum is bounded"
    )
    cert.set_defaults(run=_certify)
    att = sub.add_parser("attacks", help="attacks side by side against certified ground truth")
    problem_arguments(att)
    att.add_argument(
        "--attack", action="append", choices=tuple(DEFAULT_ATTACKS), default=None,
        help="an attack to run (repeat for several; default: all)",
    )  # fmt: skip
    att.add_argument(
        "--budget", type=_positive_int, default=100,
        help="gradient evaluations per attack and input (default: 100)",
    )  # fmt: skip
    att.add_argument(
        "--starts", type=_positive_int, default=32,
        help="starts of the many-start search for the best certified maximum (default: 32)",
    )  # fmt: skip
    att.add_argument("--seed", type=int, default=None, help="seed of the random starts")
    att.add_argument(
        "--figure", default=None, help="also draw the gap against gradient evaluations (.png)"
    )
    att.set_defaults(run=_attacks)
    return parser


def _compile_notice() -> None:
    """Say so on stderr when the kernels are not in numba's cache yet (the first run
    after installation compiles them, which takes tens of seconds)."""
    from ._kernels.jit import cache_is_warm
    from ._kernels.network import predict

    if cache_is_warm(predict) is False:
        print(
            "fopa: compiling the numba kernels on first use (about a minute of one core; "
            "cached for later runs; 'fopa precompile --jobs N' does it ahead, in parallel)",
            file=sys.stderr,
            flush=True,
        )


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "precompile":
        _compile_notice()
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (fopa ... | head): quiet, as Unix tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141
    except (ValueError, TypeError, OSError) as exc:
        print(f"fopa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        sweep = args.command == "sweep"
        hint = " (finished cells are in the store: rerun to resume)" if sweep else ""
        print(f"\nfopa {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
