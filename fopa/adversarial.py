"""Adversarial training: minimize over the parameters the loss maximized over the inputs.

For a batch (X, y) each outer step first runs an inner maximization, ascent on the
perturbations ``delta_i`` over ``||delta_i|| <= eps`` (the attack-library
normalized PGD, :class:`NormalizedPGD`, or fopa's certified ascent,
:class:`CertifiedPGA`), then moves W, a, b and the output bias down the
batch-mean parameter gradient at ``X + delta`` (closed form,
``docs/derivatives.md``, "Parameter gradients") with SGD, a normalized step or
Adam. The inner maximization's cost (iterations, gradients, certified share,
first certified iteration) is recorded per epoch: it is the quantity the theory
of first-order adversaries speaks to (``docs/adversarial-training.md``).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ._adversarial_steps import (
    CertifiedPGA,
    NormalizedPGD,
    OuterStep,
    as_inner,
    batch_gradient,
    learning_rates,
)
from ._inputs import problem_arrays
from ._json import jsonable
from ._training_epoch import EPOCH_OPTIMIZERS, EpochTeam
from ._validate import as_int, as_positive_scalar, as_rng
from .derivatives import loss as point_loss
from .derivatives import predict
from .network import TwoLayerNet
from .stats import censored_times, km_quantile

__all__ = [
    "NormalizedPGD",
    "CertifiedPGA",
    "EpochRecord",
    "InnerStatistics",
    "TrainingResult",
    "adversarial_training",
    "robust_evaluation",
]

STATUSES = ("completed", "callback", "diverged")


@dataclass(frozen=True)
class InnerStatistics:
    """The inner maximization's cost per epoch, over every training point of it.

    Attributes (each of shape (epochs,); epoch e counts the batches of epoch e + 1)
    ----------
    iterations_mean : ndarray
        Mean ascent iterations per point.
    gradient_evaluations : ndarray of int
        Gradients of the loss in the input, summed over the epoch's points.
    share_converged : ndarray
        Share stopped by the KKT rule within the budget (NaN: no stopping rule).
    share_certified : ndarray
        Share certified a strict local maximum within the budget (NaN: not certified).
    first_certified_median : ndarray
        Kaplan-Meier median of the first certified iteration, points not certified
        within the budget censored there (inf: not reached; NaN: not certified).
    first_certified : tuple of ndarray
        Per epoch, the first certified iteration of every point (-1: censored at
        ``budget``); empty when not certified.
    budget : int
    """

    iterations_mean: np.ndarray
    gradient_evaluations: np.ndarray
    share_converged: np.ndarray
    share_certified: np.ndarray
    first_certified_median: np.ndarray
    first_certified: tuple
    budget: int

    def to_dict(self) -> dict:
        """JSON-ready dict (the per-point counts left out)."""
        return {k: jsonable(getattr(self, k)) for k in (
            "iterations_mean", "gradient_evaluations", "share_converged", "share_certified",
            "first_certified_median", "budget")}  # fmt: skip


@dataclass(frozen=True)
class EpochRecord:
    """What the callback sees after each epoch.

    ``epoch`` (1-based), the network after it, the epoch's mean robust training
    loss and accuracy (at the perturbed points, before each batch's update) and,
    with validation data, its robust and clean loss and accuracy.
    """

    epoch: int
    net: TwoLayerNet
    robust_loss: float
    robust_accuracy: float
    validation: dict | None


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of :func:`adversarial_training`.

    Attributes
    ----------
    net : TwoLayerNet
        The trained network (the last one with finite parameters).
    epochs : int
        Epochs completed.
    robust_loss, robust_accuracy : ndarray, shape (epochs,)
        Mean over each epoch's points of the loss at ``x + delta`` and of
        ``sign(f(x + delta)) == y``, measured before each batch's update.
    validation : mapping or None
        ``robust_loss``, ``robust_accuracy``, ``clean_loss``, ``clean_accuracy``,
        each of shape (epochs + 1,) (entry 0 before training), under
        ``validation_attack``.
    inner : InnerStatistics
    checkpoints : mapping
        ``{epoch: TwoLayerNet}`` for the requested epochs reached (0: the start).
    status : str
        ``"completed"``, ``"callback"`` (the callback returned True) or
        ``"diverged"`` (a loss or gradient left float64's range; ``net`` is the last
        finite network).
    message : str
    settings : mapping
    """

    net: TwoLayerNet
    epochs: int
    robust_loss: np.ndarray
    robust_accuracy: np.ndarray
    validation: MappingProxyType | None
    inner: InnerStatistics
    checkpoints: MappingProxyType
    status: str
    message: str
    settings: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict:
        """JSON-ready summary (networks left out)."""
        return dict(
            epochs=self.epochs, robust_loss=jsonable(self.robust_loss),
            robust_accuracy=jsonable(self.robust_accuracy),
            validation=None if self.validation is None else jsonable(dict(self.validation)),
            inner=self.inner.to_dict(), status=self.status, message=self.message,
            checkpoint_epochs=sorted(self.checkpoints), settings=jsonable(dict(self.settings)),
        )  # fmt: skip


def _params(net):
    return dict(W=net.W.copy(), a=net.a.copy(), b=net.b.copy(),
                output_bias=np.array(net.output_bias))  # fmt: skip


def _net(params, like):
    return TwoLayerNet(params["W"], params["a"], params["b"], like.activation,
                       like.output_scale, float(params["output_bias"]))  # fmt: skip


def _save_atomic(net, directory, epoch):
    """Write ``epoch_00005.npz`` in ``directory`` whole or not at all."""
    path = os.path.join(directory, f"epoch_{epoch:05d}.npz")
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.partial")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            net.save(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def robust_evaluation(net, X, y, eps, attack, *, loss="quadratic", rng=None):
    """Robust and clean loss and accuracy of ``net`` on (X, y) under ``attack``.

    Returns a dict of four floats (``robust_loss``, ``robust_accuracy``,
    ``clean_loss``, ``clean_accuracy``) and, when the attack certifies, the share
    of points whose perturbation was certified (``share_certified``).
    """
    inner = as_inner(attack, "attack")
    code, X, Y, _, _ = problem_arrays(net, X, y, loss)
    gen = as_rng(rng)
    pert = inner(net, X, Y, as_positive_scalar("eps", eps), code, loss, gen)
    values, F, _ = batch_gradient(net, code, X, Y, pert)  # reuses the attack's gradient
    clean_values, clean_F = point_loss(net, X, Y, loss=loss), predict(net, X)
    out = dict(robust_loss=float(values.mean()), robust_accuracy=float(np.mean(np.sign(F) == Y)),
               clean_loss=float(clean_values.mean()),
               clean_accuracy=float(np.mean(np.sign(clean_F) == Y)))  # fmt: skip
    if pert.first_certified is not None:
        out["share_certified"] = float(np.mean(pert.first_certified >= 0))
    return out


def _validate_data(net, X, y, loss, what):
    code, Xa, Ya, _, _ = problem_arrays(net, X, y, loss)
    if Xa.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array of inputs")
    return code, Xa, Ya


def adversarial_training(
    net, X, y, eps, *, epochs, learning_rate, optimizer="sgd", batch_size=None, attack="pgd",
    loss="quadratic", rng=None, callback=None, validation=None, validation_attack=None,
    checkpoints=(), checkpoint_dir=None, progress=False,
) -> TrainingResult:  # fmt: skip
    """Train ``net`` adversarially: minimize the mean of ``max_{||delta|| <= eps} L``.

    Parameters
    ----------
    net : TwoLayerNet
        The initial network (not changed). The output scale c is not trained.
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    eps : float
        Radius of every point's perturbation ball, > 0.
    epochs : int
        Passes over the data, >= 1.
    learning_rate : float or dict
        One rate, or ``{"W": ., "a": ., "b": ., "output_bias": .}`` (a rate 0 keeps
        that parameter fixed). Protocol P2 of the training experiment is
        ``W: lr / tau^2`` with the others at lr (``docs/adversarial-training.md``).
    optimizer : "sgd", "normalized" or "adam"
        Plain gradient descent, the step ``rate g / ||g||`` (the norm over all
        parameters; scale-free), or Adam (torch's defaults).
    batch_size : int or None
        None: full batch (one step per epoch, in the data's order). Otherwise
        minibatches of this size from a permutation drawn from ``rng`` per epoch
        (the last may be smaller).
    attack : "pgd", "pga", NormalizedPGD or CertifiedPGA
        The inner maximization: ``"pgd"`` is ``NormalizedPGD()`` (10 normalized
        steps of 0.25 eps from zero), ``"pga"`` is ``CertifiedPGA()`` (fopa's ascent
        with the backtracking step to a certified maximum, budget 1000).
    loss : "quadratic" or "logistic"
    rng : None, int or numpy.random.Generator
        Shuffling and random starts.
    callback : callable, optional
        ``callback(EpochRecord)`` after each epoch; returning True stops training
        (status ``"callback"``).
    validation : (X_val, y_val), optional
        Held-out data, evaluated before training and after each epoch.
    validation_attack : as ``attack``, optional
        The attack for the held-out robust numbers (default: ``attack``).
    checkpoints : iterable of int
        Epochs whose networks are kept in the result (0: the initial one).
    checkpoint_dir : path, optional
        Also write each checkpoint there as ``epoch_00005.npz`` (atomically).
    progress : bool
        Show a progress bar over epochs (tqdm, on stderr).

    Returns
    -------
    TrainingResult

    Notes
    -----
    With :class:`NormalizedPGD` (without ``certify``) and SGD or Adam, each epoch
    runs as compiled phases on a team of threads (``docs/adversarial-training.md``,
    "One epoch in compiled phases"); it trains the network the batch-by-batch loop
    trains, to rounding (1e-11 in the tests). Same ``rng``, same bits, under the
    same thread settings (numba's ``NUMBA_NUM_THREADS`` and the BLAS thread count),
    as the ascent (``docs/solver.md``, "What is reproduced, exactly"). Ctrl-C raises
    ``KeyboardInterrupt`` between two batches; checkpoint files already written
    are whole.
    """
    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"net must be a TwoLayerNet; got {type(net).__name__}")
    code, X, Y = _validate_data(net, X, y, loss, "X")
    n = X.shape[0]
    eps = as_positive_scalar("eps", eps)
    epochs = as_int("epochs", epochs, minimum=1)
    rates = learning_rates(learning_rate)
    batch = n if batch_size is None else as_int("batch_size", batch_size, minimum=1)
    inner = as_inner(attack)
    val_inner = inner if validation_attack is None else as_inner(validation_attack,
                                                                 "validation_attack")  # fmt: skip
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (X_val, y_val)")
        _, Xv, Yv = _validate_data(net, validation[0], validation[1], loss, "validation X")
    keep = sorted({as_int("checkpoint epoch", e, minimum=0) for e in checkpoints})
    if checkpoint_dir is not None and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"checkpoint_dir {os.fspath(checkpoint_dir)!r} is not a directory")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    gen = as_rng(rng)
    params = _params(net)
    step = OuterStep(optimizer, rates, {k: np.shape(v) for k, v in params.items()})
    team = None
    if isinstance(inner, NormalizedPGD) and not inner.certify and optimizer in EPOCH_OPTIMIZERS:
        team = EpochTeam(net, X, Y, code, eps, inner.step_factor * eps, inner.steps,
                         inner.guard, inner.uses_gram(net, eps), optimizer, rates,
                         batch)  # fmt: skip
    current = net
    saved = {}

    def checkpoint(e, model):
        if e in keep:
            saved[e] = model
            if checkpoint_dir is not None:
                _save_atomic(model, checkpoint_dir, e)

    val_curves = {k: [] for k in ("robust_loss", "robust_accuracy", "clean_loss",
                                  "clean_accuracy")}  # fmt: skip

    def validate(model):
        if validation is None:
            return None
        out = robust_evaluation(model, Xv, Yv, eps, val_inner, loss=loss, rng=gen)
        for k in val_curves:
            val_curves[k].append(out[k])
        return out

    validate(current)
    checkpoint(0, current)
    robust_loss, robust_acc = [], []
    iters, grads_count, conv, cert, median, firsts = [], [], [], [], [], []
    status, message = "completed", f"{epochs} epochs completed"
    bar = _progress(epochs, progress)
    try:
        for e in range(1, epochs + 1):
            order = np.arange(n) if batch >= n else gen.permutation(n)
            if team is not None:
                tally = _team_epoch(team, inner, order, X, Y, eps, batch, gen)
            else:
                tally = _batch_epoch(current, inner, step, params, order, X, Y, eps, code,
                                     loss, batch, gen)  # fmt: skip
            diverged = tally["diverged"]
            if not diverged:
                params = tally["params"]
                current = _net(params, net)
            loss_sum, correct = tally["loss_sum"], tally["correct"]
            it_sum, ev_sum = tally["iterations"], tally["evaluations"]
            conv_count, conv_seen = tally["converged"], tally["converged_seen"]
            first_parts = tally["first"]
            if diverged:
                status = "diverged"
                message = (f"a loss, gradient or parameter left float64's range in epoch {e}; "
                           f"the network after epoch {e - 1} is returned")  # fmt: skip
                break
            robust_loss.append(loss_sum / n)
            robust_acc.append(correct / n)
            iters.append(it_sum / n)
            grads_count.append(ev_sum)
            conv.append(conv_count / n if conv_seen else np.nan)
            if first_parts:
                first = np.concatenate(first_parts)
                firsts.append(first)
                cert.append(float(np.mean(first >= 0)))
                median.append(km_quantile(*censored_times(first, inner_budget(inner))))
            else:
                cert.append(np.nan)
                median.append(np.nan)
            out = validate(current)
            checkpoint(e, current)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(robust_loss=f"{robust_loss[-1]:.4g}")
            if callback is not None and callback(
                EpochRecord(e, current, robust_loss[-1], robust_acc[-1], out)
            ):
                status, message = "callback", f"stopped by the callback after epoch {e}"
                break
    finally:
        if bar is not None:
            bar.close()
    stats = InnerStatistics(
        np.array(iters), np.array(grads_count, dtype=np.int64), np.array(conv),
        np.array(cert), np.array(median), tuple(firsts), inner_budget(inner),
    )  # fmt: skip
    settings = dict(eps=eps, epochs=epochs, learning_rate=rates, optimizer=step.optimizer,
                    batch_size=batch_size, attack=repr(inner), loss=loss, n=n, d=net.d,
                    m=net.m)  # fmt: skip
    return TrainingResult(
        net=current, epochs=len(robust_loss), robust_loss=np.array(robust_loss),
        robust_accuracy=np.array(robust_acc),
        validation=None if validation is None else MappingProxyType(
            {k: np.array(v) for k, v in val_curves.items()}),
        inner=stats, checkpoints=MappingProxyType(saved), status=status, message=message,
        settings=MappingProxyType(settings),
    )  # fmt: skip


def _batch_epoch(current, inner, step, params, order, X, Y, eps, code, loss, batch, gen):
    """One epoch batch by batch in Python: any inner maximization and optimizer.

    Returns the epoch's tally: summed losses and correct signs, inner iterations,
    gradient evaluations, converged points, first certified iterations, the new
    parameters and whether a batch diverged (``params`` then those of the epoch's
    start).
    """
    n = X.shape[0]
    tally = dict(loss_sum=0.0, correct=0.0, iterations=0, evaluations=0, converged=0,
                 converged_seen=False, first=[], diverged=False, params=params)  # fmt: skip
    for start in range(0, n, batch):
        rows = order[start : start + batch]
        Xb, Yb = X[rows], Y[rows]
        pert = inner(current, Xb, Yb, eps, code, loss, gen)
        values, F, grads = batch_gradient(current, code, Xb, Yb, pert)
        tally["loss_sum"] += math.fsum(values)
        tally["correct"] += float(np.count_nonzero(np.sign(F) == Yb))
        tally["iterations"] += int(pert.iterations.sum())
        tally["evaluations"] += int(pert.gradient_evaluations.sum())
        if pert.converged is not None:
            tally["converged_seen"] = True
            tally["converged"] += int(np.count_nonzero(pert.converged))
        if pert.first_certified is not None:
            tally["first"].append(pert.first_certified)
        finite = np.isfinite(values).all() and all(np.isfinite(g).all() for g in grads.values())
        new = step(params, grads) if finite else None
        if new is None or not all(np.isfinite(v).all() for v in new.values()):
            tally["diverged"] = True
            return tally
        params = new
        current = _net(params, current)
    tally["params"] = params
    return tally


def _team_epoch(team, inner, order, X, Y, eps, batch, gen):
    """One epoch of :class:`NormalizedPGD` with SGD or Adam in compiled phases
    (:class:`fopa._training_epoch.EpochTeam`); the same tally as :func:`_batch_epoch`."""
    n, d = X.shape
    D0 = inner.epoch_starts(n, d, batch, eps, gen)
    values, F, diverged = team.run(order, D0)
    tally = dict(iterations=inner.steps * n, evaluations=inner.steps * n, converged=0,
                 converged_seen=False, first=[], diverged=diverged is not None)  # fmt: skip
    if diverged is None:
        W, a, b, b0 = team.parameters()
        tally["params"] = dict(W=W, a=a, b=b, output_bias=np.array(b0))
        # one correctly rounded sum per batch, as _batch_epoch: NumPy's sum of a slice
        # depends on the slice's memory alignment (its SIMD loop), so on the process
        tally["loss_sum"] = sum(math.fsum(values[s : s + batch]) for s in range(0, n, batch))
        tally["correct"] = float(np.count_nonzero(np.sign(F) == Y[order]))
    else:
        tally.update(loss_sum=np.nan, correct=np.nan)
    return tally


def inner_budget(inner):
    """The iteration budget of an inner maximization."""
    return inner.steps if isinstance(inner, NormalizedPGD) else inner.max_iter


def _progress(epochs, show):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=epochs, unit="epoch", desc="adversarial training", leave=False)
