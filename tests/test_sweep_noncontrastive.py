"""The non-contrastive theory's studies as sweeps: reduction by grid, backends agree, resume, failures per point."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.sweep import SweepOptions, point_seeds, sweep
from theorykit.theories import noncontrastive as nc
from theorykit.theories.noncontrastive import _studies as X
from theorykit.validate import Study

SIZES = ((8, 4, 0.05), (16, 8, 0.025))
CONV = dict(t_end=1.0, n_record=5)
PHASE = np.array([[0.02, 0.5], [0.4, 0.5], [0.2, 1.5]])  # below, above, above the Euclidean boundary
PHASE_KW = dict(dim=8, batch=8, lr=0.05, t_end=20.0)
CONV_KEYS = ("errors", "loss_errors", "ok", "t", "p_sgd", "p_ode", "s_sgd", "s_ode", "loss_sgd", "loss_ode")
PHASE_KEYS = ("euc_pred", "euc_sim", "cos_pred", "cos_sim", "ok")


def _same(a: dict, b: dict, keys) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in keys)


def _conv_points(**change):
    """The points convergence_study builds for SIZES, two replicates (taken from a recording sweep)."""
    seen = []

    class Recorder:
        def sweep(self, fn, points, *, seed, desc):
            seen.extend(points)
            return sweep(fn, points, seed=seed, processes=1)

    X.convergence_study("euclidean", SIZES, 2, seed=7, sweeps=Recorder(), **CONV)
    return [{**p, **change} for p in seen]


@pytest.fixture(scope="module")
def conv_inline():
    return X.convergence_study("euclidean", SIZES, 2, seed=7, **CONV)


@pytest.fixture(scope="module")
def phase_inline():
    return X.phase_agreement(PHASE, 7, **PHASE_KW)


def test_convergence_point_is_the_direct_comparison(conv_inline):
    # recompute one point by hand with its own sweep seed: SGD run against the ODE on the same records
    sd = point_seeds(7, 4)[3]  # size 1, replicate 1
    run = nc.simulate_sgd("euclidean", dim=16, batch=8, lr=0.025, t_end=1.0, p0=(1.0, 0.4), eta=0.05, sigma2=0.5,
                          n_record=5, seed=sd)
    ode = nc.ode_trajectory("euclidean", (1.0, 0.4), run.t, eta=0.05, sigma2=0.5)
    err = max(np.abs(nc.group_series(run, "p") - ode["p"]).max(), np.abs(nc.group_series(run, "s") - ode["s"]).max())
    assert conv_inline["errors"][1, 1] == err
    assert conv_inline["errors"].shape == (2, 2) and conv_inline["ok"].all() and conv_inline["failures"] == []
    assert np.all(conv_inline["errors"] > 0) and np.all(conv_inline["loss_errors"] > 0)
    # replicates have their own seeds, and the kept trajectory is the largest size's first replicate
    assert conv_inline["errors"][1, 0] != conv_inline["errors"][1, 1]
    assert conv_inline["keep_size"].tolist() == [16, 8, 0.025]
    assert conv_inline["dims"].tolist() == [8, 16]


@pytest.mark.slow
def test_inline_equals_process_pool(conv_inline, phase_inline):
    pool = X.convergence_study("euclidean", SIZES, 2, seed=7, sweeps=SweepOptions(processes=2), **CONV)
    assert pool["failures"] == [] and _same(conv_inline, pool, CONV_KEYS)
    other = X.convergence_study("euclidean", SIZES, 2, seed=8, **CONV)
    assert not np.array_equal(other["errors"], conv_inline["errors"])  # the equality above is not trivial
    pool_pa = X.phase_agreement(PHASE, 7, sweeps=SweepOptions(processes=2), **PHASE_KW)
    assert _same(phase_inline, pool_pa, PHASE_KEYS) and pool_pa["agreement"] == phase_inline["agreement"]


def test_phase_outcomes_agree_with_the_theory(phase_inline):
    assert phase_inline["ok"].all() and phase_inline["failures"] == []
    # the closed form and SGD both see Euclidean collapse above the boundary only; cosine never collapses
    assert phase_inline["euc_pred"].tolist() == [False, True, True]
    assert phase_inline["euc_sim"].tolist() == [False, True, True]
    assert not phase_inline["cos_sim"].any() and phase_inline["agreement"] == 1.0


def test_store_resumes_only_missing_points(tmp_path, conv_inline):
    store = tmp_path / "store"
    pts = _conv_points()
    first = sweep(X.convergence_point, pts[:3], seed=7, processes=1, store=store)  # "interrupted" after 3 of 4
    assert first.statuses == ["ok"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    # the public entry point with the same store computes only the missing point and gives the same numbers
    again = X.convergence_study("euclidean", SIZES, 2, seed=7, sweeps=SweepOptions(store=store), **CONV)
    assert len(list(store.iterdir())) == 4 and _same(again, conv_inline, CONV_KEYS)
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten


def test_failing_points_are_reported_and_left_out(conv_inline, monkeypatch):
    real, bad_seed = X.simulate_sgd, point_seeds(7, 4)[1]  # point 1: size 0, replicate 1

    def flaky(loss, **kw):
        if kw["seed"] == bad_seed:
            raise FloatingPointError("injected failure")
        return real(loss, **kw)

    monkeypatch.setattr(X, "simulate_sgd", flaky)
    res = X.convergence_study("euclidean", SIZES, 2, seed=7, **CONV)
    assert res["ok"].tolist() == [[True, False], [True, True]]
    assert len(res["failures"]) == 1
    assert res["failures"][0].startswith("loss=euclidean dim=8 batch=4 lr=0.05 replicate=1: error: FloatingPointError")
    assert np.isnan(res["errors"][0, 1]) and np.isnan(res["loss_errors"][0, 1])
    assert np.array_equal(res["errors"][res["ok"]], conv_inline["errors"][res["ok"]])
    from theorykit.validate import fit_power_law

    fit = fit_power_law(res["dims"], res["errors"], nan_policy="omit")
    assert fit.n_points == 3 and np.isfinite(fit.slope)

    # a diverging Euclidean run (learning rate far too large) is a non-finite point, not "not collapsed"
    bad = X.phase_point({"eta": 0.05, "sigma2": 0.5, "dim": 8, "batch": 8, "lr": 3.0, "t_end": 30.0,
                         "p0": [1.0, 0.4], "collapse_level": 0.05, "collapse_ratio": 0.1}, 1)
    assert not np.isfinite(bad["euc_max_p"])


@pytest.mark.slow
def test_report_lists_failed_points_and_keeps_its_claims(tmp_path, monkeypatch):
    # the cosine runs of the smallest size fail; the report lists them and fits the other sizes
    real = X.simulate_sgd

    def flaky(loss, **kw):
        if loss == "cosine" and kw["dim"] == X.SIZES_QUICK[0][0] and kw["t_end"] == 6.0:
            raise FloatingPointError("injected failure")
        return real(loss, **kw)

    monkeypatch.setattr(X, "simulate_sgd", flaky)
    report = Study("noncontrastive", nc.title, tmp_path, claim_names=nc.claim_names).run(nc.reproduce)
    failed = [n for n in report.notes if "failed" in n]
    assert len(failed) == 2 and all("loss=cosine dim=16" in n and "injected failure" in n for n in failed)
    rate = next(c for c in report.claims if c.name == "cosine_ode_vs_sgd_rate")
    assert np.isfinite(rate.measured) and np.isnan(rate.details["errors"][0]).all()
    assert np.isfinite(rate.details["errors"][1:]).all()
    assert np.isfinite(next(c for c in report.claims if c.name == "cosine_ode_vs_sgd_error").measured)
    assert (tmp_path / "error_scaling.png").exists() and all(c.passed for c in report.claims)
