"""The theories' validation sweeps through ``theorykit.sweep``: backends agree, resume, failures per point."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.sweep import sweep
from theorykit.theories.barlow_ntk import _experiment as bx
from theorykit.theories.barlow_ntk import _reproduce as br


# ---------------------------------------------------------------------------------------------- Barlow Twins
# minibatches of 4 of the 6 pairs, so each point's own sweep seed drives its SGD noise
TINY = bx.SweepConfig(widths=(16, 48), n_seeds=2, n_train=6, n_eval=4, d=4, lr=0.05, t_end=1.0, n_checkpoints=2,
                      record_every=5, n_population=50, batch_size=4)
ARRAYS = ("ntk_change", "ntk_change_t", "ntk_init_fluct", "weight_dist", "gap_eval", "gap_train", "L0", "t_hit",
          "loss_net", "loss_lin", "loss_ode")


def _same(a: dict, b: dict, keys=ARRAYS) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in keys)


@pytest.fixture(scope="module")
def barlow_inline():
    return bx.run_width_sweep(TINY, seed=3, processes=1)


@pytest.mark.slow
def test_barlow_width_sweep_inline_equals_process_pool(barlow_inline):
    res = barlow_inline
    assert res["failures"] == []
    assert res["ntk_change"].shape == (2, 2) and res["loss_net"].shape == (2, 2, TINY.n_steps // 5 + 1)
    assert all(np.all(np.isfinite(res[k])) for k in ARRAYS if k != "t_hit")
    pool = bx.run_width_sweep(TINY, seed=3, processes=2)
    assert pool["failures"] == [] and _same(res, pool)
    # the numbers depend on the seed, so the equality above is not trivial
    other = bx.run_width_sweep(TINY, seed=4, processes=1)
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
    assert _same(bx.collect_width_sweep(TINY, full), barlow_inline)
    # the public entry point with the same store recomputes nothing and gives the same numbers
    again = bx.run_width_sweep(TINY, seed=3, store=store)
    assert len(list(store.iterdir())) == 4 and _same(again, barlow_inline)


def test_barlow_failing_point_is_reported_and_left_out(barlow_inline, tmp_path, monkeypatch):
    pts = bx.width_sweep_points(TINY, seed=3)
    pts[1] = {**pts[1], "M": 0}  # an invalid width in one point
    result = sweep(bx.width_point, pts, seed=3, processes=1)
    assert result.statuses == ["ok", "error", "ok", "ok"]
    res = bx.collect_width_sweep(TINY, result)
    assert len(res["failures"]) == 1 and "M=0" in res["failures"][0] and "InvalidParameterError" in res["failures"][0]
    # the failed point is NaN at [width 1, replicate 0]; every other point is the clean run's
    bad = np.zeros((2, 2), dtype=bool)
    bad[1, 0] = True
    for k in ARRAYS:
        assert np.all(np.isnan(res[k][bad])), k
        assert np.array_equal(res[k][~bad], barlow_inline[k][~bad]), k
    fit = br._fit(res["widths"], res["weight_dist"])
    assert fit.n_points == 3
    # the report lists the failure in its notes and still evaluates its claims on the other points
    gen = {"test_loss": 0.1, "bound": 1.0, "bound_ratio": 10.0, "deviation": 0.3, "deviation_bound": 0.9,
           "deviation_ratio": 3.0, "deviation_se": 0.01, "second_moment": 2.0, "second_moment_se": 0.01,
           "n_moment": 100, "delta": 0.05}
    monkeypatch.setattr(br, "run_width_sweep", lambda cfg, seed, **kw: bx.collect_width_sweep(TINY, result))
    monkeypatch.setattr(br, "generalization_check", lambda cfg, seed: gen)
    report = br.reproduce(tmp_path, quick=True, seed=3)
    failed_notes = [n for n in report.notes if "failed" in n]
    assert len(failed_notes) == 1 and "M=0" in failed_notes[0]
    weights = next(c for c in report.claims if c.name == "weights_in_width_independent_ball")
    assert np.isfinite(weights.measured) and weights.measured == pytest.approx(fit.slope)


