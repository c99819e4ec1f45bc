import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

import fopa
from fopa.cli import main


@pytest.fixture
def saved(tmp_path):
    net = fopa.TwoLayerNet.random(3, 5, rng=0)
    path = tmp_path / "net.npz"
    net.save(path)
    return net, str(path)


def test_demo_prints_the_summary(capsys):
    assert main(["demo", "--d", "4", "--m", "6", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for word in ("loss", "||grad L||", "hess L", "beta", "pass"):
        assert word in out


def test_ascend_then_certify_round_trip(saved, tmp_path, capsys):
    net, path = saved
    delta_file = str(tmp_path / "delta.npy")
    args = ["--x", "0.1,0.2,0.3", "--y", "0.5", "--eps", "0.5"]
    assert main(["ascend", path, *args, "--json", "--save-delta", delta_file]) == 0
    out = json.loads(capsys.readouterr().out)
    want = fopa.projected_gradient_ascent(net, np.array([0.1, 0.2, 0.3]), 0.5, 0.5)
    np.testing.assert_allclose(out["delta"], want.delta)
    assert out["loss"] == pytest.approx(want.loss)
    assert main(["certify", path, *args, "--delta", delta_file, "--json"]) == 0
    cert = json.loads(capsys.readouterr().out)
    assert cert["kind"] == "strict_local_max" and cert["radius"] > 0


def test_batch_input_from_npy(saved, tmp_path, capsys):
    net, path = saved
    X = np.random.default_rng(0).standard_normal((4, 3))
    np.save(tmp_path / "x.npy", X)
    args = ["--x", str(tmp_path / "x.npy"), "--y", "0,0.1,0.2,0.3", "--eps", "0.4", "--json"]
    assert main(["ascend", path, *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.shape(out["delta"]) == (4, 3) and len(out["loss"]) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["certify", "missing.npz", "--x", "1,2,3", "--y", "0", "--eps", "1", "--delta", "0,0,0"],
         "does not exist"),
        (["ascend", "NET", "--x", "1,2", "--y", "0", "--eps", "1"], "x must have 3 features"),
        (["ascend", "NET", "--x", "a,b", "--y", "0", "--eps", "1"], "comma-separated"),
        (["ascend", "NET", "--x", "nofile.npy", "--y", "0", "--eps", "1"], "does not exist"),
        (["certify", "NET", "--x", "1,2,3", "--y", "0", "--eps", "1", "--delta", "5,5,5"],
         "must lie in the ball"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_without_traceback(saved, argv, message, capsys):
    _, path = saved
    argv = [path if a == "NET" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_radius_is_a_usage_error(saved):
    _, path = saved
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fopa.cli",
            "ascend",
            path,
            "--x",
            "1,2,3",
            "--y",
            "0",
            "--eps",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "eps" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line, no usage block


def test_python_dash_m_fopa_is_the_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "fopa", "certify", "--help"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "usage: fopa certify" in out.stdout
    for method in importlib.import_module("fopa.certify").METHODS:
        assert method in out.stdout


def test_cli_choices_come_from_their_owners():
    from fopa.cli import build_parser
    from fopa.experiments.registry import CONFIG_NAMES
    from fopa.sweeps import PAPER_CONFIG

    sub = build_parser()._subparsers._group_actions[0].choices
    choices = {a.dest: a.choices for p in sub.values() for a in p._actions if a.choices}
    ascent = importlib.import_module("fopa.ascent")
    certify = importlib.import_module("fopa.certify")  # (fopa.certify is the function)
    assert tuple(sub["ascend"]._option_string_actions["--init"].choices) == ascent.INITS
    assert tuple(sub["certify"]._option_string_actions["--method"].choices) == certify.METHODS
    configs = sub["reproduce"]._option_string_actions["--config"].choices
    assert tuple(configs) == (*CONFIG_NAMES, PAPER_CONFIG)
    assert tuple(choices["activation"]) == fopa.ACTIVATIONS


def test_version_conflicts_and_a_wrong_network_file(tmp_path, capsys):
    # found by hostile testing: --version was a usage error, --quick --config full ran
    # the quick configuration, and a .npy given as the network failed with "'numpy.
    # ndarray' object does not support the context manager protocol"
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"fopa {fopa.__version__}"
    assert main(["reproduce", "--quick", "--config", "full", "--out", str(tmp_path / "r")]) == 2
    assert "--quick and --config full conflict" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    np.save(tmp_path / "x.npy", np.ones(3))
    x = str(tmp_path / "x.npy")
    args = [x, "--x", x, "--y", "0", "--eps", "1", "--delta", "0,0,0"]
    assert main(["certify", *args]) == 2
    assert "holds one array (ndarray), not a fopa network file" in capsys.readouterr().err


def test_a_method_that_cannot_run_says_which_ran_and_why(saved):
    net, _ = saved  # d = 3, m = 5: no rank to exploit
    cert = fopa.certify(net, np.ones(3), 0.0, np.zeros(3), 1.0, method="lowrank")
    assert cert.method == "factor"
    assert "method='lowrank' has no rank to exploit" in cert.reason


def test_a_batch_prints_as_a_table_and_a_closed_pipe_is_quiet(saved, tmp_path, capsys):
    net, path = saved
    np.save(tmp_path / "X.npy", np.ones((2, 3)))
    assert main(["ascend", path, "--x", str(tmp_path / "X.npy"), "--y", "0,1", "--eps", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("input"))
    assert "||delta||" in lines[header] and "iterations" in lines[header]
    assert [line.split()[0] for line in lines[header + 1 :]] == ["0", "1"]
    assert "[" not in "\n".join(lines)  # no NumPy reprs
    # the reader of a pipe goes away after one line: exit 141, nothing on stderr
    proc = subprocess.run(
        f"{sys.executable} -m fopa demo --d 3 --m 4 | head -1", shell=True,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.stdout.startswith("network") and proc.stderr == ""


def test_an_output_path_is_checked_before_the_work(saved, capsys):
    _, path = saved
    args = ["ascend", path, "--x", "1,2,3", "--y", "0", "--eps", "1"]
    assert main([*args, "--save-delta", "/nonexistent-dir/d.npy"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_python_dash_m_does_not_import_modules_from_the_current_directory(tmp_path):
    # found by hostile testing: a tomllib.py in the working directory was executed
    # instead of the standard library's when a spec was read through python -m fopa
    import subprocess
    import sys

    (tmp_path / "tomllib.py").write_text('raise SystemExit("the shadow tomllib ran")\n')
    (tmp_path / "s.toml").write_text(
        'experiment = "pga"\nseeds = {count = 1}\n[fixed]\nd = 3\nm = 4\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fopa", "sweep", "s.toml", "--store", "st.sqlite", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "shadow" not in proc.stderr + proc.stdout


def test_help_shows_every_default(capsys):
    for command in ("ascend", "certify", "demo", "attacks", "reproduce"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "(default: " in out
        if command == "ascend":
            for text in ("(default: zero)", "(default: 1)", "(default: quadratic)"):
                assert text in out, (text, out)


def test_a_cold_kernel_cache_is_announced(monkeypatch, capsys):
    from fopa._kernels import jit
    from fopa._kernels.network import predict
    from fopa.cli import _compile_notice

    assert jit.cache_is_warm(predict) in (True, None)  # compiled by now in this session
    assert jit.cache_is_warm(object()) is None  # not a dispatcher: cannot tell
    monkeypatch.setattr(jit, "cache_is_warm", lambda dispatcher: False)
    _compile_notice()
    assert "compiling the numba kernels" in capsys.readouterr().err
    monkeypatch.setattr(jit, "cache_is_warm", lambda dispatcher: True)
    _compile_notice()
    assert capsys.readouterr().err == ""


def test_step_size_words_are_those_of_the_api_and_the_sweeps():
    import argparse

    from fopa.cli import _step_size

    assert _step_size("fixed:0.5") == 0.5 and _step_size("0.25") == 0.25
    assert _step_size("relative:0.3") == ("relative", 0.3)
    assert _step_size("relative") == "relative" and _step_size("backtracking") == "backtracking"
    for bad in ("fixed", "fixed:-1", "relative:x", "big"):
        with pytest.raises(argparse.ArgumentTypeError, match="fixed:STEP, relative:FACTOR"):
            _step_size(bad)


def test_demo_scale_is_the_norm_of_the_input(capsys):
    # found by a new user: --scale 2 ("the norm of the input") gave ||x|| = 1.3
    assert main(["demo", "--d", "4", "--m", "6", "--scale", "2"]) == 0
    assert "||x||=2," in capsys.readouterr().out


def test_precompile_command(capsys):
    assert main(["precompile", "--part", "network"]) == 0  # warm: says so, compiles nothing
    assert "in numba's cache already" in capsys.readouterr().out
    assert main(["precompile", "--part", "network", "--force"]) == 0
    out = capsys.readouterr().out
    assert "network:" in out and "kernel signatures" in out
    with pytest.raises(SystemExit):
        main(["precompile", "--part", "nope"])
    assert "invalid choice" in capsys.readouterr().err
