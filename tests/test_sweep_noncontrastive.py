"""The non-contrastive theory's studies through ``theorykit.sweep``: backends agree, resume, failures per point."""

from __future__ import annotations


import numpy as np
import pytest

from theorykit.sweep import point_seeds, sweep
from theorykit.theories.noncontrastive import _reproduce as nr
from theorykit.theories.noncontrastive._analysis import ode_trajectory
from theorykit.theories.noncontrastive._simulate import simulate_sgd


SIZES = ((8, 4, 0.05), (16, 8, 0.025))
CONV = dict(t_end=1.0, n_record=5)
PHASE = np.array([[0.02, 0.5], [0.4, 0.5], [0.2, 1.5]])  # below, above, above the Euclidean boundary
PHASE_KW = dict(dim=8, batch=8, lr=0.05, t_end=20.0)
CONV_KEYS = ("errors", "loss_errors", "ok", "t", "p_sgd", "p_ode", "s_sgd", "s_ode", "loss_sgd", "loss_ode")
PHASE_KEYS = ("euc_pred", "euc_sim", "cos_pred", "cos_sim", "ok")


def _same(a: dict, b: dict, keys) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in keys)


@pytest.fixture(scope="module")
def conv_inline():
    return nr.convergence_study("euclidean", SIZES, 2, seed=7, processes=1, **CONV)


@pytest.fixture(scope="module")
def phase_inline():
    return nr.phase_agreement(PHASE, 7, processes=1, **PHASE_KW)


def test_convergence_point_is_the_direct_comparison(conv_inline):
    # recompute one point by hand with its own sweep seed: SGD run against the ODE on the same records
    pts = nr.convergence_points("euclidean", SIZES, 2, **CONV)
    i = 3  # size 1, replicate 1
    sd = point_seeds(7, len(pts))[i]
    run = simulate_sgd("euclidean", dim=16, batch=8, lr=0.025, t_end=1.0, p0=(1.0, 0.4), eta=0.05, sigma2=0.5,
                       n_record=5, seed=sd)
    ode = ode_trajectory("euclidean", (1.0, 0.4), run.t, eta=0.05, sigma2=0.5)
    err = max(np.abs(run.p - ode["p"]).max(), np.abs(run.s - ode["s"]).max())
    assert conv_inline["errors"][1, 1] == err
    assert conv_inline["errors"].shape == (2, 2) and conv_inline["ok"].all() and conv_inline["failures"] == []
    assert np.all(conv_inline["errors"] > 0) and np.all(conv_inline["loss_errors"] > 0)
    # replicates have their own seeds, and the kept trajectory is the largest size's first replicate
    assert conv_inline["errors"][1, 0] != conv_inline["errors"][1, 1]
    assert conv_inline["keep_size"].tolist() == [16, 8, 0.025]
    assert conv_inline["dims"].tolist() == [8, 16]


def test_inline_equals_process_pool(conv_inline, phase_inline):
    pool = nr.convergence_study("euclidean", SIZES, 2, seed=7, processes=2, **CONV)
    assert pool["failures"] == [] and _same(conv_inline, pool, CONV_KEYS)
    other = nr.convergence_study("euclidean", SIZES, 2, seed=8, processes=1, **CONV)
    assert not np.array_equal(other["errors"], conv_inline["errors"])  # the equality above is not trivial

    assert phase_inline["ok"].all() and phase_inline["failures"] == []
    # the closed form and SGD both see Euclidean collapse above the boundary only; cosine never collapses
    assert phase_inline["euc_pred"].tolist() == [False, True, True]
    assert phase_inline["euc_sim"].tolist() == [False, True, True]
    assert not phase_inline["cos_sim"].any() and phase_inline["agreement"] == 1.0
    pool_pa = nr.phase_agreement(PHASE, 7, processes=2, **PHASE_KW)
    assert _same(phase_inline, pool_pa, PHASE_KEYS) and pool_pa["agreement"] == phase_inline["agreement"]


def test_store_resumes_only_missing_points(tmp_path, conv_inline, phase_inline):
    store = tmp_path / "store"
    pts = nr.convergence_points("euclidean", SIZES, 2, **CONV)
    first = sweep(nr.convergence_point, pts[:3], seed=7, processes=1, store=store)  # "interrupted" after 3 of 4
    assert first.statuses == ["ok"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = sweep(nr.convergence_point, pts, seed=7, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True, True, True, False]
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    assert _same(nr.collect_convergence(full), conv_inline, CONV_KEYS)
    # the public entry point with the same store recomputes nothing and gives the same numbers
    again = nr.convergence_study("euclidean", SIZES, 2, seed=7, store=store, **CONV)
    assert len(list(store.iterdir())) == 4 and _same(again, conv_inline, CONV_KEYS)

    # the phase study: lose one point's file, as after an interruption; only that point is recomputed
    pstore = tmp_path / "phase"
    nr.phase_agreement(PHASE, 7, processes=1, store=pstore, **PHASE_KW)
    files = sorted(pstore.iterdir())
    assert len(files) == 3
    files[1].unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in (files[0], files[2])}
    resumed = nr.phase_agreement(PHASE, 7, processes=1, store=pstore, **PHASE_KW)
    assert sorted(p.name for p in pstore.iterdir()) == [f.name for f in files]
    assert all(pstore.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())
    assert _same(resumed, phase_inline, PHASE_KEYS) and resumed["agreement"] == phase_inline["agreement"]


def test_failing_points_are_reported_and_left_out(conv_inline, phase_inline):
    pts = nr.convergence_points("euclidean", SIZES, 2, **CONV)
    pts[1] = {**pts[1], "dim": 1}  # simulate_sgd needs dim >= 2
    res = nr.collect_convergence(sweep(nr.convergence_point, pts, seed=7, processes=1))
    assert res["ok"].tolist() == [[True, False], [True, True]]
    assert len(res["failures"]) == 1
    assert "d=1" in res["failures"][0] and "replicate 1" in res["failures"][0]
    assert "InvalidParameterError" in res["failures"][0]
    assert np.isnan(res["errors"][0, 1]) and np.isnan(res["loss_errors"][0, 1])
    assert np.array_equal(res["errors"][res["ok"]], conv_inline["errors"][res["ok"]])
    fit = nr.fit_errors(res)
    assert fit.n_points == 3 and np.isfinite(fit.slope)
    # with only one size left there is no fit: NaN, not an exception
    pts_bad = [{**p, "dim": 1} if p["size_index"] == 0 else p
               for p in nr.convergence_points("euclidean", SIZES, 2, **CONV)]
    one_size = nr.collect_convergence(sweep(nr.convergence_point, pts_bad, seed=7, processes=1))
    assert len(one_size["failures"]) == 2 and np.isnan(nr.fit_errors(one_size).slope)

    # a diverging Euclidean run (learning rate far too large) is a non-finite point, not "not collapsed"
    bad = nr.phase_point({"eta": 0.05, "sigma2": 0.5, "dim": 8, "batch": 8, "lr": 3.0, "t_end": 30.0,
                          "p0": [1.0, 0.4], "collapse_level": 0.05, "collapse_ratio": 0.1}, 1)
    assert not np.isfinite(bad["euc_max_p"])
    pa_pts = [{"eta": float(e), "sigma2": float(s2), **PHASE_KW, "p0": [1.0, 0.4], "collapse_level": 0.05,
               "collapse_ratio": 0.1} for e, s2 in PHASE]
    pa_pts[1] = {**pa_pts[1], "lr": 3.0, "t_end": 30.0}
    result = sweep(nr.phase_point, pa_pts, seed=7, processes=1)
    assert result.statuses == ["ok", "non_finite", "ok"] and "euc_max_p" in result.points[1].error


def test_report_lists_failed_points_and_keeps_its_claims(tmp_path, monkeypatch):
    # the cosine runs of the smallest size fail; the report lists them and fits the other sizes
    real = nr.simulate_sgd

    def flaky(loss, **kw):
        if loss == "cosine" and kw["dim"] == nr.SIZES_QUICK[0][0] and kw["t_end"] == 6.0:
            raise FloatingPointError("injected failure")
        return real(loss, **kw)

    monkeypatch.setattr(nr, "simulate_sgd", flaky)
    report = nr.reproduce(tmp_path, quick=True, seed=0)
    failed = [n for n in report.notes if "failed" in n]
    assert len(failed) == 2 and all("cosine d=16" in n and "injected failure" in n for n in failed)
    rate = next(c for c in report.claims if c.name == "cosine_ode_vs_sgd_rate")
    assert np.isfinite(rate.measured) and np.isnan(rate.details["errors"][0]).all()
    assert np.isfinite(rate.details["errors"][1:]).all()
    assert np.isfinite(next(c for c in report.claims if c.name == "cosine_ode_vs_sgd_error").measured)
    assert (tmp_path / "error_scaling.png").exists()
