"""The theories' validation sweeps through ``theorykit.sweep``: backends agree, resume, failures per point."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.sweep import SweepOptions, sweep
from theorykit.theories import barlow_ntk as bn
from theorykit.theories.barlow_ntk import _studies as bx
from theorykit.validate import Study, fit_power_law


# ---------------------------------------------------------------------------------------------- Barlow Twins
# minibatches of 4 of the 6 pairs, so each point's own sweep seed drives its SGD noise
TINY = bx.SweepConfig(widths=(16, 48), n_seeds=2, n_train=6, n_eval=4, d=4, lr=0.05, t_end=1.0, n_checkpoints=2,
                      record_every=5, n_population=50, batch_size=4)
ARRAYS = ("ntk_change", "ntk_change_t", "ntk_init_fluct", "weight_dist", "gap_eval", "gap_train", "L0", "t_hit",
          "kernel_loss_gap", "loss_net", "loss_lin", "loss_ode")


def _same(a: dict, b: dict, keys=ARRAYS) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in keys)


@pytest.fixture(scope="module")
def barlow_inline():
    return bx.run_width_sweep(TINY, seed=3, sweeps=SweepOptions(processes=1))


@pytest.mark.slow
def test_barlow_width_sweep_inline_equals_process_pool(barlow_inline):
    res = barlow_inline
    assert res["failures"] == []
    assert res["ntk_change"].shape == (2, 2) and res["loss_net"].shape == (2, 2, TINY.n_steps // 5 + 1)
    assert all(np.all(np.isfinite(res[k])) for k in ARRAYS if k != "t_hit")
    pool = bx.run_width_sweep(TINY, seed=3, sweeps=SweepOptions(processes=2))
    assert pool["failures"] == [] and _same(res, pool)
    # the numbers depend on the seed, so the equality above is not trivial
    other = bx.run_width_sweep(TINY, seed=4)
    assert not np.array_equal(res["weight_dist"], other["weight_dist"])


def test_barlow_width_sweep_resumes_from_store(tmp_path, barlow_inline):
    store = tmp_path / "store"
    pts = bx.width_sweep_points(TINY, seed=3)
    first = sweep(bx.width_point, pts[:2], seed=3, processes=1, store=store)  # "interrupted" after 2 of 4
    assert [p.status for p in first.points] == ["ok", "ok"]
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 2
    full = sweep(bx.width_point, pts, seed=3, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True, True, False, False]
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    # the public entry point with the same store recomputes nothing and gives the same numbers
    again = bx.run_width_sweep(TINY, seed=3, sweeps=SweepOptions(store=store))
    assert len(list(store.iterdir())) == 4 and _same(again, barlow_inline)


def test_barlow_failing_point_is_reported_and_left_out(barlow_inline, tmp_path, monkeypatch):
    pts = bx.width_sweep_points(TINY, seed=3)
    pts[1] = {**pts[1], "data_seed": -1}  # an invalid data seed in one point (width 48, replicate 0)
    monkeypatch.setattr(bx, "width_sweep_points", lambda cfg, seed: pts)
    res = bx.run_width_sweep(TINY, seed=3)
    assert len(res["failures"]) == 1 and "M=48 replicate=0" in res["failures"][0]
    assert "InvalidParameterError" in res["failures"][0]
    # the failed point is NaN at [width 1, replicate 0]; every other point is the clean run's
    bad = np.zeros((2, 2), dtype=bool)
    bad[1, 0] = True
    for k in ARRAYS:
        assert np.all(np.isnan(res[k][bad])), k
        assert np.array_equal(res[k][~bad], barlow_inline[k][~bad]), k
    fit = fit_power_law(res["widths"], res["weight_dist"], nan_policy="omit")
    assert fit.n_points == 3
    # the report lists the failure in its notes and still evaluates its claims on the other points
    gen = {"test_loss": 0.1, "bound": 1.0, "bound_ratio": 10.0, "deviation": 0.3, "deviation_bound": 0.9,
           "deviation_ratio": 3.0, "deviation_se": 0.01, "second_moment": 2.0, "second_moment_se": 0.01,
           "n_moment": 100, "delta": 0.05}
    monkeypatch.setattr(bx, "run_width_sweep", lambda cfg, seed, **kw: res)
    monkeypatch.setattr(bx, "generalization_check", lambda cfg, seed: gen)
    report = Study(bn.name, bn.title, tmp_path, seed=3, claim_names=bn.claim_names).run(bn.reproduce)
    failed_notes = [n for n in report.notes if "failed" in n]
    assert len(failed_notes) == 1 and "M=48 replicate=0" in failed_notes[0]
    weights = next(c for c in report.claims if c.name == "weights_in_width_independent_ball")
    assert np.isfinite(weights.measured) and weights.measured == pytest.approx(fit.slope)
    assert not [c.name for c in report.claims if c.name.endswith("_runs")]  # no section crashed




@pytest.mark.slow
def test_barlow_sweep_on_a_dask_cluster_equals_inline(barlow_inline):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote_b = bx.run_width_sweep(TINY, seed=3, sweeps=SweepOptions(scheduler=cluster.scheduler_address))
    assert remote_b["failures"] == [] and _same(remote_b, barlow_inline)
