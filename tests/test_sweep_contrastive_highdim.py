"""The contrastive theory's ODE-vs-SGD study as a sweep: reduction by grid, backends agree, resume, failures
per point."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.sweep import SweepOptions, point_seeds, sweep
from theorykit.theories import contrastive_highdim as ch

BASE = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=-0.5)
KEYS = ("err_m", "err_Q", "rms_m", "ok", "t", "q", "Q")


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in KEYS)


@pytest.fixture(scope="module")
def points():
    ode = ch.compiled_ode(d=2, K=1, act="tanh", gh_points=12)
    return ch.sgd_error_points(ode, BASE, ch.HiddenLaw.sparse_ternary(0.5), [200, 400], 2, t_final=1.0)


@pytest.fixture(scope="module")
def inline(points):
    return ch.sgd_error_study(points, seed=5)


def test_study_reduces_to_a_grid(points, inline):
    res = inline
    assert res["failures"] == [] and res["ok"].all()
    assert res["case"].tolist() == ["sparse(p=0.5)_rho-0.5"] and res["n"].tolist() == [200, 400]
    assert res["rms_m"].shape == (1, 2, 2) and res["q"].shape == (1, 2, 2, 3, 2, 1)
    assert np.all(res["rms_m"] > 0) and np.all(res["err_m"] >= res["rms_m"])
    # the grid holds each point's own values
    one = ch.sgd_error_point(points[3], point_seeds(5, len(points))[3])
    assert one["rms_m"] == res["rms_m"][0, 1, 1] and np.array_equal(one["q"], res["q"][0, 1, 1])
    # two replicates at the same n differ (each point has its own seed)
    assert res["rms_m"][0, 0, 0] != res["rms_m"][0, 0, 1]
    flat = ch.case_errors(res, "sparse(p=0.5)_rho-0.5")
    assert flat["n"].tolist() == [200, 200, 400, 400] and np.array_equal(flat["rms_m"], res["rms_m"][0].ravel())


@pytest.mark.slow
def test_study_inline_equals_process_pool(points, inline):
    assert _same(ch.sgd_error_study(points, seed=5, sweeps=SweepOptions(processes=2)), inline)


def test_study_resumes_from_store(tmp_path, points, inline):
    store = tmp_path / "store"
    sweep(ch.sgd_error_point, points[:3], seed=5, processes=1, store=store)  # "interrupted" after 3 of 4
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = ch.sgd_error_study(points, seed=5, sweeps=SweepOptions(store=store))
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    assert _same(full, inline)


def test_failing_point_is_reported(points, inline):
    pts = list(points)
    pts[2] = {**pts[2], "n": 2}  # simulate_sgd needs n >= 4
    res = ch.sgd_error_study(pts, seed=5)
    # the failed point sits in a cell of its own (n = 2), NaN there, the others unchanged
    assert res["n"].tolist() == [200, 2, 400]
    assert res["ok"][0].tolist() == [[True, True], [False, False], [False, True]]
    assert len(res["failures"]) == 1 and "n=2" in res["failures"][0]
    assert "InvalidParameterError" in res["failures"][0]
    assert np.isnan(res["rms_m"][0, 1, 0]) and np.all(np.isnan(res["q"][0, 1, 0]))
    assert res["rms_m"][0, 0, 1] == inline["rms_m"][0, 0, 1] and res["rms_m"][0, 2, 1] == inline["rms_m"][0, 1, 1]


@pytest.mark.slow
def test_study_on_a_dask_cluster_equals_inline(points, inline):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = ch.sgd_error_study(points, seed=5, sweeps=SweepOptions(scheduler=cluster.scheduler_address))
    assert _same(remote, inline)
