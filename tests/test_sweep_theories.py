"""The theories' validation sweeps through ``theorykit.sweep``: backends agree, resume, failures per point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theorykit.sweep import SweepOptions, sweep
from theorykit.theories import barlow_ntk as bn
from theorykit.theories.barlow_ntk import _studies as bx
from theorykit.theories.contrastive_highdim import ContrastiveODE, HiddenLaw, Hyper
from theorykit.theories.contrastive_highdim import _analysis as ca
from theorykit.validate import Study, add_sweep_arguments, experiment_parser, fit_power_law, sweep_options

ROOT = Path(__file__).resolve().parents[1]

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


# ---------------------------------------------------------------------------------------------- contrastive
BASE = Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=-0.5)


@pytest.fixture(scope="module")
def ode():
    return ContrastiveODE(d=2, K=1, act="tanh", gh_points=12)


@pytest.fixture(scope="module")
def sgd_points(ode):
    return ca.sgd_error_points(ode, BASE, HiddenLaw.sparse_ternary(0.5), [200, 400], 2, t_final=1.0)


@pytest.fixture(scope="module")
def sgd_inline(ode):
    return ca.sgd_errors(ode, BASE, HiddenLaw.sparse_ternary(0.5), [200, 400], 2, seed=5, t_final=1.0)


def _same_sgd(a: dict, b: dict) -> bool:
    runs = all((ra is None and rb is None) or (np.array_equal(ra.q, rb.q) and np.array_equal(ra.Q, rb.Q))
               for ra, rb in zip(a["runs"], b["runs"]))
    return runs and all(np.array_equal(a[k], b[k], equal_nan=True) for k in ("n", "err_m", "err_Q", "rms_m", "ok"))


def test_sgd_error_sweep_inline_equals_process_pool(sgd_points, sgd_inline):
    res = sgd_inline
    assert res["failures"] == [] and res["ok"].all()
    assert res["n"].tolist() == [200, 200, 400, 400]
    assert np.all(res["rms_m"] > 0) and np.all(res["err_m"] >= res["rms_m"])
    assert np.array_equal(res["ode"].t, res["runs"][0].t)
    pool = ca.collect_sgd_errors(sweep(ca.sgd_error_point, sgd_points, seed=5, processes=2))
    assert _same_sgd(res, pool)
    # two replicates at the same n differ (each point has its own seed)
    assert res["rms_m"][0] != res["rms_m"][1]


def test_sgd_error_sweep_resumes_from_store(tmp_path, sgd_points, sgd_inline):
    store = tmp_path / "store"
    sweep(ca.sgd_error_point, sgd_points[:3], seed=5, processes=1, store=store)  # "interrupted" after 3 of 4
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = sweep(ca.sgd_error_point, sgd_points, seed=5, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True, True, True, False]
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())
    assert _same_sgd(ca.collect_sgd_errors(full), sgd_inline)


def test_sgd_error_failing_point_is_reported(sgd_points, sgd_inline):
    pts = list(sgd_points)
    pts[2] = {**pts[2], "n": 2}  # simulate_sgd needs n >= 4
    res = ca.collect_sgd_errors(sweep(ca.sgd_error_point, pts, seed=5, processes=1))
    assert res["ok"].tolist() == [True, True, False, True]
    assert len(res["failures"]) == 1 and "n=2" in res["failures"][0] and "InvalidParameterError" in res["failures"][0]
    assert np.isnan(res["rms_m"][2]) and res["runs"][2] is None
    keep = [0, 1, 3]
    assert np.array_equal(res["rms_m"][keep], sgd_inline["rms_m"][keep])


# ---------------------------------------------------------------------------------------------- command line
def test_sweep_arguments_parse_and_pass_through(tmp_path):
    ap = add_sweep_arguments(experiment_parser("x", name="x", quick_help="q", full_help="f"))
    assert sweep_options(ap.parse_args([])) == {"processes": 1, "scheduler": None, "store": None}
    args = ap.parse_args(["--processes", "3", "--scheduler", "tcp://127.0.0.1:8786", "--store", str(tmp_path)])
    assert sweep_options(args) == {"processes": 3, "scheduler": "tcp://127.0.0.1:8786", "store": tmp_path}
    with pytest.raises(SystemExit):
        ap.parse_args(["--processes", "0"])


@pytest.mark.parametrize("script", ["barlow_ntk.py", "contrastive_highdim.py", "imbalanced_pruning.py",
                                    "noncontrastive.py"])
def test_validation_scripts_offer_the_sweep_options(script):
    proc = subprocess.run([sys.executable, str(ROOT / "validation" / script), "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    for opt in ("--processes", "--scheduler", "--store"):
        assert opt in proc.stdout


def test_both_sweeps_on_a_dask_cluster_equal_inline(barlow_inline, sgd_points, sgd_inline):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote_b = bx.run_width_sweep(TINY, seed=3, sweeps=SweepOptions(scheduler=cluster.scheduler_address))
        remote_c = ca.collect_sgd_errors(sweep(ca.sgd_error_point, sgd_points, seed=5,
                                               scheduler=cluster.scheduler_address))
    assert remote_b["failures"] == [] and _same(remote_b, barlow_inline)
    assert _same_sgd(remote_c, sgd_inline)
