"""What is reproduced, exactly, under which thread settings (docs/solver.md, "Threads").

Same settings: the same bits, run after run. Other settings (NUMBA_NUM_THREADS,
BLAS threads): BLAS products round differently (the row-block split follows
NUMBA_NUM_THREADS; OpenBLAS's products follow its thread count), so results agree
to rounding, not to the bit; iterations can amplify that.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fopa

    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(100, 512, rng=gen)
    X, Y = gen.standard_normal((64, 100)), gen.standard_normal(64)
    run = fopa.projected_gradient_ascent(net, X[:8], Y[:8], 2.0, max_iter=3000)
    cert = fopa.certify(net, X[:8], Y[:8], run.delta, 2.0)
    np.savez(
        sys.argv[1],
        plain=fopa.projected_gradient_ascent(net, X, Y, 2.0, max_iter=200, tol=0).delta,
        hessian=fopa.input_hessian(net, X[:16], Y[:16]),
        bounds=fopa.ball_constants(net, X, Y, 2.0).beta,
        certificate=np.array([cert.max_eigenvalue_bound, cert.min_eigenvalue_bound]),
        kinds=np.array(cert.kind), iterations=run.iterations,
    )
    """
)


def _run(tmp_path, name, numba_threads, blas_threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads))
    env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    path = tmp_path / f"{name}.npz"
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True, timeout=300)
    return np.load(path)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to vary the threads")
def test_same_settings_same_bits_other_settings_agree_to_rounding(tmp_path):
    first = _run(tmp_path, "a", 2, 2)
    again = _run(tmp_path, "b", 2, 2)
    single = _run(tmp_path, "c", 1, 1)
    for key in first.files:
        np.testing.assert_array_equal(first[key], again[key])  # bit for bit
    for key in ("plain", "hessian", "bounds", "certificate"):
        scale = np.max(np.abs(first[key]))
        assert np.max(np.abs(first[key] - single[key])) <= 1e-13 * scale, key
    np.testing.assert_array_equal(first["kinds"], single["kinds"])
    np.testing.assert_array_equal(first["iterations"], single["iterations"])


TRAINING = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fopa

    gen = np.random.default_rng(0)
    X, y = gen.standard_normal((60, 12)), np.sign(gen.standard_normal(60))
    net = fopa.TwoLayerNet.random(12, 8, rng=1)
    out = {}
    for optimizer in ("sgd", "adam"):
        for method in ("gram", "plain"):
            run = fopa.adversarial_training(
                net, X, y, 0.5, epochs=3, learning_rate=0.01, optimizer=optimizer,
                batch_size=16, attack=fopa.NormalizedPGD(method=method), rng=3)
            out[optimizer + method] = np.concatenate(
                [run.net.W.ravel(), run.net.a, run.net.b, run.robust_loss])
    np.savez(sys.argv[1], **out)
    """
)


def test_a_cold_cache_and_a_warm_cache_give_the_same_bits(tmp_path):
    # The first process compiles every kernel and stores it in an empty numba cache,
    # the second loads them: the compiled epoch's Adam update once differed in the
    # last bit between the two (fopa/_kernels/jit.py, jit_exact).
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for name in ("cold", "warm"):
        path = tmp_path / f"{name}.npz"
        subprocess.run([sys.executable, "-c", TRAINING, str(path)], env=env, check=True,
                       timeout=300)  # fmt: skip
        runs.append(np.load(path))
    for key in runs[0].files:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)
