"""Sweeps: specs, the SQLite store, resume after SIGKILL, process pool and Dask, reports."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import fopa
from fopa import experiments as E
from fopa.sweeps import (
    ResultStore,
    StoreError,
    SweepSpec,
    export_results,
    load_spec,
    report_from_stores,
    run_sweep,
    studies_from_stores,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPEED = dict(
    name="speed", experiment="pga", seeds={"count": 3},
    fixed=dict(d=4, m=8), grid=dict(scale=[0.05, 0.5], step_policy=["fixed", "lipschitz"]),
)  # fmt: skip


def outputs(path):
    with ResultStore(path) as store:
        return {r["cell_index"]: (r["params"], r["seed"], r["outputs"]) for r in store.rows()}


# --- specs ---------------------------------------------------------------------------


def test_spec_cells_are_the_grid_product_with_seeds_innermost():
    spec = SweepSpec.from_dict(SPEED)
    cells = spec.cells()
    assert spec.n_cells == len(cells) == 12
    assert [c.seed for c in cells[:4]] == [0, 1, 2, 0]
    assert [(c.params["scale"], c.params["step_policy"]) for c in cells[::3]] == [
        (0.05, "fixed"), (0.05, "lipschitz"), (0.5, "fixed"), (0.5, "lipschitz"),
    ]  # fmt: skip
    # every parameter is stored, defaults filled in; keys are unique
    assert cells[0].params["activation"] == "tanh" and cells[0].params["d"] == 4
    assert isinstance(cells[0].params["scale"], float)
    assert len({c.key for c in cells}) == 12
    # the fingerprint follows what defines the cells, including the grid's order
    same = SweepSpec.from_dict(dict(SPEED, description="notes"))
    assert same.fingerprint == spec.fingerprint
    swapped = dict(SPEED, grid=dict(step_policy=["fixed", "lipschitz"], scale=[0.05, 0.5]))
    assert SweepSpec.from_dict(swapped).fingerprint != spec.fingerprint
    assert spec.swept == ("scale", "step_policy")


def test_spec_from_toml_file(tmp_path):
    path = tmp_path / "my-sweep.toml"
    path.write_text(
        'experiment = "landscape"\nseeds = [3, 5]\n[fixed]\nd = 3\nm = 6\n'
        "[grid]\nscale = [0.1, 1]\n"
    )
    spec = load_spec(path)
    assert spec.name == "my-sweep" and spec.seeds == (3, 5)
    assert spec.grid == (("scale", (0.1, 1.0)),)  # ints coerced to the annotated float


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(fixed=dict(d=4, m=8, width=3)), ValueError, "unknown parameter 'width'"),
        (dict(fixed=dict(d="four", m=8)), TypeError, "fixed.d must be an integer"),
        (dict(fixed=dict(d=4.5, m=8)), TypeError, "fixed.d must be an integer"),
        (dict(grid=dict(scale=[0.1, "big"])), TypeError, r"grid.scale\[1\] must be a number"),
        (dict(grid=dict(scale=[0.1, float("nan")])), TypeError, "finite"),
        (dict(grid={}), ValueError, "grid] is empty"),
        (dict(grid=dict(scale=[])), ValueError, "grid.scale is empty"),
        (dict(grid=dict(scale=0.1)), TypeError, "must be a list"),
        (dict(grid=dict(scale=[0.1, 0.1])), ValueError, "repeated"),
        (dict(seeds=[]), ValueError, "seeds is empty"),
        (dict(seeds=[1, 1]), ValueError, "repeated"),
        (dict(seeds=[-1]), ValueError, "seeds must be integers in"),
        (dict(seeds={"count": 0}), ValueError, "seeds.count must be >= 1"),
        (dict(seeds=None), ValueError, "seeds is required"),
        (dict(experiment="nope"), ValueError, "unknown experiment 'nope'"),
        (dict(experiment="fopa.nothing:f"), ValueError, "cannot import"),
        (dict(experiment="fopa:nothing"), ValueError, "has no function"),
        (dict(experiment="tests.sweep_cells:no_seed"), ValueError, "'seed' keyword"),
        (dict(fixed=dict(d=4, m=8, seed=1)), ValueError, "'seed' is not a parameter"),
        (dict(fixed=dict(d=4, m=8, scale=1.0)), ValueError, "both fixed and swept"),
        (dict(fixed=dict(d=4)), ValueError, r"needs parameter\(s\) \['m'\]"),
        (dict(fixed=dict(d=4, m=8, activation="relu")), ValueError, "unknown activation 'relu'"),
        (dict(grid=dict(scale=[0.1, -1.0])), ValueError, "scale must be a number > 0"),
        (dict(grids={}), ValueError, "unknown spec key"),
    ],
)
def test_bad_specs_are_refused_before_any_work(tmp_path, change, error, match):
    data = {k: v for k, v in {**SPEED, **change}.items() if v is not None}
    store = tmp_path / "never.sqlite"
    with pytest.raises(error, match=match):
        run_sweep(data, store)
    assert not store.exists()


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("experiment = [unclosed\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


# --- running, resuming, failures -----------------------------------------------------


def test_run_resume_and_status(tmp_path):
    store = tmp_path / "s.sqlite"
    first = run_sweep(SPEED, store)
    assert (first.ran, first.skipped, first.done, first.failed) == (12, 0, 12, 0)
    again = run_sweep(SPEED, store)
    assert (again.ran, again.skipped, again.done) == (0, 12, 12)
    with ResultStore(store) as s:
        status = s.status()
        rows = s.rows()
        assert s.spec.fingerprint == SweepSpec.from_dict(SPEED).fingerprint
    assert (status.total, status.done, status.failed, status.pending) == (12, 12, 0, 0)
    assert [r["attempts"] for r in rows] == [1] * 12
    assert {r["fopa_version"] for r in rows} == {fopa.__version__}
    assert "12 total: 12 done" in str(status)
    # a cell's outputs are the experiment's own result for its parameters and seed
    row = rows[4]  # scale 0.05, lipschitz, seed 1
    net, x_hat, y = E.random_instance(4, 8, "tanh", np.random.default_rng(row["seed"]))
    x = row["params"]["scale"] * x_hat
    res = fopa.projected_gradient_ascent(
        net, x, y, 0.5 * np.linalg.norm(x), step_size="lipschitz", tol=1e-8,
        max_iter=20_000, certify_every=10,
    )  # fmt: skip
    assert row["params"]["step_policy"] == "lipschitz"
    assert row["outputs"]["first_certified"] == res.first_certified_iteration
    assert row["outputs"]["loss"] == res.loss


def test_failed_cells_are_recorded_and_retried(tmp_path):
    spec = dict(experiment="tests.sweep_cells:draw", seeds=[0, 1, 2, 3], grid=dict(n=[2, 3]),
                fixed=dict(fail_on=2))  # fmt: skip
    store = tmp_path / "f.sqlite"
    summary = run_sweep(spec, store)
    assert (summary.done, summary.failed) == (6, 2)
    with ResultStore(store) as s:
        failed = s.rows("failed")
    assert [r["seed"] for r in failed] == [2, 2]
    assert "RuntimeError: cell with seed 2 fails on purpose" in failed[0]["error"]
    assert failed[0]["outputs"] is None
    assert run_sweep(spec, store).ran == 0  # failed cells are left alone by default
    retried = run_sweep(spec, store, retry_failed=True)
    assert (retried.ran, retried.ran_failed, retried.failed) == (2, 2, 2)
    with ResultStore(store) as s:
        assert [r["attempts"] for r in s.rows("failed")] == [2, 2]
        with pytest.raises(ValueError, match="not complete"):
            studies_from_stores([store])


def test_a_nan_output_fails_the_cell_with_a_clear_error(tmp_path):
    spec = dict(experiment="tests.sweep_cells:draw", seeds=[0], fixed=dict(n=2, nan=True))
    store = tmp_path / "n.sqlite"
    assert run_sweep(spec, store).failed == 1
    with ResultStore(store) as s:
        assert "Out of range float values are not JSON compliant" in s.rows()[0]["error"]


def test_a_done_cell_is_never_written_twice(tmp_path):
    store = tmp_path / "s.sqlite"
    spec = SweepSpec.from_dict(dict(experiment="tests.sweep_cells:draw", seeds=[0],
                                    fixed=dict(n=2)))  # fmt: skip
    run_sweep(spec, store)
    cell = spec.cells()[0]
    with ResultStore(store, spec) as s:
        before = s.rows()
        fake = dict(before[0], status="done", outputs={"values": [0.0]})
        assert not s.record(cell, fake)
        assert s.rows() == before


def test_process_pool_gives_the_same_results(tmp_path):
    run_sweep(SPEED, tmp_path / "a.sqlite")
    summary = run_sweep(SPEED, tmp_path / "b.sqlite", jobs=2)
    assert summary.done == 12
    assert outputs(tmp_path / "a.sqlite") == outputs(tmp_path / "b.sqlite")
    with ResultStore(tmp_path / "b.sqlite") as s:
        assert len({r["worker"] for r in s.rows()}) >= 1


def test_a_crashed_worker_process_fails_cells_that_a_retry_recovers(tmp_path, monkeypatch):
    # more cells than the pool's window (4 per worker): work goes on in a new pool
    spec = dict(experiment="tests.sweep_cells:crash", seeds={"count": 20}, fixed=dict(n=1))
    store = tmp_path / "crash.sqlite"
    monkeypatch.setenv("FOPA_TEST_CRASH_SEED", "2")
    summary = run_sweep(spec, store, jobs=2)
    assert (summary.done, summary.failed) == (19, 1)  # the crashing cell only
    with ResultStore(store) as s:
        (failed,) = s.rows("failed")
    assert failed["seed"] == 2 and failed["worker"] == "runner"
    assert "worker process running this cell died (exit code 3)" in failed["error"]
    monkeypatch.delenv("FOPA_TEST_CRASH_SEED")
    retried = run_sweep(spec, store, jobs=2, retry_failed=True)
    assert (retried.done, retried.failed) == (20, 0)


def _count_done(path):
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM cells WHERE status='done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _sweep_until(spec_path, store, done, **popen):
    """``fopa sweep`` in a child process, returned once ``done`` cells are in the store
    (or it ended, or two minutes passed)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fopa.cli", "sweep", str(spec_path), "--store", str(store),
         "--quiet"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _count_done(store) < done and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    return proc


def test_resume_after_sigkill_holds_every_cell_once(tmp_path):
    spec_path = tmp_path / "slow.toml"
    spec_path.write_text(
        'experiment = "tests.sweep_cells:slow_pga"\nseeds = {count = 6}\n'
        "[fixed]\nd = 4\nm = 8\ndelay = 0.1\n[grid]\nscale = [0.1, 0.3, 1.0]\n"
    )
    store = tmp_path / "killed.sqlite"
    proc = _sweep_until(spec_path, store, 4, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count_done(store)
    assert 4 <= killed_at < 18, (killed_at, proc.stderr.read())
    assert proc.returncode == -signal.SIGKILL

    resumed = run_sweep(spec_path, store)
    assert resumed.skipped == killed_at and resumed.done == 18
    run_sweep(spec_path, tmp_path / "clean.sqlite")
    assert outputs(store) == outputs(tmp_path / "clean.sqlite")
    with ResultStore(store) as s:
        rows = s.rows()
    assert [r["cell_index"] for r in rows] == list(range(18))
    assert all(r["attempts"] == 1 and r["status"] == "done" for r in rows)


def test_dask_local_cluster_gives_the_local_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    run_sweep(SPEED, tmp_path / "local.sqlite")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        summary = run_sweep(SPEED, tmp_path / "dask.sqlite", scheduler=client)
        assert summary.done == 12 and summary.failed == 0
        by_address = run_sweep(SPEED, tmp_path / "addr.sqlite", scheduler=cluster.scheduler_address)
        assert by_address.done == 12
        workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    local = outputs(tmp_path / "local.sqlite")
    assert outputs(tmp_path / "dask.sqlite") == local
    assert outputs(tmp_path / "addr.sqlite") == local
    with ResultStore(tmp_path / "dask.sqlite") as s:
        assert all(r["worker"] != "executor" for r in s.rows())


def test_jobs_and_scheduler_are_exclusive_and_a_dead_scheduler_is_reported(tmp_path, monkeypatch):
    from fopa.sweeps import runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(ValueError, match="not both"):
        run_sweep(SPEED, tmp_path / "x.sqlite", jobs=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="jobs must be an integer"):
        run_sweep(SPEED, tmp_path / "x.sqlite", jobs=0)
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
        run_sweep(SPEED, tmp_path / "y.sqlite", scheduler="tcp://127.0.0.1:1")


# --- corrupt and mismatched stores ----------------------------------------------------


def _snapshot(path):
    return path.read_bytes()


def test_a_store_of_another_spec_is_refused_and_untouched(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(SPEED, store)
    before = _snapshot(store)
    other = dict(SPEED, grid=dict(scale=[0.05, 0.5, 5.0], step_policy=["fixed", "lipschitz"]))
    with pytest.raises(StoreError, match="belongs to another sweep"):
        run_sweep(other, store)
    assert _snapshot(store) == before
    assert outputs(store)  # still readable, same data


def test_a_truncated_store_is_refused_and_untouched(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(dict(SPEED, seeds={"count": 40}), store)
    data = store.read_bytes()
    assert len(data) > 8192
    store.write_bytes(data[: len(data) // 2])
    before = _snapshot(store)
    with pytest.raises(StoreError, match="corrupt"):
        run_sweep(dict(SPEED, seeds={"count": 40}), store)
    assert _snapshot(store) == before


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("these are not results\n")
    with pytest.raises(StoreError, match="not a SQLite database"):
        run_sweep(SPEED, text)
    assert text.read_text() == "these are not results\n"
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a fopa sweep store"):
        run_sweep(SPEED, other)
    with pytest.raises(StoreError, match="does not exist"):
        ResultStore(tmp_path / "missing.sqlite")


# --- export, reports, CLI -------------------------------------------------------------


def test_export_csv_and_json(tmp_path):
    import csv

    store = tmp_path / "s.sqlite"
    run_sweep(SPEED, store)
    assert export_results(store, tmp_path / "cells.csv") == 12
    with open(tmp_path / "cells.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    assert {"param.scale", "param.step_policy", "seed", "out.first_certified", "error"} <= set(
        rows[0]
    )
    direct = outputs(store)
    assert int(rows[5]["out.first_certified"]) == direct[5][2]["first_certified"]
    assert export_results(store, tmp_path / "cells.json") == 12
    payload = json.loads((tmp_path / "cells.json").read_text())
    assert payload["spec"]["grid"] == {"scale": [0.05, 0.5], "step_policy": ["fixed", "lipschitz"]}
    assert [c["outputs"] for c in payload["cells"]] == [direct[k][2] for k in range(12)]
    with pytest.raises(ValueError, match="'csv' or 'json'"):
        export_results(store, tmp_path / "cells.xlsx")


def test_report_from_stores_rebuilds_the_reproduction_studies(tmp_path):
    pytest.importorskip("matplotlib")
    iterations = dict(name="it", experiment="pga", seeds=[0, 1, 2],
                      grid=dict(d=[3, 6], m=[6, 12]))  # fmt: skip
    regularity = dict(name="reg", experiment="landscape", seeds=[0, 1],
                      fixed=dict(d=3, m=6, n_starts=8), grid=dict(scale=[0.05, 1.0]))  # fmt: skip
    training = dict(name="tr", experiment="training", seeds=[7],
                    fixed=dict(m=8, epochs=3), grid=dict(dataset=["breast_cancer"],
                                                         scale=[0.3, 1.0]))  # fmt: skip
    stores = []
    for spec in (SPEED, iterations, regularity, training):
        stores.append(tmp_path / f"{spec['name']}.sqlite")
        run_sweep(spec, stores[-1])
    payload = report_from_stores(stores, tmp_path / "report")
    got = payload["experiments"]
    assert set(got) == {"input_scale_speed", "polynomial_iterations", "input_scale_regularity",
                        "adversarial_training"}  # fmt: skip
    # the iteration study holds every cell's count where its (d, m, seed) says
    it = outputs(stores[1])
    for params, seed, out in it.values():
        i, j = [3, 6].index(params["d"]), [6, 12].index(params["m"])
        assert got["polynomial_iterations"]["first_certified"][i][j][seed] == out["first_certified"]
    assert got["polynomial_iterations"]["settings"]["n_runs"] == 3
    # the training study equals the experiment function with that seed as its rng
    want = E.adversarial_training("breast_cancer", (0.3, 1.0), m=8, epochs=3, rng=7).to_dict()
    assert got["adversarial_training"]["breast_cancer"] == want
    report = (tmp_path / "report" / "report.md").read_text()
    assert "sweep store(s)" in report and report.count("| 2. smaller input scale") == 4
    assert len(payload["figures"]) == 4
    for info in payload["figures"].values():
        assert (tmp_path / "report" / info["file"]).exists()
    # built twice from the same stores: the same numbers (the bootstrap draws from the seeds)
    assert studies_from_stores(stores) == json.loads(json.dumps(got))


def test_report_refuses_grids_that_match_no_study(tmp_path):
    store = tmp_path / "mixed.sqlite"
    run_sweep(dict(experiment="pga", seeds=[0], grid=dict(d=[3, 4], scale=[0.1, 1.0]),
                   fixed=dict(m=4)), store)  # fmt: skip
    with pytest.raises(ValueError, match="no study sweeps"):
        studies_from_stores(store)


def test_cli_run_status_export_report(tmp_path, capsys):
    from fopa.cli import main

    spec = tmp_path / "speed.toml"
    spec.write_text(
        'experiment = "pga"\nseeds = [0, 1]\n[fixed]\nd = 4\nm = 8\n'
        '[grid]\nscale = [0.05, 0.5]\nstep_policy = ["relative", "lipschitz"]\n'
    )
    store = str(tmp_path / "s.sqlite")
    assert main(["sweep", str(spec), "--store", store]) == 0
    out, err = capsys.readouterr()
    assert "8 cells ran (0 failed)" in out and "8/8" in err and "8 done, 0 failed" in err
    assert main(["sweep", "--store", store, "--status"]) == 0
    assert "8 total: 8 done (100%), 0 failed, 0 pending" in capsys.readouterr().out
    assert main(["sweep", "--store", store, "--export", str(tmp_path / "c.csv")]) == 0
    assert main(["sweep", "--store", store, "--report", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").exists()
    capsys.readouterr()
    assert main(["sweep", "--store", store]) == 2
    assert "give a sweep SPEC" in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text('experiment = "pga"\nseeds = [0]\n[fixed]\nd = 5\nm = 8\n')
    assert main(["sweep", str(other), "--store", store]) == 2
    assert "belongs to another sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(spec), "--store", store, "--jobs", "2", "--scheduler", "tcp://x:1"])
    assert exc.value.code == 2


def test_example_specs_are_valid():
    folder = os.path.join(ROOT, "examples", "sweeps")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".toml"))
    assert len(names) >= 4
    for name in names:
        assert load_spec(os.path.join(folder, name)).n_cells > 0


def test_console_script_imports_user_cells_from_the_current_directory(tmp_path):
    import shutil

    script = shutil.which("fopa", path=os.path.dirname(sys.executable)) or shutil.which("fopa")
    if script is None:
        pytest.skip("the fopa console script is not installed")
    (tmp_path / "mycells.py").write_text(
        "def double(*, n: int, seed: int) -> dict:\n    return {'twice': 2 * n + seed}\n"
    )
    (tmp_path / "spec.toml").write_text(
        'experiment = "mycells:double"\nseeds = [0, 1]\n[grid]\nn = [1, 2]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [script, "sweep", "spec.toml", "--store", "s.sqlite", "--jobs", "2", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with ResultStore(tmp_path / "s.sqlite") as store:
        got = {r["cell_index"]: r["outputs"]["twice"] for r in store.rows()}
    assert got == {0: 2, 1: 3, 2: 4, 3: 5}


def test_a_store_maps_to_the_study_of_its_fixed_parameters():
    from fopa.experiments.registry import study_for_cells

    params = {"step_policy": "backtracking", "init": "zero", "loss": "quadratic"}
    assert study_for_cells("pga", {"d", "m"}, "quadratic", params).name == (
        "polynomial_iterations_backtracking"
    )
    params = {"step_policy": "lipschitz", "init": "sphere", "loss": "logistic"}
    assert study_for_cells("pga", {"d"}, "logistic", params).name == (
        "logistic_iterations_sphere_start"
    )
    assert study_for_cells("pga", {"d", "m"}, "quadratic").name == "polynomial_iterations"
    # a spec named after a study those cells build gives it; a name they cannot build
    # (another loss, another step policy) falls back to the rule above
    params = {"step_policy": "lipschitz", "init": "zero", "loss": "quadratic"}
    tail = "polynomial_iterations_tail"
    assert study_for_cells("pga", {"d", "m"}, "quadratic", params, name=tail).name == tail
    assert study_for_cells("pga", {"d", "m"}, "quadratic", params, name="x").name == (
        "polynomial_iterations"
    )
    assert study_for_cells("pga", {"d", "m"}, "logistic", params, name=tail).name == (
        "logistic_iterations"
    )
    params = {"step_policy": "backtracking", "init": "zero", "loss": "quadratic"}
    assert study_for_cells("pga", {"d", "m"}, "quadratic", params, name=tail).name == (
        "polynomial_iterations_backtracking"
    )


def test_a_speed_store_maps_to_the_study_of_its_ratio():
    from fopa.experiments.registry import study_for_cells

    base = {"step_policy": "lipschitz", "init": "zero", "loss": "quadratic"}
    assert study_for_cells("pga", {"scale"}, "quadratic", dict(base, ratio=0.1)).name == (
        "input_scale_speed_ratio_0.1"
    )
    assert study_for_cells("pga", {"scale"}, "quadratic", dict(base, ratio=0.5)).name == (
        "input_scale_speed"
    )


def test_a_script_without_the_main_guard_gets_one_clear_error(tmp_path):
    # found by hostile testing: every cell was recorded as failed (BrokenProcessPool)
    script = tmp_path / "no_guard.py"
    store = tmp_path / "s.sqlite"
    script.write_text(
        "import fopa\n"
        "spec = dict(experiment='tests.sweep_cells:draw', seeds=[0, 1], fixed=dict(n=2))\n"
        f"fopa.run_sweep(spec, {str(store)!r}, jobs=2)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), *sys.path]))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=os.getcwd())  # fmt: skip
    assert proc.returncode != 0
    assert "if __name__" in proc.stderr and "no cell was run" in proc.stderr
    if store.exists():  # created before the pool: it must hold no cell
        status = ResultStore(store).status()
        assert (status.done, status.failed) == (0, 0)


def test_a_cell_that_calls_sys_exit_is_a_failed_cell(tmp_path):
    spec = dict(experiment="tests.sweep_cells:exits", seeds=[0, 1, 2], fixed=dict(n=1))
    summary = run_sweep(spec, tmp_path / "e.sqlite")
    assert (summary.done, summary.failed) == (2, 1)
    failed = ResultStore(tmp_path / "e.sqlite").rows(status="failed")
    assert len(failed) == 1 and "sys.exit(4)" in failed[0]["error"]


def test_parameters_named_like_bookkeeping_columns_keep_their_own(tmp_path):
    # found by hostile testing: a parameter "status" gave the CSV two "status" columns
    import csv

    spec = dict(experiment="tests.sweep_cells:named", seeds=[0, 1], fixed=dict(status=7, error=2))
    run_sweep(spec, tmp_path / "n.sqlite")
    export_results(tmp_path / "n.sqlite", tmp_path / "n.csv")
    with open(tmp_path / "n.csv") as fh:
        header = next(csv.reader(fh))
        rows = list(csv.DictReader(open(tmp_path / "n.csv")))
    assert len(header) == len(set(header))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert [r["param.status"] for r in rows] == ["7", "7"] and rows[0]["param.error"] == "2"


def test_a_second_runner_on_a_busy_store_is_refused(tmp_path):
    # found by hostile testing: two runners on one store each ran every cell
    spec_path = tmp_path / "slow.toml"
    spec_path.write_text(
        'experiment = "tests.sweep_cells:slow_pga"\nseeds = {count = 4}\n'
        "[fixed]\nd = 4\nm = 8\ndelay = 0.3\n"
    )
    store = tmp_path / "busy.sqlite"
    proc = _sweep_until(spec_path, store, 1)
    assert proc.poll() is None, proc.stderr.read()
    with pytest.raises(StoreError, match="is busy: another sweep runs on it"):
        run_sweep(spec_path, store)
    with ResultStore(store) as s:  # reading is not refused
        assert s.status().total == 4
    assert proc.wait(timeout=120) == 0
    after = run_sweep(spec_path, store)  # the lock went with its runner
    assert after.done == 4 and after.ran == 0


def test_status_lists_the_failed_cells_and_why(tmp_path, capsys):
    from fopa.cli import main

    spec = tmp_path / "fails.toml"
    spec.write_text('experiment = "tests.sweep_cells:draw"\nseeds = [0, 1, 2]\n'
                    "[fixed]\nn = 2\nfail_on = 1\n")  # fmt: skip
    store = str(tmp_path / "f.sqlite")
    assert main(["sweep", str(spec), "--store", store, "--quiet"]) == 1
    capsys.readouterr()
    assert main(["sweep", "--store", store, "--status"]) == 0
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and "cell 1 (seed 1; fail_on=1, n=2" in failed[0]
    assert "RuntimeError: cell with seed 1 fails on purpose" in failed[0]
