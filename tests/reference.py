"""Slow, plainly written NumPy references for fopa's kernels.

Nothing here is clever: every quantity is written as in docs/ (derivatives.md,
certify.md, solver.md), with explicit loops over hidden units where that makes
the formula easier to read.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc, expit


def activation(name, z):
    """sigma and its first three derivatives at moderate z (no overflow care)."""
    z = np.asarray(z, dtype=float)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t**2, -2 * t * (1 - t**2), -2 * (1 - t**2) ** 2 + 4 * t**2 * (1 - t**2)
    if name == "sigmoid":
        s = expit(z)
        return s, s * (1 - s), s * (1 - s) * (1 - 2 * s), s * (1 - s) * (1 - 6 * s + 6 * s**2)
    if name == "softplus":
        s = expit(z)
        return np.log1p(np.exp(z)), s, s * (1 - s), s * (1 - s) * (1 - 2 * s)
    if name == "gelu":
        cdf = 0.5 * erfc(-z / np.sqrt(2))  # erfc: no cancellation in the left tail
        pdf = np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi)
        return z * cdf, cdf + z * pdf, 2 * pdf - z**2 * pdf, -3 * z * pdf + z * (z**2 - 1) * pdf
    if name == "silu":
        s = expit(z)
        s1 = s * (1 - s)
        s2 = s1 * (1 - 2 * s)
        s3 = s1 * (1 - 6 * s + 6 * s**2)
        return z * s, s + z * s1, 2 * s1 + z * s2, 3 * s2 + z * s3
    if name == "quadratic":
        return z**2, 2 * z, 2 + 0 * z, 0 * z
    if name == "linear":
        return z, 1 + 0 * z, 0 * z, 0 * z
    raise KeyError(name)


def loss_derivs(name, f, y):
    """(l, l', l'', l''') of the loss in f."""
    if name == "quadratic":
        return (f - y) ** 2 / 2, f - y, 1.0, 0.0
    s = expit(-y * f)  # sigma(-yf)
    loss = np.logaddexp(0.0, -y * f)  # log(1 + exp(-yf)) without overflow
    return loss, -y * s, s * (1 - s), y * s * (1 - s) * (1 - 2 * s) * -1.0


def _parts(net, x):
    W, a, b, c = net.W, net.a, net.b, net.output_scale
    z = W @ x + b
    s = activation(net.activation, z)
    return W, c * a, s


def predict(net, x):
    W, ca, s = _parts(net, x)
    return float(np.sum(ca * s[0]) + net.output_bias)


def loss(net, x, y, lossname="quadratic"):
    return float(loss_derivs(lossname, predict(net, x), y)[0])


def network_gradient(net, x):
    W, ca, s = _parts(net, x)
    return sum(ca[r] * s[1][r] * W[r] for r in range(W.shape[0]))


def network_hessian(net, x):
    W, ca, s = _parts(net, x)
    return sum(ca[r] * s[2][r] * np.outer(W[r], W[r]) for r in range(W.shape[0]))


def network_third(net, x):
    """The full third-derivative tensor of f, shape (d, d, d)."""
    W, ca, s = _parts(net, x)
    return sum(
        ca[r] * s[3][r] * np.einsum("i,j,k->ijk", W[r], W[r], W[r]) for r in range(W.shape[0])
    )


def gradient(net, x, y, lossname="quadratic"):
    _, l1, _, _ = loss_derivs(lossname, predict(net, x), y)
    return l1 * network_gradient(net, x)


def hessian(net, x, y, lossname="quadratic"):
    _, l1, l2, _ = loss_derivs(lossname, predict(net, x), y)
    g = network_gradient(net, x)
    return l2 * np.outer(g, g) + l1 * network_hessian(net, x)


def third_tensor(net, x, y, lossname="quadratic"):
    """D3 L as a full (d, d, d) tensor."""
    _, l1, l2, l3 = loss_derivs(lossname, predict(net, x), y)
    g = network_gradient(net, x)
    Hf = network_hessian(net, x)
    sym = (
        np.einsum("ij,k->ijk", Hf, g)
        + np.einsum("ik,j->ijk", Hf, g)
        + np.einsum("jk,i->ijk", Hf, g)
    )
    return l3 * np.einsum("i,j,k->ijk", g, g, g) + l2 * sym + l1 * network_third(net, x)


def third(net, x, y, u, v, lossname="quadratic"):
    return np.einsum("ijk,i,j->k", third_tensor(net, x, y, lossname), u, v)


def pga(net, x, y, eps, eta, delta0, iterations, lossname="quadratic"):
    """Plain projected gradient ascent; returns the list of iterates."""
    delta = np.array(delta0, dtype=float)
    path = [delta.copy()]
    for _ in range(iterations):
        v = delta + eta * gradient(net, x + delta, y, lossname)
        delta = v * eps / max(np.linalg.norm(v), eps)
        path.append(delta.copy())
    return path


def gradient_magnitude(net, x, y, lossname="quadratic"):
    """sum_r |l' c a_r s1_r| |w_r|: the scale of the sum that forms grad L (for tolerances)."""
    W, ca, s = _parts(net, x)
    _, l1, _, _ = loss_derivs(lossname, predict(net, x), y)
    return abs(l1) * (np.abs(ca * s[1]) @ np.abs(W))


def slope_rounding(net, x, y, lossname="quadratic"):
    """Absolute rounding of the gradient through l', per coordinate, in ulps of f.

    f = sum_r c a_r sigma(z_r) is known to a few ulps of its largest terms, and
    l' moves by l'' per unit of f, so l' is known to about ``|l''| sum_r |c a_r
    sigma(z_r)|`` times the unit roundoff; grad L = l' grad f carries that error
    times ``sum_r |c a_r s1_r| |w_r|``. Far above the rounding of grad L itself
    for the logistic loss in its tail (l' ~ exp(-|f|)) or the quadratic loss near
    f = y. Multiply by a few ulps for a tolerance; finite where l' = 0.
    """
    W, ca, s = _parts(net, x)
    _, _, l2, _ = loss_derivs(lossname, predict(net, x), y)
    return abs(l2) * float(np.sum(np.abs(ca * s[0]))) * (np.abs(ca * s[1]) @ np.abs(W))


def _kkt_residual(delta, g, eps):
    """The tangent gradient on the sphere (relative 1e-9), the gradient inside."""
    norm = np.linalg.norm(delta)
    if abs(norm - eps) <= 1e-9 * eps:
        u = delta / norm
        return np.linalg.norm(g - (u @ g) * u)
    return np.linalg.norm(g)


def pga_backtracking(
    net, x, y, eps, eta0, delta0, iterations, lossname="quadratic", gradient_scale=1.0
):
    """PGA with the backtracking rule of docs/solver.md, written plainly.

    Returns the iterates, the step used at each of them and, per iteration, the
    ratio of a trial's required gain to the losses' rounding allowance closest to 1
    (near 1 the choice between the loss test and the gradient test is decided by
    rounding, and a compiled run may choose the other way).
    """

    def proj(v):
        return v * eps / max(np.linalg.norm(v), eps)

    delta, eta, streak = np.array(delta0, dtype=float), float(eta0), 0
    path, steps, margins = [delta.copy()], [eta], []
    value = loss(net, x + delta, y, lossname)
    for _ in range(iterations):
        g = gradient(net, x + delta, y, lossname)
        tries, closest = 0, np.inf
        while True:
            tries += 1
            trial = proj(delta + eta * g)
            new = loss(net, x + trial, y, lossname)
            need = np.sum((trial - delta) ** 2) / (2 * eta)
            slack = 2.0**-50 * (abs(new) + abs(value))
            blind = need <= slack  # the loss test cannot see the gain: test the gradients
            ratio = need / slack if slack > 0 and need > 0 else np.inf
            closest = ratio if abs(np.log(ratio)) < abs(np.log(closest)) else closest
            if blind:  # the gain by the trapezoidal rule on the gradients
                g_trial = gradient(net, x + trial, y, lossname)
                gain = 0.5 * (g + g_trial) @ (trial - delta)
                allowance = (
                    2.0**-46
                    * gradient_scale
                    * (np.linalg.norm(trial - delta) + np.linalg.norm(delta))
                )
                res_c = _kkt_residual(trial, g_trial, eps)
                res_d = _kkt_residual(delta, g, eps)
                stalled = res_c >= res_d and res_c > 2.0**-46 * gradient_scale
                if gain >= need - allowance and not stalled:
                    break
            elif new >= value + need - slack:
                break
            eta /= 2
            streak = 0
        margins.append(closest)
        if not blind:
            streak = streak + 1 if tries == 1 else 0
        if streak >= 3:
            eta *= 2
            streak = 0
        delta, value = trial, new
        path.append(delta.copy())
        steps.append(eta)
    return path, steps, margins
