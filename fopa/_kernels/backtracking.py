"""Projected gradient ascent with a backtracking step, compiled (``step_size="backtracking"``).

Per row, a trial step ``C = P(delta + eta grad L(delta))`` is accepted only when
the sufficient-ascent inequality

    L(C) >= L(delta) + ||C - delta||^2 / (2 eta)

holds (up to the rounding of the two losses, ``SLACK (|L(C)| + |L(delta)|)``);
otherwise eta is halved and the trial repeated from the same point. After
``GROW_AFTER`` consecutive iterations whose first trial was accepted, eta is
doubled (``docs/solver.md``, "Step sizes"). Near convergence the required gain
``||C - delta||^2 / (2 eta)`` falls below the rounding allowance and the loss test
can no longer tell a good step from a bad one; there a trial of at most ``1/beta``
is accepted (the descent lemma proves its sufficient ascent: ``1/eta - beta/2 >=
1/(2 eta)``), and a longer one only if
the sufficient-ascent inequality with the gain measured by the gradients,
``(grad L(delta) + grad L(C)) . (C - delta) / 2`` (the trapezoidal rule: exact
for quadratics, with no cancellation of the losses' kind; up to its rounding,
``GRADIENT_SLACK`` times the gradient scale times ``||C - delta|| + ||delta||``)
and the KKT residual falls (unless at its rounding level), and such an
acceptance does not count towards doubling (doubling on evidence the test could
not see let eta grow without bound). Each trial costs one evaluation of the loss
and its gradient at C; an accepted trial's gradient serves the next
iteration, so a run of t iterations with no rejection costs t + 1 evaluations.
Ascent is monotone up to rounding, and every accepted step gains at least
``eta ||G_eta||^2 / 2`` with ``G_eta`` the gradient mapping at the step used, so
the sufficient-ascent iteration bound holds with the smallest accepted eta.

Rows run in the same compact blocks as :func:`fopa._kernels.pga.pga_plain`: all
rows still running (whether their candidate is a first trial or a retry) share
one pair of products per round.
"""

from __future__ import annotations

import numpy as np

from .ball import is_kkt, kkt_terms, project
from .jit import jit
from .pga import (
    F_GMAP,
    F_INITIAL,
    F_LOSS,
    HIST_ROWS,
    I_FIRST_GMAP,
    I_FIRST_STAT,
    I_ITERS,
    I_STATUS,
    MAX_ITER,
    NO_CHECKPOINTS,
    TOL,
    _compact,
    _gradient_step,
    _record,
    _row_outputs,
    evaluate_rows,
    kkt_rows,
    next_checkpoint,
    row_buffers,
)

#: Halvings of eta allowed within one iteration before the row gives up
#: (status STEP_UNDERFLOW): 2^-200 of the starting step is far below any useful one.
MAX_HALVINGS = 200
#: First-trial acceptances in a row after which eta doubles.
GROW_AFTER = 3
#: Relative rounding allowance of the losses in the acceptance test.
SLACK = 2.0**-50
#: Relative rounding allowance of the gradient form of the test, used where the loss
#: test is blind (times the row's gradient scale, which bounds the gradient, and
#: ``||C - delta|| + ||delta||``).
GRADIENT_SLACK = 2.0**-46
#: Status of a row whose step could not be accepted within MAX_HALVINGS halvings.
STEP_UNDERFLOW = 3


@jit
def pga_backtracking(
    net, loss, X, Y, eps, eta0, D0, max_iter, tol, scale, constraint, record, target,
    store_iterates, streak0, safe, done0, every, at_least, watch,
):  # fmt: skip
    """Projected gradient ascent with a backtracking step size (l2 ball or sphere).

    Parameters are those of :func:`fopa._kernels.pga.pga_plain` without the
    perturbation, ``eta0`` (N,) being the first trial step of each row and
    ``streak0`` (N,) its count of easy acceptances so far (0 for a new run; a run
    continued in pieces passes the count back in), and ``safe`` (N,) each row's
    ``1/beta`` (beta the rigorous smoothness bound over the ball), a step the
    sufficient-ascent inequality holds for without a test. ``done0, every, at_least,
    watch``: checkpoints, as in ``pga_plain``; here a row that reaches a checkpoint
    waits there until every running row has, and the rows then go on as a new call
    from the checkpoint would start them (the points evaluated again as one block,
    the step and its count of easy acceptances carried), so the iterates, counts and
    smallest steps are those of calls ended at every checkpoint.

    Returns
    -------
    D, grads, fstats, istats, hist, iterates (as ``pga_plain``; ``hist[4]`` holds
    the step used at each iteration), and per row the number of gradient
    evaluations (N,), the smallest accepted step (N,), the last step (N,) and the
    count of easy acceptances (N,).
    """
    W = net.W
    N, d = X.shape
    m = W.shape[0]
    D = D0.copy()
    C = D0.copy()  # the point evaluated next: the start, then trials
    GD = np.zeros((N, d))  # gradient at D
    LD = np.zeros(N)
    RD = np.zeros(N)  # KKT residual at D
    eta = eta0.copy()
    eta_min = np.full(N, np.inf)
    streak = streak0.copy()
    tries = np.zeros(N, np.int64)  # trials of the current iteration
    evals = np.zeros(N, np.int64)
    started = np.zeros(N, np.bool_)
    fstats, istats = _row_outputs(N)
    values, initial, gnorm = fstats[:, F_LOSS], fstats[:, F_INITIAL], fstats[:, F_GMAP]
    iters, status, first_stat = istats[:, I_ITERS], istats[:, I_STATUS], istats[:, I_FIRST_STAT]
    first_gmap = istats[:, I_FIRST_GMAP]
    T = max_iter + 1 if record else 0
    hist = np.zeros((HIST_ROWS, N, T))
    iterates = np.zeros((N if store_iterates else 0, T if store_iterates else 0, d))
    step = np.empty(d)
    moved = np.empty(d)
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    Pbuf, Zbuf, Qbuf, Gbuf, vals, S0 = row_buffers(N, d, m)
    na = N
    checkpoint = next_checkpoint(done0, every) if every != NO_CHECKPOINTS else -1
    waiting = np.zeros(N, np.bool_)  # rows at the checkpoint, waiting for the others
    earlier_min = np.full(N, np.inf)  # smallest steps of the pieces before the current one
    hopeful_stopped = False  # a watched row stopped hopeful since the last checkpoint
    while na > 0:
        G = Gbuf[:na]
        evaluate_rows(net, loss, X, Y, C, active, na, Pbuf, Zbuf, Qbuf, Gbuf, vals, S0)
        for k in range(na):
            i = active[k]
            done[k] = False
            evals[i] += 1
            if started[i]:  # C is a trial step from D
                need = 0.0
                for j in range(d):
                    need += (C[i, j] - D[i, j]) ** 2
                need /= 2.0 * eta[i]
                slack = SLACK * (abs(vals[k]) + abs(LD[i]))
                blind = need <= slack  # the losses' rounding hides the required gain
                if blind:
                    # Measure the gain by the gradients instead: the trapezoidal rule
                    # L(C) - L(delta) ~ (grad L(delta) + grad L(C)) . (C - delta) / 2,
                    # exact for quadratics (third-order error) and free of the losses'
                    # cancellation, up to its own rounding: GRADIENT_SLACK x the
                    # gradient scale x (||C - delta|| + ||delta||), the second term for
                    # the projection's rounding of C (radial, met by the radial gradient)
                    gain = 0.0
                    norm_d = 0.0
                    for j in range(d):
                        gain += (G[k, j] + GD[i, j]) * (C[i, j] - D[i, j])
                        norm_d += D[i, j] ** 2
                    gain *= 0.5
                    allowance = (
                        GRADIENT_SLACK * scale[i] * (np.sqrt(2.0 * eta[i] * need) + np.sqrt(norm_d))
                    )
                    # and the KKT residual must fall, unless it is at its own rounding
                    # level: a step far longer than the curvature allows can cycle on
                    # a level set of L, gaining nothing the two tests above can see
                    # (measured: eta 2000 x 1/beta, a 2-cycle at residual 1.5e-7)
                    _, _, _, res_c = kkt_terms(C[i], G[k], eps, constraint)
                    stalled = res_c >= RD[i] and res_c > GRADIENT_SLACK * scale[i]
                    # A step at most 1/beta gains at least ||C - delta||^2 / (2 eta) by
                    # the descent lemma (no test needed, and none asked of the residual:
                    # leaving a saddle makes it grow)
                    short = eta[i] > safe[i] and (gain < need - allowance or stalled)
                else:
                    short = vals[k] < LD[i] + need - slack
                if short:  # not enough ascent (or too much curvature): halve and retry
                    if tries[i] >= MAX_HALVINGS:
                        status[i] = STEP_UNDERFLOW
                        done[k] = True
                        if RD[i] <= watch[i]:
                            hopeful_stopped = True
                        continue
                    eta[i] *= 0.5
                    tries[i] += 1
                    streak[i] = 0
                    for j in range(d):
                        C[i, j] = D[i, j] + eta[i] * GD[i, j]
                    project(C[i], eps, constraint)
                    continue
                eta_min[i] = min(eta_min[i], eta[i])
                if not blind:  # an acceptance by the gradients is no reason to grow eta
                    streak[i] = streak[i] + 1 if tries[i] == 1 else 0
                if streak[i] >= GROW_AFTER:
                    eta[i] *= 2.0
                    streak[i] = 0
                iters[i] += 1
            else:
                started[i] = True
                if iters[i] == 0:  # not a start again at a checkpoint
                    initial[i] = vals[k]
            # C becomes the current point, with its loss and gradient
            for j in range(d):
                D[i, j] = C[i, j]
                GD[i, j] = G[k, j]
            LD[i] = vals[k]
            values[i] = vals[k]
            t = iters[i]
            gmap, _ = _gradient_step(D[i], GD[i], eta[i], eps, constraint, step, moved)
            gnorm[i] = gmap
            _, _, radial, residual = kkt_terms(D[i], GD[i], eps, constraint)
            RD[i] = residual
            stationary = is_kkt(residual, radial, tol * scale[i])
            if record:
                _record(hist, i, t, vals[k], gmap, D[i], target[i], residual / scale[i], eta[i])
                if store_iterates:
                    iterates[i, t, :] = D[i, :]
            if stationary and first_stat[i] < 0:
                first_stat[i] = t
            if gmap <= tol * scale[i] and first_gmap[i] < 0:
                first_gmap[i] = t
            if tol > 0.0 and stationary:
                status[i] = TOL
                done[k] = True
                if residual <= watch[i]:
                    hopeful_stopped = True
                continue
            if t == max_iter:
                status[i] = MAX_ITER
                done[k] = True
                continue
            if done0 + t == checkpoint:
                waiting[i] = True
                done[k] = True
                continue
            for j in range(d):
                C[i, j] = step[j]
            tries[i] = 1
        na = _compact(active, na, done)
        if na == 0 and checkpoint >= 0:  # every running row is at the checkpoint
            end_here = hopeful_stopped or checkpoint - done0 >= at_least
            for i in range(N):
                if waiting[i] and RD[i] <= watch[i]:
                    end_here = True
            for i in range(N):  # in order, as a new call would take them
                if not waiting[i]:
                    continue
                waiting[i] = False
                if end_here:
                    status[i] = MAX_ITER
                    continue
                active[na] = i
                na += 1
                for j in range(d):
                    C[i, j] = D[i, j]
                started[i] = False
                tries[i] = 0
                evals[i] -= 1  # evaluated again, as a new call would: not a new point
                if eta_min[i] == np.inf:  # the piece's smallest step, as a call's
                    eta_min[i] = eta[i]
                earlier_min[i] = min(earlier_min[i], eta_min[i])
                eta_min[i] = np.inf
            checkpoint = next_checkpoint(checkpoint, every)
    for i in range(N):
        if eta_min[i] == np.inf:  # no step accepted
            eta_min[i] = eta[i]
        eta_min[i] = min(eta_min[i], earlier_min[i])
    kkt_rows(GD, D, eps, constraint, fstats)
    return D, GD, fstats, istats, hist, iterates, evals, eta_min, eta, streak
