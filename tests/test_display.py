"""Rich display in Jupyter: LaTeX of systems, HTML of solutions, fixed points, branches and claim tables."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from theorykit import make_system
from theorykit.analysis import continue_branch, find_fixed_points
from theorykit.compile import compile_system
from theorykit.solve import solve, solve_ensemble
from theorykit.validate import Claim, TheoryReport


def parse(html: str) -> ET.Element:
    """The HTML as an element tree: fails unless tags are balanced and text is escaped."""
    return ET.fromstring(html)


def rows(element: ET.Element) -> list[list[str]]:
    """Every table row as the text of its cells."""
    return [["".join(cell.itertext()) for cell in tr] for tr in element.iter("tr")]


@pytest.fixture(scope="module")
def fold():
    """x' = r - x^2: equilibria +-sqrt(r), the positive one stable, meeting in a fold at r = 0."""
    return compile_system(make_system(["x"], ["r - x**2"], params=["r"], observed={"energy": "x**2/2"}))


def test_system_latex_shows_the_equations():
    system = make_system(["p", "s"], ["-eta*p + p*s", "sigma2 - s"], observed={"loss_total": "p**2"})
    latex = system._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert r"\dot{p} &= - \eta p + p s" in latex
    assert r"\dot{s} &= - s + \sigma_{2}" in latex
    assert r"\mathrm{loss\_total} &= p^{2}" in latex


def test_solution_html_has_status_steps_and_final_state(fold):
    sol = solve(fold, {"x": 2.0}, (0.0, 40.0), {"r": 1.0})
    html = sol._repr_html_()
    tree = parse(html)
    text = "".join(tree.itertext())
    assert "SUCCESS" in text and sol.status.message in text
    assert f"n_steps {sol.stats['n_steps']}" in text
    assert rows(tree)[1][0] == "x" and float(rows(tree)[1][1]) == pytest.approx(1.0, abs=1e-5)


def test_failed_solution_html_says_why(fold):
    sol = solve(fold, {"x": -2.0}, (0.0, 40.0), {"r": 1.0}, throw=False)  # below -1: finite-time blow-up
    assert not sol.success
    text = "".join(parse(sol._repr_html_()).itertext())
    assert sol.status.name in text and sol.status.message in text


def test_ensemble_html_counts_statuses(fold):
    y0 = np.array([[2.0], [0.5], [-2.0]])
    ens = solve_ensemble(fold, y0, (0.0, 40.0), {"r": 1.0}, progress=False)
    tree = parse(ens._repr_html_())
    table_rows = rows(tree)
    counts = {r[0]: int(r[1]) for r in table_rows if r and r[0] in ("SUCCESS", "BLOW_UP", "NON_FINITE",
                                                                     "STEP_SIZE_UNDERFLOW", "MAX_STEPS")}
    assert counts.get("SUCCESS") == 2 and sum(counts.values()) == 3
    final = [r for r in table_rows if r and r[0] == "x"][0]
    assert [float(v) for v in final[1:]] == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)


def test_fixed_point_html_has_stability(fold):
    fps = find_fixed_points(fold, {"r": 1.0}, bounds=(-2.0, 2.0))
    stable = [fp for fp in fps if fp.stable][0]
    text = "".join(parse(stable._repr_html_()).itertext())
    assert "stable node" in text and "stable: yes" in text and "-2" in text  # eigenvalue -2 sqrt(r)
    unstable = [fp for fp in fps if not fp.stable][0]
    assert "stable: no" in "".join(parse(unstable._repr_html_()).itertext())


def test_branch_html_lists_stability_and_the_fold(fold):
    start = [fp for fp in find_fixed_points(fold, {"r": 1.0}, bounds=(-2.0, 2.0)) if fp.stable][0]
    br = continue_branch(fold, start, {"r": 1.0}, param="r", bounds=(-0.5, 1.0), direction=-1)
    folds = br.special("fold")
    assert folds and abs(folds[0].param_value) < 1e-6
    table_rows = rows(parse(br._repr_html_()))
    stability = [r[3] for r in table_rows if r and r[-1] in ("stable", "unstable")]
    assert stability[0] == "stable" and "unstable" in stability
    fold_rows = [r for r in table_rows if len(r) > 1 and r[1] == "fold"]
    assert len(fold_rows) == 1 and abs(float(fold_rows[0][0])) < 1e-6


def test_report_html_has_pass_and_fail_rows_and_escapes_user_text():
    report = TheoryReport("toy", "Toy <theory> & co", claims=[
        Claim("good", "x < 1 holds", 0.5, 1.0, 0.0, "le"),
        Claim("bad<b>", "the <script>alert(1)</script> claim", 3.0, 1.0, 0.5, "abs")],
        notes=["a note with <i>markup</i>"])
    html = report._repr_html_()
    assert "<script>" not in html and "<i>" not in html and "<b>" + "bad" not in html
    tree = parse(html)
    table = [r for r in rows(tree) if r and r[0] in ("PASS", "FAIL")]
    assert [r[0] for r in table] == ["PASS", "FAIL"]
    assert table[1][1] == "the <script>alert(1)</script> claim (bad<b>)"  # shown as text, not markup
    assert table[1][2:4] == ["3", "1"]
    text = "".join(tree.itertext())
    assert "Toy <theory> & co" in text and "1/2 pass" in text and "a note with <i>markup</i>" in text
    assert "FAIL bad<b>: measured 3" in text
