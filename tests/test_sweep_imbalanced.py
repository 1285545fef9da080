"""The imbalanced-data / pruning sweeps through ``theorykit.sweep``: backends agree, replicates paired by seed,
resume, failures per point (in the sweep and in the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theorykit.sweep import sweep
from theorykit.theories.imbalanced_pruning import _model as mdl
from theorykit.theories.imbalanced_pruning import _reproduce as rp
from theorykit.theories.imbalanced_pruning import _sweeps as sw

ROOT = Path(__file__).resolve().parents[1]

TINY = mdl.Config(d1=8, n_major=2, n_minor=2, p=0.1, nsr=1.0, n_tokens=2, width=8, tau=1.0, lam=0.01, eta=0.05,
                  batch=8, steps=60, record_every=20, prune_at=0.5)
AXES = {"eps_min": (0.1, 0.3), "nsr": (1.0,), "prune_rate": (0.0, 0.5)}  # 4 points of 2 replicates
N_SEEDS, SEED = 2, 11


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in sw.METRICS)


def _diff(a: dict, b: dict) -> dict:
    """Largest difference per metric where ``a`` and ``b`` differ (for assertion messages)."""
    return {k: float(np.nanmax(np.abs(a[k] - b[k]))) for k in sw.METRICS
            if not np.array_equal(a[k], b[k], equal_nan=True)}


@pytest.fixture(scope="module")
def inline():
    return sw.sweep(TINY, AXES, N_SEEDS, SEED, processes=1)


# The backend comparison also runs inline in a fresh interpreter, as a pool worker does, so that results
# cannot depend on what else was compiled in the test process (the kernels avoid fastmath for this).
_INLINE_SCRIPT = """
import json, sys
import numpy as np
from theorykit.theories.imbalanced_pruning import _sweeps as sw, _model as mdl
args = json.loads(sys.argv[1])
res = sw.sweep(mdl.Config(**args["config"]), args["axes"], args["n_seeds"], args["seed"], processes=1)
assert res["failures"] == [], res["failures"]
np.savez(args["out"], **{k: res[k] for k in sw.METRICS})
"""


@pytest.mark.slow
def test_inline_equals_process_pool_and_depends_on_seed(inline, tmp_path):
    res = inline
    assert res["failures"] == []
    assert all(res[k].shape == (2, 1, 2, 2) and np.all(np.isfinite(res[k])) for k in sw.METRICS)
    out = tmp_path / "inline.npz"
    args = {"config": TINY.as_dict(), "seed": SEED, "axes": AXES, "n_seeds": N_SEEDS, "out": str(out)}
    proc = subprocess.run([sys.executable, "-c", _INLINE_SCRIPT, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-800:]
    with np.load(out) as data:
        fresh = {k: data[k] for k in sw.METRICS}
    pool = sw.sweep(TINY, AXES, N_SEEDS, SEED, processes=2)
    assert pool["failures"] == [] and _same(fresh, pool), _diff(fresh, pool)
    assert _same(res, pool), _diff(res, pool)  # the in-process inline run too
    other = sw.sweep(TINY, AXES, N_SEEDS, SEED + 1, processes=1)
    assert not np.array_equal(res["mse"], other["mse"])


def test_pruned_and_unpruned_runs_are_paired_by_seed(inline):
    pts = sw.grid_sweep_points(TINY, AXES, N_SEEDS, SEED)
    seeds = pts[0]["train_seeds"]
    assert len(seeds) == N_SEEDS and all(p["train_seeds"] == seeds for p in pts)
    # recompute two values independently of the sweep: the unpruned and the pruned run of replicate 1, eps 0.3
    for c, rate in enumerate((0.0, 0.5)):
        cfg = TINY.with_(eps_min=0.3, prune_rate=rate)
        run = mdl.train(cfg, seeds[1])
        direct = sw.evaluate(run, seeds[1] + 1) | sw.pruning_flow_effect(run)
        assert all(inline[k][1, 0, c, 1] == direct[k] for k in sw.METRICS)
        if rate > 0:
            # the pruned run is the unpruned one up to the pruning step: same initial and pre-pruning records
            plain = mdl.train(cfg.with_(prune_rate=0.0), seeds[1])
            k = int(np.searchsorted(run.steps, run.prune_step))  # records before the pruning step
            assert k >= 2 and np.array_equal(run.proj[:k], plain.proj[:k])
            assert not np.array_equal(run.W, plain.W)
    # pruning changes the outcome, so the pairing above is not between identical runs
    assert not np.array_equal(inline["mse"][:, :, 0], inline["mse"][:, :, 1])


def test_store_resume_recomputes_only_missing_points(tmp_path, inline):
    store = tmp_path / "store"
    pts = sw.grid_sweep_points(TINY, AXES, N_SEEDS, SEED)
    first = sweep(sw.grid_point, pts[:3], seed=SEED, processes=1, store=store)  # "interrupted" after 3 of 4
    assert first.statuses == ["ok"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = sweep(sw.grid_point, pts, seed=SEED, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True] * 3 + [False]
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    collected = sw.collect(full, (2, 1, 2), sw.METRICS, str)
    assert _same(collected, inline)
    # the public entry point with the same store recomputes nothing and gives the same numbers
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    again = sw.sweep(TINY, AXES, N_SEEDS, SEED, store=store)
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps and _same(again, inline)
    # a different base configuration does not reuse the stored points
    changed = sweep(sw.grid_point, sw.grid_sweep_points(TINY.with_(steps=40), AXES, N_SEEDS, SEED)[:1], seed=SEED,
                    processes=1, store=store)
    assert not changed.points[0].resumed


def test_failing_point_is_reported_and_left_out(inline):
    pts = sw.grid_sweep_points(TINY, AXES, N_SEEDS, SEED)
    pts[2] = {**pts[2], "overrides": {**pts[2]["overrides"], "eps_min": 0.0}}  # invalid: [eps 1, nsr 0, rate 0]
    result = sweep(sw.grid_point, pts, seed=SEED, processes=1)
    assert result.statuses == ["ok", "ok", "error", "ok"]
    res = sw.collect(result, (2, 1, 2), sw.METRICS, lambda p: f"eps_min={p['overrides']['eps_min']:g}")
    assert len(res["failures"]) == 1
    line = res["failures"][0]
    assert "eps_min=0:" in line and "InvalidParameterError" in line and "eps_min" in line
    bad = np.zeros((2, 1, 2, 2), dtype=bool)
    bad[1, 0, 0, :] = True  # every replicate of the failed point
    for k in sw.METRICS:
        assert np.all(np.isnan(res[k][bad])), k
        assert np.array_equal(res[k][~bad], inline[k][~bad]), k


def test_report_lists_failed_points_and_claims_skip_them(tmp_path, monkeypatch, inline):
    """reproduce on stubbed stages and sweeps: a failed point goes to the notes, the means skip it."""
    grid = {k: np.array(v, dtype=np.float64) for k, v in inline.items() if k != "failures"}
    failed = {k: v.copy() for k, v in grid.items()}
    for k in sw.METRICS:
        failed[k][0, 0, 1, 0] = np.nan  # the pruned run of [eps 0, nsr 0, replicate 0] failed
    line = "eps_min=0.1, nsr=1, prune_rate=0.5 (forward_mask): error: SolveError: diverged"

    def fake_sweep(base, axes, n_seeds, seed=0, desc="eps/NSR/pruning sweep", **kw):
        if "width" in axes:
            return {"count_minor": np.ones((3, 1, n_seeds)) * np.array([1.0, 2.0, 4.0])[:, None, None],
                    "width": np.array(axes["width"], dtype=float), "nsr": np.ones(1), "failures": []}
        if desc == "eps/NSR/pruning sweep":
            return {**failed, "failures": [line]}
        return {**{k: v for k, v in grid.items()}, "failures": []}

    def fake_d1(base, d1_values, n_seeds, seed=0, **kw):
        d1 = np.asarray(d1_values, dtype=float)
        T = np.broadcast_to(100 * np.log(d1)[:, None], (d1.size, n_seeds)).copy()
        return {"T1_sgd": T, "T1_flow": T * 1.1, "n_neurons": np.ones_like(T), "d1": d1, "failures": []}

    monkeypatch.setattr(sw, "sweep", fake_sweep)
    monkeypatch.setattr(sw, "d1_sweep", fake_d1)
    monkeypatch.setattr(rp, "default_config", lambda quick=True: TINY)
    monkeypatch.setattr(sw, "mc_gradient_check",
                        lambda cfg, a, r, n, seed=0: (np.ones(cfg.d + 1), np.ones(cfg.d + 1), np.zeros(cfg.d + 1)))
    report = rp.reproduce(tmp_path, quick=True, seed=0)
    notes = [n for n in report.notes if "failed" in n]
    assert len(notes) == 1 and line in notes[0]
    ok = ~np.isnan(failed["count_minor"][:, :, 1, :])
    dprune = (grid["count_minor"][:, :, 1, :] - grid["count_minor"][:, :, 0, :])[ok]
    claim = next(c for c in report.claims if c.name == "pruning_more_minority_neurons")
    assert claim.details["mean"] == pytest.approx(np.mean(dprune))
    assert claim.details["n_positive"] + claim.details["n_negative"] + claim.details["n_ties"] == ok.sum()
    assert claim.details["n_positive"] == np.sum(dprune > 0) and claim.details["n_negative"] == np.sum(dprune < 0)
    dmse = (grid["mse"][:, :, 1, :] - grid["mse"][:, :, 0, :])[ok]
    claim = next(c for c in report.claims if c.name == "pruning_lowers_downstream_error")
    assert claim.details["mean"] == pytest.approx(np.mean(dmse))
    assert claim.details["n_negative"] == np.sum(dmse < 0)
    # the signed-rank statistic by hand: ranks of |d| (ties averaged), z = (E[W+] - W+) / sd for a decrease
    from scipy.stats import norm, rankdata
    nz = dmse[dmse != 0]
    n = nz.size
    ranks = rankdata(np.abs(nz))
    _, counts = np.unique(np.abs(nz), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - np.sum(counts**3 - counts) / 48
    z = (n * (n + 1) / 4 - ranks[nz > 0].sum()) / np.sqrt(var)
    assert claim.measured == pytest.approx(z, rel=1e-9)
    assert claim.details["p_value"] == pytest.approx(norm.sf(z), rel=1e-9)
    assert claim.predicted == pytest.approx(1.6448536, rel=1e-6) and claim.passed == (z >= claim.predicted)
    assert claim.details["sign_fraction"] == pytest.approx(np.sum(dmse < 0) / n)
    # every inequality claim states its margin and how loose its bound is
    for c in report.claims:
        if c.kind in ("le", "ge"):
            assert {"margin", "bound", "bound_over_measured"} <= set(c.details), c.name
    # a claim on unpruned runs only sees no failure: its mean is over all points
    dcount = grid["count_minor"][:, :, 0, :] - grid["count_major"][:, :, 0, :]
    claim = next(c for c in report.claims if c.name == "minority_fewer_neurons")
    assert claim.measured == pytest.approx(np.mean(dcount))
