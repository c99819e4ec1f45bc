"""The strategies of adversarial training below :func:`fopa.adversarial_training`:
the inner maximizations (what perturbs a batch) and the outer steps (how the
parameters move), each a small object with one call, so the driver never knows
which one it runs (``docs/adversarial-training.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._kernels.training import gradient_at, pgd_batch_gradient
from ._parallel import row_blocks, run_blocks
from ._pga_runs import GRAM_LENGTHS, choice, gram_weights_in_range
from ._validate import as_int, as_nonnegative_scalar, as_positive_scalar
from .ascent import projected_gradient_ascent
from .certify import certify

__all__ = ["NormalizedPGD", "CertifiedPGA", "OPTIMIZERS", "PARAMETERS"]

STARTS = ("zero", "ball", "sphere")
PGD_METHODS = ("auto", "gram", "plain")
#: The trainable parameters, in the order of :class:`fopa.ParameterGradient`.
PARAMETERS = ("W", "a", "b", "output_bias")
OPTIMIZERS = ("sgd", "normalized", "adam")
#: Batches of at least this many rows run in row blocks on all cores (BLAS
#: single-threaded inside, ``fopa._parallel``). Switching BLAS's thread count costs
#: about 2 ms a call here, so smaller batches run as one block on BLAS's threads:
#: measured at (d, m) = (784, 256), 10 steps, one epoch of 4,000 points: blocks
#: slower at batches 128..1024 (0.28 vs 0.21 s at 128), faster at 2,000 (0.149 vs
#: 0.161 s) and at the full batch (0.116 vs 0.165 s).
BLOCKS_FROM_ROWS = 2000
#: Adam's constants (torch.optim.Adam's defaults).
ADAM_BETAS, ADAM_EPSILON = (0.9, 0.999), 1e-8


@dataclass(frozen=True)
class BatchPerturbation:
    """What an inner maximization returns for one batch.

    ``delta`` (n, d); ``iterations`` and ``gradient_evaluations`` (n,) int;
    ``converged`` (n,) bool or None (no stopping rule); ``first_certified`` (n,)
    int, -1 where the point was not certified within the budget, or None when not
    certified at all; ``budget`` the iteration budget at which -1 is censored;
    ``gradient`` the outputs of :func:`fopa._kernels.training.batch_gradient_at`
    when the inner maximization computed them with the perturbation (None: they
    are computed afterwards).
    """

    delta: np.ndarray
    iterations: np.ndarray
    gradient_evaluations: np.ndarray
    converged: np.ndarray | None
    first_certified: np.ndarray | None
    budget: int
    gradient: tuple | None = None


def _start(start, n, d, eps, gen):
    if start == "zero":
        return np.zeros((n, d))
    v = gen.standard_normal((n, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    if start == "ball":
        v *= gen.random((n, 1)) ** (1.0 / d)
    return eps * v


@dataclass(frozen=True)
class NormalizedPGD:
    """The attack-library inner step: ``delta <- Proj(delta + alpha g / (||g|| + guard))``.

    Parameters
    ----------
    steps : int
        Updates per batch (one gradient each), >= 1.
    step_factor : float
        ``alpha = step_factor * eps`` (0.25 = Madry et al.'s ``2.5 eps / 10``).
    start : "zero", "ball" or "sphere"
        The starting perturbation (random ones drawn from the training ``rng``).
    guard : float
        Added to ``||g||`` before dividing (0: a zero gradient stays at zero).
    method : "auto", "gram" or "plain"
        ``"gram"`` iterates in the row space of W, one rows x m x m product per
        step (``docs/adversarial-training.md``); ``"plain"`` the two rows x m x d
        products of :func:`fopa.attacks.pgd`; ``"auto"`` picks gram when ``m < d``
        and eps and alpha lie in [1e-140, 1e140] (its squared lengths then fit in
        float64).
    certify : bool
        Certify every final point (:func:`fopa.certify`, an O(d^3)-per-point cost):
        the share of batches' points at a strict local maximum.
    """

    steps: int = 10
    step_factor: float = 0.25
    start: str = "zero"
    guard: float = 0.0
    method: str = "auto"
    certify: bool = False

    def __post_init__(self):
        as_int("steps", self.steps, minimum=1)
        as_positive_scalar("step_factor", self.step_factor)
        choice("start", self.start, STARTS)
        as_nonnegative_scalar("guard", self.guard)
        choice("method", self.method, PGD_METHODS)

    def uses_gram(self, net, eps):
        """Whether the row-space iteration runs for ``net`` at radius ``eps``."""
        if self.method != "auto":
            return self.method == "gram"
        lengths = (eps, self.step_factor * eps)
        in_range = all(GRAM_LENGTHS[0] <= v <= GRAM_LENGTHS[1] for v in lengths)
        return net.m < net.d and in_range and gram_weights_in_range(net)

    def epoch_starts(self, n, d, batch, eps, gen):
        """The starts of an epoch's batches by position, (n, d), drawn batch by batch
        from ``gen`` as :meth:`__call__` draws them; (0, d) for zero starts."""
        if self.start == "zero":
            return np.zeros((0, d))
        return np.concatenate([_start(self.start, min(batch, n - s), d, eps, gen)
                               for s in range(0, n, batch)])  # fmt: skip

    def __call__(self, net, X, Y, eps, code, loss, gen):
        n, d = X.shape
        D0 = _start(self.start, n, d, eps, gen)
        alpha = self.step_factor * eps
        stop = np.zeros(1, np.int64)
        view = net.kernel_view
        gram = self.uses_gram(net, eps)
        K = net.gram if gram else np.zeros((1, 1))

        def block(a, b):
            return pgd_batch_gradient(view, K, code, X[a:b], Y[a:b], D0[a:b], eps, alpha,
                                      self.steps, self.guard, gram, stop)  # fmt: skip

        blocks = row_blocks(n, d, net.m) if n >= BLOCKS_FROM_ROWS else [(0, n)]
        delta, *gradient = run_blocks(block, blocks, (0,) * 7)
        counts = np.full(n, self.steps, np.int64)
        first = None
        if self.certify:
            cert = certify(net, X, Y, delta, eps, loss=loss)
            first = np.where(cert.kind == "strict_local_max", self.steps, -1)
        return BatchPerturbation(
            delta, counts, counts.copy(), None, first, self.steps, tuple(gradient)
        )


@dataclass(frozen=True)
class CertifiedPGA:
    """fopa's instrumented ascent as the inner maximization
    (:func:`fopa.projected_gradient_ascent`).

    Parameters
    ----------
    step_size : float, "backtracking", "lipschitz", "relative" or ("relative", f)
        As for the ascent. The default is the backtracking step: after training has
        started the tight ``1/beta`` (``"lipschitz"``) is far below the local
        curvature's and, within a budget, makes a weak attack (measured in
        ``docs/experiments/4-adversarial-training.md``); ask for ``"lipschitz"`` to
        measure the theory's step.
    max_iter : int
        The budget per point, >= 1.
    tol : float
        The ascent's relative KKT tolerance (0: the whole budget).
    certify : bool
        Certify the iterates on the ascent's "auto" schedule (exact up to iteration
        100, 1 % above): the first certified iteration per point, -1 (censored at
        ``max_iter``) where none was.
    init : "zero", "sphere" or "ball"
    n_restarts : int
        Random starts per point (init "sphere" or "ball"), the best by loss kept.
    """

    step_size: object = "backtracking"
    max_iter: int = 1000
    tol: float = 1e-8
    certify: bool = True
    init: str = "zero"
    n_restarts: int = 1

    def __post_init__(self):
        as_int("max_iter", self.max_iter, minimum=1)
        as_nonnegative_scalar("tol", self.tol)
        choice("init", self.init, ("zero", "sphere", "ball"))
        as_int("n_restarts", self.n_restarts, minimum=1)
        if self.n_restarts > 1 and self.init == "zero":
            raise ValueError("n_restarts > 1 needs init 'sphere' or 'ball'")

    def __call__(self, net, X, Y, eps, code, loss, gen):
        res = projected_gradient_ascent(
            net, X, Y, eps, step_size=self.step_size, max_iter=self.max_iter, tol=self.tol,
            init=self.init, n_restarts=self.n_restarts, rng=gen, loss=loss,
            certify_every="auto" if self.certify else 0,
        )  # fmt: skip
        first = None
        if self.certify:
            first = np.asarray(res.first_certified_iteration, dtype=np.int64).reshape(-1)
        return BatchPerturbation(
            np.asarray(res.delta).reshape(X.shape),
            np.asarray(res.iterations, dtype=np.int64).reshape(-1),
            np.asarray(res.gradient_evaluations, dtype=np.int64).reshape(-1),
            np.asarray(res.converged, dtype=bool).reshape(-1), first, self.max_iter,
        )  # fmt: skip


def as_inner(attack, name="attack"):
    """An inner maximization from ``"pgd"``, ``"pga"`` or an instance."""
    if isinstance(attack, (NormalizedPGD, CertifiedPGA)):
        return attack
    if isinstance(attack, str):
        choice(name, attack, ("pgd", "pga"))
        return NormalizedPGD() if attack == "pgd" else CertifiedPGA()
    raise TypeError(f"{name} must be 'pgd', 'pga', a NormalizedPGD or a CertifiedPGA; "
                    f"got {attack!r}")  # fmt: skip


def batch_gradient(net, code, X, Y, perturbation):
    """Losses, outputs and the batch-mean parameter gradient at ``X + delta``.

    Returns ``values`` (n,), ``F`` (n,) and ``{name: gradient}`` for
    :data:`PARAMETERS` (``W`` (m, d), ``a`` and ``b`` (m,), ``output_bias`` a 0-d
    array).
    """
    out = perturbation.gradient
    if out is None:
        out = gradient_at(net.kernel_view, code, X, Y, perturbation.delta)
    values, F, *sums = out  # sums over the points, one row per row block
    n = X.shape[0]
    gW, ga, gb, gb0 = (s.sum(axis=0) / n if s.shape[0] > 1 else s[0] / n for s in sums)
    return values, F, dict(W=gW, a=ga, b=gb, output_bias=np.array(gb0))


class OuterStep:
    """The parameter update: ``"sgd"``, ``"normalized"`` or ``"adam"``.

    ``rates`` maps every name of :data:`PARAMETERS` to its learning rate. SGD moves
    ``theta -= rate g``; the normalized step ``theta -= rate g / ||g||`` with the
    norm over all parameters together (scale-free: the step's length does not
    depend on the gradient's); Adam is torch.optim.Adam's update (betas (0.9,
    0.999), epsilon 1e-8, bias-corrected).
    """

    def __init__(self, optimizer, rates, shapes):
        self.optimizer = choice("optimizer", optimizer, OPTIMIZERS)
        self.rates = rates
        self.t = 0
        if self.optimizer == "adam":
            self.m1 = {k: np.zeros(s) for k, s in shapes.items()}
            self.m2 = {k: np.zeros(s) for k, s in shapes.items()}

    def __call__(self, params, grads):
        """The new parameters (a new dict; the inputs are not changed)."""
        self.t += 1
        if self.optimizer == "sgd":
            return {k: params[k] - self.rates[k] * grads[k] for k in PARAMETERS}
        if self.optimizer == "normalized":
            total = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
            if total == 0.0:
                return dict(params)
            return {k: params[k] - self.rates[k] * grads[k] / total for k in PARAMETERS}
        b1, b2 = ADAM_BETAS
        out = {}
        for k in PARAMETERS:
            self.m1[k] = b1 * self.m1[k] + (1 - b1) * grads[k]
            self.m2[k] = b2 * self.m2[k] + (1 - b2) * grads[k] ** 2
            m_hat = self.m1[k] / (1 - b1**self.t)
            v_hat = self.m2[k] / (1 - b2**self.t)
            out[k] = params[k] - self.rates[k] * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON)
        return out


def learning_rates(learning_rate):
    """``{name: rate}`` for :data:`PARAMETERS` from a float or such a dict."""
    if isinstance(learning_rate, dict):
        unknown = set(learning_rate) - set(PARAMETERS)
        missing = set(PARAMETERS) - set(learning_rate)
        if unknown or missing:
            raise ValueError(
                "learning_rate as a dict needs exactly the keys "
                f"{', '.join(PARAMETERS)}; missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return {k: as_nonnegative_scalar(f"learning_rate[{k!r}]", learning_rate[k])
                for k in PARAMETERS}  # fmt: skip
    rate = as_positive_scalar("learning_rate", learning_rate)
    return dict.fromkeys(PARAMETERS, rate)
