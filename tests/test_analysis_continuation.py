"""Continuation: normal forms with known bifurcation points, branch shapes against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import Branch, continue_branch, find_fixed_points, load_result
from theorykit.compile import compile_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import reference as R


@pytest.fixture(scope="module")
def systems():
    return {name: compile_system(getattr(R, name)())
            for name in ("saddle_node", "transcritical", "pitchfork", "hopf", "eigenmode_cubic")}


def test_saddle_node_fold_located(systems):
    c = systems["saddle_node"]
    (start,) = [fp for fp in find_fixed_points(c, {"r": -1.0}) if fp.stable]
    br = continue_branch(c, start, {"r": -1.0}, "r", (-1.0, 0.5))
    folds = br.special("fold")
    assert len(folds) == 1 and not br.special("branch_point") and not br.special("hopf")
    assert abs(folds[0].param_value) < 1e-6
    assert abs(folds[0].y[0]) < 1e-3
    # the branch is r = -x^2, stable (x < 0) then unstable (x > 0); it turns at the fold
    np.testing.assert_allclose(br.param_values, -br.states[:, 0] ** 2, atol=1e-9)
    x = br.states[:, 0]
    assert np.all(br.stable[x < -1e-3]) and not np.any(br.stable[x > 1e-3])
    assert x[0] == pytest.approx(-1.0) and x[-1] == pytest.approx(1.0)
    assert br.stop_reason == "bounds"


def test_transcritical_branch_point(systems):
    c = systems["transcritical"]
    triv = continue_branch(c, [0.0], {"r": -1.0}, "r", (-1.0, 1.0))
    (bp,) = triv.special_points
    assert bp.kind == "branch_point" and abs(bp.param_value) < 1e-6
    np.testing.assert_allclose(triv.states[:, 0], 0.0, atol=1e-12)
    # x = 0 is stable for r < 0, unstable for r > 0: the exchange of stability
    r = triv.param_values
    assert np.all(triv.stable[r < -1e-6]) and not np.any(triv.stable[r > 1e-6])
    other = continue_branch(c, [-1.0], {"r": -1.0}, "r", (-1.0, 1.0))
    np.testing.assert_allclose(other.states[:, 0], other.param_values, atol=1e-9)
    assert [sp.kind for sp in other.special_points] == ["branch_point"]
    assert abs(other.special_points[0].param_value) < 1e-6
    assert not np.any(other.stable[other.param_values < -1e-6])
    assert np.all(other.stable[other.param_values > 1e-6])


def test_pitchfork(systems):
    c = systems["pitchfork"]
    triv = continue_branch(c, [0.0], {"r": -1.0}, "r", (-1.0, 1.0))
    assert [sp.kind for sp in triv.special_points] == ["branch_point"]
    assert abs(triv.special_points[0].param_value) < 1e-6
    # the symmetric branch x^2 = r turns at the pitchfork point, which is a branch point (not a fold)
    sym = continue_branch(c, [1.0], {"r": 1.0}, "r", (-1.0, 1.0), direction=-1)
    np.testing.assert_allclose(sym.param_values, sym.states[:, 0] ** 2, atol=1e-9)
    assert [sp.kind for sp in sym.special_points] == ["branch_point"]
    assert abs(sym.special_points[0].param_value) < 1e-6
    assert sym.states[-1, 0] == pytest.approx(-1.0)
    assert np.all(sym.stable[np.abs(sym.states[:, 0]) > 1e-3])


def test_hopf_located_and_eigenvalues_follow_closed_form(systems):
    c = systems["hopf"]
    br = continue_branch(c, [0.0, 0.0], {"mu": -1.0, "omega": 1.5}, "mu", (-1.0, 1.0))
    (h,) = br.special_points
    assert h.kind == "hopf" and abs(h.param_value) < 1e-6
    np.testing.assert_allclose(h.eigenvalues, [h.param_value + 1.5j, h.param_value - 1.5j], atol=1e-8)
    mu = br.param_values
    np.testing.assert_allclose(br.eigenvalues[:, 0], mu + 1.5j, atol=1e-9)
    assert np.all(br.stable[mu < -1e-6]) and not np.any(br.stable[mu > 1e-6])


def test_fold_of_the_eigenmode_cubic(systems):
    c = systems["eigenmode_cubic"]
    p = {"eta": 0.05, "sigma2": 0.5, "tau": 1.0, "tau2": 0.5}
    br = continue_branch(c, [0.6, 0.0], p, "eta", (0.0, 0.3), direction=0)
    (fold,) = br.special("fold")
    # (1 + sigma2) p^2 - tau p + eta = 0 has a double root at eta = tau^2 / (4 (1 + sigma2))
    assert fold.param_value == pytest.approx(1.0 / 6.0, abs=1e-8)
    assert fold.y[0] == pytest.approx(1.0 / 3.0, abs=1e-4)
    # both halves joined, the parameter starts and ends on the bounds
    assert br.param_values[0] == pytest.approx(0.0) and br.param_values[-1] == pytest.approx(0.0)
    assert br.special_points[0].index > 0 and br.param_values[br.special_points[0].index] == fold.param_value


def test_branch_save_load_roundtrip(systems, tmp_path):
    c = systems["hopf"]
    br = continue_branch(c, [0.0, 0.0], {"mu": -1.0, "omega": 1.0}, "mu", (-1.0, 1.0))
    br.save(tmp_path / "b")
    back = load_result(tmp_path / "b")
    assert isinstance(back, Branch)
    np.testing.assert_array_equal(back.param_values, br.param_values)
    np.testing.assert_array_equal(back.eigenvalues, br.eigenvalues)
    assert [(s.kind, s.param_value, s.index) for s in back.special_points] == \
        [(s.kind, s.param_value, s.index) for s in br.special_points]
    assert back.params == {"omega": 1.0}


def test_continuation_bad_inputs(systems):
    c = systems["saddle_node"]
    with pytest.raises(InvalidParameterError, match="not a parameter"):
        continue_branch(c, [-1.0], {"r": -1.0}, "q")
    with pytest.raises(InvalidParameterError, match="outside bounds"):
        continue_branch(c, [-1.0], {"r": -1.0}, "r", (0.0, 1.0))
    with pytest.raises(InvalidParameterError, match="Newton did not converge"):
        continue_branch(c, [3.0], {"r": 1.0}, "r", (-1.0, 1.0))
    with pytest.raises(InvalidParameterError, match="direction"):
        continue_branch(c, [-1.0], {"r": -1.0}, "r", direction=2)
    with pytest.raises(InvalidParameterError, match="ds"):
        continue_branch(c, [-1.0], {"r": -1.0}, "r", ds=-0.1)


def test_bifurcations_on_nontrivial_branches():
    from theorykit.derive import make_system

    # Brusselator: equilibrium (a, b/a) moves with b; Hopf at b = 1 + a^2
    bru = compile_system(make_system(["x", "y"], ["a - (b + 1)*x + x**2*y", "b*x - x**2*y"], ["a", "b"],
                                     name="brusselator"))
    br = continue_branch(bru, [1.5, 1.0 / 1.5], {"a": 1.5, "b": 1.0}, "b", (0.5, 5.0))
    (h,) = br.special_points
    assert h.kind == "hopf" and h.param_value == pytest.approx(1 + 1.5 ** 2, abs=1e-6)
    np.testing.assert_allclose(h.y, [1.5, h.param_value / 1.5], atol=1e-8)
    np.testing.assert_allclose(br.states[:, 1], br.param_values / 1.5, atol=1e-9)
    # a coupled fold: y = x, r = x^2 + x turns at x = -1/2, r = -1/4
    fold2 = compile_system(make_system(["x", "y"], ["r - x**2 - y", "x - y"], ["r"], name="fold2"))
    br = continue_branch(fold2, [1.0, 1.0], {"r": 2.0}, "r", (-1.0, 3.0), direction=0)
    (f,) = br.special_points
    assert f.kind == "fold" and f.param_value == pytest.approx(-0.25, abs=1e-9)
    np.testing.assert_allclose(f.y, [-0.5, -0.5], atol=1e-4)
    # Hopf with a third, strongly damped and coupled direction (the test function's extra factors stay > 0)
    h3 = compile_system(make_system(["x", "y", "z"], ["mu*x - y - x*(x**2 + y**2) + z",
                                                      "x + mu*y - y*(x**2 + y**2)", "-2*z + x*y"],
                                    ["mu"], name="hopf3"))
    br = continue_branch(h3, [0.0, 0.0, 0.0], {"mu": -1.0}, "mu", (-1.0, 1.0))
    assert [sp.kind for sp in br.special_points] == ["hopf"]
    assert abs(br.special_points[0].param_value) < 1e-6


def test_neutral_saddle_is_not_a_hopf_point():
    from theorykit.derive import make_system

    # eigenvalues (a, -1): their sum crosses zero at a = 1 (the Hopf test function vanishes) but they are
    # real, so no Hopf point may be reported; the real eigenvalue a crosses zero at a = 0 (branch point)
    c = compile_system(make_system(["x", "y"], ["a*x", "-y"], ["a"], name="neutral_saddle"))
    br = continue_branch(c, [0.0, 0.0], {"a": -0.5}, "a", (-0.5, 1.5))
    assert [sp.kind for sp in br.special_points] == ["branch_point"]
    assert abs(br.special_points[0].param_value) < 1e-9
