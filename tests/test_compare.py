"""compare_attacks and ``fopa attacks``: ground truth held against every attack."""

import json

import numpy as np
import pytest

import fopa
from fopa.cli import main


@pytest.fixture(scope="module")
def comparison():
    gen = np.random.default_rng(0)
    net = fopa.TwoLayerNet.random(3, 10, rng=gen)
    X = gen.standard_normal((4, 3))
    Y = gen.standard_normal(4)
    return net, X, Y, fopa.compare_attacks(net, X, Y, 0.7, budget=30, n_starts=8, rng=1)


def test_ground_truth_bounds_every_attack(comparison):
    net, X, Y, c = comparison
    assert c.attacks == fopa.compare.DEFAULT_ATTACKS
    assert np.all(c.best_known[None, :] >= c.best_loss - 1e-15)
    assert np.all(c.gap >= 0)
    assert c.global_upper is not None and np.all(c.global_upper >= c.best_known)
    assert np.all(c.is_best <= c.certified)
    # both verdicts occur here: one-step fgm never ends at a certified maximum,
    # Riemannian ascent does on some inputs
    assert not c.certified[0].any() and c.certified[-1].any()
    assert c.is_best.any() and not c.is_best.all()
    assert np.all(c.evaluations_to_final <= c.gradient_evaluations[:, None])
    assert c.gradient_evaluations.tolist() == [1, 30, 30, 30, 30, 30]
    for k, name in enumerate(c.attacks):
        assert c.curves[k].shape[1] == c.evaluations[k].shape[0]
        # one gradient per update, the last iterate at the attack's own count (APGD's
        # and Riemannian ascent's start counted: they used to be off by one)
        assert c.evaluations[k][-1] == c.gradient_evaluations[k]
        assert np.all(np.diff(c.evaluations[k]) == 1)
        assert np.all(np.diff(c.curves[k], axis=1) <= 0)  # best so far only improves
        assert f"| {name} |" in c.table()
    # the certificate column is certify's verdict on each attack's best point
    res = fopa.attacks.pgd(net, X, Y, 0.7, steps=30)
    kinds = fopa.certify(net, X, Y, res.best_delta, 0.7).kind
    np.testing.assert_array_equal(c.certified[1], np.asarray(kinds) == "strict_local_max")
    json.dumps(c.to_dict())
    assert c.figure().axes[0].get_xscale() == "log"


def test_unknown_attack_is_refused():
    net = fopa.TwoLayerNet.random(2, 3, rng=0)
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        fopa.compare_attacks(net, np.ones((1, 2)), 0.0, 0.5, attacks=("cw",))


def test_cli_attacks_table_and_json(tmp_path, capsys):
    gen = np.random.default_rng(2)
    net = fopa.TwoLayerNet.random(2, 6, rng=gen)
    net.save(tmp_path / "net.npz")
    np.save(tmp_path / "x.npy", gen.standard_normal((3, 2)))
    args = [str(tmp_path / "net.npz"), "--x", str(tmp_path / "x.npy"), "--y", "0.3",
            "--eps", "0.5", "--budget", "10", "--starts", "4", "--seed", "0"]  # fmt: skip
    assert main(["attacks", *args, "--attack", "pgd", "--attack", "apgd"]) == 0
    out = capsys.readouterr().out
    assert "| pgd |" in out and "| apgd |" in out and "fgm" not in out
    assert main(["attacks", *args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["gap"]) == set(fopa.compare.DEFAULT_ATTACKS)
    figure = tmp_path / "gap.png"
    assert main(["attacks", *args, "--attack", "fgm", "--figure", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert main(["attacks", *args, "--figure", str(tmp_path / "no" / "f.png")]) == 2
    assert "directory" in capsys.readouterr().err
