"""Second-order certification of local maxima of the ball problem.

``maximize L(x + delta)`` over ``||delta|| <= eps``. At a point on the sphere,
with ``u = delta / ||delta||`` and ``g = grad L``:

* multiplier ``mu = u.g / eps`` and tangent gradient ``g_T = g - (u.g) u``
  (first order: ``g_T = 0`` and ``mu >= 0``);
* tangent (Riemannian) Hessian ``H_T = P (hess L - mu I) P`` on ``u``'s orthogonal
  complement (second order: ``lambda_max(H_T) < 0`` with ``mu > 0`` makes a strict
  local maximum).

Inside the ball the conditions are ``g = 0`` and ``lambda_max(hess L) < 0``.
``docs/certify.md`` derives them and the certified radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from ._inputs import problem_arrays
from ._interrupts import PIECE_WORK, deferred_sigint
from ._kernels import network as kernels
from ._kernels.ball import householder_complement, sphere_kkt
from ._kernels.certificate import FACTOR_STATS, certify_rows, dense_point, factor_rows, radius
from ._kernels.linalg import eigvalsh, largest_row_norm, norm2
from ._kernels.tolerances import FEASIBLE
from ._parallel import row_blocks, run_blocks
from ._validate import as_float_array, as_nonnegative_scalar, as_positive_scalar
from .bounds import ball_constant_arrays, certificate_bounds, tolerance_scales

__all__ = ["Certificate", "certify", "local_rate", "tangent_hessian", "tangent_spectrum"]

KINDS = ("strict_local_max", "degenerate", "saddle", "local_min", "not_critical")
METHODS = ("auto", "factor", "dense", "lowrank", "lanczos")
_DENSE_MAX_D = 2000  # above this d, "auto" uses Lanczos (measured slower below it)
#: ARPACK restarts allowed (each of at most 20 Hessian-vector products): a clustered
#: spectrum that does not converge within them gives a "degenerate" certificate.
LANCZOS_RESTARTS = 100


@dataclass(frozen=True)
class Certificate:
    """What :func:`certify` proved about a point (arrays over the batch when batched).

    Attributes
    ----------
    kind : str
        ``"strict_local_max"``, ``"degenerate"``, ``"saddle"``, ``"local_min"`` or
        ``"not_critical"``.
    on_boundary : bool
        ``||delta|| = eps`` (to relative 1e-9).
    multiplier : float
        ``mu = u.grad L / eps`` on the sphere, 0 inside.
    tangent_gradient_norm : float
        ``||g_T||`` on the sphere, ``||grad L||`` inside.
    max_tangent_eigenvalue, min_tangent_eigenvalue : float
        Extreme eigenvalues of ``H_T`` (of ``hess L`` inside): computed eigenvalues
        (``"dense"``, ``"lowrank"``), Lanczos estimates that agree with them to a
        relative 1e-10 or so (``"factor"``: Rayleigh quotients, so
        ``max_tangent_eigenvalue <= lambda_max`` and ``min_tangent_eigenvalue >=
        lambda_min`` up to rounding), or Ritz values (``"lanczos"``).
    radius : float
        Certified radius: no feasible point ``delta'`` with
        ``inner_radius < ||delta' - delta|| <= radius`` has a loss above ``L(delta)``,
        so a local maximum lies within ``inner_radius`` of ``delta``. 0 when nothing
        is certified.
    inner_radius : float
        0 at an exact critical point; grows with the tangent gradient norm.
    rho, alpha : float
        Hessian-Lipschitz bound over the ball, and the upper bound of
        ``||hess L - mu I||_2`` used in the radius (exact for the low-rank method and
        inside the ball; from the block structure on the sphere for the dense
        method; from the Hessian's factors for Lanczos).
    loss : float
        ``L(x + delta)``.
    reason : str
        One line saying why the point got its kind.
    method : str
        Eigenvalue method used: ``"dense"``, ``"lowrank"`` or ``"lanczos"``.
    kkt_residual : float
        ``tangent_gradient_norm / gradient_scale``: the relative KKT residual, the
        quantity :func:`fopa.projected_gradient_ascent` stops on.
    gradient_scale, curvature_scale : float
        The ball's fast bounds ``gradient_bound`` and ``beta``
        (:func:`fopa.ball_constants` with ``method="fast"``) that make ``tol``
        relative: gradients are compared with ``tol * gradient_scale``, the
        multiplier with ``tol * gradient_scale / eps`` and eigenvalues with ``tol *
        curvature_scale``. The solver uses the same gradient scale.
    max_eigenvalue_bound, min_eigenvalue_bound : float
        What the classification and the radius rest on: ``lambda_max <=
        max_eigenvalue_bound`` and ``lambda_min >= min_eigenvalue_bound``. For
        ``"factor"`` proved by Cholesky factorizations of shifted matrices (with
        their rounding allowance, ``docs/certify.md``, "Proofs by factorization");
        for the other methods the computed extreme eigenvalues themselves
        (LAPACK's, or Ritz values for ``"lanczos"``, which are estimates).
    """

    kind: str | np.ndarray
    on_boundary: bool | np.ndarray
    multiplier: float | np.ndarray
    tangent_gradient_norm: float | np.ndarray
    max_tangent_eigenvalue: float | np.ndarray
    min_tangent_eigenvalue: float | np.ndarray
    radius: float | np.ndarray
    inner_radius: float | np.ndarray
    rho: float | np.ndarray
    alpha: float | np.ndarray
    loss: float | np.ndarray
    reason: str | np.ndarray
    method: str | np.ndarray
    kkt_residual: float | np.ndarray
    gradient_scale: float | np.ndarray
    curvature_scale: float | np.ndarray
    max_eigenvalue_bound: float | np.ndarray = math.nan
    min_eigenvalue_bound: float | np.ndarray = math.nan


class _Point:
    """Derivative data of one point, computed once and shared by the methods."""

    def __init__(self, net, x, y, delta, eps, code):
        self.net, self.eps, self.code, self.delta = net, eps, code, delta
        self.p = (x + delta)[None, :]
        self.y = np.array([y])
        self.view = net.kernel_view
        Q, S1, S2, L1, L2 = kernels.gradient_coefficients(self.view, code, self.p, self.y)
        self.grad = (Q @ net.W)[0]
        self.s1 = S1[0]
        self.grad_f = (S1 @ net.W)[0]
        self.weights = np.append(L1[0] * S2[0], L2[0])  # hess L = V diag(weights) V^T
        on_boundary, u, mu, gamma = sphere_kkt(delta, self.grad, eps)
        self.on_boundary, self.mu, self.gamma = bool(on_boundary), float(mu), float(gamma)
        self.u = u if on_boundary else None

    def hessian(self):
        return kernels.input_hessian(self.view, self.code, self.p, self.y)[0]

    def hvp(self, v):
        return kernels.hessian_vector_product(self.view, self.code, self.p, self.y, v[None, :])[0]

    def loss(self):
        return float(kernels.loss_values(self.view, self.code, self.p, self.y)[0])


def _spectrum_lowrank(pt):
    """(all tangent eigenvalues, alpha) from ``hess L`` in the row space of W.

    ``W = U S V^T`` (cached on the network), ``F = U S``, so ``W^T = V F^T`` and
    ``grad f = W^T s1 = V F^T s1``: ``hess L = V M V^T`` with the k-square
    (k = min(m, d)) ``M = F^T diag(l' c a s2) F + l'' (F^T s1)(F^T s1)^T``. On the
    sphere, ``P V`` (``P = I - u u^T``) has Gram matrix ``I - z z^T``, ``z = V^T u``,
    whose square root is ``G = I - (1 - s) z z^T / ||z||^2`` with ``s = ||u - V z||``
    (the part of u outside the row space, computed directly, not as
    ``sqrt(1 - ||z||^2)``): the nonzero tangent spectrum is that of ``G M G``, and
    the other ``d - 1 - k`` tangent eigenvalues equal ``-mu`` (docs/certify.md).
    """
    net = pt.net
    Ft, Vt = net.row_space_factor, net.row_space_basis
    k, d = Vt.shape
    core = Ft @ pt.s1
    M = (Ft * pt.weights[:-1]) @ Ft.T + pt.weights[-1] * np.outer(core, core)
    eig_H = eigvalsh(0.5 * (M + M.T))
    full_H = np.concatenate([eig_H, np.zeros(d - k)])
    if not pt.on_boundary:
        return np.sort(full_H), float(np.max(np.abs(full_H)))
    alpha = float(np.max(np.abs(full_H - pt.mu)))
    z = Vt @ pt.u
    outside = float(norm2(pt.u - Vt.T @ z))
    size = float(norm2(z))
    T = M
    if size > 0:
        zhat = z / size
        G = np.eye(k) - (1.0 - min(outside, 1.0)) * np.outer(zhat, zhat)
        T = G @ M @ G
    eig_T = eigvalsh(0.5 * (T + T.T))
    rest = (d - 1) - k
    return np.sort(np.concatenate([eig_T - pt.mu, np.full(rest, -pt.mu)])), alpha


def _alpha_bound(pt):
    """Upper bound of ``||hess L - mu I||_2`` at the point, from its factors.

    ``hess L = l'' g_f g_f^T + W^T diag(l' c a s2) W``, so
    ``||hess L|| <= |l''| ||g_f||^2 + max_r |l' c a_r s2_r| ||W||_2^2``.
    """
    return (
        abs(pt.weights[-1]) * float(pt.grad_f @ pt.grad_f)
        + float(np.max(np.abs(pt.weights[:-1]))) * pt.net.weight_norm**2
        + abs(pt.mu)
    )


def _spectrum_lanczos(pt):
    """(estimates of the extreme tangent eigenvalues, alpha bound) from HVPs only.

    On the sphere the operator acts on R^{d-1}: ``y -> B^T (H - mu I) B y`` with B
    the Householder basis of u's complement (applied in O(d), never formed), so no
    spurious eigenvalue appears. ARPACK's Lanczos returns both ends of the
    spectrum in one run ('BE'). The result is an estimate: Ritz values lie inside
    the spectrum, and a start vector nearly orthogonal to the top eigenvector can
    make the top one converge late; the deterministic start is generic.
    """
    d = pt.p.shape[1]
    mu, u = pt.mu, pt.u
    if u is None:
        n = d

        def matvec(z):
            return pt.hvp(np.ravel(z))

    else:
        n = d - 1
        v = u.copy()
        v[0] += 1.0 if u[0] >= 0 else -1.0
        vv = v @ v

        def reflect(z):
            return z - (2.0 * (v @ z) / vv) * v

        def matvec(z):
            h = reflect(np.concatenate([[0.0], np.ravel(z)]))
            out = reflect(pt.hvp(h) - mu * h)
            return out[1:]

    if n == 0:
        return np.empty(0), _alpha_bound(pt)
    start = np.cos(np.arange(1, n + 1))  # deterministic, generic start vector
    if n <= 2:  # ARPACK needs k < n: form the tiny matrix instead
        M = np.column_stack([matvec(e) for e in np.eye(n)])
        eig = eigvalsh(0.5 * (M + M.T))
    else:
        op = spla.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        try:
            eig = spla.eigsh(
                op, k=2, which="BE", v0=start, tol=1e-10, maxiter=LANCZOS_RESTARTS,
                return_eigenvectors=False,
            )  # fmt: skip
        except spla.ArpackNoConvergence:
            return None, _alpha_bound(pt)
    return np.sort(eig), _alpha_bound(pt)


def tolerance_units(tol, eps, scale, curvature):
    """``(t_g, t_mu, t_e)``: what the tangent gradient, the multiplier and the
    eigenvalues are compared with for a relative ``tol``, from the ball's gradient
    and curvature scales (``docs/certify.md``, "Classes"); scalars or arrays."""
    grad_tol = tol * scale
    return grad_tol, grad_tol / eps, tol * curvature


def _classify(on_boundary, mu, gamma, bounds, tol, eps, scale, curvature):
    """Kind and reason, with tolerances relative to the ball's scales (``docs/certify.md``,
    "Classes"). ``bounds`` is ``(lmax_upper, lmax_lower, lmin_upper, lmin_lower)``:
    a strict maximum needs the proved upper bound of lambda_max below ``-t_e``, a
    minimum the lower bound of lambda_min above ``t_e``; a saddle is shown by
    vectors of both signs of curvature (the estimates, Rayleigh quotients)."""
    lmax_hi, lmax_lo, lmin_hi, lmin_lo = bounds
    grad_tol, mu_tol, eig_tol = tolerance_units(tol, eps, scale, curvature)
    if gamma > grad_tol:
        what = "tangent gradient" if on_boundary else "gradient"
        relative = gamma / scale if scale > 0 else math.inf
        return "not_critical", (
            f"{what} norm {gamma:.3g} > tol x gradient scale = {grad_tol:.3g} "
            f"(relative KKT residual {relative:.3g} > tol {tol:.3g})"
        )
    if on_boundary and mu < -mu_tol:
        return "not_critical", f"multiplier {mu:.3g} < 0: the loss grows toward the interior"
    where = "tangent Hessian" if on_boundary else "Hessian"
    if lmax_hi < -eig_tol and (mu > mu_tol or not on_boundary):
        return "strict_local_max", f"{where} negative definite (max eigenvalue {lmax_lo:.3g})" + (
            f", multiplier {mu:.3g} > 0" if on_boundary else ""
        )
    if lmin_lo > eig_tol:
        return "local_min", f"{where} positive definite (min eigenvalue {lmin_hi:.3g})"
    if lmax_lo > eig_tol and lmin_hi < -eig_tol:
        return "saddle", f"{where} eigenvalues of both signs ({lmin_hi:.3g}, {lmax_lo:.3g})"
    if on_boundary and abs(mu) <= mu_tol:
        return "degenerate", f"multiplier {mu:.3g} within tol x gradient scale / eps of 0"
    return "degenerate", (
        f"{where} eigenvalue within tol x curvature scale = {eig_tol:.3g} of 0 "
        f"(max {lmax_lo:.3g}, min {lmin_hi:.3g})"
    )


def pick_method(method, net, d):
    if method == "lowrank" and net.m + 1 >= d - 1:
        return "factor"  # no rank to exploit: the thin QR would be square
    if method != "auto":
        return method
    if net.m + 1 < (d - 1) // 2:
        return "lowrank"
    return "factor" if d <= _DENSE_MAX_D else "lanczos"


def _certify_point(net, x, y, delta, eps, tol, code, method, bounds):
    """The certificate's fields for one point, in :class:`Certificate`'s order;
    ``bounds`` (rho, gradient scale, curvature scale) is None for the dense method,
    which computes them in the same compiled call."""
    annulus = None
    norm = float(norm2(delta))
    if method == "dense":  # one compiled call
        try:
            stats, eig = dense_point(
                net.kernel_view, net.weight_norm, net.row_space_factor, code, x, y, delta, eps
            )
        except np.linalg.LinAlgError:  # the tight bounds' eigenproblem met inf or NaN
            raise ValueError(_OVERFLOW) from None
        rho, on_boundary, mu, gamma, alpha, value, lo, hi, scale, curvature = stats.tolist()
        annulus = (lo, hi)
    else:
        rho, scale, curvature = bounds
        pt = _Point(net, x, y, delta, eps, code)
        on_boundary, mu, gamma = pt.on_boundary, pt.mu, pt.gamma
        spectrum = _spectrum_lanczos if method == "lanczos" else _spectrum_lowrank
        eig, alpha = spectrum(pt)
        value = pt.loss()
    residual = gamma / scale if scale > 0 else (0.0 if gamma == 0 else math.inf)
    if eig is None:  # Lanczos did not converge: nothing is proved
        lmax = lmin = math.nan
        kind = "degenerate"
        reason = (
            f"Lanczos did not converge within {LANCZOS_RESTARTS} restarts (a clustered "
            "spectrum); no eigenvalue is trusted: use method='dense'"
        )
    else:
        # d = 1 on the sphere: no tangent directions, nothing can go up
        lmax, lmin = (float(eig[-1]), float(eig[0])) if eig.size else (-math.inf, -math.inf)
        bounds = (lmax, lmax, lmin, lmin)
        kind, reason = _classify(on_boundary, mu, gamma, bounds, tol, eps, scale, curvature)
    inner = outer = 0.0
    if kind == "strict_local_max":
        inner, outer = annulus or radius(on_boundary, gamma, eps, mu, -lmax, alpha, rho, norm)
    return (
        kind, bool(on_boundary), float(mu), float(gamma), lmax, lmin, float(outer),
        float(inner), float(rho), float(alpha), float(value), reason, method, float(residual),
        float(scale), float(curvature), lmax, lmin,
    )  # fmt: skip


_OVERFLOW = (
    "the bounds over the ball overflow float64 for these inputs (weights, inputs, "
    "targets or eps too large); rescale the problem"
)


#: The columns of factor_rows' output that hold the bounds over the ball.
_BOUND_COLUMNS = [FACTOR_STATS.index(k) for k in ("rho", "gradient_scale", "curvature_scale")]


def _factor_stats(net, X, Y, D, eps, code, bounds, pending):
    """:func:`fopa._kernels.certificate.factor_rows` for every row: in row blocks on
    the cores (BLAS single-threaded inside them) when the batch is large, in pieces
    of rows with Ctrl-C noticed between them. Rows not reached after an interrupt
    stay NaN (the caller raises)."""
    n, d = X.shape
    view = net.kernel_view
    if bounds is None:  # one point: bounds and certificate in one dispatch
        try:
            out = certify_rows(view, net.weight_norm, net.row_space_factor, code, X, Y, D, eps)
        except np.linalg.LinAlgError:  # the tight bounds' eigenproblem met inf or NaN
            raise ValueError(_OVERFLOW) from None
        if not np.isfinite(out[:, _BOUND_COLUMNS]).all():
            raise ValueError(_OVERFLOW)
        return out
    out = np.full((n, 15), np.nan)
    per_row = float(d) * d * net.m / 2.0 + 2.0 * d**3 / 3.0
    piece = max(1, int(PIECE_WORK / max(per_row, 1.0)))
    for a in range(0, n, piece):
        if pending():
            break
        b = min(a + piece, n)
        Xp, Yp, Dp, Bp = X[a:b], Y[a:b], D[a:b], bounds[:, a:b]
        blocks = row_blocks(b - a, d, d * net.m)

        def block(lo, hi, Xp=Xp, Yp=Yp, Dp=Dp, Bp=Bp):
            rows = factor_rows(view, code, Xp[lo:hi], Yp[lo:hi], Dp[lo:hi], eps,
                               np.ascontiguousarray(Bp[:, lo:hi]))  # fmt: skip
            return (rows,)

        out[a:b] = run_blocks(block, blocks, (0,))[0]
    return out


def _certify_factor(net, X, Y, D, eps, tol, code, bounds, pending):
    """Certificate rows (in :class:`Certificate`'s order) by the factorization route."""
    stats = _factor_stats(net, X, Y, D, eps, code, bounds, pending)
    rows = []
    for i in range(X.shape[0]):
        if not np.isfinite(stats[i, 1]):  # interrupted before this row
            break
        (rho, on_boundary, mu, gamma, alpha, value, lo, hi, scale, curvature, est_max,
         est_min, max_bound, min_bound, _) = stats[i].tolist()  # fmt: skip
        on_boundary = on_boundary == 1.0
        residual = gamma / scale if scale > 0 else (0.0 if gamma == 0 else math.inf)
        kind, reason = _classify(on_boundary, mu, gamma, (max_bound, est_max, est_min, min_bound),
                                 tol, eps, scale, curvature)  # fmt: skip
        inner, outer = (lo, hi) if kind == "strict_local_max" else (0.0, 0.0)
        rows.append((
            kind, on_boundary, mu, gamma, est_max, est_min, outer, inner, rho, alpha, value,
            reason, "factor", residual, scale, curvature, max_bound, min_bound,
        ))  # fmt: skip
    return rows


def _validate(net, x, y, delta, eps, loss):
    code, X, Y, (D,), single = problem_arrays(net, x, y, loss, extra=[("delta", delta)])
    eps = as_positive_scalar("eps", eps)
    largest = largest_row_norm(D)
    if largest > eps * (1.0 + FEASIBLE):
        raise ValueError(
            f"delta must lie in the ball ||delta|| <= eps = {eps:g}; got norm {largest:.6g}"
        )
    return code, X, Y, D, eps, single


def certify_arrays(net, X, Y, D, eps, tol, code, method, bounds, pending):
    """Certificate rows for validated arrays (``method`` already picked). ``bounds``
    (3, n): each row's rho and tolerance scales for the factorization route, or None
    to compute them (:func:`fopa.bounds.certificate_bounds`)."""
    if method == "factor":
        if bounds is None and X.shape[0] > 1:
            bounds = certificate_bounds(net, X, Y, eps, code, pending)
        return _certify_factor(net, X, Y, D, eps, tol, code, bounds, pending)
    if method == "dense":  # the bounds come with each point's compiled call
        per_point = [None] * X.shape[0]
    else:
        rho = ball_constant_arrays(net, X, Y, eps, code)["rho"]
        scale, curvature = tolerance_scales(net, X, Y, eps, code)
        per_point = list(zip(rho.tolist(), scale.tolist(), curvature.tolist(), strict=True))
    rows = []
    for i in range(X.shape[0]):
        if pending():
            break
        rows.append(_certify_point(net, X[i], Y[i], D[i], eps, tol, code, method, per_point[i]))
    return rows


#: The certificate's default relative tolerance (ten times the solver's default).
DEFAULT_TOL = 1e-7


def certify(
    net, x, y, delta, eps, *, tol=DEFAULT_TOL, loss="quadratic", method="auto"
) -> Certificate:
    """Classify ``delta`` as a point of ``max L(x + delta)`` over ``||delta|| <= eps``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like, shape (d,) or (n, d)
    y : float or array_like, shape (n,)
    delta : array_like, shape like x
        The point to certify, inside the ball (up to relative rounding 1e-9).
    eps : float
        Radius, > 0.
    tol : float
        Relative tolerance: the tangent gradient (the gradient inside) must be at
        most ``tol`` times the ball's gradient scale (its fast ``gradient_bound``), the
        same relative KKT residual that :func:`fopa.projected_gradient_ascent`
        stops on (use a ``tol`` at least the solver's); the multiplier and the
        eigenvalues are compared with ``tol`` times the gradient scale / eps and the
        curvature scale (``beta``). ``docs/certify.md``, "Classes".
    loss : "quadratic" or "logistic"
    method : "auto", "factor", "dense", "lowrank" or "lanczos"
        ``"factor"``: the tangent block formed directly (half the multiply-adds of
        the Hessian), its extreme eigenvalues estimated by Lanczos and proved by
        Cholesky factorizations of shifted matrices, O(d^2 m / 2 + 2 d^3 / 3)
        (``docs/certify.md``, "Proofs by factorization"); batches run in row blocks
        on all cores. ``"dense"``: full Hessian and a symmetric eigensolver on a
        Householder basis of the tangent space, O(d^3). ``"lowrank"``: the Hessian has rank
        <= m + 1, so a thin QR of ``[W^T, grad f]`` reduces the spectrum to an
        (m+1)-square problem, O(d m^2). ``"lanczos"``: extreme eigenvalues from
        Hessian-vector products (scipy's ARPACK), O(md) per product. ``"auto"``:
        lowrank when ``m + 1 < (d - 1) / 2``, factor for ``d <= 2000``, else Lanczos.
        ``"lowrank"`` with ``m + 1 >= d - 1`` has no rank to exploit and runs
        factor; the certificate's ``method`` says which ran.

    Returns
    -------
    Certificate
    """
    code, X, Y, D, eps, single = _validate(net, x, y, delta, eps, loss)
    tol = as_nonnegative_scalar("tol", tol)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    asked, method = method, pick_method(method, net, X.shape[1])
    with deferred_sigint() as pending:  # Ctrl-C: noticed between pieces, raised on exit
        rows = certify_arrays(net, X, Y, D, eps, tol, code, method, None, pending)
    if asked == "lowrank" and method != "lowrank":  # say why another method ran
        note = (
            f" (method='lowrank' has no rank to exploit at m + 1 = {net.m + 1} >= d - 1 = "
            f"{X.shape[1] - 1}: ran {method!r})"
        )
        rows = [row[:11] + (row[11] + note,) + row[12:] for row in rows]
    if single:
        return Certificate(*rows[0])
    return Certificate(*(np.array(column) for column in zip(*rows, strict=True)))


def tangent_hessian(net, x, y, delta, eps, *, loss="quadratic") -> np.ndarray:
    """The Riemannian Hessian ``P (hess L - mu I) P`` in an orthonormal tangent basis.

    Parameters
    ----------
    net : TwoLayerNet
    x, delta : array_like, shape (d,)
        ``delta`` on the sphere ``||delta|| = eps``.
    y : float
    eps : float

    Returns
    -------
    ndarray, shape (d - 1, d - 1)
        ``B^T (hess L - mu I) B`` with B the last d - 1 columns of the Householder
        reflection that maps ``u = delta/eps`` to a multiple of ``e_0``.
    """
    code, X, Y, D, eps, single = _validate(net, x, y, delta, eps, loss)
    if not single:
        raise ValueError(f"x must be one point of shape ({net.d},); got shape {X.shape}")
    pt = _Point(net, X[0], Y[0], D[0], eps, code)
    if not pt.on_boundary:
        raise ValueError("delta must lie on the sphere ||delta|| = eps for a tangent Hessian")
    H = pt.hessian()
    return householder_complement(pt.u, H - pt.mu * np.eye(H.shape[0]))[0]


def tangent_spectrum(net, x, y, delta, eps, *, loss="quadratic") -> np.ndarray:
    """All eigenvalues of :func:`tangent_hessian`, ascending, shape (d - 1,)."""
    return eigvalsh(tangent_hessian(net, x, y, delta, eps, loss=loss))


def local_rate(certificate: Certificate, step_size) -> float | np.ndarray:
    """Predicted contraction factor of PGA near a certified maximum.

    ``docs/certify.md``, "Rates and bounds", derives it.

    Linearising the projected step on the tangent space gives
    ``h+ = (I + eta H_T / (1 + eta mu)) h``, so the distance to the maximum
    shrinks by ``q = max_i |1 + eta lambda_i / (1 + eta mu)|`` per step (inside
    the ball, ``mu = 0`` and the Hessian's eigenvalues).

    Parameters
    ----------
    certificate : Certificate
    step_size : float or array_like (n,)
        The step ``eta``.

    Returns
    -------
    float or ndarray
    """
    if not isinstance(certificate, Certificate):
        raise TypeError(f"certificate must be a fopa.Certificate; got {type(certificate).__name__}")
    eta = as_float_array("step_size", step_size, ndim=(0, 1))
    if np.any(eta <= 0):
        raise ValueError("step_size must be > 0")
    mu = np.asarray(certificate.multiplier, dtype=float)
    scale = eta / (1.0 + eta * mu)
    lmax = np.asarray(certificate.max_tangent_eigenvalue, dtype=float)
    lmin = np.asarray(certificate.min_tangent_eigenvalue, dtype=float)
    q = np.maximum(np.abs(1.0 + scale * lmax), np.abs(1.0 + scale * lmin))
    return float(q) if q.ndim == 0 else q
