"""``fopa reproduce --config paper``: specs, resumable sweeps, the report from the stores."""

import io
import json

import numpy as np
import pytest

from fopa.cli import main
from fopa.experiments.common import random_instance
from fopa.experiments.iterations import pga_outcome
from fopa.experiments.registry import STUDIES, configuration
from fopa.report.reproduce import reproduce, study_seeds
from fopa.sweeps import ResultStore, SweepSpec, paper_outside_studies, paper_specs, run_paper
from fopa.sweeps.cells import pga


def test_every_paper_spec_is_valid_and_builds_the_study_it_is_named_after():
    # 8 iteration arms, the tail, 2 x radii, 2 regularity
    for size, count in (("paper", 19), ("tiny", 15)):
        specs = paper_specs(size)
        names = [spec["name"] for spec in specs]
        assert len(names) == len(set(names)) == count
        for spec in specs:
            assert spec["name"] in STUDIES
            assert SweepSpec.from_dict(spec).n_cells > 0
    grid = {s["name"]: s for s in paper_specs("paper")}["logistic_iterations_backtracking"]
    assert grid["grid"] == dict(d=[8, 16, 32, 64, 128, 256, 512, 784],
                                m=[16, 64, 256, 1024, 4096])  # fmt: skip
    assert grid["seeds"]["count"] >= 100
    tail = {s["name"]: s for s in paper_specs("paper")}["polynomial_iterations_tail"]
    assert tail["seeds"]["count"] >= 5 * grid["seeds"]["count"]
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        paper_specs("huge")


def test_the_paper_configuration_runs_every_study_of_the_reproduction():
    for size, config in (("paper", "full"), ("tiny", "tiny")):
        swept = [spec["name"] for spec in paper_specs(size)]
        outside = paper_outside_studies(size)
        assert not set(swept) & set(outside)
        assert set(swept) | set(outside) == set(STUDIES)
        # the studies outside the sweeps take the sizes of their configuration
        full = configuration(config)
        assert all(outside[name] == full[name] for name in outside)
    assert "training_protocols" in paper_outside_studies("paper")
    assert "input_scale_regularity_d784" in paper_outside_studies("paper")


def test_the_cell_certifies_on_the_auto_schedule_as_the_studies_do():
    out = pga(d=6, m=8, seed=3, certify_every="auto", step_policy="fixed")
    gen = np.random.default_rng(3)
    want = pga_outcome(*random_instance(6, 8, "tanh", gen), scale=1.0, ratio=0.5,
                       step_size=0.5, tol=1e-8, max_iter=20_000, certify_every="auto",
                       loss="quadratic", init="zero")  # fmt: skip
    assert out == want
    # "auto" resolves the first certified iteration exactly below 100; every 10 may not
    assert out["first_certified"] <= pga(d=6, m=8, seed=3, step_policy="fixed")["first_certified"]
    with pytest.raises(ValueError, match="certify_every must be an integer >= 1 or 'auto'"):
        SweepSpec.from_dict(dict(experiment="pga", seeds=[0],
                                 fixed=dict(d=3, m=4, certify_every="often")))  # fmt: skip


def test_run_paper_writes_every_study_resumes_and_rebuilds_the_same_report(tmp_path):
    pytest.importorskip("matplotlib")
    first = run_paper(tmp_path / "r", size="tiny", progress=False)
    names = {spec["name"] for spec in paper_specs("tiny")}
    assert set(first["experiments"]) == set(STUDIES)  # every study, in registry order
    assert list(first["experiments"]) == list(STUDIES)
    outside = first["meta"]["outside"]
    assert set(outside) == set(STUDIES) - names and all(p["ran"] for p in outside.values())
    seeds = study_seeds("tiny", 0)
    assert all(part["seed"] == seeds[name] for name, part in outside.items())
    stores = sorted(p.name for p in (tmp_path / "r" / "stores").glob("*.sqlite"))
    assert stores == sorted(f"{n}.sqlite" for n in names)
    assert all(part["ran"] > 0 for part in first["meta"]["sweeps"].values())
    assert first["meta"]["config"] == "paper (tiny)"
    # the tail store gives the tail study; its first instances are the iteration grid's
    tail = first["experiments"]["polynomial_iterations_tail"]
    grid = first["experiments"]["polynomial_iterations"]
    assert set(tail) >= {"quantile", "quantile_low", "quantile_high", "growth_d"}
    n_grid = len(grid["first_certified"][0][0])
    assert len(tail["first_certified"][0][0]) > n_grid
    for i, d in enumerate(tail["ds"]):
        for j, m in enumerate(tail["ms"]):
            same = grid["first_certified"][grid["ds"].index(d)][grid["ms"].index(m)]
            assert tail["first_certified"][i][j][:n_grid] == same
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Sweep stores" in report and "`logistic_regularity.sqlite`" in report
    assert "## Studies outside the sweeps" in report and "| training_protocols | tiny |" in report
    # a rerun runs nothing and gives the same numbers
    again = run_paper(tmp_path / "r", size="tiny", progress=False)
    assert all(part["ran"] == 0 for part in again["meta"]["sweeps"].values())
    assert not any(part["ran"] for part in again["meta"]["outside"].values())
    assert json.dumps(again["experiments"]) == json.dumps(first["experiments"])
    assert again["claims"] == first["claims"]
    # a study outside the sweeps has the numbers it has in fopa reproduce (same seed)
    alone = reproduce(tmp_path / "alone", config="tiny", studies=["tail_rates_across_scales"],
                      stream=io.StringIO())  # fmt: skip
    name = "tail_rates_across_scales"
    assert json.dumps(alone["experiments"][name]) == json.dumps(first["experiments"][name])
    # a damaged saved study (or one from other parameters) is run again, the rest loaded
    (tmp_path / "r" / "studies" / f"{name}.pickle").write_bytes(b"half a pickle")
    third = run_paper(tmp_path / "r", size="tiny", progress=False)
    ran = [n for n, part in third["meta"]["outside"].items() if part["ran"]]
    assert ran == [name]
    assert json.dumps(third["experiments"]) == json.dumps(first["experiments"])
    assert not list((tmp_path / "r" / "studies").glob("*.tmp"))


def test_an_interrupted_paper_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import fopa.sweeps.paper as paper

    # one study outside the sweeps is enough here (the test above runs them all)
    every = paper.paper_outside_studies
    monkeypatch.setattr(paper, "paper_outside_studies", lambda size: {
        k: v for k, v in every(size).items() if k == "tail_rates_across_scales"})  # fmt: skip
    spec = paper_specs("tiny")[0]
    store = tmp_path / "r" / "stores" / f"{spec['name']}.sqlite"
    store.parent.mkdir(parents=True)
    # as if a run had stopped after two cells of the first sweep
    from fopa.sweeps import run_cell

    cells = SweepSpec.from_dict(spec).cells()
    with ResultStore(store, SweepSpec.from_dict(spec)) as results:
        for cell in cells[:2]:
            out = run_cell("pga", cell.params, cell.seed)
            results.record(cell, out)
    payload = run_paper(tmp_path / "r", size="tiny", progress=False)
    assert payload["meta"]["sweeps"][spec["name"]]["ran"] == len(cells) - 2


def test_cli_paper_config_refuses_what_it_cannot_honour(tmp_path, capsys):
    out = str(tmp_path / "x")
    for extra, match in ((["--seed", "3"], "no --seed"), (["--study", "input_scale_speed"],
                         "no --study"), (["--jobs", "2", "--scheduler", "tcp://h:1"],
                         "not both")):  # fmt: skip
        assert main(["reproduce", "--config", "paper", "--out", out, *extra]) == 2
        assert match in capsys.readouterr().err
    assert main(["reproduce", "--quick", "--scheduler", "tcp://h:1", "--out", out]) == 2
    assert "--scheduler runs only with --config paper" in capsys.readouterr().err
