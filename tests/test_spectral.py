"""The factorization route's kernels against NumPy and constructed spectra."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fopa
from fopa._kernels.spectral import (
    UNIT,
    eigen_bounds,
    factor_bound,
    factor_ends,
    lanczos_ends,
    weighted_gram,
)


def _with_spectrum(eigenvalues, seed=0):
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    M = (Q * eigenvalues) @ Q.T
    return 0.5 * (M + M.T)


@pytest.mark.parametrize("n,k", [(1, 1), (3, 7), (64, 5), (128, 40), (129, 300), (300, 64)])
def test_weighted_gram_is_the_exactly_symmetric_product(n, k):
    gen = np.random.default_rng(n + k)
    ZT, s = gen.standard_normal((n, k)), gen.standard_normal(k)
    out = np.full((n, n), np.nan)
    weighted_gram(ZT, s, out)
    want = (ZT * s) @ ZT.T
    assert np.array_equal(out, out.T)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("n", [2, 30, 200])
def test_lanczos_ritz_values_lie_inside_the_spectrum_and_converge(n):
    gen = np.random.default_rng(n)
    eig = np.sort(gen.standard_normal(n))
    M = _with_spectrum(eig, seed=n)
    lo, hi, change, steps = lanczos_ends(M, n, 1e-13)
    slack = 1e-13 * np.abs(eig).max()
    assert eig[0] - slack <= lo and hi <= eig[-1] + slack
    assert lo == pytest.approx(eig[0], abs=1e-9) and hi == pytest.approx(eig[-1], abs=1e-9)
    assert 1 <= steps <= n


def test_factor_bound_proves_both_ends_and_refuses_a_wrong_shift():
    eig = np.linspace(-3.0, 2.0, 90)
    M = _with_spectrum(eig)
    ok, upper = factor_bound(M, 2.0 + 1e-9, True)
    assert ok and 2.0 <= upper <= 2.0 + 1e-9 + 1e-11
    ok, lower = factor_bound(M, -3.0 - 1e-9, False)
    assert ok and -3.0 - 1e-9 - 1e-11 <= lower <= -3.0
    # a shift inside the spectrum: the factorization must break down at both ends
    assert not factor_bound(M, 2.0 - 1e-6, True)[0]
    assert not factor_bound(M, -3.0 + 1e-6, False)[0]


def test_factor_bound_allowance_covers_the_rounding_of_a_shift_at_the_eigenvalue():
    # sigma exactly lambda_max: A is singular in exact arithmetic; whatever the
    # factorization does, a success must give a bound >= lambda_max
    M = _with_spectrum(np.concatenate([np.linspace(-1, 0.5, 79), [1.0]]), seed=3)
    ok, upper = factor_bound(M, 1.0, True)
    assert (not ok) or upper >= 1.0


def test_ends_are_proved_for_the_matrices_a_certificate_forms():
    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(120, 200, activation="tanh", rng=gen)
    x = gen.standard_normal(120)
    H = fopa.input_hessian(net, x, 0.3)
    eig = np.linalg.eigvalsh(H)
    lo, hi, lower, upper, tries = factor_ends(H)
    assert tries == 2  # one factorization per end: the Lanczos estimates were close
    assert lower <= eig[0] <= lo + 1e-14 and hi - 1e-14 <= eig[-1] <= upper
    width = 1e-9 * np.abs(eig).max()
    assert upper - eig[-1] <= width and eig[0] - lower <= width


def test_a_top_eigenvector_that_lanczos_cannot_see_fails_the_proof_and_falls_back():
    # the start vector cos(1..n) is orthogonal to the top eigenvector, so Lanczos
    # (in exact arithmetic) never sees the top eigenvalue; the factorization at the
    # estimated top must fail and the eigendecomposition decide
    n = 100
    start = np.cos(np.arange(1, n + 1))
    noise = np.random.default_rng(1).standard_normal((n, n - 1))
    basis = np.linalg.qr(np.column_stack([start, noise]))[0]
    top = basis[:, 1]  # orthogonal to the start
    rest = np.linalg.qr(np.column_stack([top, basis[:, 2:], basis[:, :1]]))[0][:, 1:]
    eig_rest = np.linspace(-2.0, 1.0, n - 1)
    M = 5.0 * np.outer(top, top) + (rest * eig_rest) @ rest.T
    M = 0.5 * (M + M.T)
    lo, hi, lower, upper, tries = factor_ends(M)
    assert upper >= 5.0 and lower <= -2.0
    assert tries == -1  # (here the start is an eigenvector: Lanczos stops at 1.0)
    assert hi == pytest.approx(5.0, rel=1e-12)  # the estimate is not left at 1.0


@given(
    n=st.integers(65, 160),
    scale=st.floats(-300, 300).map(lambda t: 10.0 ** (t / 10)),
    cluster=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_eigen_bounds_bracket_the_spectrum_at_every_scale(n, scale, cluster, seed):
    gen = np.random.default_rng(seed)
    eig = gen.standard_normal(n)
    if cluster:  # many eigenvalues equal at both ends: hard for Lanczos
        eig[: n // 3] = eig.max()
        eig[-n // 3 :] = eig.min()
    M = _with_spectrum(scale * eig, seed=seed % 1000)
    want = np.linalg.eigvalsh(M)
    lo, hi, lower, upper, _ = eigen_bounds(M)
    top = np.abs(want).max()
    rounding = 64 * n * UNIT * top  # the reference's own error
    assert lower <= want[0] + rounding and want[-1] - rounding <= upper
    assert abs(lo - want[0]) <= 1e-8 * top and abs(hi - want[-1]) <= 1e-8 * top
    assert upper - want[-1] <= 1e-8 * top and want[0] - lower <= 1e-8 * top
