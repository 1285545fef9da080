"""The imbalanced-data / pruning sweep through ``theorykit.sweep``: backends agree, pairing by seed, resume,
failures per point (in the sweep and in the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theorykit._random import spawn_seeds
from theorykit.sweep import sweep
from theorykit.theories.imbalanced_pruning import _experiments as ex
from theorykit.theories.imbalanced_pruning import _model as mdl

ROOT = Path(__file__).resolve().parents[1]

TINY = mdl.Config(d=8, n_major=2, n_minor=2, p=0.1, nsr=1.0, n_tokens=2, width=8, tau=1.0, lam=0.01, eta=0.05,
                  batch=8, steps=60, record_every=20, prune_at=0.5, prune_mode="weight")
GRID = dict(eps_values=(0.1, 0.3), nsr_values=(1.0,), prune_rates=(0.0, 0.5), n_seeds=2)  # 8 points
SEED = 11


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in ex.METRICS)


def _diff(a: dict, b: dict) -> dict:
    """Largest difference per metric where ``a`` and ``b`` differ (for assertion messages)."""
    return {k: float(np.nanmax(np.abs(a[k] - b[k]))) for k in ex.METRICS
            if not np.array_equal(a[k], b[k], equal_nan=True)}


@pytest.fixture(scope="module")
def inline():
    return ex.sweep(TINY, seed=SEED, processes=1, **GRID)


# The backend comparison also runs inline in a fresh interpreter, as a pool worker does, so that results
# cannot depend on what else was compiled in the test process (the kernels avoid fastmath for this).
_INLINE_SCRIPT = """
import json, sys
import numpy as np
from theorykit.theories.imbalanced_pruning import _experiments as ex, _model as mdl
args = json.loads(sys.argv[1])
res = ex.sweep(mdl.Config(**args["config"]), seed=args["seed"], processes=1, **args["grid"])
assert res["failures"] == [], res["failures"]
np.savez(args["out"], **{k: res[k] for k in ex.METRICS})
"""


@pytest.mark.slow
def test_inline_equals_process_pool_and_depends_on_seed(inline, tmp_path):
    res = inline
    assert res["failures"] == []
    assert all(res[k].shape == (2, 1, 2, 2) and np.all(np.isfinite(res[k])) for k in ex.METRICS)
    out = tmp_path / "inline.npz"
    args = {"config": TINY.as_dict(), "seed": SEED, "grid": GRID, "out": str(out)}
    proc = subprocess.run([sys.executable, "-c", _INLINE_SCRIPT, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-800:]
    with np.load(out) as data:
        fresh = {k: data[k] for k in ex.METRICS}
    pool = ex.sweep(TINY, seed=SEED, processes=2, **GRID)
    assert pool["failures"] == [] and _same(fresh, pool), _diff(fresh, pool)
    assert _same(res, pool), _diff(res, pool)  # the in-process inline run too
    other = ex.sweep(TINY, seed=SEED + 1, processes=1, **GRID)
    assert not np.array_equal(res["mse"], other["mse"])


def test_pruned_and_unpruned_runs_are_paired_by_seed(inline):
    pts = ex.grid_sweep_points(TINY, seed=SEED, **GRID)
    seeds = [int(s) for s in spawn_seeds(SEED, 2)]
    for p in pts:  # every configuration of replicate s trains with the replicate's seed, whatever the prune rate
        assert p["train_seed"] == seeds[p["replicate"]]
    # recompute two points independently of the sweep: the unpruned and the pruned run of replicate 1, eps 0.3
    for c, rate in enumerate((0.0, 0.5)):
        cfg = TINY.with_(eps_min=0.3, prune_rate=rate)
        run = mdl.train(cfg, seeds[1])
        direct = ex.evaluate(run, seeds[1] + 1) | ex.pruning_flow_effect(run)
        assert all(inline[k][1, 0, c, 1] == direct[k] for k in ex.METRICS)
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
    pts = ex.grid_sweep_points(TINY, seed=SEED, **GRID)
    first = sweep(ex.grid_point, pts[:3], seed=SEED, processes=1, store=store)  # "interrupted" after 3 of 8
    assert first.statuses == ["ok"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = sweep(ex.grid_point, pts, seed=SEED, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True] * 3 + [False] * 5
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    collected = ex.collect_grid_sweep(full, GRID["eps_values"], GRID["nsr_values"], GRID["prune_rates"],
                                      GRID["n_seeds"], spawn_seeds(SEED, 2))
    assert _same(collected, inline)
    # the public entry point with the same store recomputes nothing and gives the same numbers
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    again = ex.sweep(TINY, seed=SEED, store=store, **GRID)
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps and _same(again, inline)
    # a different base configuration does not reuse the stored points
    changed = sweep(ex.grid_point, ex.grid_sweep_points(TINY.with_(steps=40), seed=SEED, **GRID)[:1], seed=SEED,
                    processes=1, store=store)
    assert not changed.points[0].resumed


def test_failing_point_is_reported_and_left_out(inline):
    pts = ex.grid_sweep_points(TINY, seed=SEED, **GRID)
    pts[5] = {**pts[5], "eps_min": 0.0}  # an invalid configuration at [eps 1, nsr 0, rate 0, replicate 1]
    result = sweep(ex.grid_point, pts, seed=SEED, processes=1)
    assert result.statuses == ["ok"] * 5 + ["error"] + ["ok"] * 2
    res = ex.collect_grid_sweep(result, GRID["eps_values"], GRID["nsr_values"], GRID["prune_rates"],
                                GRID["n_seeds"], spawn_seeds(SEED, 2))
    assert len(res["failures"]) == 1
    line = res["failures"][0]
    assert "eps_min=0," in line and "replicate 1" in line and "InvalidParameterError" in line and "eps_min" in line
    bad = np.zeros((2, 1, 2, 2), dtype=bool)
    bad[1, 0, 0, 1] = True
    for k in ex.METRICS:
        assert np.all(np.isnan(res[k][bad])), k
        assert np.array_equal(res[k][~bad], inline[k][~bad]), k


def test_report_lists_failed_points_and_claims_skip_them(tmp_path, monkeypatch, inline):
    """reproduce on stubbed stages and sweeps: a failed point goes to the notes, the means skip it."""
    grid = {k: np.array(v, dtype=np.float64) for k, v in inline.items() if k != "failures"}
    failed = {k: v.copy() for k, v in grid.items()}
    for k in ex.METRICS:
        failed[k][0, 0, 1, 0] = np.nan  # the pruned run of [eps 0, nsr 0, replicate 0] failed
    line = "eps_min=0.1, NSR=1, prune rate 0.5, replicate 0: error: SolveError: diverged"

    def fake_sweep(base, eps_values, nsr_values, prune_rates, n_seeds, seed=0, desc="", **kw):
        if base.prune_mode == "neuron":
            return {**{k: v[:, :, 1:] for k, v in grid.items() if k in ex.METRICS}, "eps": grid["eps"],
                    "nsr": grid["nsr"], "prune_rates": grid["prune_rates"][1:], "seeds": grid["seeds"],
                    "failures": []}
        return {**failed, "failures": [line]}

    monkeypatch.setattr(ex, "sweep", fake_sweep)
    monkeypatch.setattr(ex, "default_config", lambda quick=True: TINY)
    monkeypatch.setattr(ex, "mc_gradient_check",
                        lambda cfg, a, r, n, seed=0: (np.ones(cfg.n_features + 1), np.ones(cfg.n_features + 1),
                                                      np.zeros(cfg.n_features + 1)))
    report = ex.reproduce(tmp_path, quick=True, seed=0)
    notes = [n for n in report.notes if "failed" in n]
    assert len(notes) == 1 and line in notes[0]
    ok = ~np.isnan(failed["count_minor"][:, :, 1, :])
    dprune = (grid["count_minor"][:, :, 1, :] - grid["count_minor"][:, :, 0, :])[ok]
    claim = next(c for c in report.claims if c.name == "pruning_more_minority_neurons")
    assert np.isfinite(claim.measured) and claim.details["mean"] == pytest.approx(np.mean(dprune))
    signs = claim.details
    assert signs["n_positive"] + signs["n_negative"] + signs["n_ties"] == ok.sum()
    assert signs["n_positive"] == np.sum(dprune > 0) and signs["n_negative"] == np.sum(dprune < 0)
    dmse = (grid["mse"][:, :, 1, :] - grid["mse"][:, :, 0, :])[ok]
    claim = next(c for c in report.claims if c.name == "pruning_lowers_downstream_error")
    assert claim.details["mean"] == pytest.approx(np.mean(dmse))
    assert claim.details["n_negative"] == np.sum(dmse < 0)
    # the sign test's p-value: P(at least that many decreases | no effect)
    from scipy.stats import binom
    n = int(np.sum(dmse != 0))
    assert claim.measured == pytest.approx(binom.sf(int(np.sum(dmse < 0)) - 1, n, 0.5), rel=1e-9)
    # a claim on unpruned runs only sees no failure: its mean is over all points
    dcount = grid["count_minor"][:, :, 0, :] - grid["count_major"][:, :, 0, :]
    claim = next(c for c in report.claims if c.name == "minority_fewer_neurons")
    assert claim.measured == pytest.approx(np.mean(dcount))
