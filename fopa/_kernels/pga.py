"""The compiled loops of projected gradient ascent (see :mod:`fopa.ascent`).

Two fused loops share one interface:

* :func:`pga_plain` (here) iterates on ``delta`` directly: per iteration one product
  ``(X + D) W^T`` and one ``Q W`` over the rows still running.
* :func:`fopa._kernels.pga_gram.pga_gram` keeps ``delta = gamma * delta0 + A W`` in
  the row space of ``W`` (``docs/solver.md``, "The Gram iteration"): per iteration
  one product ``Q K`` with the Gram matrix ``K = W W^T``, of size rows x m x m
  instead of two rows x d x m.

Rows are independent ascents (one per input and restart). Rows that stop are
dropped from the products (the running rows are gathered into a compact block
every iteration), so a batch costs what its running rows cost. The matrix
products run on BLAS's own threads; the per-row work runs on one thread, in
loops that LLVM vectorises. (Running it on numba's threads as well made the two
thread pools compete for the same cores: at (n, d, m) = (64, 100, 512) an
iteration took 15 times longer.) Noise for the perturbed variant comes from a
SplitMix64 stream seeded per row, so it does not depend on scheduling.
"""

from __future__ import annotations

import math

import numpy as np

from .ball import LINF, is_kkt, kkt_terms, project
from .jit import jit
from .linalg import norm2, product_into
from .network import row_coefficients
from .tolerances import TINY

RUNNING, MAX_ITER, TOL, NO_ESCAPE = -1, 0, 1, 2
# columns of the per-row outputs: floats and ints
F_LOSS, F_INITIAL, F_GMAP, F_TANGENT, F_MULTIPLIER = 0, 1, 2, 3, 4
I_ITERS, I_STATUS, I_FIRST_STAT, I_PERTURBATIONS, I_FIRST_GMAP = 0, 1, 2, 3, 4


@jit
def _row_outputs(N):
    """Zeroed per-row outputs: floats (N, 5) and ints (N, 5), status running, no first t."""
    fstats = np.zeros((N, 5))
    istats = np.zeros((N, 5), np.int64)
    for i in range(N):
        istats[i, I_STATUS] = RUNNING
        istats[i, I_FIRST_STAT] = -1
        istats[i, I_FIRST_GMAP] = -1
    return fstats, istats


#: ``certify_every="auto"``: a checkpoint after every iteration up to this one, then
#: every ``ceil(t / AUTO_CERTIFY_EXACT)`` iterations at iteration t (a 1 % resolution).
AUTO_CERTIFY_EXACT = 100
#: ``every`` codes of :func:`next_checkpoint` besides a fixed interval (> 0): the
#: "auto" schedule, and no checkpoints (a run stops only at ``max_iter``).
AUTO_SCHEDULE, NO_CHECKPOINTS = 0, -1


@jit
def next_checkpoint(done, every):
    """The checkpoint after ``done`` iterations of a run: ``done + every``, or with
    ``every == AUTO_SCHEDULE`` ``done + max(1, ceil(done / AUTO_CERTIFY_EXACT))``
    (every iteration up to 100, then within 1 %)."""
    if every == AUTO_SCHEDULE:
        return done + max(1, -(-done // AUTO_CERTIFY_EXACT))
    return done + every


#: Rows of the recorded history: loss, gradient-mapping norm, distance to the final
#: point, relative KKT residual, step size.
HIST_ROWS = 5


@jit
def _record(hist, i, t, value, gmap, point, target, residual, step):
    """Write iteration t of row i into the history."""
    hist[0, i, t] = value
    hist[1, i, t] = gmap
    dist2 = 0.0
    for j in range(point.shape[0]):
        dist2 += (point[j] - target[j]) ** 2
    hist[2, i, t] = math.sqrt(dist2)
    hist[3, i, t] = residual
    hist[4, i, t] = step


@jit
def _splitmix(state):
    """One SplitMix64 step: (new state, uniform float in [0, 1))."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@jit
def _ball_noise(state, out):
    """Fill out (d,) with a point uniform in the unit ball; return the new state."""
    d = out.shape[0]
    norm2 = 0.0
    for j in range(d):
        state, u1 = _splitmix(state)
        state, u2 = _splitmix(state)
        out[j] = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
        norm2 += out[j] * out[j]
    state, u = _splitmix(state)
    scale = u ** (1.0 / d) / max(math.sqrt(norm2), TINY)
    for j in range(d):
        out[j] *= scale
    return state


@jit
def _compact(active, na, done):
    """Drop the rows flagged in done[:na] from active[:na], in place; return the new count."""
    j = 0
    for k in range(na):
        if not done[k]:
            active[j] = active[k]
            j += 1
    return j


@jit
def row_buffers(N, d, m):
    """Work buffers for :func:`evaluate_rows`, allocated once per run: ``Pbuf`` (N, d),
    ``Zbuf`` and ``Qbuf`` (N, m), ``Gbuf`` (N, d), ``vals`` (N,) and scratch ``S0`` (m,);
    row k of each belongs to the running row ``active[k]``."""
    return (
        np.empty((N, d)),
        np.empty((N, m)),
        np.empty((N, m)),
        np.empty((N, d)),
        np.empty(N),
        np.empty(m),
    )


@jit
def compact_losses(net, loss, P, Y, active, na, Zbuf, Qbuf, vals, S0):
    """Loss at the compact points ``P[k]``, ``k < na``, of the rows ``i = active[k]``
    (targets ``Y[i]``): ``vals[k]``, with one product ``P W^T``; ``Qbuf[k]`` holds the
    gradient coefficients afterwards (``grad L = Q W``)."""
    m = net.W.shape[0]
    Z, Q = Zbuf[:na], Qbuf[:na]
    product_into(P[:na], net.WT, Z)
    b = net.b
    for k in range(na):
        for r in range(m):
            Z[k, r] += b[r]
        vals[k] = row_coefficients(net, loss, Y[active[k]], Z[k], Q[k], S0)[0]


@jit
def evaluate_rows(net, loss, X, Y, points, active, na, Pbuf, Zbuf, Qbuf, Gbuf, vals, S0):
    """Loss and gradient at ``X[i] + points[i]`` for the running rows ``i = active[k]``,
    ``k < na``: ``vals[k]`` and ``Gbuf[k]``, with one product ``P W^T`` and one
    ``Q W`` over the compact block (buffers of shape (N, .), scratch S0 (m,))."""
    d = X.shape[1]
    P = Pbuf[:na]
    for k in range(na):
        i = active[k]
        for j in range(d):
            P[k, j] = X[i, j] + points[i, j]
    compact_losses(net, loss, Pbuf, Y, active, na, Zbuf, Qbuf, vals, S0)
    product_into(Qbuf[:na], net.W, Gbuf[:na])


@jit
def _gradient_step(Di, Gi, h, eps, constraint, step, moved):
    """``step = P(delta + h grad L)`` (the sign of the gradient for linf) and
    ``moved = step - delta``; returns the gradient-mapping norm ``||moved|| / h``
    and the projection's factor (see :func:`fopa._kernels.ball.project`)."""
    for j in range(Di.shape[0]):
        g = Gi[j]
        if constraint == LINF:
            g = 1.0 if g > 0.0 else (-1.0 if g < 0.0 else 0.0)
        step[j] = Di[j] + h * g
    factor = project(step, eps, constraint)
    for j in range(Di.shape[0]):
        moved[j] = step[j] - Di[j]
    return norm2(moved) / h, factor


@jit
def pga_plain(
    net, loss, X, Y, eps, eta, D0, max_iter, tol, scale, constraint, pert, seeds, record,
    target, store_iterates, done0, every, at_least, watch,
):  # fmt: skip
    """Projected gradient ascent on delta.

    Parameters
    ----------
    net : NetView of the network; loss : loss code.
    X, D0 : (N, d) inputs and starts; Y, eta : (N,) targets and step sizes.
    eps, tol : floats; max_iter, constraint : ints.
    scale : (N,) gradient scale of each row's ball: a row stops when its KKT residual
        is at most ``tol * scale`` (:func:`fopa._kernels.ball.is_kkt`); tol = 0 never stops.
    pert : (5,) radius, threshold, interval, min_gain, max_count (radius 0: off).
    seeds : (N,) uint64 noise seeds. record : 1 to record history.
    target : (N, d) point to measure distances to (record only).
    store_iterates : 1 to keep every iterate (record only).
    done0, every, at_least, watch : checkpoints of a run continued in calls (no
        perturbation): the run has done ``done0`` iterations before this call; its
        checkpoints are those of :func:`next_checkpoint` with ``every``
        (``NO_CHECKPOINTS``: none). The call ends at the first checkpoint where a
        row is "hopeful" (its KKT residual, >= 0, at most ``watch[i]``; negative: never),
        where a row stops (a call that ended there would continue the others from
        a new evaluation of a smaller block), after a hopeful row stopped since the
        previous checkpoint, or at least ``at_least`` iterations into the call
        (1: at the first checkpoint); the rows still running then get status
        ``MAX_ITER`` as at ``max_iter``. So the iterates are those of calls ended at
        every checkpoint, and the call ends wherever its caller has rows to certify.

    Returns
    -------
    D : (N, d) returned points; grads : (N, d) grad L there;
    fstats : (N, 5) float columns F_LOSS, F_INITIAL, F_GMAP, F_TANGENT, F_MULTIPLIER;
    istats : (N, 5) int columns I_ITERS, I_STATUS, I_FIRST_STAT (first KKT point),
        I_PERTURBATIONS, I_FIRST_GMAP (first t with ||G|| <= tol * scale);
    hist : (5, N, T+1) loss, gradient-mapping norm, distance to target, relative KKT
        residual, step size (record only);
    iterates : (N, T+1, d) (store_iterates only).
    """
    W = net.W
    N, d = X.shape
    m = W.shape[0]
    D = D0.copy()
    grads = np.zeros((N, d))
    fstats, istats = _row_outputs(N)
    values, initial, gnorm = fstats[:, F_LOSS], fstats[:, F_INITIAL], fstats[:, F_GMAP]
    iters, status = istats[:, I_ITERS], istats[:, I_STATUS]
    first_stat, n_pert = istats[:, I_FIRST_STAT], istats[:, I_PERTURBATIONS]
    first_gmap = istats[:, I_FIRST_GMAP]
    T = max_iter + 1 if record else 0
    hist = np.zeros((HIST_ROWS, N, T))
    iterates = np.zeros((N if store_iterates else 0, T if store_iterates else 0, d))
    radius, threshold, interval, min_gain, max_count = pert[0], pert[1], pert[2], pert[3], pert[4]
    state = seeds.copy()
    saved = np.zeros((N if radius > 0 else 0, d))
    saved_value = np.zeros(N)
    saved_gmap = np.zeros(N)
    saved_grad = np.zeros((N if radius > 0 else 0, d))
    pert_iter = np.full(N, -1, np.int64)
    noise = np.zeros((N if radius > 0 else 0, d))
    step = np.empty(d)
    moved = np.empty(d)
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    Pbuf, Zbuf, Qbuf, Gbuf, vals, S0 = row_buffers(N, d, m)
    na = N
    checkpoint = next_checkpoint(done0, every) if every != NO_CHECKPOINTS else -1
    stash = np.empty((N if every != NO_CHECKPOINTS else 0, d))  # steps held at a checkpoint
    hopeful_stopped = False  # a watched row stopped hopeful since the last checkpoint
    for t in range(max_iter + 1):
        if na == 0:
            break
        at_checkpoint = done0 + t == checkpoint
        end_here = False
        G = Gbuf[:na]
        evaluate_rows(net, loss, X, Y, D, active, na, Pbuf, Zbuf, Qbuf, Gbuf, vals, S0)
        for k in range(na):
            done[k] = False
            i = active[k]
            h = eta[i]
            gmap, factor = _gradient_step(D[i], G[k], h, eps, constraint, step, moved)
            _, _, radial, residual = kkt_terms(D[i], G[k], eps, constraint)
            stationary = is_kkt(residual, radial, tol * scale[i])
            stop = tol > 0.0 and stationary
            if record:
                _record(hist, i, t, vals[k], gmap, D[i], target[i], residual / scale[i], h)
                if store_iterates:
                    iterates[i, t, :] = D[i, :]
            if stationary and first_stat[i] < 0:
                first_stat[i] = t
            if gmap <= tol * scale[i] and first_gmap[i] < 0:
                first_gmap[i] = t
            if t == 0:
                initial[i] = vals[k]
            values[i] = vals[k]
            gnorm[i] = gmap
            iters[i] = t
            if radius > 0.0:
                if pert_iter[i] >= 0 and t - pert_iter[i] >= interval:
                    if vals[k] - saved_value[i] < min_gain:  # the perturbation did not escape
                        D[i, :] = saved[i, :]
                        values[i] = saved_value[i]
                        gnorm[i] = saved_gmap[i]
                        grads[i, :] = saved_grad[i, :]
                        status[i] = NO_ESCAPE
                        done[k] = True
                        continue
                    pert_iter[i] = -1
                if pert_iter[i] < 0 and gmap <= threshold:
                    if n_pert[i] >= max_count:
                        if stop:
                            status[i] = TOL
                            done[k] = True
                            grads[i, :] = G[k, :]
                            continue
                    else:
                        saved[i, :] = D[i, :]
                        saved_value[i] = vals[k]
                        saved_gmap[i] = gmap
                        saved_grad[i, :] = G[k, :]
                        pert_iter[i] = t
                        n_pert[i] += 1
                        state[i] = _ball_noise(state[i], noise[i])
                        for j in range(d):
                            step[j] = D[i, j] + radius * noise[i, j]
                        project(step, eps, constraint)
            elif stop:
                status[i] = TOL
                done[k] = True
                grads[i, :] = G[k, :]
                if at_checkpoint:
                    end_here = True
                elif residual <= watch[i]:
                    hopeful_stopped = True
                continue
            if t == max_iter:
                status[i] = MAX_ITER
                done[k] = True
                grads[i, :] = G[k, :]
                continue
            if at_checkpoint:  # the step waits until the call is known to go on
                if residual <= watch[i]:
                    end_here = True
                stash[k, :] = step
                continue
            for j in range(d):
                D[i, j] = step[j]
        if at_checkpoint:
            end_here = end_here or hopeful_stopped or t >= at_least
            for k in range(na):
                if not done[k]:
                    i = active[k]
                    if end_here:
                        status[i] = MAX_ITER
                        done[k] = True
                        grads[i, :] = G[k, :]
                    else:
                        D[i, :] = stash[k, :]
            checkpoint = next_checkpoint(checkpoint, every)
        na = _compact(active, na, done)
    kkt_rows(grads, D, eps, constraint, fstats)
    return D, grads, fstats, istats, hist, iterates


@jit
def kkt_rows(G, D, eps, constraint, fstats):
    """KKT residual and multiplier at each row's point, into fstats[:, F_TANGENT/MULTIPLIER].

    From :func:`fopa._kernels.ball.kkt_terms`: l2, the tangent gradient and
    ``mu = u.g / eps`` on the sphere (always for the sphere constraint), ``||g||`` and
    0 inside; linf, the gradient over free coordinates and the smallest
    ``sign(delta_j) g_j`` over coordinates at the bound (0 if none).
    """
    for i in range(G.shape[0]):
        _, _, radial, residual = kkt_terms(D[i], G[i], eps, constraint)
        fstats[i, F_TANGENT] = residual
        fstats[i, F_MULTIPLIER] = radial if constraint == LINF else radial / eps
