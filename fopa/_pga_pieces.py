"""The ascent in pieces between checkpoints, below :func:`fopa.projected_gradient_ascent`:
a long run goes in pieces so that Ctrl-C is noticed between them, and with
``certify_every`` each row's point is certified at the checkpoints where it is
"hopeful" (``docs/solver.md``, "Interrupts")."""

from __future__ import annotations

import numpy as np

from ._interrupts import PIECE_WORK
from ._kernels import pga as K
from ._kernels.certificate import norm_test_rows
from ._kernels.tolerances import NORM_TEST_MARGIN
from ._parallel import row_blocks
from ._pga_runs import LiveRows, RunArrays, run_kernel
from .bounds import certificate_bounds
from .certify import DEFAULT_TOL as CERTIFY_TOL
from .certify import certify_arrays, pick_method, tolerance_units

NO_PERTURBATION = np.zeros(5)  # radius 0: off (the kernels only read it)
NO_TARGET = np.zeros((0, 0))  # no history: the kernels do not read it

#: Iterations of one piece of a long run, at least (a piece is also at least
#: ``PIECE_WORK`` multiply-adds): between pieces a pending Ctrl-C is noticed
#: (``docs/solver.md``, "Interrupts").
PIECE_ITERS = 100


def piece_length(rows, d, m):
    """Iterations per piece of a run; depends only on the shapes (bits do not depend on
    timing)."""
    return max(PIECE_ITERS, int(PIECE_WORK / max(2.0 * rows * d * m, 1.0)))


#: A row is certified at a checkpoint when its KKT residual is at most this factor
#: times the certificate's tolerance (times its gradient scale): well above it, the
#: point is not critical for the certificate and none is computed.
HOPEFUL = 2.0
#: The kernel's test for "hopeful" is this much wider (relative), so that it ends a
#: piece wherever the test here could pass whatever the last bit of the residual.
_HOPEFUL_WIDER = 1.0 + 1e-6


def strict_by_norms(net, code, X, Y, D, eps, scales):
    """What norms alone show of each row's point, in O(md) per row: two (n,) bool
    arrays, ``strict`` and ``not_critical``.

    :func:`fopa._kernels.certificate.norm_test_rows` gives the tangent gradient,
    the multiplier and a bound of the largest eigenvalue of the tangent block. A
    row is ``strict`` when all three pass the certificate's tests for a strict
    maximum (:func:`fopa.certify`, default ``tol``), ``not_critical`` when the
    tangent gradient or the multiplier fails them, each with the relative margin
    ``NORM_TEST_MARGIN``: the full certificate classifies the first
    ``strict_local_max`` and the second ``not_critical``. The other rows are left to
    it (``docs/certify.md``, "Inside the ascent: a norm test first"). ``scales``
    (2, n): the rows' gradient and curvature scales
    (:func:`fopa.bounds.tolerance_scales`).
    """
    stats = norm_test_rows(net.kernel_view, code, X, Y, D, eps, net.weight_norm)
    on_boundary, mu, gamma, top = stats.T
    grad_tol, mu_tol, eig_tol = tolerance_units(CERTIFY_TOL, eps, *scales)
    wide, narrow = 1.0 + NORM_TEST_MARGIN, 1.0 - NORM_TEST_MARGIN
    strict = (
        (on_boundary == 1.0)
        & (gamma * wide <= grad_tol)
        & (mu > wide * mu_tol)
        & (top < -wide * eig_tol)
    )
    not_critical = (gamma * narrow > grad_tol) | ((on_boundary == 1.0) & (mu < -wide * mu_tol))
    return strict, not_critical


def runs_in_pieces(net, loss, code, method, rows, scalars, seeds, every, certify, pending, known,
                   tick=None):  # fmt: skip
    """The ascent in pieces that end at checkpoints (every ``every`` iterations, or
    the "auto" schedule of :func:`fopa._kernels.pga.next_checkpoint`), each
    continuing where the previous one ended with the step in use (and, for
    backtracking, its count of easy acceptances), so the iterates are those of one
    run (the row-space iteration starts its coordinates afresh at each piece: the
    same iterates up to rounding).

    With ``certify``, each row's point is certified at every checkpoint (and where
    it stops) until it is a strict local maximum; only the current points are kept
    (memory O(rows x d)). A point is certified only where it is "hopeful" (KKT
    residual at most ``HOPEFUL`` times the certificate's tolerance); the kernels run
    on over checkpoints with no hopeful row (:func:`fopa._kernels.pga.pga_plain`),
    with the same iterates as pieces that end at every checkpoint.
    Between pieces ``pending()`` is asked whether Ctrl-C arrived; if so the run ends
    early (its caller then raises KeyboardInterrupt). ``loss`` is the loss's name,
    ``code`` its code. Returns the kernel outputs of the whole run and the first
    certified iteration per row (-1: none). ``known``: each row's certificate bounds (3,
    rows), ``rho`` NaN where the step's tight bounds did not give it, or None (then
    computed for a row when it is first certified). ``tick(done, running)`` is told
    after every piece the iterations done and the rows still running.
    """
    X, Y, eta, D0, scale, streak, safe = rows
    eps, max_iter, tol, cons = scalars
    N, d = D0.shape
    first = np.full(N, -1, np.int64)
    cert_method = pick_method("auto", net, d)
    # rho and the tolerance scales per row: from the step's tight bounds, or when needed
    cert_bounds = np.full((3, N), np.nan) if known is None else known.copy()
    # The state of the rows still running, packed (own copies, C-contiguous, as the
    # kernel gets them), in :class:`LiveRows`; a row that stops is written into
    # the whole-run arrays once. Per piece only the packed arrays are touched.
    live = LiveRows(X, Y, eta, D0, scale, streak, safe, seeds)
    whole = None  # the whole-run arrays, made from the first piece's outputs
    initial = None
    left_max = 0  # the most iterations of a row that stopped
    every_code = K.AUTO_SCHEDULE if every == "auto" else int(every)
    while live.size and not pending():
        done = int(live.total.max())  # every running row has done as many
        if method != "gram":
            # one call runs from checkpoint to checkpoint until a row is to be
            # certified (the same iterates as a call per checkpoint, fewer calls);
            # in row blocks it ends at every checkpoint (blocks change as rows stop)
            one_block = certify and len(row_blocks(live.size, d, net.m)) == 1
            at_least = piece_length(live.size, d, net.m) if one_block else 1
            watch = np.full(live.size, -1.0)
            if certify:
                unsure = first[live.index] < 0
                watch[unsure] = HOPEFUL * _HOPEFUL_WIDER * CERTIFY_TOL * live.scale[unsure]
            budget, schedule = max_iter - done, (done, every_code, at_least, watch)
        else:
            budget = int(min(K.next_checkpoint(done, every_code), max_iter) - done)
            schedule = None
        res = run_kernel(method, net, code, live.inputs(), (eps, budget, tol, cons),
                         NO_PERTURBATION, live.seeds, 0, NO_TARGET, 0, schedule)  # fmt: skip
        Dp, Gp, fs, ist, _, _, ev, mn, last, st = res
        if whole is None:
            whole = RunArrays(N, d, Gp, fs, ist)
            initial = fs[:, K.F_INITIAL].copy()
        live.record(Dp, Gp, fs, ist, ev, mn, last, st)
        if certify:
            # a point whose KKT residual is well above the certificate's tolerance is
            # not critical for it: no certificate is computed there. The others are
            # certified as one batch; each row's bounds (its center's) once per run
            hopeful = fs[:, K.F_TANGENT] <= HOPEFUL * CERTIFY_TOL * live.scale
            ks = np.flatnonzero(hopeful & (first[live.index] < 0))
            if ks.size:  # most strict maxima are shown by norms alone, in O(md)
                at = live.index[ks]
                strict, not_critical = strict_by_norms(net, code, X[at], Y[at], Dp[ks], eps,
                                                       cert_bounds[1:, at])  # fmt: skip
                first[at[strict]] = live.total[ks[strict]]
                ks = ks[~(strict | not_critical)]
            if ks.size:
                rows_now = live.index[ks]
                if cert_method == "factor":
                    fresh = rows_now[np.isnan(cert_bounds[0, rows_now])]
                    if fresh.size:
                        cert_bounds[:, fresh] = certificate_bounds(net, X[fresh], Y[fresh], eps,
                                                                   code, pending)  # fmt: skip
                    bounds = cert_bounds[:, rows_now]
                else:
                    bounds = None
                certs = certify_arrays(net, X[rows_now], Y[rows_now], Dp[ks], eps, CERTIFY_TOL,
                                       code, cert_method, bounds, pending)  # fmt: skip
                for k, cert in zip(ks, certs, strict=False):  # fewer after an interrupt
                    if cert[0] == "strict_local_max":
                        first[live.index[k]] = live.total[k]
        keep = (ist[:, K.I_STATUS] == K.MAX_ITER) & (live.total < max_iter)
        if not keep.all():
            left_max = max(left_max, int(live.total[~keep].max()))
            live.retire(~keep, whole)
        if tick is not None:
            tick(max(left_max, int(live.total.max()) if live.size else 0), live.size)
    if whole is None:  # interrupted before the first piece
        return None, first
    live.retire(np.ones(live.size, bool), whole)  # the rows an interrupt stopped
    whole.fstats[:, K.F_INITIAL] = initial
    whole.istats[:, K.I_ITERS] = whole.total
    for column, seen in whole.firsts.items():
        whole.istats[:, column] = seen
    return (whole.D, whole.grads, whole.fstats, whole.istats, None, None, whole.evals,
            whole.min_step, whole.step, whole.streak), first  # fmt: skip
