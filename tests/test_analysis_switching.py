"""Branch switching at transcritical and pitchfork points, against the closed-form branches."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import continue_branch, switch_branch
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import reference as R


def test_pitchfork_switches_onto_the_symmetric_branch():
    c = compile_system(R.pitchfork())
    triv = continue_branch(c, [0.0], {"r": -1.0}, "r", (-1.0, 1.0))
    sym = switch_branch(c, triv, bounds=(-1.0, 1.0))
    x, r = sym.states[:, 0], sym.param_values
    np.testing.assert_allclose(r, x ** 2, atol=1e-9)  # the symmetric branch x^2 = r
    # both halves x > 0 and x < 0, out to the bound r = 1, through the branch point in the middle
    assert sorted(x[[0, -1]]) == pytest.approx([-1.0, 1.0])
    assert np.all(np.diff(x) > 0)
    (bp,) = sym.special_points
    assert bp.kind == "branch_point" and abs(bp.param_value) < 1e-6 and abs(bp.y[0]) < 1e-6
    assert sym.states[bp.index, 0] == bp.y[0]
    assert np.all(sym.stable[np.abs(x) > 1e-3])  # supercritical: the new branch is stable
    assert sym.stop_reason == "bounds / bounds"


def test_transcritical_exchange_of_branches():
    c = compile_system(R.transcritical())
    triv = continue_branch(c, [0.0], {"r": -1.0}, "r", (-1.0, 1.0))
    other = switch_branch(c, triv, bounds=(-1.0, 1.0))
    np.testing.assert_allclose(other.states[:, 0], other.param_values, atol=1e-9)  # x = r
    r = other.param_values
    assert r.min() == pytest.approx(-1.0) and r.max() == pytest.approx(1.0)
    assert not np.any(other.stable[r < -1e-6]) and np.all(other.stable[r > 1e-6])


def test_pitchfork_away_from_the_origin_in_two_states():
    # X = x - 2: X' = (r - 1) X - X^3 - X y, y' = -y + X^2 / 2; symmetric branch y = X^2 / 2, r = 1 + 3 X^2 / 2
    c = compile_system(make_system(["x", "y"], ["(r - 1)*(x - 2) - (x - 2)**3 - (x - 2)*y", "-y + (x - 2)**2/2"],
                                   ["r"], name="offset_pitchfork"))
    triv = continue_branch(c, [2.0, 0.0], {"r": 0.0}, "r", (0.0, 3.0))
    new = switch_branch(c, triv, bounds=(0.0, 3.0), ds=0.02)
    X, y = new.states[:, 0] - 2.0, new.states[:, 1]
    np.testing.assert_allclose(y, X ** 2 / 2, atol=1e-9)
    np.testing.assert_allclose(new.param_values, 1 + 1.5 * X ** 2, atol=1e-9)
    assert X.min() < -1.0 and X.max() > 1.0
    assert new.special("branch_point")[0].param_value == pytest.approx(1.0, abs=1e-6)


def test_switching_needs_a_branch_point():
    c = compile_system(R.saddle_node())
    br = continue_branch(c, [-1.0], {"r": -1.0}, "r", (-1.0, 0.5))
    with pytest.raises(InvalidParameterError, match="no branch point"):
        switch_branch(c, br)
    t = compile_system(R.transcritical())
    triv = continue_branch(t, [0.0], {"r": -1.0}, "r", (-1.0, 1.0))
    with pytest.raises(InvalidParameterError, match="index"):
        switch_branch(t, triv, index=1)
