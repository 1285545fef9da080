"""The imbalanced-data / pruning sweeps through ``theorykit.sweep``: backends agree, replicates paired by seed,
resume, failures per point (in the sweep and in the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theorykit.errors import InvalidParameterError
from theorykit.sweep import SweepOptions, sweep
from theorykit.theories import imbalanced_pruning as ip
from theorykit.theories.imbalanced_pruning import _studies as X
from theorykit.validate import Study

ROOT = Path(__file__).resolve().parents[1]

TINY = ip.Config(d1=8, n_major=2, n_minor=2, p=0.1, nsr=1.0, n_tokens=2, width=8, tau=1.0, lam=0.01, eta=0.05,
                 batch=8, steps=60, record_every=20, prune_at=0.5)
AXES = {"eps_min": (0.1, 0.3), "nsr": (1.0,), "prune_rate": (0.0, 0.5)}  # 4 points of 2 replicates
N_SEEDS, SEED = 2, 11


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in X.METRICS)


def _diff(a: dict, b: dict) -> dict:
    """Largest difference per metric where ``a`` and ``b`` differ (for assertion messages)."""
    return {k: float(np.nanmax(np.abs(a[k] - b[k]))) for k in X.METRICS
            if not np.array_equal(a[k], b[k], equal_nan=True)}


@pytest.fixture(scope="module")
def inline():
    return X.grid_study(TINY, AXES, N_SEEDS, SEED)


# The backend comparison also runs inline in a fresh interpreter, as a pool worker does, so that results
# cannot depend on what else was compiled in the test process (the kernels avoid fastmath for this).
_INLINE_SCRIPT = """
import json, sys
import numpy as np
from theorykit.theories.imbalanced_pruning import Config, _studies as X
args = json.loads(sys.argv[1])
res = X.grid_study(Config(**args["config"]), args["axes"], args["n_seeds"], args["seed"])
assert res["failures"] == [], res["failures"]
np.savez(args["out"], **{k: res[k] for k in X.METRICS})
"""


@pytest.mark.slow
def test_inline_equals_process_pool_and_depends_on_seed(inline, tmp_path):
    res = inline
    assert res["failures"] == []
    assert all(res[k].shape == (2, 1, 2, 2) and np.all(np.isfinite(res[k])) for k in X.METRICS)
    out = tmp_path / "inline.npz"
    args = {"config": TINY.as_dict(), "seed": SEED, "axes": AXES, "n_seeds": N_SEEDS, "out": str(out)}
    proc = subprocess.run([sys.executable, "-c", _INLINE_SCRIPT, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-800:]
    with np.load(out) as data:
        fresh = {k: data[k] for k in X.METRICS}
    pool = X.grid_study(TINY, AXES, N_SEEDS, SEED, sweeps=SweepOptions(processes=2))
    assert pool["failures"] == [] and _same(fresh, pool), _diff(fresh, pool)
    assert _same(res, pool), _diff(res, pool)  # the in-process inline run too
    other = X.grid_study(TINY, AXES, N_SEEDS, SEED + 1)
    assert not np.array_equal(res["mse"], other["mse"])


def test_pruned_and_unpruned_runs_are_paired_by_seed(inline):
    pts = X.grid_points(TINY, AXES, N_SEEDS, SEED)
    seeds = pts[0]["train_seeds"]
    assert len(seeds) == N_SEEDS and all(p["train_seeds"] == seeds for p in pts)
    assert list(inline["eps_min"]) == [0.1, 0.3] and list(inline["prune_rate"]) == [0.0, 0.5]
    # recompute two values independently of the sweep: the unpruned and the pruned run of replicate 1, eps 0.3
    for c, rate in enumerate((0.0, 0.5)):
        cfg = TINY.with_(eps_min=0.3, prune_rate=rate)
        run = ip.simulate_sgd(cfg, seeds[1])
        direct = ip.evaluate(run, seeds[1] + 1) | ip.pruning_flow_effect(run)
        assert all(inline[k][1, 0, c, 1] == direct[k] for k in X.METRICS)
        if rate > 0:
            # the pruned run is the unpruned one up to the pruning step: same initial and pre-pruning records
            plain = ip.simulate_sgd(cfg.with_(prune_rate=0.0), seeds[1])
            k = int(np.searchsorted(run.t, run.params["prune_step"]))  # records before the pruning step
            assert k >= 2 and np.array_equal(run.observable("W")[:k], plain.observable("W")[:k])
            assert not np.array_equal(run.observable("W")[-1], plain.observable("W")[-1])
    # pruning changes the outcome, so the pairing above is not between identical runs
    assert not np.array_equal(inline["mse"][:, :, 0], inline["mse"][:, :, 1])


def test_more_replicates_start_with_the_same_ones():
    # a sweep with more replicates pairs its first ones with a smaller sweep of the same seed (the pruning and
    # Theorem 3.2 claims compare runs of sweeps with 3 and 6 replicates)
    few, many = (X.grid_points(TINY, AXES, n, SEED)[0]["train_seeds"] for n in (N_SEEDS, 2 * N_SEEDS))
    assert many[:N_SEEDS] == few and len(set(many)) == 2 * N_SEEDS


def test_store_resume_recomputes_only_missing_points(tmp_path, inline):
    store = tmp_path / "store"
    pts = X.grid_points(TINY, AXES, N_SEEDS, SEED)
    first = sweep(X.grid_point, pts[:3], seed=SEED, processes=1, store=store)  # "interrupted" after 3 of 4
    assert first.statuses == ["ok"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert len(stamps) == 3
    full = sweep(X.grid_point, pts, seed=SEED, processes=1, store=store)
    assert [p.resumed for p in full.points] == [True] * 3 + [False]
    assert all(store.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())  # not rewritten
    assert all(np.array_equal(full.grid(tuple(AXES), k).values, inline[k]) for k in X.METRICS)
    # the study entry point with the same store recomputes nothing and gives the same numbers
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    again = X.grid_study(TINY, AXES, N_SEEDS, SEED, sweeps=SweepOptions(store=store))
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps and _same(again, inline)
    # a different base configuration does not reuse the stored points
    changed = sweep(X.grid_point, X.grid_points(TINY.with_(steps=40), AXES, N_SEEDS, SEED)[:1], seed=SEED,
                    processes=1, store=store)
    assert not changed.points[0].resumed


def test_failing_point_is_reported_and_left_out(inline):
    class Broken(SweepOptions):
        """Runs the sweep with one point made invalid: [eps 1, nsr 0, rate 0] gets lam = -1."""

        def sweep(self, fn, points, *, seed=0, desc="sweep"):
            points = list(points)
            points[2] = {**points[2], "config": {**points[2]["config"], "lam": -1.0}}
            return super().sweep(fn, points, seed=seed, desc=desc)

    res = X.grid_study(TINY, AXES, N_SEEDS, SEED, sweeps=Broken(), desc="tiny sweep")
    assert len(res["failures"]) == 1
    line = res["failures"][0]
    assert line.startswith("tiny sweep: eps_min=0.3 nsr=1 prune_rate=0: error:") and "InvalidParameterError" in line
    assert "lam" in line
    bad = np.zeros((2, 1, 2, 2), dtype=bool)
    bad[1, 0, 0, :] = True  # every replicate of the failed point
    for k in X.METRICS:
        assert np.all(np.isnan(res[k][bad])), k
        assert np.array_equal(res[k][~bad], inline[k][~bad]), k


def test_report_lists_failed_points_and_claims_skip_them(tmp_path, monkeypatch, inline):
    """reproduce on stubbed sweeps (real stage runs of a tiny configuration): a failed point goes to the notes,
    the means skip it."""
    grid = {k: np.array(v, dtype=np.float64) for k, v in inline.items() if k not in ("failures", "desc")}
    failed = {k: v.copy() for k, v in grid.items()}
    for k in X.METRICS:
        failed[k][0, 0, 1, 0] = np.nan  # the pruned run of [eps 0, nsr 0, replicate 0] failed
    line = "eps/NSR/pruning sweep: eps_min=0.1 nsr=1 prune_rate=0.5: error: SolveError: diverged"

    def fake_grid_study(base, axes, n_seeds, seed=0, *, desc="eps/NSR/pruning sweep", keys=X.METRICS, **kw):
        if "d1" in axes:
            d1 = np.asarray(axes["d1"], dtype=float)
            T = np.broadcast_to(100 * np.log(d1)[:, None], (d1.size, n_seeds)).copy()
            return {"T1_sgd": T, "T1_flow": T * 1.1, "n_neurons": np.ones_like(T), "d1": d1, "failures": []}
        if "width" in axes:
            return {"count_minor": np.ones((3, 1, n_seeds)) * np.array([1.0, 2.0, 4.0])[:, None, None],
                    "width": np.array(axes["width"], dtype=float), "nsr": np.ones(1), "failures": []}
        if "tau" in axes or "lam" in axes:  # the temperature check: coefficients that follow its scaling exactly
            x = np.asarray(next(iter(axes.values())), dtype=float)
            scale = np.sqrt(x) if "tau" in axes else np.ones_like(x)
            return {**{k: np.broadcast_to(scale[:, None], (x.size, n_seeds)).copy() for k in X.METRICS},
                    "failures": []}
        if desc == "eps/NSR/pruning sweep":
            return {**failed, "failures": [line]}
        return {**grid, "failures": []}

    monkeypatch.setattr(X, "grid_study", fake_grid_study)
    monkeypatch.setattr(X, "default_config", lambda quick=True: TINY)
    monkeypatch.setattr(X, "mc_gradient_check",
                        lambda cfg, a, r, n, seed=0: (np.ones(cfg.d + 1), np.ones(cfg.d + 1), np.zeros(cfg.d + 1)))
    report = Study(ip.name, ip.title, tmp_path, claim_names=ip.claim_names).run(ip.reproduce)
    assert not any(c.name.endswith("_runs") for c in report.claims), [c.details for c in report.claims]
    temperature = next(c for c in report.claims if c.name == "minority_coefficient_temperature_scaling")
    assert temperature.measured == pytest.approx(0.0, abs=1e-12) and temperature.passed
    assert temperature.details["exponent_in_tau"]["slope"] == pytest.approx(0.5, rel=1e-9)
    # the stubbed T1 grows like ln d1 (the setting with the noise norm fixed): Lemma 3.1's linear claim fails
    linear = next(c for c in report.claims if c.name == "stage1_time_linear_in_d1")
    assert not linear.passed and linear.details["slope"] < 0.4
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
    # a claim on unpruned runs only sees no failure: its mean is over all points
    dcount = grid["count_minor"][:, :, 0, :] - grid["count_major"][:, :, 0, :]
    claim = next(c for c in report.claims if c.name == "minority_fewer_neurons")
    assert claim.measured == pytest.approx(np.mean(dcount))


def test_temperature_claim_fails_for_a_coefficient_proportional_to_tau(tmp_path):
    from theorykit.theories.imbalanced_pruning import _claims as C

    tau, n = np.array([0.5, 1.0, 2.0]), 4
    temp = {"tau": tau, "lam": 1e-3, "failures": [],
            "at_tau": {"magnitude_minor": 3.0 * np.outer(tau, np.ones(n))},  # Theorem 3.2's a proportional to tau
            "at_lam_tau": {"magnitude_minor": np.full((tau.size, n), 3.0)}}
    report = Study("t", "t", tmp_path, claim_names=("minority_coefficient_temperature_scaling",)).run(
        lambda study: C.temperature_claim(study, temp))
    claim = report.claims[0]
    assert not claim.passed and claim.measured == pytest.approx(np.sqrt(2.0) - 1.0)
    assert claim.details["exponent_in_tau"]["slope"] == pytest.approx(1.0)


def test_temperature_study_needs_tau_one():
    with pytest.raises(InvalidParameterError, match="taus"):
        X.temperature_study(TINY, (0.5, 2.0), 2, 0)


def test_d1_study_holds_the_noise_per_coordinate(monkeypatch):
    seen = []

    def fake_grid_study(base, axes, n_seeds, seed=0, **kw):
        d1 = axes["d1"][0]
        seen.append(base.with_(d1=d1).sigma)
        T = np.full((1, n_seeds), float(d1))
        return {"T1_sgd": T, "T1_flow": T, "n_neurons": np.ones_like(T), "d1": np.array([float(d1)]), "failures": []}

    monkeypatch.setattr(X, "grid_study", fake_grid_study)
    res = X.d1_study(TINY, (8, 32, 128), 2, 0)
    assert seen == pytest.approx([TINY.sigma] * 3, rel=1e-12)  # the noise norm grows as sqrt(d1)
    assert res["T1_sgd"].shape == (3, 2) and list(res["d1"]) == [8.0, 32.0, 128.0] and res["sigma"] == TINY.sigma
