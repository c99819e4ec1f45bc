"""Experiments that put the paper's claims to the test (issue 5, first part).

Each experiment is a function with its parameters, drawing everything from one
``rng``, and returns a frozen result whose ``to_dict()`` is JSON-ready. The
setting is the initial phase of training: ``TwoLayerNet.random`` (``W_rj ~ N(0,
1/d)``, ``a_r = +-1``, ``c = 1/sqrt(m)``), an input direction ``x_hat`` with
``||x_hat|| = sqrt(d)`` (so pre-activations are of order 1 at unit scale), a label
``y = +-1``, and the radius tied to the input: ``eps = ratio * ||x||``.

Nothing here assumes the paper's answer: the statistics are reported as
measured, with bootstrap intervals, and the caller decides what they say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._validate import as_int, as_positive_scalar, as_rng
from .ascent import projected_gradient_ascent
from .landscape import local_maxima, taylor_model_maximum
from .losses import loss_code
from .network import TwoLayerNet
from .theory import iteration_bound

__all__ = [
    "IterationStudy",
    "ScaleSpeedStudy",
    "ScaleRegularityStudy",
    "TrainingStudy",
    "adversarial_training",
    "load_binary_dataset",
    "polynomial_iterations",
    "input_scale_speed",
    "input_scale_regularity",
    "loglog_slope",
    "pga_outcome",
    "landscape_outcome",
    "training_curves",
    "policy_step",
    "iteration_study",
    "speed_study",
    "regularity_study",
    "training_study",
]

POLICIES = ("fixed", "relative", "lipschitz")


def _jsonable(value):
    """Arrays, numpy scalars, tuples and dicts as plain JSON values (also used by the CLI)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _Result:
    def to_dict(self) -> dict:
        """Every field as JSON-ready lists and numbers."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def loglog_slope(x, y, *, samples=None, rng=None, n_boot=200):
    """Least-squares slope of ``log y`` against ``log x``, with a bootstrap interval.

    Parameters
    ----------
    x : array_like, shape (k,)
        Positive abscissae (e.g. d, m or tau).
    y : array_like, shape (k,)
        Positive statistic per abscissa (e.g. median iterations).
    samples : list of k arrays, optional
        The runs behind each ``y`` (its median): resampled with replacement to give
        a 95 % percentile interval of the slope of the medians.
    rng : None, int or Generator
    n_boot : int

    Returns
    -------
    slope : float or None
        None when a statistic is not positive (e.g. no run was certified there)
        or there are fewer than two abscissae: nothing to fit.
    interval : tuple (low, high), (slope, slope) without samples, or None
    """
    lx = np.log(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    if np.any(y <= 0) or lx.size < 2:
        return None, None
    slope = float(np.polyfit(lx, np.log(y), 1)[0])
    if samples is None:
        return slope, (slope, slope)
    gen = as_rng(rng)
    boots = []
    for _ in range(n_boot):
        meds = [np.median(gen.choice(s, size=len(s))) for s in samples]
        if min(meds) > 0:
            boots.append(np.polyfit(lx, np.log(meds), 1)[0])
    if not boots:
        return slope, (slope, slope)
    low, high = np.percentile(boots, [2.5, 97.5])
    return slope, (float(low), float(high))


def _instance(d, m, activation, gen):
    net = TwoLayerNet.random(d, m, activation=activation, rng=gen)
    x_hat = gen.standard_normal(d)
    x_hat *= np.sqrt(d) / np.linalg.norm(x_hat)
    y = float(gen.choice([-1.0, 1.0]))
    return net, x_hat, y


def _certified_stats(first):
    """Share certified, median and 90th percentile of the certified runs' counts."""
    ok = first[first >= 0]
    if ok.size == 0:
        return 0.0, 0.0, 0.0
    return float(ok.size / first.size), float(np.median(ok)), float(np.percentile(ok, 90))


@dataclass(frozen=True)
class IterationStudy(_Result):
    """Claim 1: iterations until PGA's iterate is certified a strict local maximum.

    ``first_certified[i, j, r]`` is for ``d = ds[i]``, ``m = ms[j]``, run r (-1: not
    certified within ``max_iter``); ``first_stationary`` likewise for
    ``||G|| <= tol``, and ``bound`` the sufficient-ascent bound for it.
    """

    ds: tuple
    ms: tuple
    first_certified: np.ndarray
    first_stationary: np.ndarray
    bound: np.ndarray
    share_certified: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    slope_d: float
    slope_d_interval: tuple
    slope_m: float
    slope_m_interval: tuple
    all_within_bound: bool
    settings: dict


def pga_outcome(net, x_hat, y, *, scale, ratio, step_size, tol, max_iter, certify_every, loss):
    """One ascent of an experiment: PGA from the origin at ``x = scale * x_hat``,
    ``eps = ratio ||x||``, certified every ``certify_every`` iterations.

    Returns a JSON-ready dict: ``first_certified``, ``first_stationary`` (-1: never),
    ``bound`` (:func:`fopa.iteration_bound` for the first stationary iteration; None
    unless ``step_size == "lipschitz"``),
    ``iterations``, ``loss``, ``initial_loss`` and ``stopping_criterion``.
    """
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x)
    res = projected_gradient_ascent(
        net, x, y, eps, step_size=step_size, tol=tol, max_iter=max_iter,
        certify_every=certify_every, loss=loss,
    )  # fmt: skip
    bound = None  # the sufficient-ascent bound holds for eta = 1/beta
    if step_size == "lipschitz" and tol > 0:
        bound = iteration_bound(
            net, x, y, eps, "lipschitz", tol, initial_loss=res.initial_loss, loss=loss
        )
    return dict(
        first_certified=int(res.first_certified_iteration),
        first_stationary=int(res.first_stationary_iteration), bound=bound,
        iterations=int(res.iterations), loss=float(res.loss),
        initial_loss=float(res.initial_loss), stopping_criterion=res.stopping_criterion,
    )  # fmt: skip


def polynomial_iterations(
    ds=(4, 8, 16), ms=(16, 32, 64), *, n_runs=20, scale=1.0, ratio=0.5, tol=1e-8,
    max_iter=20_000, certify_every=10, activation="tanh", loss="quadratic", rng=0,
) -> IterationStudy:  # fmt: skip
    """Measure how the iterations to a certified local maximum grow with d and m.

    PGA with ``eta = 1/beta`` from the origin; every ``certify_every`` iterations
    the iterate is certified (:func:`fopa.certify`). Slopes are of the median
    count against d (at the middle m) and against m (at the middle d), with
    bootstrap intervals; every first stationary iteration is held against
    :func:`fopa.iteration_bound`.
    """
    gen = as_rng(rng)
    loss_code(loss)
    n_runs = as_int("n_runs", n_runs, minimum=1)
    shape = (len(ds), len(ms), n_runs)
    first_cert = np.full(shape, -1, np.int64)
    first_stat = np.full(shape, -1, np.int64)
    bound = np.zeros(shape)
    for i, d in enumerate(ds):
        for j, m in enumerate(ms):
            for r in range(n_runs):
                out = pga_outcome(
                    *_instance(d, m, activation, gen), scale=scale, ratio=ratio,
                    step_size="lipschitz", tol=tol, max_iter=max_iter,
                    certify_every=certify_every, loss=loss,
                )  # fmt: skip
                first_cert[i, j, r] = out["first_certified"]
                first_stat[i, j, r] = out["first_stationary"]
                bound[i, j, r] = out["bound"]
    settings = dict(n_runs=n_runs, scale=scale, ratio=ratio, tol=tol, max_iter=max_iter,
                    certify_every=certify_every, activation=activation, loss=loss)  # fmt: skip
    return iteration_study(ds, ms, first_cert, first_stat, bound, settings, rng=gen)


def iteration_study(ds, ms, first_cert, first_stat, bound, settings, *, rng=None):
    """An :class:`IterationStudy` from raw counts (shape (len(ds), len(ms), runs)).

    Used by :func:`polynomial_iterations` and to build the study from a sweep's
    store; ``rng`` drives the bootstrap of the slopes.
    """
    gen = as_rng(rng)
    stats = np.array(
        [[_certified_stats(first_cert[i, j]) for j in range(len(ms))] for i in range(len(ds))]
    )
    share, median, p90 = stats[..., 0], stats[..., 1], stats[..., 2]
    jm, id_ = len(ms) // 2, len(ds) // 2
    cert_runs = [
        [v for v in first_cert[i, j] if v >= 0] for i in range(len(ds)) for j in range(len(ms))
    ]
    by_d = [np.array(cert_runs[i * len(ms) + jm]) for i in range(len(ds))]
    by_m = [np.array(cert_runs[id_ * len(ms) + j]) for j in range(len(ms))]
    ok_d = all(s.size for s in by_d)
    ok_m = all(s.size for s in by_m)
    sd, sd_int = loglog_slope(ds, median[:, jm], samples=by_d if ok_d else None, rng=gen)
    sm, sm_int = loglog_slope(ms, median[id_, :], samples=by_m if ok_m else None, rng=gen)
    stationary = first_stat >= 0
    return IterationStudy(
        ds=tuple(ds), ms=tuple(ms), first_certified=first_cert, first_stationary=first_stat,
        bound=bound, share_certified=share, median=median, p90=p90, slope_d=sd,
        slope_d_interval=sd_int, slope_m=sm, slope_m_interval=sm_int,
        all_within_bound=bool(np.all(first_stat[stationary] <= bound[stationary])),
        settings=dict(settings),
    )  # fmt: skip


@dataclass(frozen=True)
class ScaleSpeedStudy(_Result):
    """Claim 2 (speed): iterations to a certified maximum against the input scale.

    ``first_certified[p, t, r]`` for policy ``policies[p]``, scale ``taus[t]``, run r.
    A positive ``slope[p]`` means fewer iterations at smaller scales.
    """

    taus: tuple
    policies: tuple
    first_certified: np.ndarray
    share_certified: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    slope: tuple
    slope_interval: tuple
    settings: dict


def policy_step(policy, fixed_step, relative_factor):
    """The ``step_size`` argument of :func:`fopa.projected_gradient_ascent` for a policy."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if policy == "fixed":
        return fixed_step
    if policy == "relative":
        return ("relative", relative_factor)
    return "lipschitz"


def input_scale_speed(
    taus=(0.01, 0.1, 1.0), *, d=10, m=50, ratio=0.5, policies=POLICIES, fixed_step=0.5,
    relative_factor=0.5, n_runs=20, tol=1e-8, max_iter=20_000, certify_every=10,
    activation="tanh", loss="quadratic", rng=0,
) -> ScaleSpeedStudy:  # fmt: skip
    """Iterations to a certified maximum for ``x = tau x_hat``, ``eps = ratio ||x||``.

    The same networks, directions and labels are used at every tau (a paired
    design), under each step-size policy: a fixed eta, eta proportional to eps
    (``relative_factor * eps``) and eta = 1/beta.
    """
    gen = as_rng(rng)
    for p in policies:
        if p not in POLICIES:
            raise ValueError(f"unknown policy {p!r}; expected one of {', '.join(POLICIES)}")
    for t in taus:
        as_positive_scalar("tau", float(t))
    instances = [
        _instance(d, m, activation, gen) for _ in range(as_int("n_runs", n_runs, minimum=1))
    ]
    first = np.full((len(policies), len(taus), n_runs), -1, np.int64)
    for p, policy in enumerate(policies):
        for t, tau in enumerate(taus):
            for r, instance in enumerate(instances):
                out = pga_outcome(
                    *instance, scale=tau, ratio=ratio,
                    step_size=policy_step(policy, fixed_step, relative_factor), tol=tol,
                    max_iter=max_iter, certify_every=certify_every, loss=loss,
                )  # fmt: skip
                first[p, t, r] = out["first_certified"]
    settings = dict(d=d, m=m, ratio=ratio, fixed_step=fixed_step,
                    relative_factor=relative_factor, n_runs=n_runs, tol=tol,
                    max_iter=max_iter, certify_every=certify_every,
                    activation=activation, loss=loss)  # fmt: skip
    return speed_study(taus, policies, first, settings, rng=gen)


def speed_study(taus, policies, first, settings, *, rng=None):
    """A :class:`ScaleSpeedStudy` from raw counts (shape (len(policies), len(taus), runs))."""
    gen = as_rng(rng)
    stats = np.array(
        [[_certified_stats(first[p, t]) for t in range(len(taus))] for p in range(len(policies))]
    )
    slopes, intervals = [], []
    for p in range(len(policies)):
        runs = [first[p, t][first[p, t] >= 0] for t in range(len(taus))]
        ok = all(s.size for s in runs)
        s, interval = loglog_slope(taus, stats[p, :, 1], samples=runs if ok else None, rng=gen)
        slopes.append(s)
        intervals.append(interval)
    return ScaleSpeedStudy(
        taus=tuple(taus), policies=tuple(policies), first_certified=first,
        share_certified=stats[..., 0], median=stats[..., 1], p90=stats[..., 2],
        slope=tuple(slopes), slope_interval=tuple(intervals), settings=dict(settings),
    )  # fmt: skip


@dataclass(frozen=True)
class ScaleRegularityStudy(_Result):
    """Claim 2 (regularity): the landscape's shape against the input scale.

    Per scale ``taus[t]`` and instance r: ``n_maxima`` distinct certified maxima,
    ``best_basin`` the share of starts reaching the best one, ``taylor_distance``
    the distance from the best maximum to the Taylor model's maximizer over eps
    (-1 where no maximum was certified).
    """

    taus: tuple
    n_maxima: np.ndarray
    best_basin: np.ndarray
    taylor_distance: np.ndarray
    mean_maxima: np.ndarray
    mean_best_basin: np.ndarray
    median_taylor_distance: np.ndarray
    settings: dict


def input_scale_regularity(
    taus=(0.01, 0.1, 1.0), *, d=5, m=20, ratio=0.5, n_runs=10, n_starts=32,
    activation="tanh", loss="quadratic", rng=0,
) -> ScaleRegularityStudy:  # fmt: skip
    """Count certified maxima, the best one's basin, and the distance to the
    Taylor model's maximizer, for ``x = tau x_hat`` with ``eps = ratio ||x||``."""
    gen = as_rng(rng)
    instances = [
        _instance(d, m, activation, gen) for _ in range(as_int("n_runs", n_runs, minimum=1))
    ]
    shape = (len(taus), n_runs)
    count = np.zeros(shape, np.int64)
    basin = np.zeros(shape)
    dist = np.zeros(shape)
    for t, tau in enumerate(taus):
        for r, instance in enumerate(instances):
            out = landscape_outcome(
                *instance, scale=tau, ratio=ratio, n_starts=n_starts, loss=loss, rng=gen
            )
            count[t, r], basin[t, r], dist[t, r] = (
                out["n_maxima"],
                out["best_basin"],
                out["taylor_distance"],
            )
    settings = dict(d=d, m=m, ratio=ratio, n_runs=n_runs, n_starts=n_starts,
                    activation=activation, loss=loss)  # fmt: skip
    return regularity_study(taus, count, basin, dist, settings)


def landscape_outcome(net, x_hat, y, *, scale, ratio, n_starts, loss, rng):
    """Certified maxima at ``x = scale * x_hat`` from ``n_starts`` starts (drawn from
    ``rng``): their number, the best one's basin and its distance / eps to the Taylor
    model's maximizer (-1 when no maximum was certified), as a JSON-ready dict."""
    x = scale * x_hat
    eps = ratio * np.linalg.norm(x)
    land = local_maxima(net, x, y, eps, n_starts=n_starts, rng=rng, loss=loss)
    if land.best is None:
        return dict(n_maxima=0, best_basin=0.0, taylor_distance=-1.0)
    model = taylor_model_maximum(net, x, y, eps, loss=loss)
    return dict(
        n_maxima=len(land.maxima), best_basin=float(land.best.basin_fraction),
        taylor_distance=float(np.linalg.norm(land.best.point - model.point) / eps),
    )  # fmt: skip


def regularity_study(taus, count, basin, dist, settings):
    """A :class:`ScaleRegularityStudy` from raw per-(tau, run) arrays."""
    measured = [row[row >= 0] for row in dist]
    medians = np.array([float(np.median(v)) if v.size else -1.0 for v in measured])
    return ScaleRegularityStudy(
        taus=tuple(taus), n_maxima=count, best_basin=basin, taylor_distance=dist,
        mean_maxima=count.mean(axis=1), mean_best_basin=basin.mean(axis=1),
        median_taylor_distance=medians, settings=dict(settings),
    )  # fmt: skip


DATASETS = ("breast_cancer", "digits")


def load_binary_dataset(name):
    """A real data set shipped with scikit-learn, as standardized features and +-1 labels.

    ``"breast_cancer"`` (569 x 30, malignant = +1) or ``"digits"`` (1797 x 64,
    digits 0-4 = +1, 5-9 = -1). Features are standardized to zero mean and unit
    variance (constant pixels left at 0), so rows have norm about sqrt(d).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "breast_cancer":
        data = load_breast_cancer()
        y = np.where(data.target == 0, 1.0, -1.0)
    else:
        data = load_digits()
        y = np.where(data.target < 5, 1.0, -1.0)
    X = np.asarray(data.data, dtype=float)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, y


@dataclass(frozen=True)
class TrainingStudy(_Result):
    """Claim 2 (training): adversarial training at several input scales.

    ``robust_loss[t, e]`` and ``robust_accuracy[t, e]`` are measured on the whole
    training set at the start of epoch e (e = 0..epochs) with inputs scaled by
    ``taus[t]``; ``epochs_to_target[t]`` is the first epoch whose robust loss is at
    most ``target_fraction`` times the initial one (-1 if none).
    """

    dataset: str
    taus: tuple
    robust_loss: np.ndarray
    robust_accuracy: np.ndarray
    clean_accuracy: np.ndarray
    epochs_to_target: np.ndarray
    settings: dict


def adversarial_training(
    dataset="breast_cancer", taus=(0.1, 0.3, 1.0), *, m=32, epochs=30, ratio=0.1,
    learning_rate=0.5, pga_steps=10, pga_step_factor=0.25, target_fraction=0.5,
    activation="tanh", rng=0,
) -> TrainingStudy:  # fmt: skip
    """Adversarial training of a two-layer network with the quadratic loss.

    Inputs ``tau * x`` (x standardized), radius ``eps = ratio * tau * sqrt(d)``.
    Each epoch: the inner maximization by fopa's PGA (``pga_steps`` steps of size
    ``pga_step_factor * eps`` from the origin, every training point), then one
    full-batch gradient-descent step on W, a and b at the perturbed points
    (:func:`fopa.parameter_gradient`). The same initial network is used for every
    tau.
    """
    X, y = load_binary_dataset(dataset)
    n, d = X.shape
    gen = as_rng(rng)
    net0 = TwoLayerNet.random(d, m, activation=activation, rng=gen)
    epochs = as_int("epochs", epochs, minimum=1)
    curves = [
        training_curves(
            X,
            y,
            net0,
            tau,
            epochs=epochs,
            ratio=ratio,
            learning_rate=learning_rate,
            pga_steps=pga_steps,
            pga_step_factor=pga_step_factor,
        )  # fmt: skip
        for tau in taus
    ]
    settings = dict(m=m, epochs=epochs, ratio=ratio, learning_rate=learning_rate,
                    pga_steps=pga_steps, pga_step_factor=pga_step_factor,
                    target_fraction=target_fraction, activation=activation, n=n, d=d)  # fmt: skip
    return training_study(dataset, taus, curves, settings)


def training_curves(X, y, net0, tau, *, epochs, ratio, learning_rate, pga_steps,
                    pga_step_factor):  # fmt: skip
    """Adversarial training from ``net0`` on inputs ``tau * X``, ``eps = ratio tau sqrt(d)``.

    Returns a JSON-ready dict of lists of length ``epochs + 1``: ``robust_loss``,
    ``robust_accuracy`` and ``clean_accuracy`` at the start of each epoch.
    """
    from .derivatives import loss as loss_values
    from .derivatives import predict
    from .training import parameter_gradient

    tau = as_positive_scalar("tau", float(tau))
    Xs = tau * X
    eps = ratio * tau * np.sqrt(X.shape[1])
    W, a, b = net0.W.copy(), net0.a.copy(), net0.b.copy()
    losses, robust_acc, clean_acc = [], [], []
    for e in range(epochs + 1):
        net = TwoLayerNet(W, a, b, net0.activation, net0.output_scale)
        res = projected_gradient_ascent(
            net, Xs, y, eps, step_size=("relative", pga_step_factor), max_iter=pga_steps,
            tol=0.0,
        )  # fmt: skip
        P = Xs + res.delta
        losses.append(float(np.mean(loss_values(net, P, y))))
        robust_acc.append(float(np.mean(np.sign(predict(net, P)) == y)))
        clean_acc.append(float(np.mean(np.sign(predict(net, Xs)) == y)))
        if e == epochs:
            break
        grad = parameter_gradient(net, P, y)
        W = W - learning_rate * grad.W
        a = a - learning_rate * grad.a
        b = b - learning_rate * grad.b
    return dict(robust_loss=losses, robust_accuracy=robust_acc, clean_accuracy=clean_acc)


def training_study(dataset, taus, curves, settings):
    """A :class:`TrainingStudy` from one :func:`training_curves` dict per tau."""
    losses = np.array([c["robust_loss"] for c in curves])
    reached = losses <= settings["target_fraction"] * losses[:, :1]
    to_target = np.array([int(np.argmax(row)) if row.any() else -1 for row in reached])
    return TrainingStudy(
        dataset=dataset, taus=tuple(taus), robust_loss=losses,
        robust_accuracy=np.array([c["robust_accuracy"] for c in curves]),
        clean_accuracy=np.array([c["clean_accuracy"] for c in curves]),
        epochs_to_target=to_target, settings=dict(settings),
    )  # fmt: skip
