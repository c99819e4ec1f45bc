"""The compiled loops of projected gradient ascent (see :mod:`fopa.ascent`).

Two fused loops share one interface:

* :func:`_pga_plain` iterates on ``delta`` directly: per iteration one product
  ``(X + D) W^T`` and one ``Q W`` over the rows still running.
* :func:`_pga_gram` keeps ``delta = gamma * delta0 + A W`` in the row space of
  ``W`` (``docs/solver.md``, "The Gram iteration"): per iteration one product ``Q K`` with the Gram
  matrix ``K = W W^T``, of size rows x m x m instead of two rows x d x m.

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

from .ball import LINF, SPHERE, is_kkt, kkt_terms, on_sphere, project, project_l2
from .jit import jit
from .linalg import dot, norm2, product_into, times
from .network import row_coefficients
from .tolerances import GRAM_NOISE, TINY

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
        row is "hopeful" (its KKT residual at most ``watch[i]``; negative: never),
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
                elif 0.0 <= watch[i] and residual <= watch[i]:
                    hopeful_stopped = True
                continue
            if t == max_iter:
                status[i] = MAX_ITER
                done[k] = True
                grads[i, :] = G[k, :]
                continue
            if at_checkpoint:  # the step waits until the call is known to go on
                if 0.0 <= watch[i] and residual <= watch[i]:
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
def _next_norm2(Ai, AKi, q, qk, Zsi, h, two_g, start):
    """``B.(BK + 2 g Zs)`` with ``B = A + h q``, ``BK = AK + h qk``: the Gram part of
    ``||delta + h grad L||^2``. Four running sums, as :func:`fopa._kernels.linalg.dot`;
    a zero start (``start`` False) has no Zs term and skips it."""
    m = Ai.shape[0]
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    if start:
        for r in range(0, m4, 4):
            s0 += (Ai[r] + h * q[r]) * ((AKi[r] + h * qk[r]) + two_g * Zsi[r])
            s1 += (Ai[r + 1] + h * q[r + 1]) * ((AKi[r + 1] + h * qk[r + 1]) + two_g * Zsi[r + 1])
            s2 += (Ai[r + 2] + h * q[r + 2]) * ((AKi[r + 2] + h * qk[r + 2]) + two_g * Zsi[r + 2])
            s3 += (Ai[r + 3] + h * q[r + 3]) * ((AKi[r + 3] + h * qk[r + 3]) + two_g * Zsi[r + 3])
        for r in range(m4, m):
            s0 += (Ai[r] + h * q[r]) * ((AKi[r] + h * qk[r]) + two_g * Zsi[r])
    else:
        for r in range(0, m4, 4):
            s0 += (Ai[r] + h * q[r]) * (AKi[r] + h * qk[r])
            s1 += (Ai[r + 1] + h * q[r + 1]) * (AKi[r + 1] + h * qk[r + 1])
            s2 += (Ai[r + 2] + h * q[r + 2]) * (AKi[r + 2] + h * qk[r + 2])
            s3 += (Ai[r + 3] + h * q[r + 3]) * (AKi[r + 3] + h * qk[r + 3])
        for r in range(m4, m):
            s0 += (Ai[r] + h * q[r]) * (AKi[r] + h * qk[r])
    return (s0 + s1) + (s2 + s3)


@jit
def _take_step(Ai, AKi, q, qk, Zsi, h, s, two_dg, start, old):
    """Move row i to ``s (A + h q)`` (and AK alike), keep the old rows in ``old[0]``
    and ``old[1]`` (``old`` has shape (3, m); row 2 is scratch), and return
    ``u.v`` for the change ``u = (s - 1) A + s h q`` and ``v = (s - 1) AK +
    s h qk + 2 dg Zs``, the Gram part of ``||moved||^2``.

    The terms of ``u.v`` go to four running sums by ``r mod 4`` (as
    :func:`fopa._kernels.linalg.dot`); the moves are plain stores.
    """
    m = Ai.shape[0]
    sm1 = s - 1.0
    sh = s * h
    p = old[2]  # the terms of u.v, summed below
    for r in range(m):
        a0 = Ai[r]
        ak0 = AKi[r]
        old[0, r] = a0
        old[1, r] = ak0
        p[r] = (sm1 * a0 + sh * q[r]) * (sm1 * ak0 + sh * qk[r])
        Ai[r] = s * (a0 + h * q[r])
        AKi[r] = s * (ak0 + h * qk[r])
    if start:
        for r in range(m):
            p[r] += (sm1 * old[0, r] + sh * q[r]) * (two_dg * Zsi[r])
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    for r in range(0, m4, 4):
        s0 += p[r]
        s1 += p[r + 1]
        s2 += p[r + 2]
        s3 += p[r + 3]
    for r in range(m4, m):
        s0 += p[r]
    return (s0 + s1) + (s2 + s3)


@jit
def _gram_stationary(i, k, eps, tolerance, constraint, n0, Zs, A, Q, QK, gamma, dnorm2, W,
                     D0, point, grad):  # fmt: skip
    """Whether row i's current point passes the KKT test (:func:`fopa._kernels.ball.is_kkt`
    with an absolute ``tolerance``).

    A cheap screen in Gram coordinates first: ``||g||^2 = q.(q K)`` and
    ``delta.g = gamma Zs.q + A.(q K)``, so the squared tangent gradient is ``||g||^2
    - (delta.g)^2 / ||delta||^2``. That difference of nearly equal terms has lost
    its digits exactly where the test matters (a converged point on the sphere),
    so only a row whose screen is within ``GRAM_NOISE ||g||^2`` of the tolerance is
    measured in R^d (``O(md)``, that row only) with the test the plain iteration
    uses. The screen cannot miss a passing row: its error is below that noise.
    """
    m = A.shape[1]
    g2 = dot(Q[k], QK[k])
    dg = dot(A[i], QK[k])
    if n0[i] > 0.0:
        dg += gamma[i] * dot(Zs[i], Q[k])
    n2 = dnorm2[i]
    tangent2 = g2
    if (constraint == SPHERE or on_sphere(math.sqrt(n2), eps)) and n2 > 0.0:
        tangent2 = g2 - dg * dg / n2
    if tangent2 > tolerance * tolerance + GRAM_NOISE * g2:
        return False
    d = W.shape[1]
    product_into(Q[k].reshape(1, m), W, grad.reshape(1, d))
    product_into(A[i].reshape(1, m), W, point.reshape(1, d))
    for j in range(d):
        point[j] += gamma[i] * D0[i, j]
    _, _, radial, residual = kkt_terms(point, grad, eps, constraint)
    return is_kkt(residual, radial, tolerance)


@jit
def _gram_step(i, k, eps, eta, tolerance, constraint, n0, Zs, A, AK, gamma, Q, QK, work,
               dnorm2, W, D0, moved):  # fmt: skip
    """One projected step of row i in Gram coordinates; returns the gradient-mapping
    norm ``||moved|| / h`` of the point it leaves.

    The new point is ``s (gamma D0 + B W)`` with ``B = A + h q``; its norm comes
    from the Gram matrix, ``||gamma D0 + B W||^2 = gamma^2 n0 + B.(2 gamma Zs + B K)``,
    and ``s`` is the projection's factor. ``work`` is scratch of shape (3, m),
    ``moved`` of shape (d,).

    The step's length comes from the Gram matrix too, ``||moved||^2 = u.(K u)`` for
    the change ``u`` of the coordinates A. Near a fixed point that quadratic form is
    a difference of nearly equal terms and loses about half the digits (seen: 0
    where the true gradient-mapping norm was 3e-9). So the change is computed as
    ``(s - 1) A + s h q`` (its two terms are smaller than A by the factor ``h mu``),
    and whenever the estimate is near ``tolerance`` (or within the quadratic form's
    rounding noise) the step is formed in R^d, ``moved = u W + (s - 1) gamma D0``,
    and measured there, as the plain iteration does.
    """
    m = A.shape[1]
    h = eta[i]
    g = gamma[i]
    start = n0[i] > 0.0  # a zero start has no D0 term: its loops skip Zs
    norm2 = g * g * n0[i] + _next_norm2(A[i], AK[i], Q[k], QK[k], Zs[i], h, 2.0 * g, start)
    s = project_l2(math.sqrt(max(norm2, 0.0)), eps, constraint)
    dg = (s - 1.0) * g  # moved = (s g - g) D0 + (s B - A) W
    uv = _take_step(A[i], AK[i], Q[k], QK[k], Zs[i], h, s, 2.0 * dg, start, work)
    moved2 = dg * dg * n0[i] + uv
    if tolerance > 0.0 and moved2 <= max(4.0 * (tolerance * h) ** 2, GRAM_NOISE * s * s * norm2):
        u = work[2]  # (scratch of _take_step, free again); work[0] holds the old A
        for r in range(m):
            u[r] = (s - 1.0) * work[0, r] + (s * h) * Q[k, r]
        product_into(u.reshape(1, m), W, moved.reshape(1, W.shape[1]))
        for j in range(W.shape[1]):
            moved[j] += dg * D0[i, j]
        moved2 = dot(moved, moved)
    gamma[i] = s * g
    dnorm2[i] = s * s * norm2
    return math.sqrt(max(moved2, 0.0)) / h


@jit
def gram_start(net, X, D0):
    """What the row-space iterations need of their start ``delta = D0``:
    ``Z0 = X W^T + b`` (n, m), ``n0 = ||D0||^2`` (n,) and ``Zs = D0 W^T`` (n, m;
    zeros, without the product, when every start is zero)."""
    n = X.shape[0]
    m = net.W.shape[0]
    Z0 = np.empty((n, m))
    product_into(X, net.WT, Z0)
    for i in range(n):
        for r in range(m):
            Z0[i, r] += net.b[r]
    n0 = np.zeros(n)
    for i in range(n):
        n0[i] = dot(D0[i], D0[i])
    Zs = np.zeros((n, m))
    if np.any(n0 > 0.0):  # a zero start adds nothing: skip its product
        product_into(D0, net.WT, Zs)
    return Z0, n0, Zs


@jit
def pga_gram(net, K, loss, X, Y, eps, eta, D0, max_iter, tol, scale, constraint):
    """Projected gradient ascent in the row space of W (ball or sphere, no noise).

    delta = gamma * D0 + A W. With K = W W^T, Zs = D0 W^T and n0 = ||D0||^2 the
    pre-activations are Z0 + gamma Zs + A K and ||delta||^2 =
    gamma^2 n0 + 2 gamma A.Zs + A.(A K); one product (rows x m) @ K per iteration
    except the last (t = max_iter), whose point only needs its gradient and its
    KKT test, both measured in R^d at the end. ``K`` is the (m, m) Gram matrix;
    ``scale`` and the stopping rule are those of :func:`pga_plain`.

    Returns
    -------
    D, grads, fstats, istats (as :func:`pga_plain`)
    """
    W = net.W
    N, d = X.shape
    m = W.shape[0]
    Z0, n0, Zs = gram_start(net, X, D0)
    A = np.zeros((N, m))
    AK = np.zeros((N, m))
    gamma = np.ones(N)
    Qlast = np.zeros((N, m))
    fstats, istats = _row_outputs(N)
    values, initial, gnorm = fstats[:, F_LOSS], fstats[:, F_INITIAL], fstats[:, F_GMAP]
    iters, status, first_stat = istats[:, I_ITERS], istats[:, I_STATUS], istats[:, I_FIRST_STAT]
    first_gmap = istats[:, I_FIRST_GMAP]
    active = np.arange(N)
    done = np.zeros(N, np.bool_)
    S0 = np.empty(m)
    Qbuf = np.empty((N, m))
    QKbuf = np.empty((N, m))
    work = np.empty((3, m))
    moved = np.empty(d)
    point = np.empty(d)
    dnorm2 = n0.copy()
    at_end = np.zeros(N, np.bool_)  # rows still running at t = max_iter
    na = N
    for t in range(max_iter + 1):
        if na == 0:
            break
        Q, QK = Qbuf[:na], QKbuf[:na]
        for k in range(na):
            i = active[k]
            z = QK[k]  # scratch until the product below overwrites it
            g = gamma[i]
            if n0[i] > 0.0:
                for r in range(m):
                    z[r] = Z0[i, r] + g * Zs[i, r] + AK[i, r]
            else:
                for r in range(m):
                    z[r] = Z0[i, r] + AK[i, r]
            values[i] = row_coefficients(net, loss, Y[i], z, Q[k], S0)[0]
            if t == 0:
                initial[i] = values[i]
        if t == max_iter:  # the last point is measured in R^d below: no product
            for k in range(na):
                i = active[k]
                Qlast[i, :] = Q[k, :]
                iters[i] = t
                status[i] = MAX_ITER
                at_end[i] = True
            break
        product_into(Q, K, QK)
        for k in range(na):
            i = active[k]
            iters[i] = t
            done[k] = False
            if tol > 0.0 and _gram_stationary(
                i, k, eps, tol * scale[i], constraint, n0, Zs, A, Q, QK, gamma, dnorm2, W,
                D0, point, moved,
            ):  # fmt: skip
                first_stat[i] = t
                status[i] = TOL
                done[k] = True
                Qlast[i, :] = Q[k, :]
                continue
            gmap = _gram_step(
                i, k, eps, eta, tol * scale[i], constraint, n0, Zs, A, AK, gamma, Q, QK, work,
                dnorm2, W, D0, moved,
            )  # fmt: skip
            if gmap <= tol * scale[i] and first_gmap[i] < 0:
                first_gmap[i] = t
        na = _compact(active, na, done)
    D = times(A, W)
    for i in range(N):
        for j in range(d):
            D[i, j] += gamma[i] * D0[i, j]
    grads = times(Qlast, W)
    # the reported gradient-mapping norm of the returned point, measured in R^d
    step = np.empty(d)
    for i in range(N):
        gnorm[i], _ = _gradient_step(D[i], grads[i], eta[i], eps, constraint, step, moved)
        if gnorm[i] <= tol * scale[i] and first_gmap[i] < 0 and (at_end[i] or status[i] == TOL):
            first_gmap[i] = iters[i]
        if at_end[i]:  # the stopping test of the last iteration, in R^d
            _, _, radial, residual = kkt_terms(D[i], grads[i], eps, constraint)
            if is_kkt(residual, radial, tol * scale[i]):
                if first_stat[i] < 0:
                    first_stat[i] = max_iter
                if tol > 0.0:
                    status[i] = TOL
    kkt_rows(grads, D, eps, constraint, fstats)
    return D, grads, fstats, istats


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
