"""Projected gradient ascent against a plain NumPy reference and against the theory."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fopa
from fopa.testing import loss_problems as problems

from . import reference as ref


def _problem(act="tanh", lossname="quadratic", n=3, d=6, m=9, seed=0, scale=1.0):
    gen = np.random.default_rng(seed)
    net = fopa.TwoLayerNet.random(d, m, activation=act, rng=gen)
    X = gen.standard_normal((n, d)) * scale
    Y = gen.choice([-1.0, 1.0], size=n) if lossname == "logistic" else gen.standard_normal(n)
    return net, X, Y


@pytest.mark.parametrize("act", fopa.ACTIVATIONS)
@pytest.mark.parametrize("lossname", fopa.LOSSES)
def test_iterates_match_the_reference(act, lossname):
    net, X, Y = _problem(act, lossname)
    eps = 0.7
    x, y = X[0], Y[0]
    eta = 0.9 / fopa.ball_constants(net, x, y, eps, loss=lossname).beta
    delta0 = np.random.default_rng(1).standard_normal(6)
    delta0 *= 0.5 * eps / np.linalg.norm(delta0)
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size=eta, max_iter=40, tol=0.0, init=delta0,
        record_history="iterates", loss=lossname,
    )  # fmt: skip
    path = np.array(ref.pga(net, x, y, eps, eta, delta0, 40, lossname))
    np.testing.assert_allclose(res.history.iterates, path, rtol=0, atol=1e-10 * eps)
    assert res.iterations == 40 and res.stopping_criterion == "max_iter"
    assert not res.converged
    losses = [ref.loss(net, x + p, y, lossname) for p in path]
    np.testing.assert_allclose(res.history.loss, losses, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("act", ["tanh", "gelu", "quadratic"])
@pytest.mark.parametrize("init", ["zero", "sphere"])
def test_gram_iteration_equals_plain(act, init):
    net, X, Y = _problem(act, n=4, d=12, m=5, seed=2)
    kw = dict(step_size="lipschitz", max_iter=300, tol=1e-9, init=init, rng=3)
    plain = fopa.projected_gradient_ascent(net, X, Y, 0.8, method="plain", **kw)
    gram = fopa.projected_gradient_ascent(net, X, Y, 0.8, method="gram", **kw)
    assert gram.method == "gram" and plain.method == "plain"
    np.testing.assert_allclose(gram.delta, plain.delta, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gram.loss, plain.loss, rtol=1e-12)
    np.testing.assert_array_equal(np.abs(gram.iterations - plain.iterations) <= 1, True)


@pytest.mark.parametrize("init", ["zero", "sphere"])
def test_gram_iteration_judges_its_last_point_like_plain(init):
    # the Gram iteration measures the point at t = max_iter in R^d, without the
    # product Q K: a run whose last point is the first stationary one stops by tol
    net, X, Y = _problem("tanh", n=4, d=12, m=5, seed=2)
    kw = dict(step_size="lipschitz", tol=1e-9, init=init, rng=3)
    free = fopa.projected_gradient_ascent(net, X, Y, 0.8, method="plain", max_iter=5000, **kw)
    assert np.all(free.converged) and np.all(free.iterations > 2)
    last = int(free.iterations[0])
    for max_iter in (last, last - 1):
        plain = fopa.projected_gradient_ascent(
            net, X, Y, 0.8, method="plain", max_iter=max_iter, **kw
        )
        gram = fopa.projected_gradient_ascent(
            net, X, Y, 0.8, method="gram", max_iter=max_iter, **kw
        )
        assert gram.method == "gram"
        np.testing.assert_array_equal(gram.stopping_criterion, plain.stopping_criterion)
        np.testing.assert_array_equal(gram.iterations, plain.iterations)
        np.testing.assert_array_equal(
            gram.first_stationary_iteration, plain.first_stationary_iteration
        )
        np.testing.assert_allclose(gram.grad_mapping_norm, plain.grad_mapping_norm, rtol=1e-6)
    assert plain.stopping_criterion[0] == "max_iter"  # (max_iter = last - 1)


@pytest.mark.parametrize("method", ["plain", "gram"])
def test_a_stop_means_a_small_true_kkt_residual(method):
    # found by hypothesis: the Gram form ||moved||^2 = u.(K u) read 0 here while the
    # true gradient-mapping norm was 3e-9. A run now stops on the KKT residual
    # relative to the ball's gradient scale, measured in R^d for the Gram iteration
    W = np.array([[0.13368093, -0.36963897], [-0.29208003, -1.72637814], [1.27258529, 0.80904745]])
    net = fopa.TwoLayerNet(W, np.array([1.0, -1.0, 1.0]), None, "tanh", 0.5773502691896258)
    x, y, eps, tol = np.array([0.19884597, -0.39161188]), 0.9775674511260357, 2.0, 1e-9
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size="lipschitz", max_iter=20000, tol=tol, method=method
    )
    assert res.converged and res.method == method and res.stopping_criterion == "kkt_tol"
    scale = fopa.ball_constants(net, x, y, eps, method="fast").gradient_bound
    assert res.gradient_scale == scale
    g = fopa.input_gradient(net, x + res.delta, y)
    u = res.delta / np.linalg.norm(res.delta)
    assert np.linalg.norm(res.delta) == pytest.approx(eps, rel=1e-12)
    true_tangent = np.linalg.norm(g - (u @ g) * u)
    assert true_tangent <= tol * scale * (1 + 1e-6) and u @ g >= 0
    assert res.kkt_residual == pytest.approx(true_tangent / scale, rel=1e-6, abs=1e-15)
    v = res.delta + res.step_size * g
    true_gmap = np.linalg.norm(v * eps / max(np.linalg.norm(v), eps) - res.delta) / res.step_size
    assert res.grad_mapping_norm == pytest.approx(true_gmap, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("method", ["plain", "gram"])
def test_an_interior_point_whose_step_leaves_the_ball_does_not_stop_a_run(method):
    # found by hypothesis: with eta = 1/beta huge (a nearly linear network) the
    # gradient mapping at 0 is eps / eta <= tol, though grad L = 6e-5: not a KKT point
    net = fopa.TwoLayerNet(np.array([[-3.842149109390593e-05]]), np.array([-1.0]))
    x, y, eps = np.array([-1.352478962636067]), 1.5434774052224367, 0.5
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size="lipschitz", tol=1e-9, method=method, max_iter=100
    )
    assert res.converged and res.iterations >= 1
    assert abs(res.delta[0]) == pytest.approx(eps)  # the maximum is on the sphere
    assert res.tangent_gradient_norm <= 1e-9 and res.multiplier > 0
    # G was small at the start (eps / eta), the KKT residual ||grad L|| / scale was not
    assert res.first_stationary_iteration == res.iterations


def test_auto_picks_gram_when_m_below_2d():
    net, X, Y = _problem(n=1, d=10, m=12)
    assert fopa.projected_gradient_ascent(net, X[0], Y[0], 0.5, max_iter=5).method == "gram"
    net, X, Y = _problem(n=1, d=10, m=25)
    assert fopa.projected_gradient_ascent(net, X[0], Y[0], 0.5, max_iter=5).method == "plain"


@given(problems(max_d=10, max_m=20, max_scale=10.0), st.floats(1e-2, 3.0), st.booleans())
def test_lipschitz_step_never_decreases_the_loss(problem, eps, sphere_start):
    net, x, y, lossname = problem
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size="lipschitz", max_iter=200, tol=1e-7, loss=lossname,
        init="sphere" if sphere_start else "zero", rng=0, record_history="iterates",
    )  # fmt: skip
    L = res.history.loss
    slack = 1e-12 * np.maximum(np.abs(L[:-1]), 1e-300)
    assert np.all(np.diff(L) >= -slack)
    # sufficient ascent: L_{t+1} >= L_t + ||delta_{t+1} - delta_t||^2 / (2 eta)
    moves = np.sum(np.diff(res.history.iterates, axis=0) ** 2, axis=1)
    assert np.all(np.diff(L) >= moves / (2 * res.step_size) - 1e-11 * (np.abs(L[1:]) + 1e-300))
    if res.first_stationary_iteration >= 0:
        bound = fopa.iteration_bound(
            net, x, y, eps, "lipschitz", 1e-7, initial_loss=res.initial_loss, loss=lossname
        )
        assert res.first_stationary_iteration <= bound


@given(problems(max_d=8, max_m=16, max_scale=3.0), st.floats(0.05, 2.0))
def test_fixed_points_are_kkt_points(problem, eps):
    net, x, y, lossname = problem
    tol = 1e-9
    res = fopa.projected_gradient_ascent(
        net, x, y, eps, step_size="lipschitz", max_iter=20000, tol=tol, loss=lossname
    )
    if not res.converged:
        return  # very slow (degenerate) ascents are not what this property is about
    # a stop is a KKT point in the ball's gradient scale, measured here independently
    scale = fopa.ball_constants(net, x, y, eps, loss=lossname, method="fast").gradient_bound
    g = fopa.input_gradient(net, x + res.delta, y, loss=lossname)
    norm = np.linalg.norm(res.delta)
    if norm >= eps * (1 - 1e-9):
        u = res.delta / norm
        tangent, radial = np.linalg.norm(g - (u @ g) * u), u @ g
    else:
        tangent, radial = np.linalg.norm(g), 0.0
    assert tangent <= tol * scale * (1 + 1e-6) + 1e-300
    assert radial >= -tol * scale
    assert res.kkt_residual <= tol and res.multiplier >= -tol * scale / eps
    if np.linalg.norm(res.delta) < eps * (1 - 1e-6):
        assert res.multiplier == 0.0


def test_batched_equals_one_by_one():
    net, X, Y = _problem(n=5, d=7, m=20)
    kw = dict(step_size=0.05, max_iter=500, tol=1e-8, init="sphere", rng=4)
    batch = fopa.projected_gradient_ascent(net, X, Y, 0.5, **kw)
    seeds = batch.restarts.seed[:, 0]
    for i in range(5):
        start = batch.restarts.start[i, 0]
        one = fopa.projected_gradient_ascent(net, X[i], Y[i], 0.5, **{**kw, "init": start})
        np.testing.assert_allclose(one.delta, batch.delta[i], rtol=0, atol=1e-12)
        assert abs(one.iterations - batch.iterations[i]) <= 1
        # the seed reproduces the start
        gen = np.random.default_rng(int(seeds[i]))
        u = gen.standard_normal(7)
        np.testing.assert_allclose(start, 0.5 * u / np.linalg.norm(u))


def test_restarts_keep_the_best():
    net, X, Y = _problem("quadratic", n=2, d=4, m=6, seed=5)
    res = fopa.projected_gradient_ascent(
        net, X, Y, 2.0, init="sphere", n_restarts=8, rng=1, max_iter=2000
    )
    assert res.restarts.loss.shape == (2, 8) and res.restarts.end.shape == (2, 8, 4)
    np.testing.assert_array_equal(res.loss, res.restarts.loss.max(axis=1))
    best = res.restarts.loss.argmax(axis=1)
    np.testing.assert_array_equal(res.delta, res.restarts.end[np.arange(2), best])
    np.testing.assert_array_equal(res.iterations, res.restarts.iterations[np.arange(2), best])


def _one_thread_and_all(run):
    """(run() with numba set to one thread, run() with all of them)."""
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        return one, run()
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("method", ["plain", "gram"])
def test_same_seed_same_bits_whatever_the_thread_count(method):
    net, X, Y = _problem(n=6, d=8, m=6 if method == "gram" else 20, seed=6)
    kw = dict(init="ball", n_restarts=3, rng=11, max_iter=300, method=method)
    one, many = _one_thread_and_all(lambda: fopa.projected_gradient_ascent(net, X, Y, 0.6, **kw))
    again = fopa.projected_gradient_ascent(
        net, X, Y, 0.6, **{**kw, "rng": np.random.default_rng(11)}
    )
    for other in (many, again):
        np.testing.assert_array_equal(one.delta, other.delta)
        np.testing.assert_array_equal(one.restarts.end, other.restarts.end)
        np.testing.assert_array_equal(one.iterations, other.iterations)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {x["filepath"]: x["num_threads"] for x in threadpool_info() if x["user_api"] == "blas"}


@pytest.mark.parametrize("method", ["plain", "gram"])
def test_row_blocks_on_threads_match_one_block(method, monkeypatch):
    # a batch large enough is split into row blocks run on threads: the blocks give
    # the same runs as one block, and the same bits with one thread or several
    from fopa import _parallel

    net, X, Y = _problem(n=12, d=20, m=24 if method == "gram" else 60, seed=12)
    kw = dict(
        init="ball",
        n_restarts=2,
        rng=5,
        max_iter=200,
        method=method,
        perturbation=None if method == "gram" else fopa.Perturbation(0.05, 1e-3),
    )
    monkeypatch.setattr(_parallel, "MIN_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_ROWS", 3)
    assert len(_parallel.row_blocks(24, 20, 60)) == min(numba.config.NUMBA_NUM_THREADS, 8)
    blas_before = _blas_threads()
    one_thread, threads = _one_thread_and_all(
        lambda: fopa.projected_gradient_ascent(net, X, Y, 0.6, **kw)
    )
    monkeypatch.setattr(_parallel, "MIN_WORK", 10**18)
    single_block = fopa.projected_gradient_ascent(net, X, Y, 0.6, **kw)
    np.testing.assert_array_equal(one_thread.restarts.end, threads.restarts.end)
    np.testing.assert_array_equal(one_thread.restarts.iterations, threads.restarts.iterations)
    np.testing.assert_array_equal(one_thread.restarts.loss, threads.restarts.loss)
    np.testing.assert_allclose(threads.restarts.end, single_block.restarts.end, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        np.abs(threads.restarts.iterations - single_block.restarts.iterations) <= 1, True
    )
    # BLAS got its threads back
    assert _blas_threads() == blas_before
    assert _parallel._state["active"] == 0


def _blocked_ascent_sum(_):
    from fopa import _parallel

    _parallel.MIN_WORK, _parallel.MIN_ROWS = 0, 3
    net, X, Y = _problem(n=12, d=20, m=60, seed=12)
    return float(fopa.projected_gradient_ascent(net, X, Y, 0.6, max_iter=50).loss.sum())


def test_row_blocks_work_in_a_forked_child(monkeypatch):
    # the parent's block threads do not exist in a forked child (a pool of them
    # would wait forever; seen without the at-fork reset): the child starts its own
    import multiprocessing

    from fopa import _parallel

    monkeypatch.setattr(_parallel, "MIN_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_ROWS", 3)
    here = _blocked_ascent_sum(None)
    assert _parallel._state["pool"] is not None or numba.config.NUMBA_NUM_THREADS < 2
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.map_async(_blocked_ascent_sum, [0]).get(timeout=120)
    assert there == [here]


def test_history_distances_and_lengths():
    net, X, Y = _problem(n=2, d=5, m=8, seed=8)
    res = fopa.projected_gradient_ascent(net, X, Y, 0.5, record_history=True, max_iter=400)
    assert isinstance(res.history, tuple) and len(res.history) == 2
    for i, h in enumerate(res.history):
        assert h.loss.shape == (res.iterations[i] + 1,)
        assert h.distance_to_final[-1] == 0.0
        assert h.loss[-1] == res.loss[i]
        assert h.iterates is None


def test_sphere_constraint_stays_on_the_sphere():
    net, X, Y = _problem(n=3, d=5, m=8, seed=9)
    res = fopa.projected_gradient_ascent(
        net, X, Y, 0.4, constraint="sphere", init="sphere", rng=0, max_iter=300
    )
    np.testing.assert_allclose(np.linalg.norm(res.delta, axis=1), 0.4, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(res.restarts.start, axis=2), 0.4, rtol=1e-12)


def test_linf_sign_step_stays_in_the_box_and_reaches_a_corner():
    net, X, Y = _problem("linear", n=2, d=5, m=8, seed=10)
    res = fopa.projected_gradient_ascent(
        net, X, Y, 0.3, constraint="linf", step_size=0.05, max_iter=100
    )
    assert np.all(np.abs(res.delta) <= 0.3)
    # linear f: L = (f - y)^2/2 with constant grad f; the maximizer is a corner
    assert np.all(res.converged)
    np.testing.assert_allclose(np.abs(res.delta), 0.3)
    assert np.all(res.multiplier >= 0) and np.all(res.tangent_gradient_norm == 0)


def test_perturbation_escapes_a_stationary_start():
    # quadratic activation at x = 0: grad L(0) = 0, so plain PGA never leaves the origin
    net = fopa.TwoLayerNet.random(4, 8, activation="quadratic", rng=3)
    x = np.zeros(4)
    stuck = fopa.projected_gradient_ascent(net, x, 1.0, 0.5, step_size=0.1, max_iter=500)
    assert stuck.iterations == 0 and stuck.loss == stuck.initial_loss
    pert = fopa.Perturbation(radius=0.05, threshold=1e-6, interval=20)
    free = fopa.projected_gradient_ascent(
        net, x, 1.0, 0.5, step_size=0.1, max_iter=2000, perturbation=pert, rng=0
    )
    assert free.n_perturbations >= 1
    assert free.loss > stuck.loss + 1e-3
    assert free.converged and np.linalg.norm(free.delta) == pytest.approx(0.5)


def test_relative_step_sizes():
    net, X, Y = _problem(n=1)
    r = fopa.projected_gradient_ascent(net, X[0], Y[0], 0.5, step_size="relative", max_iter=3)
    assert r.step_size == pytest.approx(0.25)
    r = fopa.projected_gradient_ascent(
        net, X[0], Y[0], 0.5, step_size=("relative", 2.0), max_iter=3
    )
    assert r.step_size == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(eps=0.0), ValueError, "eps must be > 0"),
        (dict(eps=np.nan), ValueError, "eps must be finite"),
        (dict(max_iter=-1), ValueError, "max_iter must be >= 0"),
        (dict(max_iter=2.5), TypeError, "max_iter must be an integer"),
        (dict(tol=-1.0), ValueError, "tol must be >= 0"),
        (dict(init="gauss"), ValueError, "unknown init 'gauss'"),
        (dict(constraint="l1"), ValueError, "unknown constraint 'l1'"),
        (dict(method="fast"), ValueError, "unknown method"),
        (dict(step_size="adam"), ValueError, "unknown step_size"),
        (dict(step_size=-0.1), ValueError, "step_size must be > 0"),
        (dict(step_size=[0.1]), TypeError, "step_size must be"),
        (dict(n_restarts=0), ValueError, "n_restarts must be >= 1"),
        (dict(n_restarts=2), ValueError, "random init"),
        (dict(init=np.ones(3)), ValueError, "init must have shape"),
        (dict(init=np.ones(6)), ValueError, "feasible set"),
        (dict(init=np.full(6, np.nan)), ValueError, "init must be finite"),
        (dict(constraint="sphere"), ValueError, "not on the sphere"),
        (dict(perturbation=0.1), TypeError, "perturbation must be"),
        (dict(record_history="yes"), ValueError, "record_history"),
        (dict(certify_every=5, constraint="linf"), ValueError, "certify_every needs"),
        (dict(method="gram", constraint="linf"), ValueError, "method='gram'"),
        (dict(x=np.ones(5)), ValueError, "x must have 6 features"),
        (dict(x=np.full(6, np.inf)), ValueError, "x must be finite"),
        (dict(loss="hinge"), ValueError, "unknown loss"),
        (dict(rng="seed"), TypeError, "rng must be"),
        (dict(rng="seed", init="sphere"), TypeError, "rng must be"),
    ],
)
def test_bad_input(kwargs, error, match):
    net, X, Y = _problem(n=1)
    args = dict(x=X[0], eps=0.5)
    args.update(kwargs)
    x, eps = args.pop("x"), args.pop("eps")
    with pytest.raises(error, match=match):
        fopa.projected_gradient_ascent(net, x, Y[0], eps, **args)


def test_bad_perturbation_parameters():
    with pytest.raises(ValueError, match="perturbation.radius"):
        fopa.Perturbation(radius=0.0)
    with pytest.raises(ValueError, match="min_gain"):
        fopa.Perturbation(radius=0.1, min_gain=-1.0)
    with pytest.raises(ValueError, match="interval"):
        fopa.Perturbation(radius=0.1, interval=0)


def test_iteration_bound_rejects_large_steps():
    net, X, Y = _problem(n=1)
    beta = fopa.ball_constants(net, X[0], Y[0], 0.5).beta
    assert fopa.iteration_bound(net, X[0], Y[0], 0.5, 0.5 / beta, 1e-3) > 0
    with pytest.raises(ValueError, match="1/beta"):
        fopa.iteration_bound(net, X[0], Y[0], 0.5, 2.0 / beta, 1e-3)
    with pytest.raises(ValueError, match="g must be > 0"):
        fopa.iteration_bound(net, X[0], Y[0], 0.5, "lipschitz", 0.0)


def test_one_relative_factor_for_api_experiments_and_sweeps():
    """One vocabulary: ``step_size="relative"`` means the same factor in the API, the
    experiments and the sweep cells (it was 0.1 in the API, 0.5 elsewhere)."""
    import inspect

    from fopa._pga_runs import RELATIVE_FACTOR
    from fopa.experiments.iterations import polynomial_iterations
    from fopa.experiments.scale_speed import input_scale_speed
    from fopa.experiments.tolerance import iterations_against_tolerance
    from fopa.sweeps import cells

    net, X, Y = _problem(n=1)
    r = fopa.projected_gradient_ascent(net, X[0], Y[0], 0.5, step_size="relative", max_iter=1)
    assert r.step_size == RELATIVE_FACTOR * 0.5
    for func in (cells.pga, input_scale_speed, polynomial_iterations, iterations_against_tolerance):
        default = inspect.signature(func).parameters["relative_factor"].default
        assert default == RELATIVE_FACTOR, func.__name__


@pytest.mark.parametrize("step_size", [0.05, "lipschitz", "backtracking"])
@pytest.mark.parametrize("lossname", ["quadratic", "logistic"])
def test_a_run_in_one_iteration_pieces_is_the_run_in_one_piece(step_size, lossname):
    # with certify_every=1 the run goes one iteration per piece and only the rows
    # still running are carried between pieces (rows stop at different iterations
    # here): the points, counts, steps and statistics are those of one piece
    net, X, Y = _problem("softplus", lossname, n=7, d=5, m=11, seed=3)
    eps = 0.5
    kw = dict(step_size=step_size, max_iter=400, tol=1e-9, init="sphere", n_restarts=2, rng=5)
    if step_size != "backtracking":
        kw["method"] = "plain"
    whole = fopa.projected_gradient_ascent(net, X, Y, eps, **kw)
    pieces = fopa.projected_gradient_ascent(net, X, Y, eps, certify_every=1, **kw)
    assert len(set(whole.iterations.tolist())) > 2  # the rows stop at different times
    for name in ("delta", "loss", "initial_loss", "iterations", "converged",
                 "stopping_criterion", "grad_mapping_norm", "tangent_gradient_norm",
                 "kkt_residual", "gradient_scale", "multiplier", "step_size", "min_step_size",
                 "gradient_evaluations", "first_stationary_iteration",
                 "first_gradient_mapping_iteration", "message"):  # fmt: skip
        a, b = getattr(whole, name), getattr(pieces, name)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert np.all(whole.first_certified_iteration == -1)  # not asked for
    certified = pieces.first_certified_iteration
    assert np.all((certified == -1) | ((certified >= 0) & (certified <= pieces.iterations)))


@pytest.mark.parametrize(("step_size", "eps", "seed"), [(0.05, 0.5, 7), ("backtracking", 5.0, 4)])
@pytest.mark.parametrize("every", ["auto", 3])
@pytest.mark.parametrize("lossname", ["quadratic", "logistic"])
def test_the_kernels_run_on_over_checkpoints_with_nothing_to_certify(
    monkeypatch, step_size, eps, seed, every, lossname
):
    # the kernels end a call only at a checkpoint where a row is to be certified (or,
    # plain, a row stopped): the run, its statistics and its first certified
    # iterations are those of calls ended at every checkpoint, in fewer calls
    import fopa._pga_pieces as pieces

    calls = []
    real = pieces.run_kernel

    def counting(*args):
        calls.append(args[4][1])
        return real(*args)

    net, X, Y = _problem("tanh", lossname, n=9, d=6, m=20, seed=seed)
    kw = dict(step_size=step_size, max_iter=3000, tol=1e-10, init="sphere", rng=2,
              certify_every=every)  # fmt: skip
    monkeypatch.setattr(pieces, "run_kernel", counting)
    fewer = fopa.projected_gradient_ascent(net, X, Y, eps, **kw)
    n_fewer = len(calls)
    monkeypatch.setattr(pieces, "piece_length", lambda rows, d, m: 1)  # end at every checkpoint
    calls.clear()
    every_checkpoint = fopa.projected_gradient_ascent(net, X, Y, eps, **kw)
    assert len(set(fewer.iterations.tolist())) > 2  # the rows stop at different times
    assert np.all(fewer.first_certified_iteration > 0)
    assert n_fewer < len(calls) / 3
    for name in ("delta", "loss", "initial_loss", "iterations", "converged",
                 "grad_mapping_norm", "kkt_residual", "step_size", "min_step_size",
                 "gradient_evaluations", "first_stationary_iteration",
                 "first_gradient_mapping_iteration", "first_certified_iteration"):  # fmt: skip
        a, b = getattr(fewer, name), getattr(every_checkpoint, name)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
