"""Phase diagrams and basins (ensemble integration) against theory; classifiers; save/load; plots."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import (BasinMap, PhaseDiagram, basin_map, find_fixed_points, load_result,
                                nearest_attractor_classifier, phase_diagram, support_classifier)
from theorykit.compile import compile_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import reference as R


@pytest.fixture(scope="module")
def well():
    return compile_system(R.double_well())


@pytest.fixture(scope="module")
def cubic():
    return compile_system(R.eigenmode_cubic())


def _well_classifier(c):
    stable = [fp for fp in find_fixed_points(c, {}) if fp.stable]
    names = ["left" if fp.y[0] < 0 else "right" for fp in stable]
    return nearest_attractor_classifier(np.array([fp.y for fp in stable]), names)


def test_double_well_basins_are_half_and_half(well):
    classify, labels = _well_classifier(well)
    n = 20000
    y0 = np.random.default_rng(7).uniform(-2.0, 2.0, size=(n, 2))
    bm = basin_map(well, {}, y0, t_final=30.0, classify=classify, labels=labels)
    left, se = bm.fraction("left")
    right, _ = bm.fraction("right")
    assert se == pytest.approx(np.sqrt(left * (1 - left) / n))
    # symmetric well: each basin is half the square, within 4 standard errors
    assert abs(left - 0.5) < 4 * se and abs(right - 0.5) < 4 * se
    assert left + right == pytest.approx(1.0)
    # and every initial condition went to the side of its sign (x = 0 is the stable manifold of the saddle)
    side = np.where(y0[:, 0] < 0, labels.index("left"), labels.index("right"))
    np.testing.assert_array_equal(bm.labels, side)


def test_basin_grid_over_two_states_and_roundtrip(well, tmp_path):
    classify, labels = _well_classifier(well)
    x = np.linspace(-1.5, 1.5, 31)
    y = np.linspace(-1.0, 1.0, 11)
    bm = basin_map(well, {}, {"x": x, "y": y}, t_final=30.0, classify=classify, labels=labels)
    assert bm.labels.shape == (31, 11) and bm.axes == ("x", "y")
    X = np.meshgrid(x, y, indexing="ij")[0]
    expected = np.select([X < 0, X > 0], [labels.index("left"), labels.index("right")], labels.index("other"))
    np.testing.assert_array_equal(bm.labels, expected)
    bm.save(tmp_path / "basins")
    back = load_result(tmp_path / "basins")
    assert isinstance(back, BasinMap)
    np.testing.assert_array_equal(back.labels, bm.labels)
    np.testing.assert_array_equal(back.fractions, bm.fractions)
    assert back.label_names == bm.label_names and back.axes == ("x", "y")


def _survives(tau, p0, E, S):
    """A mode survives iff the nonzero roots exist and p0 lies above the unstable (saddle) root."""
    a = 1.0 + S
    disc = tau ** 2 - 4.0 * a * E
    p_minus = (tau - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    return (disc >= 0) & (p0 > p_minus)


def _theory_labels(eta, s2):
    E, S = np.meshgrid(eta, s2, indexing="ij")
    m1, m2 = _survives(1.0, 0.5, E, S), _survives(0.5, 0.5, E, S)
    return np.where(m1 & m2, "p1+p2", np.where(m1, "p1", np.where(m2, "p2", "collapse")))


def test_phase_diagram_matches_fixed_point_theory(cubic, tmp_path):
    eta = np.linspace(0.0, 0.3, 31)
    s2 = np.linspace(0.0, 2.0, 21)
    pd = phase_diagram(cubic, {"eta": eta, "sigma2": s2}, {"tau": 1.0, "tau2": 0.5}, {"p1": 0.5, "p2": 0.5},
                       t_final=400.0)
    assert pd.labels.shape == (31, 21) and pd.axes == ("eta", "sigma2")
    got = np.array(pd.label_names)[pd.labels]
    theory = _theory_labels(eta, s2)
    assert (got == theory).mean() > 0.97
    # every disagreement sits next to a phase boundary (slow passage near a fold at finite t_final):
    # one grid step away in eta or sigma2 the theory gives the label that was measured
    d_eta, d_s2 = eta[1] - eta[0], s2[1] - s2[0]
    for i, j in np.argwhere(got != theory):
        near = {_theory_labels(np.array([eta[i] + a * d_eta]), np.array([s2[j] + b * d_s2]))[0, 0]
                for a in (-1, 0, 1) for b in (-1, 0, 1)}
        assert got[i, j] in near, (eta[i], s2[j], got[i, j], theory[i, j])
    pd.save(tmp_path / "pd")
    back = load_result(tmp_path / "pd")
    assert isinstance(back, PhaseDiagram)
    np.testing.assert_array_equal(back.labels, pd.labels)
    assert back.fractions() == pd.fractions() and back.base_params == {"tau": 1.0, "tau2": 0.5}


def test_classifiers():
    classify, labels = support_classifier(["a", "b"], tol=1e-3)
    final = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, -0.5], [1.0, 1.0], [np.nan, 0.0], [1e9, 0.0]])
    assert [labels[k] for k in classify(final)] == ["collapse", "a", "b", "a+b", "diverged", "diverged"]
    classify, labels = support_classifier(["a", "b"], tol=1e-3, coarse=True)
    assert [labels[k] for k in classify(final)] == ["collapse", "nonzero", "nonzero", "nonzero", "diverged",
                                                    "diverged"]
    classify, labels = nearest_attractor_classifier([[1.0, 0.0], [-1.0, 0.0]], ["R", "L"], tol=1e-2)
    final = np.array([[1.001, 0.0], [-0.999, 0.0], [0.0, 0.0], [np.inf, 0.0]])
    assert [labels[k] for k in classify(final)] == ["R", "L", "other", "diverged"]


def test_phase_and_basin_bad_inputs(well, cubic):
    base = {"tau": 1.0, "tau2": 0.5}
    y0 = {"p1": 0.5, "p2": 0.5}
    with pytest.raises(InvalidParameterError, match="exactly two"):
        phase_diagram(cubic, {"eta": [0.1]}, base, y0, t_final=1.0)
    with pytest.raises(InvalidParameterError, match="not parameters"):
        phase_diagram(cubic, {"eta": [0.1], "zeta": [1.0]}, base, y0, t_final=1.0)
    with pytest.raises(InvalidParameterError, match="t_final"):
        phase_diagram(cubic, {"eta": [0.1], "sigma2": [1.0]}, base, y0, t_final=-1.0)
    with pytest.raises(InvalidParameterError, match="y0"):
        phase_diagram(cubic, {"eta": [0.1], "sigma2": [1.0]}, base, None, t_final=1.0)
    with pytest.raises(InvalidParameterError, match="label names"):
        basin_map(well, {}, np.zeros((3, 2)), t_final=1.0, classify=lambda f: np.full(len(f), 5), labels=("a",))
    with pytest.raises(InvalidParameterError, match="shape"):
        basin_map(well, {}, np.zeros((3, 3)), t_final=1.0)
    with pytest.raises(InvalidParameterError, match="not states"):
        basin_map(well, {}, {"x": [0.0], "q": [1.0]}, t_final=1.0)


def test_plots_render_and_save(well, cubic, tmp_path):
    from theorykit.analysis import (continue_branch, plot_basins, plot_bifurcation, plot_phase_diagram,
                                    plot_phase_portrait)

    fig = plot_phase_portrait(well, {}, path=tmp_path / "pp.png")
    assert (tmp_path / "pp.png").stat().st_size > 5000
    ax = fig.axes[0]
    # fixed points: filled = stable (two minima), open = unstable (the saddle)
    faces = [ln.get_markerfacecolor() for ln in ax.lines if ln.get_marker() == "o" and ln.get_xdata().size == 1]
    assert sorted(map(str, faces)).count("k") == 2 and sorted(map(str, faces)).count("white") == 1
    c = compile_system(R.saddle_node())
    plot_phase_portrait(c, {"r": -1.0}, path=tmp_path / "line.png")
    br = continue_branch(c, [-1.0], {"r": -1.0}, "r", (-1.0, 0.5))
    fig = plot_bifurcation(br, "x", path=tmp_path / "bif.png")
    styles = {ln.get_linestyle() for ln in fig.axes[0].lines if ln.get_xdata().size > 1}
    assert styles == {"-", "--"}
    classify, labels = _well_classifier(well)
    bm = basin_map(well, {}, {"x": np.linspace(-2, 2, 21), "y": np.linspace(-1, 1, 11)}, t_final=20.0,
                   classify=classify, labels=labels)
    plot_basins(bm, path=tmp_path / "basins.png")
    bm2 = basin_map(well, {}, np.random.default_rng(0).uniform(-1, 1, (200, 2)), t_final=20.0,
                    classify=classify, labels=labels)
    plot_basins(bm2, path=tmp_path / "basins2.png")
    pd = phase_diagram(cubic, {"eta": np.linspace(0, 0.3, 8), "sigma2": np.linspace(0, 2, 6)},
                       {"tau": 1.0, "tau2": 0.5}, {"p1": 0.5, "p2": 0.5}, t_final=50.0)
    plot_phase_diagram(pd, path=tmp_path / "pd.png")
    for name in ("line.png", "bif.png", "basins.png", "basins2.png", "pd.png"):
        assert (tmp_path / name).stat().st_size > 5000
