"""Ctrl-C during compiled work: a prompt KeyboardInterrupt, never a crash.

A SIGINT handled while numba turned a kernel's results into Python objects left a
half-built result: ``fopa ascend`` exited with a segmentation fault (exit 139),
two interrupts out of two, and a batch of 200 rows kept computing for 40-60 s.
"""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fopa

    kind = sys.argv[1]
    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(100, 1000 if kind == "one" else 400, rng=gen)
    x = gen.standard_normal(100) if kind == "one" else gen.standard_normal((64, 100))
    fopa.projected_gradient_ascent(net, x[..., :], 0.0, 5.0, max_iter=3, tol=0.0)  # compile
    fopa.certify(net, np.atleast_2d(x)[0], 0.0, np.zeros(100), 5.0)
    fopa.attacks.apgd(net, x, 0.0, 5.0, n_iter=2, rng=0)  # compile
    fopa.attacks.pgd(net, x, 0.0, 5.0, steps=2)
    if kind == "train":  # minibatches in compiled phases on two threads
        Xt = gen.standard_normal((4000, 100))
        yt = np.sign(gen.standard_normal(4000))
        fopa.adversarial_training(net, Xt[:256], yt[:256], 5.0, epochs=1, learning_rate=1e-3,
                                  batch_size=128)  # compile
    print("ready", flush=True)
    try:
        if kind == "audit":
            for _ in range(10**6):
                fopa.audit_ball_constants(net, np.atleast_2d(x)[0], 0.0, 5.0, rng=0)
        elif kind == "certify":
            D = gen.standard_normal((40000, 100))
            D *= 5.0 / np.linalg.norm(D, axis=1, keepdims=True)
            fopa.certify(net, np.tile(x[0], (40000, 1)), 0.0, D, 5.0)
        elif kind == "apgd":  # rows in blocks on worker threads
            fopa.attacks.apgd(net, x[:16], 0.0, 5.0, n_iter=2 * 10**6, rng=0)
        elif kind == "pgd_one":  # one row: one block, still stoppable
            fopa.attacks.pgd(net, x[0], 0.0, 5.0, steps=10**7)
        elif kind == "train":
            fopa.adversarial_training(net, Xt, yt, 5.0, epochs=10**6, learning_rate=1e-3,
                                      batch_size=128)
        elif kind == "certify_centers":  # every row its own center: rho for each
            X = gen.standard_normal((40000, 100))
            fopa.certify(net, X, 0.0, np.zeros((40000, 100)), 5.0)
        else:
            fopa.projected_gradient_ascent(net, x, 0.0, 5.0, max_iter=10**7, tol=0.0)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def _sigint_as_at_a_terminal():
    """In the child before exec: SIGINT to its default (Python's KeyboardInterrupt).

    A shell without job control starts background commands with SIGINT ignored and
    children inherit that; fopa rightly leaves an ignored SIGINT alone, so a test
    run started in the background (``pytest &``) would never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc, wait):
    """Send SIGINT to ``proc`` once ``wait()`` returns; (stdout, stderr, seconds to exit)."""
    try:
        wait()
        assert proc.poll() is None, proc.communicate()
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        return out, err, time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "kind", ["one", "batch", "certify", "certify_centers", "audit", "apgd", "pgd_one", "train"]
)
def test_ctrl_c_raises_keyboard_interrupt_promptly(kind):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, kind], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_sigint_as_at_a_terminal,
    )  # fmt: skip

    def ready_then_a_second():
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)

    out, err, waited = _interrupt(proc, ready_then_a_second)
    assert proc.returncode == 0, err  # no crash: the script handled the interrupt
    assert out.strip() == "interrupted", (out, err)
    assert waited < 3.0, waited


def test_the_command_line_says_interrupted_and_exits_130(tmp_path):
    import numpy as np

    import fopa

    net = fopa.TwoLayerNet.random(100, 1000, rng=0)
    net.save(tmp_path / "mid.npz")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal(100))
    cmd = [sys.executable, "-m", "fopa", "ascend", str(tmp_path / "mid.npz"), "--x",
           str(tmp_path / "x.npy"), "--y", "0", "--eps", "5", "--max-iter", "100000000",
           "--tol", "0"]  # fmt: skip
    start = time.perf_counter()  # a short run first: compiled kernels cached, start-up timed
    subprocess.run([*cmd[:-4], "--max-iter", "1"], check=True, capture_output=True, timeout=300)
    startup = time.perf_counter() - start
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_at_a_terminal)  # fmt: skip
    out, err, waited = _interrupt(proc, lambda: time.sleep(startup + 2.0))  # into the run
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err and out == ""
    assert waited < 3.0, waited


def _ctrl_c_at_a_terminal(cmd, after, env=None):
    """Start ``cmd`` in a process group of its own, send SIGINT to the whole group
    (as Ctrl-C at a terminal does) ``after`` seconds later, and return the finished
    process, its stderr and the seconds it took to end after the signal."""
    import os

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True,
                            preexec_fn=_sigint_as_at_a_terminal)  # fmt: skip
    try:
        time.sleep(after)
        assert proc.poll() is None, proc.communicate()
        sent = time.perf_counter()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        waited = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, err, waited


def test_reproduce_with_workers_stops_promptly_and_leaves_no_process(tmp_path):
    # Ctrl-C at a terminal reaches the whole process group. The pool used to wait for
    # every queued study after the interrupt (23 in the quick configuration: tens of
    # seconds of work nobody asked for).
    import os

    cmd = [sys.executable, "-m", "fopa", "reproduce", "--quick", "--jobs", "2", "--out",
           str(tmp_path / "out")]  # fmt: skip
    proc, err, waited = _ctrl_c_at_a_terminal(cmd, 8.0)  # the workers in their first studies
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err
    assert waited < 10.0, waited
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker left in the group
        os.killpg(proc.pid, 0)


def _sweep_runner(tmp_path):
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = tmp_path / "hang.toml"
    # every cell hangs: only stopping the workers ends the run early
    spec.write_text('experiment = "tests.sweep_cells:hangs"\nseeds = {count = 4}\n'
                    "[fixed]\nn = 0\n")  # fmt: skip
    env = dict(os.environ, PYTHONPATH=root)
    cmd = [sys.executable, "-m", "fopa", "sweep", str(spec), "--store",
           str(tmp_path / "h.sqlite"), "--jobs", "2", "--quiet"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True,
                            preexec_fn=_sigint_as_at_a_terminal)  # fmt: skip


def _group_alive(pgid):
    import os

    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("how", ["runner", "group"])
def test_ctrl_c_stops_a_sweep_and_its_workers_at_once(tmp_path, how):
    # found by hostile testing: after SIGINT the runner waited for the running cells
    # (a hanging cell: forever), and a second Ctrl-C left the workers orphaned
    import os

    proc = _sweep_runner(tmp_path)
    try:
        time.sleep(6.0)  # the workers are in their (hanging) cells
        assert proc.poll() is None, proc.communicate()
        sent = time.perf_counter()
        if how == "group":
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        waited = time.perf_counter() - sent
        deadline = time.perf_counter() + 5.0
        while _group_alive(proc.pid) and time.perf_counter() < deadline:
            time.sleep(0.1)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert waited < 3.0, waited
        assert not _group_alive(proc.pid)  # no worker left
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_killing_only_the_runner_ends_its_workers(tmp_path):
    # found by hostile testing: kill -9 of the runner left the workers alive >= 60 s
    import os

    proc = _sweep_runner(tmp_path)
    try:
        time.sleep(6.0)
        assert proc.poll() is None, proc.communicate()
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.perf_counter() + 5.0
        while _group_alive(proc.pid) and time.perf_counter() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_precompile_in_processes_stops_promptly_and_leaves_no_process(tmp_path):
    # Ctrl-C while the processes of `fopa precompile --jobs 2` compile (an empty
    # cache): the pool is terminated, not waited for (a compilation takes tens of
    # seconds), and the workers print no traceback of their own
    import os

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "fopa", "precompile", "--jobs", "2"]
    proc, err, waited = _ctrl_c_at_a_terminal(cmd, 6.0, env)  # the two are compiling
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err and "Traceback" not in err and "Process" not in err
    assert waited < 5.0, waited
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker left in the group
        os.killpg(proc.pid, 0)


TEAM_SCRIPT = textwrap.dedent(
    """
    import os, signal, threading, time
    import numpy as np
    import fopa
    import fopa._training_epoch as team

    class SlowToLeave(threading.Barrier):
        # the helper threads read the stop flag late after each barrier: the calling
        # thread reaches the next barrier first, as it can by chance
        def wait(self, timeout=None):
            out = super().wait(timeout)
            if threading.current_thread() is not threading.main_thread():
                time.sleep(0.02)
            return out

    threading.Barrier = SlowToLeave
    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(100, 200, rng=gen)
    X, y = gen.standard_normal((640, 100)), np.sign(gen.standard_normal(640))
    assert team.part_count(64, 100, 200) >= 2 and team.thread_count() >= 2
    kw = dict(learning_rate=1e-3, batch_size=64, attack=fopa.NormalizedPGD(steps=4))
    fopa.adversarial_training(net, X, y, 4.0, epochs=1, **kw)  # compile
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        fopa.adversarial_training(net, X, y, 4.0, epochs=10**6, **kw)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def test_ctrl_c_stops_every_thread_of_a_training_epoch_at_the_same_barrier():
    # the calling thread used to look for Ctrl-C before its barrier wait: released
    # from one barrier it could set the stop flag before a helper thread had read it
    # for that barrier, and the helper left while the caller waited at the next one
    # for ever (fopa reproduce --jobs 2 hung after about one Ctrl-C in five)
    import os

    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    proc = subprocess.Popen([sys.executable, "-c", TEAM_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_sigint_as_at_a_terminal)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "interrupted", (out, err)
