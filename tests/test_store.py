"""The sweep store under misuse: bad paths, full disks, changed bytes, old schemas.

Each case was found by hostile testing: tracebacks (missing directory, /dev/null,
bytes that are not UTF-8 in a payload), silent acceptance of a changed digit.
"""

import hashlib
import itertools
import sqlite3

import pytest

from fopa.sweeps import ResultStore, StoreError, export_results, run_sweep

SPEC = dict(name="tiny", experiment="pga", seeds={"count": 3}, fixed=dict(d=3, m=4))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_store_paths_are_one_line_errors(tmp_path):
    with pytest.raises(StoreError, match="directory of store .* does not exist"):
        run_sweep(SPEC, tmp_path / "missing" / "s.sqlite")
    with pytest.raises(StoreError, match="not a regular file"):
        run_sweep(SPEC, "/dev/null")
    with pytest.raises(StoreError, match="not a regular file"):
        run_sweep(SPEC, tmp_path)  # a directory


def test_a_changed_digit_is_reported_not_returned(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(SPEC, store)
    with sqlite3.connect(store) as conn:
        text = conn.execute("SELECT outputs FROM cells WHERE cell_index = 1").fetchone()[0]
        at = next(i for i, ch in enumerate(text) if ch.isdigit() and ch != "9")
        changed = text[:at] + str(int(text[at]) + 1) + text[at + 1 :]
        conn.execute("UPDATE cells SET outputs = ? WHERE cell_index = 1", (changed,))
    with ResultStore(store) as results, pytest.raises(StoreError, match="cell 1 .*checksum"):
        results.rows()
    with pytest.raises(StoreError, match="checksum"):
        export_results(store, tmp_path / "out.csv")


def test_bytes_that_are_not_utf8_are_reported(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(SPEC, store)
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE cells SET outputs = CAST(X'80FFFE' AS TEXT) WHERE cell_index = 0")
    with pytest.raises(StoreError, match="cell 0"):
        export_results(store, tmp_path / "out.csv")


def test_a_full_disk_fails_the_write_and_keeps_the_store(tmp_path):
    store = tmp_path / "s.sqlite"
    with ResultStore(store, _spec()) as results:
        pages = results._conn.execute("PRAGMA page_count").fetchone()[0]
        results._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
        cell = _spec().cells()[0]
        big = dict(status="done", outputs={"x": "y" * 100_000}, error=None, started=0.0,
                   finished=1.0, seconds=1.0, worker="w", fopa_version="0")  # fmt: skip
        with pytest.raises(StoreError, match="cannot write cell 0.*full"):
            results.record(cell, big)
        assert results.finished() == {}
    with ResultStore(store) as results:
        assert results.rows() == []


def test_a_schema_1_store_still_opens_reads_and_resumes(tmp_path):
    store = tmp_path / "old.sqlite"
    run_sweep(dict(SPEC, seeds={"count": 2}), store)
    with sqlite3.connect(store) as conn:  # rewrite it as fopa wrote stores before checksums
        conn.execute("ALTER TABLE cells DROP COLUMN checksum")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    with ResultStore(store) as results:
        assert len(results.rows()) == 2
    # resuming with a third seed is another spec (refused); the same spec resumes
    summary = run_sweep(dict(SPEC, seeds={"count": 2}), store, retry_failed=True)
    assert summary.done == 2


def test_a_refused_store_is_byte_identical(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(SPEC, store)
    before = _sha(store)
    with pytest.raises(StoreError, match="another sweep"):
        run_sweep(dict(SPEC, seeds={"count": 4}), store)
    assert _sha(store) == before


def _spec():
    from fopa.sweeps import SweepSpec

    return SweepSpec.from_dict(SPEC)


def test_a_changed_cell_default_is_refused_not_mixed(tmp_path, monkeypatch):
    # found by hostile testing: --retry-failed after a default changed from k = 1 to
    # k = 10 kept params k = 1 and the old cell key beside outputs computed at k = 10
    import importlib
    import sys

    module = tmp_path / "changing_cells.py"
    module.write_text("def cell(seed, k=1):\n    return {'value': seed * k}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = dict(name="changing", experiment="changing_cells:cell", seeds={"count": 2})
    store = tmp_path / "c.sqlite"
    assert run_sweep(spec, store).done == 2
    module.write_text("def cell(seed, k=10):\n    return {'value': seed * k}\n")
    importlib.reload(sys.modules["changing_cells"])
    with pytest.raises(StoreError, match=r"2 finished cell\(s\).*k: stored 1, now 10"):
        run_sweep(spec, store, retry_failed=True)
    with ResultStore(store) as results:
        assert [r["params"] for r in results.rows()] == [{"k": 1}, {"k": 1}]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_hanging_cell_is_stopped_by_its_time_limit_and_recorded(tmp_path, jobs):
    import time

    spec = dict(name="hang", experiment="tests.sweep_cells:hangs", seeds=[0, 1, 2],
                fixed=dict(n=1))  # fmt: skip
    store = tmp_path / "h.sqlite"
    tick = time.perf_counter()
    summary = run_sweep(spec, store, jobs=jobs, cell_time_limit=1.0)
    assert time.perf_counter() - tick < 30
    assert (summary.done, summary.failed) == (2, 1)
    with ResultStore(store) as results:
        (failed,) = results.rows("failed")
    assert failed["seed"] == 1 and "time limit of 1 s" in failed["error"]
    with pytest.raises(ValueError, match="cell_time_limit"):
        run_sweep(spec, tmp_path / "x.sqlite", cell_time_limit=-1)


def test_a_cell_the_alarm_cannot_reach_is_ended_by_killing_its_worker(tmp_path):
    # found by hostile testing: a cell stuck where SIGALRM cannot reach it (one long call
    # of foreign compiled code) blocked the sweep forever despite its time limit
    import time

    from fopa.sweeps.pool import grace

    spec = dict(name="deaf", experiment="tests.sweep_cells:hangs_deaf", seeds=[0, 1, 2, 3],
                fixed=dict(n=1))  # fmt: skip
    store = tmp_path / "d.sqlite"
    tick = time.perf_counter()
    summary = run_sweep(spec, store, jobs=2, cell_time_limit=1.0)
    took = time.perf_counter() - tick
    assert grace(1.0) + 1.0 <= took < 60, took
    assert (summary.done, summary.failed) == (3, 1)
    with ResultStore(store) as results:
        (failed,) = results.rows("failed")
        done = sorted(r["seed"] for r in results.rows("done"))
    assert failed["seed"] == 1 and failed["worker"] == "runner"
    assert "did not stop at it" in failed["error"] and "killed its worker" in failed["error"]
    assert done == [0, 2, 3]  # the other cells ran, the killed worker was replaced


def test_a_cell_stuck_in_the_runner_s_own_process_is_recorded_and_reported(tmp_path):
    # with jobs = 1 nothing can stop such a cell; it is recorded as failed (so a rerun
    # passes over it) and the message says to end the run and rerun
    import os
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = tmp_path / "deaf.toml"
    spec.write_text('experiment = "tests.sweep_cells:hangs_deaf"\nseeds = [0, 1, 2]\n'
                    "[fixed]\nn = 1\n")  # fmt: skip
    store = tmp_path / "deaf.sqlite"
    cmd = [sys.executable, "-m", "fopa", "sweep", str(spec), "--store", str(store),
           "--cell-time-limit", "1", "--quiet"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "still running" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "cell 1 (seed 1) is still running" in line and "recorded as failed" in line
        assert proc.poll() is None  # it cannot stop itself
    finally:
        proc.kill()
        proc.wait()
    with ResultStore(store) as results:
        assert [(r["seed"], r["status"]) for r in results.rows()] == [(0, "done"), (1, "failed")]
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert "1 cells ran (0 failed), 2 already in the store" in rerun.stdout, rerun.stderr


def test_status_does_not_import_the_spec_s_experiment(tmp_path):
    # a spec is code: its experiment module's top level ran even for --status
    import subprocess
    import sys

    (tmp_path / "loud_cells.py").write_text("def cell(seed):\n    return {'seed': seed}\n")
    (tmp_path / "s.toml").write_text('experiment = "loud_cells:cell"\nseeds = {count = 2}\n')
    run = [sys.executable, "-m", "fopa", "sweep", "s.toml", "--store", "st.sqlite", "--quiet"]
    assert subprocess.run(run, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    (tmp_path / "loud_cells.py").write_text('raise SystemExit("the experiment module ran")\n')
    proc = subprocess.run([*run, "--status"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 total: 2 done" in proc.stdout and "module ran" not in proc.stderr


def test_a_billion_cell_sweep_is_counted_checked_and_run_lazily(tmp_path):
    # found by hostile testing: seeds = {count = 1000000000} raised MemoryError, and a
    # 1e9-cell grid spent a minute in validation; then such sweeps were refused
    import time

    from fopa.sweeps import SweepSpec

    tick = time.perf_counter()
    huge = SweepSpec.from_dict(dict(SPEC, seeds={"count": 10**9}))
    axes = dict(m=list(range(1, 1001)), scale=[0.1 * k for k in range(1, 1001)])
    grid = SweepSpec.from_dict(dict(SPEC, fixed=dict(d=3), grid=axes, seeds={"count": 1000}))
    assert time.perf_counter() - tick < 5.0
    assert huge.n_cells == 10**9 and grid.n_cells == 10**9
    assert huge.to_dict()["seeds"] == {"count": 10**9, "start": 0}  # not a list
    # cells by index agree with the cells in order, at the start and deep inside
    first = list(itertools.islice(grid.iter_cells(), 2002))
    assert [c.index for c in first] == list(range(2002))
    assert grid.cell(2001) == first[2001] and first[2001].params["scale"] == axes["scale"][2]
    last = grid.cell(10**9 - 1)
    assert (last.params["m"], last.params["scale"], last.seed) == (1000, 100.0, 999)
    # every value of every list is checked up front, even beyond EAGER_CHECKS combinations
    bad = dict(axes, m=[*range(1, 1000), -5])
    with pytest.raises(ValueError, match="m must be an integer >= 1; got -5"):
        SweepSpec.from_dict(dict(SPEC, fixed=dict(d=3), grid=bad, seeds={"count": 1000}))
    # a run starts at once, stores only what ran and resumes past it
    store = tmp_path / "huge.sqlite"
    spec = dict(name="huge", experiment="tests.sweep_cells:interrupts_at",
                seeds={"count": 10**9}, fixed=dict(n=3))  # fmt: skip
    for _ in range(2):
        tick = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, store)
        assert time.perf_counter() - tick < 10.0
    with ResultStore(store) as results:
        assert [r["seed"] for r in results.rows()] == [0, 1, 2]
        status = results.status()
    assert (status.total, status.done, status.pending) == (10**9, 3, 10**9 - 3)


def test_a_sweep_beyond_what_a_store_can_index_is_refused():
    from fopa.sweeps import SweepSpec

    axes = {name: list(range(1, 1001)) for name in ("d", "m", "n_starts")}
    spec = dict(experiment="landscape", grid=axes, seeds={"count": 10**10})
    with pytest.raises(ValueError, match="10,000,000,000,000,000,000 cells.*at most"):
        SweepSpec.from_dict(spec)


def test_cells_beyond_the_eager_checks_are_checked_as_they_run(tmp_path):
    # a check that depends on two parameters at once: the covering set misses the bad
    # combination, so the cell fails with the check's message instead of running
    from fopa.sweeps import spec as spec_module

    sweep = dict(experiment="tests.sweep_cells:checked_pair", seeds=[0],
                 grid=dict(a=[1, 2, 3], b=[1, 2, 3]))  # fmt: skip
    old = spec_module.EAGER_CHECKS
    spec_module.EAGER_CHECKS = 2
    try:
        summary = run_sweep(sweep, tmp_path / "p.sqlite")
    finally:
        spec_module.EAGER_CHECKS = old
    assert (summary.done, summary.failed) == (8, 1)
    with ResultStore(tmp_path / "p.sqlite") as results:
        (failed,) = results.rows("failed")
    assert failed["params"] == {"a": 2, "b": 3} and "a = 2 with b = 3" in failed["error"]
    with pytest.raises(ValueError, match="a = 2 with b = 3"):  # checked eagerly by default
        run_sweep(sweep, tmp_path / "q.sqlite")


def _read_only_mount_available():
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", probe],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.mark.skipif(
    not _read_only_mount_available(), reason="needs unshare with user and mount namespaces"
)
def test_a_store_on_a_read_only_mount_is_read_and_a_run_is_refused(tmp_path):
    # found by hostile testing: on a read-only mount every call (even --status) said
    # "corrupt" or "unable to open database file": SQLite cannot make the WAL index there
    import subprocess
    import sys
    import textwrap

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    store = shelf / "s.sqlite"
    run_sweep(SPEC, store)
    before = _sha(store)
    out = tmp_path / "out.csv"
    script = textwrap.dedent(f"""
        import pytest
        from fopa.sweeps import ResultStore, StoreError, export_results, run_sweep
        SPEC = {SPEC!r}
        with ResultStore({str(store)!r}) as results:
            assert results.read_only and len(results.rows()) == 3
            assert results.status().done == 3
        export_results({str(store)!r}, {str(out)!r})
        with pytest.raises(StoreError, match="read-only file system.*--status and --export"):
            run_sweep(SPEC, {str(store)!r})
        with pytest.raises(StoreError, match="cannot create store.*not writable"):
            run_sweep(SPEC, {str(shelf / "new.sqlite")!r})
        print("ok")
    """)
    mount = f"mount --bind {shelf} {shelf} && mount -o remount,bind,ro {shelf}"
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f'{mount} && exec "$0" -c "$1"', sys.executable, script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert _sha(store) == before
    assert out.read_text().count("\n") == 4  # a header and three cells
    assert sorted(p.name for p in shelf.iterdir()) == ["s.sqlite", "s.sqlite.lock"]


def test_specs_keep_the_fingerprints_and_cell_keys_of_existing_stores():
    # pinned from fopa before grids became lazy: a store it made must still open
    from fopa.sweeps import SweepSpec

    tiny = SweepSpec.from_dict(SPEC)
    assert tiny.fingerprint.startswith("f986217e4389b639")
    assert tiny.cells()[1].key.startswith("1a0d82ff6da55b73")
    assert tiny.to_dict()["seeds"] == [0, 1, 2]
    listed = SweepSpec.from_dict(dict(SPEC, name="l", seeds=[4, 2, 9]))
    assert listed.fingerprint.startswith("a91954ca0f51a778")
    assert listed.cells()[1].key.startswith("e952e04c4063b936")
    grid = dict(SPEC, name="g", seeds={"count": 5, "start": 7}, grid=dict(scale=[0.1, 1.0]))
    spec = SweepSpec.from_dict(grid)
    assert spec.fingerprint.startswith("351e6f1dfa93adb4")
    assert spec.cells()[1].key.startswith("185c765acea5090f")
    assert [c.seed for c in spec.cells()] == [7, 8, 9, 10, 11] * 2
