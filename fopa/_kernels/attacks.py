"""The compiled loops of the attack-library adversaries (see :mod:`fopa.attacks`).

Every loop keeps the adversarial points ``P = X + delta`` (n, d), as the attack
libraries do, and evaluates the loss and its gradient at all rows with one
product ``P W^T`` and one ``Q W`` per iteration (:func:`loss_and_gradient`). Rows
are independent; they run in lockstep because every attack here runs a fixed
number of iterations. ``docs/attacks.md`` derives each update rule.

Every loop takes ``stop``, an int64 array of one element, and returns early
when it becomes nonzero (set by the caller on Ctrl-C; the outputs are then
dropped).

Box bounds ``lo <= x + delta <= hi`` (``box`` true) are applied as clipping,
in the order each library applies it; this is not the exact projection onto the
intersection of ball and box.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit
from .linalg import dot, norm2, product_into
from .pga import compact_losses, evaluate_rows

#: Orders of clipping and projection in ``pgd_run``: project onto the ball, then
#: clip to the box (torchattacks); clip, then project (ART).
PROJECT_THEN_CLIP, CLIP_THEN_PROJECT = 0, 1
#: Heavy-ball and Nesterov momentum in ``momentum_run``.
HEAVY_BALL, NESTEROV = 0, 1


@jit
def loss_and_gradient(net, loss, P, Y, rows, vals, G, Z, Q, S0):
    """Loss ``vals`` (n,) and input gradient ``G`` (n, d) at the points P (n, d)
    (``rows`` is ``0..n-1``); ``Z``, ``Q`` (n, m) and ``S0`` (m,) are scratch."""
    compact_losses(net, loss, P, Y, rows, P.shape[0], Z, Q, vals, S0)
    product_into(Q, net.W, G)


@jit
def _clip_row(p, box, lo, hi):
    if box:
        for j in range(p.shape[0]):
            p[j] = min(max(p[j], lo), hi)


@jit
def _buffers(net, P):
    """``vals, G, Z, Q, S0`` for n rows, and ``rows = 0..n-1``."""
    n, d = P.shape
    m = net.W.shape[0]
    return (
        np.empty(n), np.empty((n, d)), np.empty((n, m)), np.empty((n, m)), np.empty(m),
        np.arange(n),
    )  # fmt: skip


@jit
def _keep_best(i, t, vals, P, best_val, best_P, traj):
    traj[i, t] = vals[i]
    if vals[i] > best_val[i]:
        best_val[i] = vals[i]
        best_P[i] = P[i]


@jit
def pgd_run(net, loss, X, Y, P0, eps, alpha, steps, guard, order, box, lo, hi, stop):
    """The attack-library L2 PGD: ``P <- Proj(P + alpha g / (||g|| + guard))``.

    ``guard`` 0 leaves a zero gradient at zero (ART's rule); torchattacks adds
    1e-10 to the norm of the gradient of its batch-mean loss. ``order``:
    :data:`PROJECT_THEN_CLIP` or :data:`CLIP_THEN_PROJECT`. The projection is the
    rescaling ``delta min(1, eps / ||delta||)``.

    Returns ``(P, best_P, best_val, traj)``: final points, the best points seen,
    their losses and the loss at every iterate, shape (n, steps + 1) (the last
    column is the final point, evaluated once more for the record).
    """
    n, d = X.shape
    vals, G, Z, Q, S0, rows = _buffers(net, X)
    P = P0.copy()
    best_P = P0.copy()
    best_val = np.full(n, -np.inf)
    traj = np.empty((n, steps + 1))
    u = np.empty(d)
    for t in range(steps + 1):
        if stop[0] != 0:  # Ctrl-C: the caller drops these outputs
            break
        loss_and_gradient(net, loss, P, Y, rows, vals, G, Z, Q, S0)
        for i in range(n):
            _keep_best(i, t, vals, P, best_val, best_P, traj)
        if t == steps:
            break
        for i in range(n):
            g_norm = norm2(G[i])
            scale = 0.0 if g_norm == 0.0 and guard == 0.0 else alpha / (g_norm + guard)
            for j in range(d):
                P[i, j] = P[i, j] + scale * G[i, j]
            if order == CLIP_THEN_PROJECT:
                _clip_row(P[i], box, lo, hi)
            for j in range(d):
                u[j] = P[i, j] - X[i, j]
            u_norm = norm2(u)
            factor = 1.0 if u_norm == 0.0 else min(1.0, eps / u_norm)
            for j in range(d):
                P[i, j] = X[i, j] + u[j] * factor
            if order == PROJECT_THEN_CLIP:
                _clip_row(P[i], box, lo, hi)
    return P, best_P, best_val, traj


@jit
def _apgd_project(X, i, v, eps, guard, box, lo, hi, out):
    """``out = clip(x + normalize(v - x) min(eps, ||v - x||))`` (AutoAttack's L2 step)."""
    d = X.shape[1]
    s = 0.0
    for j in range(d):
        s += (v[j] - X[i, j]) ** 2
    norm = math.sqrt(s)
    factor = min(eps, norm) / (norm + guard)
    for j in range(d):
        out[j] = X[i, j] + (v[j] - X[i, j]) * factor
    _clip_row(out, box, lo, hi)


@jit
def apgd_run(
    net, loss, X, Y, P0, eps, n_iter, rho, momentum, guard, paper_first, box, lo, hi, stop
):
    """APGD for the L2 ball (Croce and Hein 2020), as AutoAttack implements it.

    Step ``2 eps``, momentum ``1 - momentum`` on the previous move (none in the
    first step), checkpoints every ``k`` iterations (``k`` from ``0.22 n_iter``
    down by ``0.03 n_iter`` to ``0.06 n_iter``); at a checkpoint the step halves
    and the iterate restarts from the best point when fewer than ``rho k`` of the
    last ``k`` steps increased the loss (condition 1) or when the step was not
    halved at the previous checkpoint and the best loss has not grown since
    (condition 2). ``paper_first``: condition 1 compares the losses in float64 and
    the first step with the starting loss (the paper); otherwise as AutoAttack's
    code does: the losses rounded to float32 (its ``loss_steps`` array is
    float32, so rises below float32's resolution do not count) and the first step
    against 0 (its index -1 reads a row of zeros). ``guard`` is added to norms before dividing
    (AutoAttack: 1e-12).

    Returns ``(P, best_P, best_val, traj, steps)``: final and best points, best
    losses, the loss at every iterate (n, n_iter + 1) and the step size used at
    every iteration (n, n_iter).
    """
    n, d = X.shape
    vals, G, Z, Q, S0, rows = _buffers(net, X)
    P = P0.copy()
    for i in range(n):
        _clip_row(P[i], box, lo, hi)
    loss_and_gradient(net, loss, P, Y, rows, vals, G, Z, Q, S0)
    traj = np.empty((n, n_iter + 1))
    steps = np.empty((n, n_iter))
    best_P = P.copy()
    best_G = G.copy()
    best_val = vals.copy()
    for i in range(n):
        traj[i, 0] = vals[i]
    step = np.full(n, 2.0 * eps)
    P_old = P.copy()
    k = max(int(0.22 * n_iter), 1)
    k_min = max(int(0.06 * n_iter), 1)
    k_decr = max(int(0.03 * n_iter), 1)
    counter = 0
    best_last = best_val.copy()
    reduced_last = np.ones(n, dtype=np.bool_)
    v = np.empty(d)
    w = np.empty(d)
    p1 = np.empty(d)
    for it in range(n_iter):
        if stop[0] != 0:  # Ctrl-C: the caller drops these outputs
            break
        a = momentum if it > 0 else 1.0
        for i in range(n):
            g_norm = norm2(G[i])
            for j in range(d):
                v[j] = P[i, j] + step[i] * (G[i, j] / (g_norm + guard))
            _apgd_project(X, i, v, eps, guard, box, lo, hi, p1)
            for j in range(d):
                w[j] = P[i, j] + (p1[j] - P[i, j]) * a + (P[i, j] - P_old[i, j]) * (1.0 - a)
            for j in range(d):
                P_old[i, j] = P[i, j]
            _apgd_project(X, i, w, eps, guard, box, lo, hi, P[i])
            steps[i, it] = step[i]
        loss_and_gradient(net, loss, P, Y, rows, vals, G, Z, Q, S0)
        for i in range(n):
            traj[i, it + 1] = vals[i]
            if vals[i] > best_val[i]:
                best_val[i] = vals[i]
                best_P[i] = P[i]
                best_G[i] = G[i]
        counter += 1
        if counter == k:
            for i in range(n):
                rises = 0
                for c in range(k):
                    t = it - c  # loss after step t is traj[i, t + 1]
                    current = traj[i, t + 1]
                    if t >= 1:
                        previous = traj[i, t]
                    else:
                        previous = traj[i, 0] if paper_first else 0.0
                    if not paper_first:  # AutoAttack keeps loss_steps in float32
                        current = np.float64(np.float32(current))
                        previous = np.float64(np.float32(previous))
                    if current > previous:
                        rises += 1
                halve = rises <= k * rho
                if not reduced_last[i] and best_last[i] >= best_val[i]:
                    halve = True
                reduced_last[i] = halve
                best_last[i] = best_val[i]
                if halve:
                    step[i] /= 2.0
                    P[i] = best_P[i]
                    G[i] = best_G[i]
            k = max(k - k_decr, k_min)
            counter = 0
    return P, best_P, best_val, traj, steps


@jit
def momentum_run(net, loss, X, Y, D0, eps, h, mu, steps, kind, box, lo, hi, stop):
    """Projected ascent with momentum ``mu`` and step ``h`` (per row, (n,)) on ``delta``.

    Heavy ball: ``delta+ = P(delta + h g(delta) + mu (delta - delta_prev))``.
    Nesterov: ``y = delta + mu (delta - delta_prev)``, ``delta+ = P(y + h g(y))``,
    the gradient taken at ``y`` (projected onto the ball first, so that every
    gradient is taken at a feasible point). Returns ``(D, best_D, best_val, traj)``
    with the loss at every iterate ``delta`` (n, steps + 1).
    """
    n, d = X.shape
    vals, G, Z, Q, S0, rows = _buffers(net, X)
    D = D0.copy()
    D_prev = D0.copy()
    best_D = D0.copy()
    best_val = np.full(n, -np.inf)
    traj = np.empty((n, steps + 1))
    Pt = np.empty((n, d))
    Yp = np.empty((n, d))
    for t in range(steps + 1):
        if stop[0] != 0:  # Ctrl-C: the caller drops these outputs
            break
        # the loss at the iterates (for the record, and the gradient of heavy ball)
        evaluate_rows(net, loss, X, Y, D, rows, n, Pt, Z, Q, G, vals, S0)
        for i in range(n):
            _keep_best(i, t, vals, D, best_val, best_D, traj)
        if t == steps:
            break
        if kind == NESTEROV:
            for i in range(n):
                for j in range(d):
                    Yp[i, j] = D[i, j] + mu * (D[i, j] - D_prev[i, j])
                _project_ball_box(X, i, Yp[i], eps, box, lo, hi)
                for j in range(d):
                    Pt[i, j] = X[i, j] + Yp[i, j]
            loss_and_gradient(net, loss, Pt, Y, rows, vals, G, Z, Q, S0)
        for i in range(n):
            for j in range(d):
                base = Yp[i, j] if kind == NESTEROV else D[i, j] + mu * (D[i, j] - D_prev[i, j])
                D_prev[i, j] = D[i, j]
                D[i, j] = base + h[i] * G[i, j]
            _project_ball_box(X, i, D[i], eps, box, lo, hi)
    return D, best_D, best_val, traj


@jit
def _project_ball_box(X, i, delta, eps, box, lo, hi):
    """delta onto the ball (rescaling), then x + delta clipped to the box."""
    norm = norm2(delta)
    if norm > eps:
        s = eps / norm
        for j in range(delta.shape[0]):
            delta[j] *= s
    if box:
        for j in range(delta.shape[0]):
            delta[j] = min(max(X[i, j] + delta[j], lo), hi) - X[i, j]


@jit
def frank_wolfe_run(net, loss, X, Y, D0, eps, steps, stop):
    """Frank-Wolfe over the ball: ``s = eps g / ||g||`` (the linear maximizer over
    the ball), ``delta+ = delta + gamma_t (s - delta)`` with ``gamma_t = 2 / (t + 2)``.
    Also returns the Frank-Wolfe gap ``<g, s - delta>`` at every iterate, a bound
    on how far the linearization can still climb (n, steps + 1)."""
    n, d = X.shape
    vals, G, Z, Q, S0, rows = _buffers(net, X)
    D = D0.copy()
    best_D = D0.copy()
    best_val = np.full(n, -np.inf)
    traj = np.empty((n, steps + 1))
    gaps = np.empty((n, steps + 1))
    Pt = np.empty((n, d))
    for t in range(steps + 1):
        if stop[0] != 0:  # Ctrl-C: the caller drops these outputs
            break
        evaluate_rows(net, loss, X, Y, D, rows, n, Pt, Z, Q, G, vals, S0)
        gamma = 2.0 / (t + 2.0)
        for i in range(n):
            _keep_best(i, t, vals, D, best_val, best_D, traj)
            g_norm = norm2(G[i])
            gaps[i, t] = eps * g_norm - dot(G[i], D[i])
            if t == steps:
                continue
            s = eps / g_norm if g_norm > 0.0 else 0.0
            for j in range(d):
                D[i, j] = D[i, j] + gamma * (s * G[i, j] - D[i, j])
    return D, best_D, best_val, traj, gaps


@jit
def riemannian_run(net, loss, X, Y, D0, eps, steps, armijo, max_halvings, stop):
    """Riemannian gradient ascent on the sphere ``||delta|| = eps`` with Armijo
    backtracking.

    Riemannian gradient ``r = g - (u . g) u`` (``u = delta / eps``), retraction
    ``R(delta, v) = eps (delta + v) / ||delta + v||``; a trial step ``t`` is accepted
    when ``L(R(delta, t r)) >= L(delta) + armijo t ||r||^2``, else halved (at most
    ``max_halvings`` times; a row whose search fails keeps its point). The first
    trial is ``eps / ||r||`` (a move of length eps), later ones twice the last
    accepted step. Returns ``(D, best_D, best_val, traj, loss_evals, tangent)``:
    loss evaluations per row and ``||r||`` at every iterate (n, steps + 1).
    """
    n, d = X.shape
    vals, G, Z, Q, S0, rows = _buffers(net, X)
    D = D0.copy()
    best_D = D0.copy()
    best_val = np.full(n, -np.inf)
    traj = np.empty((n, steps + 1))
    tangent = np.empty((n, steps + 1))
    evals = np.zeros(n, dtype=np.int64)
    Pt = np.empty((n, d))
    R = np.empty((n, d))
    trial = np.empty((n, d))
    t = np.zeros(n)
    current = np.empty(n)
    trial_vals = np.empty(n)
    searching = np.empty(n, dtype=np.int64)
    for it in range(steps + 1):
        if stop[0] != 0:  # Ctrl-C: the caller drops these outputs
            break
        evaluate_rows(net, loss, X, Y, D, rows, n, Pt, Z, Q, G, vals, S0)
        for i in range(n):
            _keep_best(i, it, vals, D, best_val, best_D, traj)
            current[i] = vals[i]
            ug = dot(D[i], G[i]) / eps
            for j in range(d):
                R[i, j] = G[i, j] - ug * D[i, j] / eps
            tangent[i, it] = norm2(R[i])
            if it == 0 or t[i] == 0.0:
                t[i] = eps / tangent[i, it] if tangent[i, it] > 0.0 else 0.0
            else:
                t[i] *= 2.0
        if it == steps:
            break
        count = 0
        for i in range(n):
            if tangent[i, it] > 0.0 and t[i] > 0.0:
                searching[count] = i
                count += 1
        for _ in range(max_halvings + 1):
            if count == 0:
                break
            for k in range(count):  # the trial points, compact: row k is searching[k]
                i = searching[k]
                for j in range(d):
                    trial[i, j] = D[i, j] + t[i] * R[i, j]
                s = eps / norm2(trial[i])
                for j in range(d):
                    trial[i, j] *= s
                    Pt[k, j] = X[i, j] + trial[i, j]
            compact_losses(net, loss, Pt, Y, searching, count, Z, Q, trial_vals, S0)
            kept = 0
            for k in range(count):
                i = searching[k]
                evals[i] += 1
                gain = armijo * t[i] * tangent[i, it] * tangent[i, it]
                if trial_vals[k] >= current[i] + gain:
                    for j in range(d):
                        D[i, j] = trial[i, j]
                else:
                    t[i] *= 0.5
                    searching[kept] = i
                    kept += 1
            count = kept
        for k in range(count):  # searches that failed: keep the point, restart the step
            t[searching[k]] = 0.0
    return D, best_D, best_val, traj, evals, tangent
