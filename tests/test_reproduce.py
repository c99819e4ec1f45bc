"""`fopa reproduce` in its tiny configuration: the report's content, not just its files."""

import json
import math
import os

import numpy as np
import pytest

from fopa import experiments as E
from fopa.cli import main
from fopa.report import CONFIGS, reproduce
from fopa.stats import VERDICTS, censored_times, kaplan_meier

PANELS = {
    **{
        f"{prefix}{suffix}": 2
        for prefix in ("polynomial_iterations", "logistic_iterations")
        for suffix in ("", "_backtracking", "_fixed_step", "_sphere_start")
    },
    **{
        f"{prefix}{suffix}": 1
        for prefix in ("input_scale_speed", "logistic_speed")
        for suffix in ("", "_ratio_0.01", "_ratio_0.1", "_ratio_1", "_fixed_eps")
    },
    "input_scale_regularity": 3,
    "logistic_regularity": 3,
    "tolerance_iterations": 1,
    "logistic_tolerance": 1,
    "adversarial_training": 2,
    "training_protocols": 5,
    "logistic_training_protocols": 5,
    "training_protocols_even_odd": 5,
    "polynomial_iterations_tail": 2,
    "logistic_training_protocols_even_odd": 5,
    "training_checkpoints": 4,
    "logistic_training_checkpoints": 4,
    "tail_rates_across_scales": 1,
    "logistic_tail_rates": 1,
    "saddle_escape": 3,
    "logistic_saddle_escape": 3,
    "saddle_escape_backtracking": 2,
    "logistic_saddle_escape_backtracking": 2,
    **{
        f"{p}_d{d}": 3
        for p in ("input_scale_regularity", "logistic_regularity")
        for d in (100, 784)
    },
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    payload = reproduce(str(out), config="tiny", seed=3, stream=open(os.devnull, "w"))
    return out, payload


def test_files_and_figures(tiny):
    out, payload = tiny
    assert set(payload["figures"]) == set(PANELS)
    for name, info in payload["figures"].items():
        path = out / info["file"]
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert info["panels"] == PANELS[name]
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["claims"] == payload["claims"]


def test_report_has_a_row_per_claim(tiny):
    out, payload = tiny
    text = (out / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(payload["claims"])  # header + one per claim
    claims = {c["claim"] for c in payload["claims"]}
    assert any(c.startswith("1.") for c in claims)
    assert {c for c in claims if c.startswith("2.")} == {
        "2. smaller input scale, faster convergence of PGA",
        "2. smaller input scale, more regular landscape",
        "2. smaller input scale, faster adversarial training",
    }
    assert all(c["verdict"] in VERDICTS and c["rule"] for c in payload["claims"])
    for c in payload["claims"]:  # every verdict is printed with its rule
        assert f"**{c['verdict']}**. Measured: {c['reason']}. Rule: {c['rule']}." in text
    for info in payload["figures"].values():
        assert f"]({info['file']})" in text


def test_numbers_match_a_recomputation(tiny):
    _, payload = tiny
    speed = payload["experiments"]["input_scale_speed"]
    first = np.array(speed["first_certified"])
    for p in range(first.shape[0]):
        for t in range(first.shape[1]):
            times, observed = censored_times(first[p, t], speed["settings"]["max_iter"])
            median = kaplan_meier(times, observed).median.estimate
            assert speed["median"][p][t] == median
    # the whole experiment again from its recorded seed gives the same numbers
    seed = payload["seeds"]["input_scale_speed"]
    again = E.input_scale_speed(rng=seed, **CONFIGS["tiny"]["input_scale_speed"]).to_dict()
    assert again["first_certified"] == speed["first_certified"]
    training = payload["experiments"]["adversarial_training"]["breast_cancer"]
    loss = np.array(training["robust_loss"])
    reached = loss <= training["settings"]["target_fraction"] * loss[:, :1]
    want = [int(np.argmax(r)) if r.any() else -1 for r in reached]
    assert training["epochs_to_target"] == want


def _leaves(tree, path=""):
    if isinstance(tree, dict):
        for key in sorted(tree):
            yield from _leaves(tree[key], f"{path}/{key}")
    elif isinstance(tree, list):
        for i, item in enumerate(tree):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, tree


def test_jobs_do_not_change_results(tiny, tmp_path, monkeypatch):
    from threadpoolctl import threadpool_limits

    from fopa.experiments import study_seconds

    _, payload = tiny
    # the workers start the studies in reverse registry order (as if the last took
    # longest): the results and their order in the report do not move
    names = list(payload["experiments"])
    monkeypatch.setitem(study_seconds.SECONDS, "tiny",
                        {name: float(k) for k, name in enumerate(names)})  # fmt: skip
    other = reproduce(str(tmp_path / "two"), config="tiny", seed=3, jobs=2,
                      stream=open(os.devnull, "w"))  # fmt: skip
    # Each of the two workers holds BLAS to cpu_count // 2 threads: a --jobs 1 run under
    # the same BLAS threads gives the same bits (as JSON text: every float's repr equal,
    # NaN, i.e. not measured, equal to NaN).
    with threadpool_limits(max(1, (os.cpu_count() or 1) // 2), user_api="blas"):
        same_blas = reproduce(str(tmp_path / "one"), config="tiny", seed=3, jobs=1,
                              stream=open(os.devnull, "w"))  # fmt: skip
    assert json.dumps(other["experiments"], sort_keys=True) == json.dumps(
        same_blas["experiments"], sort_keys=True
    )
    assert list(other["experiments"]) == names == list(same_blas["experiments"])
    # The figures and claims rows, made in the workers that ran the studies, are those
    # made in one process (to the byte), and no temporary file is left
    assert other["claims"] == same_blas["claims"]
    assert other["figures"] == same_blas["figures"]
    for info in other["figures"].values():
        two, one = (tmp_path / run / info["file"] for run in ("two", "one"))
        assert two.read_bytes() == one.read_bytes(), info["file"]
    assert not [f for f in os.listdir(tmp_path / "two") if f.endswith(".tmp")]
    # Against the default --jobs 1 run (BLAS on every core) the products round
    # differently: every number agrees to 1e-9 relative, every count and label exactly.
    pairs = list(zip(_leaves(other["experiments"]), _leaves(payload["experiments"]), strict=True))
    assert len(pairs) > 1000
    for (path, a), (path_b, b) in pairs:
        assert path == path_b
        if isinstance(a, float) and isinstance(b, float) and math.isfinite(a):
            assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300), (path, a, b)
        elif not (isinstance(a, float) and a != a):
            assert a == b, (path, a, b)  # a count, a label, an infinity
        else:
            assert b != b, (path, a, b)  # not measured in both


def test_cli(tiny, tmp_path, capsys):
    _, payload = tiny
    chosen = ["training_protocols", "polynomial_iterations"]
    argv = ["reproduce", "--config", "tiny", "--seed", "3", "--out", str(tmp_path / "r")]
    assert main(argv + [arg for name in chosen for arg in ("--study", name)]) == 0
    assert "report.md" in capsys.readouterr().out
    part = json.loads((tmp_path / "r" / "results.json").read_text())
    # registry order, each study with the seed and the numbers of the whole run
    assert list(part["experiments"]) == ["polynomial_iterations", "training_protocols"]
    for name in chosen:
        assert part["seeds"][name] == payload["seeds"][name]
        assert json.dumps(part["experiments"][name], sort_keys=True) == json.dumps(
            payload["experiments"][name], sort_keys=True
        )
    assert part["meta"]["studies"] == ["polynomial_iterations", "training_protocols"]
    text = (tmp_path / "r" / "report.md").read_text()
    assert f"2 of the {len(payload['experiments'])} studies" in text
    assert {row["experiment"].split(" ")[0].rstrip(":") for row in part["claims"]} <= set(chosen)
    assert main(argv + ["--study", "no_such_study"]) == 2
    assert "studies: unknown 'no_such_study'; expected names among" in capsys.readouterr().err
    with pytest.raises(ValueError, match="studies: none given"):
        reproduce(str(tmp_path), config="tiny", studies=[])
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--jobs", "0"])
    assert exc.value.code == 2
    with pytest.raises(ValueError, match="unknown config"):
        reproduce(str(tmp_path), config="huge")


def test_the_summary_is_counted_from_the_rows(tiny):
    out, payload = tiny
    text = (out / "report.md").read_text()
    for claim in {c["claim"] for c in payload["claims"]}:
        rows = [c for c in payload["claims"] if c["claim"] == claim]
        assert f"- {claim}: " in text and f"(of {len(rows)} rows)." in text


def _blas_threads():
    from threadpoolctl import threadpool_info

    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


def test_pool_workers_share_the_cores_between_their_blas_pools():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from fopa._parallel import share_blas_between_workers

    want = max(1, (os.cpu_count() or 1) // 2)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=share_blas_between_workers,
                             initargs=(2,)) as pool:  # fmt: skip
        assert pool.submit(_blas_threads).result() == [want]


def test_a_report_does_not_redraw_what_the_workers_made(tiny, tmp_path, monkeypatch):
    import importlib

    from fopa.report import figures

    module = importlib.import_module("fopa.report.reproduce")

    _, payload = tiny
    name = "input_scale_speed"
    seed = payload["seeds"][name]
    params = {name: CONFIGS["tiny"][name]}
    runs = list(module.run_studies(params, {name: seed}, progress=False, out=str(tmp_path)))
    [(got, result, seconds, made)] = runs
    assert got == name and seconds > 0
    assert made["figure"] == payload["figures"][name]
    assert (tmp_path / made["figure"]["file"]).read_bytes()[:4] == b"\x89PNG"
    assert made["claims"] == [row for row in payload["claims"] if row["experiment"] == name]
    # without ``out`` nothing is drawn or made
    [(_, _, _, nothing)] = list(module.run_studies(params, {name: seed}, progress=False))
    assert nothing is None

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn again")

    monkeypatch.setattr(figures, "write_figure", no_drawing)
    meta = dict(version="0", source="test", seconds=1.0)
    written = module.write_report(str(tmp_path), {name: result}, meta, made={name: made})
    assert written["figures"] == {name: made["figure"]}
    assert written["claims"] == made["claims"]


def test_the_longest_studies_start_first_and_every_study_has_a_measured_time():
    from fopa.experiments.registry import configuration
    from fopa.experiments.study_seconds import SECONDS
    from fopa.report.reproduce import longest_first

    for config in ("quick", "full"):
        assert set(SECONDS[config]) == set(configuration(config))
        assert all(v > 0 for v in SECONDS[config].values())
        order = longest_first(list(configuration(config)), config)
        assert [SECONDS[config][n] for n in order] == sorted(SECONDS[config].values(), reverse=True)
    SECONDS["test"] = {"a": 1.0, "b": 3.0}
    try:  # unmeasured studies first, in their given order, then the longest
        assert longest_first(["a", "x", "b", "y"], "test") == ["x", "y", "b", "a"]
        assert longest_first(["a", "b"], "unknown") == ["a", "b"]
    finally:
        del SECONDS["test"]
