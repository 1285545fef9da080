"""The Study builder: timed sections, claims checked against the declared names, crash capture, figures in one
style, sweeps through one options object, and the report it returns."""

import numpy as np
import pytest

from theorykit.errors import InvalidParameterError
from theorykit.sweep import SweepOptions
from theorykit.validate import Study, fit_power_law

from sweep_functions import noisy_quadratic


def test_sections_claims_figures_and_the_report(tmp_path):
    study = Study("toy", "A toy theory", tmp_path / "toy", seed=3, claim_names=("good", "bad", "drawn"))
    with study.section("first"):
        study.claim("good", "one is one", 1.0, 1.0, 0.0)
    with study.section("second"):
        raise FloatingPointError("overflow in the second section")
    with study.section("third"):  # runs although the second crashed
        study.claim("bad", "two is one", 2.0, 1.0, 0.5)
        with study.figure("line.png", "A line.", figsize=(3, 2)) as (fig, ax):
            ax.plot([0, 1], [0, 1])
        study.claim("drawn", "the figure exists", float((tmp_path / "toy" / "line.png").exists()), None, 0,
                    "true", figures=("line.png",))
    study.note("a note")
    study.record(values=np.arange(3))
    report = study.report()
    assert report.theory == "toy" and report.title == "A toy theory"
    assert [c.name for c in report.claims] == ["good", "second_runs", "bad", "drawn"]
    assert [c.passed for c in report.claims] == [True, False, False, True]
    crash = report.claims[1]
    assert "FloatingPointError: overflow in the second section" == crash.details["error"]
    assert "Traceback" in crash.details["traceback"]
    assert {"first", "second", "third", "total_s"} <= set(report.timings)
    assert report.figures == {"line.png": "A line."}
    assert "a note" in report.notes and any("second" in n for n in report.notes)
    assert np.array_equal(report.numbers["values"], [0, 1, 2])


def test_undeclared_or_repeated_claims_are_errors(tmp_path):
    study = Study("toy", "t", tmp_path, claim_names=("a",))
    with pytest.raises(InvalidParameterError, match="not among the claims"):
        study.claim("b", "", 1.0, 1.0, 0.0)
    study.claim("a", "", 1.0, 1.0, 0.0)
    with pytest.raises(InvalidParameterError, match="twice"):
        study.claim("a", "", 1.0, 1.0, 0.0)
    with pytest.raises(InvalidParameterError, match="seed"):
        Study("toy", "t", tmp_path, seed=-1)


def test_a_crash_outside_sections_is_the_failed_claim_runs(tmp_path):
    def reproduce(study):
        study.claim("a", "", 1.0, 1.0, 0.0)
        raise RuntimeError("boom")

    report = Study("toy", "t", tmp_path).run(reproduce)
    assert [(c.name, c.passed) for c in report.claims] == [("a", True), ("runs", False)]


def test_a_figure_that_fails_to_draw_is_not_written(tmp_path):
    study = Study("toy", "t", tmp_path)
    with study.section("draw"):
        with study.figure("broken.png", "never") as (fig, ax):
            raise ValueError("bad data")
    assert not (tmp_path / "broken.png").exists() and study.report().figures == {}


def test_sweeps_use_the_study_options_and_a_store_per_theory(tmp_path):
    points = [{"x": float(x)} for x in range(3)]
    study = Study("toy", "t", tmp_path / "out", sweep_options=SweepOptions(store=tmp_path / "store").in_subfolder("toy"))
    res = study.sweep(noisy_quadratic, points, seed=1, desc="toy")
    assert len(list((tmp_path / "store" / "toy").glob("point-*.npz"))) == 3
    again = Study("toy", "t", tmp_path / "out", sweep_options=SweepOptions(store=tmp_path / "store" / "toy"))
    assert all(p.resumed for p in again.sweep(noisy_quadratic, points, seed=1).points)
    assert np.array_equal(res.values("y"), again.sweep(noisy_quadratic, points, seed=1).values("y"))
    # a theory without sweeps says that the store was not used
    quiet = Study("other", "t", tmp_path / "o", sweep_options=SweepOptions(store=tmp_path / "store" / "other"))
    assert any("runs no sweeps" in n for n in quiet.report().notes)
    with pytest.raises(InvalidParameterError, match="processes"):
        SweepOptions(processes=0)


def test_power_law_fit_omits_failed_points():
    x = np.array([10.0, 20.0, 40.0])
    y = np.array([[1.0, 1.1], [0.5, np.nan], [0.25, 0.26]])
    fit = fit_power_law(x, y, nan_policy="omit")
    assert fit.n_points == 5 and fit.slope == pytest.approx(-1.0, abs=0.05)
    keep = np.isfinite(y)
    assert fit.slope == fit_power_law(np.broadcast_to(x[:, None], y.shape)[keep], y[keep]).slope
    one_size = fit_power_law(x, np.where(x[:, None] == 20.0, y, np.nan), nan_policy="omit")
    assert np.isnan(one_size.slope) and one_size.n_points == 1
    with pytest.raises(InvalidParameterError, match="non-finite"):
        fit_power_law(x, y)
