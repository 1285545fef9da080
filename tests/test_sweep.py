"""The sweep API: deterministic per-point seeds, failures per point, atomic resume, dask == local."""

import os

import numpy as np
import pytest

from theorykit.errors import InvalidParameterError
from theorykit.sweep import grid_points, sweep

from sweep_functions import count_calls, dies_at_two, noisy_quadratic, segfaults_at_two, sometimes_fails

POINTS = grid_points(x=[0.0, 0.5, 1.0, 1.5, 2.0])


@pytest.mark.slow
def test_inline_and_process_pool_agree_bit_for_bit():
    a = sweep(noisy_quadratic, POINTS, seed=7, processes=1)
    b = sweep(noisy_quadratic, POINTS, seed=7, processes=2)
    assert np.array_equal(a.values("y"), b.values("y"))
    assert np.array_equal(a.values("path"), b.values("path"))
    c = sweep(noisy_quadratic, POINTS, seed=8, processes=1)
    assert not np.array_equal(a.values("y"), c.values("y"))


def test_failures_are_recorded_per_point():
    res = sweep(sometimes_fails, grid_points(x=[1.0, 2.0, 3.0, 4.0]), processes=1)
    assert res.statuses == ["ok", "error", "non_finite", "ok"]
    assert "diverged" in res.failed[0].error
    y = res.values("y")
    assert y[0] == 1.0 and y[3] == 4.0 and np.isnan(y[1])
    assert "point 1" in res.summary()


def test_resume_skips_finished_points(tmp_path):
    log = tmp_path / "calls.txt"
    pts = [{"x": float(x), "log": str(log)} for x in range(4)]
    store = tmp_path / "store"
    first = sweep(count_calls, pts[:2], processes=1, store=store)
    # an interrupted run leaves only finished points (and no temp files) behind
    assert sorted(p.name.split("-")[1] for p in store.iterdir()) == ["000000", "000001"]
    assert not list(store.glob(".*tmp*"))
    second = sweep(count_calls, pts, processes=1, store=store)
    assert log.read_text().split() == ["0.0", "1.0", "2.0", "3.0"]  # 0 and 1 were not run again
    assert [p.resumed for p in second.points] == [True, True, False, False]
    assert np.array_equal(second.values("y")[:2], first.values("y"))


def test_grid_points_and_bad_input():
    pts = grid_points(a=[1, 2], b=[10, 20, 30])
    assert len(pts) == 6 and pts[1] == {"a": 1.0, "b": 20.0}
    with pytest.raises(InvalidParameterError, match="at least one"):
        sweep(noisy_quadratic, [])
    with pytest.raises(InvalidParameterError, match="processes"):
        sweep(noisy_quadratic, POINTS, processes=0)


@pytest.mark.slow
def test_dask_backend_equals_local_backend():
    distributed = pytest.importorskip("distributed")
    local = sweep(noisy_quadratic, POINTS, seed=3, processes=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = sweep(noisy_quadratic, POINTS, seed=3, scheduler=cluster.scheduler_address)
    assert np.array_equal(local.values("y"), remote.values("y"))
    assert np.array_equal(local.values("path"), remote.values("path"))


@pytest.mark.slow
def test_phase_diagram_through_the_sweep_api_equals_in_process():
    """Phase diagrams split into chunks on a process pool (and a dask cluster) match the in-process run."""
    from theorykit.analysis import phase_diagram
    from theorykit.compile import compile_system
    from theorykit.theories.reference import eigenmode_cubic

    csys = compile_system(eigenmode_cubic())
    grid = {"eta": np.linspace(0.0, 0.2, 7), "sigma2": np.linspace(0.0, 1.5, 5)}
    base = {"tau": 1.0, "tau2": 0.5}
    y0 = {"p1": 0.5, "p2": 0.5}
    here = phase_diagram(csys, grid, base, y0, t_final=100.0, progress=False)
    assert len(np.unique(here.labels)) > 1  # a non-trivial diagram, so equality means something
    pool = phase_diagram(csys, grid, base, y0, t_final=100.0, progress=False, processes=2, chunk_size=10)
    assert np.array_equal(here.labels, pool.labels) and np.array_equal(here.final_states, pool.final_states)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = phase_diagram(csys, grid, base, y0, t_final=100.0, progress=False, chunk_size=10,
                               scheduler=cluster.scheduler_address)
    assert np.array_equal(here.final_states, remote.final_states)


@pytest.mark.parametrize("crash", [dies_at_two, segfaults_at_two])
def test_a_dying_worker_fails_only_its_point(crash):
    """A worker killed by its point (os._exit, a segfault) is replaced; the sweep goes on."""
    res = sweep(crash, grid_points(x=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), processes=2)
    assert res.statuses == ["ok", "ok", "error", "ok", "ok", "ok"]
    assert "worker process died" in res.points[2].error
    assert "exit code 3" in res.points[2].error or "SIGSEGV" in res.points[2].error
    np.testing.assert_array_equal(res.values("y")[[0, 1, 3, 4, 5]], [0.0, 1.0, 3.0, 4.0, 5.0])


def test_a_stale_or_foreign_store_file_is_recomputed(tmp_path):
    from theorykit.errors import CacheWarning

    store = tmp_path / "store"
    first = sweep(noisy_quadratic, POINTS[:3], seed=1, processes=1, store=store)
    files = sorted(store.iterdir())
    files[1].write_bytes(files[0].read_bytes())  # point 0's result under point 1's name
    files[2].write_bytes(b"garbage")
    with pytest.warns(CacheWarning) as caught:
        again = sweep(noisy_quadratic, POINTS[:3], seed=1, processes=1, store=store)
    messages = " ".join(str(w.message) for w in caught)
    assert "another index, seed, parameters, key than point 1" in messages and "cannot be read" in messages
    assert [p.resumed for p in again.points] == [True, False, False]
    assert np.array_equal(again.values("y"), first.values("y"))


def test_the_store_key_covers_the_function_source_and_version(tmp_path, monkeypatch):
    import importlib
    import sys

    module = tmp_path / "point_module.py"
    module.write_text("def point(params, seed):\n    return {'y': params['x'] + 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import point_module

    store = tmp_path / "store"
    assert sweep(point_module.point, POINTS[:2], processes=1, store=store).values("y").tolist() == [1.0, 1.5]
    module.write_text("def point(params, seed):\n    return {'y': params['x'] + 2}\n")
    importlib.reload(point_module)
    changed = sweep(point_module.point, POINTS[:2], processes=1, store=store)
    assert changed.values("y").tolist() == [2.0, 2.5] and not any(p.resumed for p in changed.points)
    log = tmp_path / "calls.txt"
    pts = [{"x": 1.0, "log": str(log)}]
    sweep(count_calls, pts, processes=1, store=store, version="1")
    sweep(count_calls, pts, processes=1, store=store, version="1")
    sweep(count_calls, pts, processes=1, store=store, version="2")
    assert log.read_text().split() == ["1.0", "1.0"]
    sys.modules.pop("point_module", None)


def test_leftover_temporary_files_are_removed(tmp_path):
    import subprocess
    import sys

    store = tmp_path / "store"
    sweep(noisy_quadratic, POINTS[:1], processes=1, store=store)
    code = ("import os, sys\nfrom theorykit._io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half')\n    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code, str(store / "point-000001-0123456789abcdef.npz")])
    assert len(list(store.glob(".*tmp*"))) == 1
    sweep(noisy_quadratic, POINTS[:2], processes=1, store=store)
    assert not list(store.glob(".*tmp*"))


def _alive(pid):
    """Running (not merely a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_killing_the_parent_of_a_pool_sweep_stops_its_workers(tmp_path):
    """Workers busy in C code that never returns to Python stop within seconds of a SIGKILL to the parent."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys\nsys.path.insert(0, sys.argv[2])\nfrom sweep_functions import spin_forever\n"
            "from theorykit.sweep import sweep\n"
            "sweep(spin_forever, [{'x': i, 'dir': sys.argv[1]} for i in range(4)], processes=2)\n")
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), os.path.dirname(__file__)])
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert len(workers) == 2, "the workers did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_results_reduce_to_labelled_grids_with_nan_for_failed_points():
    pts = [{"x": x, "rep": r} for x in (1.0, 2.0, 3.0) for r in (0, 1)]
    res = sweep(sometimes_fails, pts, processes=1)
    g = res.grid(("x", "rep"), "y")
    assert g.axes == ("x", "rep") and g.coords["x"].tolist() == [1.0, 2.0, 3.0] and g.coords["rep"].tolist() == [0, 1]
    assert g.ok.tolist() == [[True, True], [False, False], [False, False]]
    assert g.values[0].tolist() == [1.0, 1.0] and np.isnan(g.values[1:]).all()
    assert len(g.failures) == 4 and g.failures[0].startswith("x=2 rep=0: error: RuntimeError: diverged")
    assert res.grid(("x", "rep"), "y", describe=("x",)).failures[2].startswith("x=3: non_finite")
    assert g.truth().tolist() == [[True, True], [False, False], [False, False]]
    arrays = sweep(noisy_quadratic, POINTS, processes=1).grid(("x",), "path")
    assert arrays.values.shape == (5, 3) and arrays.ok.all()
    with pytest.raises(InvalidParameterError, match="tell the sweep points apart"):
        res.grid(("x",), "y")
    with pytest.raises(KeyError, match="no value named"):
        res.grid(("x", "rep"), "z")
