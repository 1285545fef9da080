"""Two-parameter continuation of folds and Hopf points against closed forms of normal forms."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.analysis import (BifurcationCurve, continue_branch, continue_fold, continue_hopf, hopf_normal_form,
                                load_result)
from theorykit.compile import CompiledSystem, compile_derivatives, compile_system
from theorykit.derive import make_system
from theorykit.errors import CompileError, InvalidParameterError


@pytest.fixture(scope="module")
def cusp():
    return compile_system(make_system(["x"], ["a + b*x - x**3"], ["a", "b"], name="cusp"))


@pytest.fixture(scope="module")
def bogdanov_takens():
    return compile_system(make_system(["x", "y"], ["y", "b1 + b2*x + x**2 - x*y"], ["b1", "b2"], name="bt_normal_form"))


@pytest.fixture(scope="module")
def brusselator():
    return compile_system(make_system(["x", "y"], ["a - (b + 1)*x + x**2*y", "b*x - x**2*y"], ["a", "b"],
                                      name="brusselator"))


@pytest.fixture(scope="module")
def hopf_nf():
    # Hopf normal form with a cubic coefficient s and a stabilising quintic term (irrelevant for l1)
    return compile_system(make_system(
        ["x", "y"], ["mu*x - w*y + s*x*(x**2 + y**2) - x*(x**2 + y**2)**2",
                     "w*x + mu*y + s*y*(x**2 + y**2) - y*(x**2 + y**2)**2"], ["mu", "s", "w"], name="hopf_nf"))


def test_generated_derivatives_match_finite_differences():
    c = compile_system(make_system(["x", "y"], ["k*x*y**2 - sin(x) + k**2", "exp(-y)*x**3 + k*y"], ["k"],
                                   name="derivs"))
    d = compile_derivatives(c)
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=2), np.array([0.7])
    u, v, w = rng.normal(size=(3, 2))
    h = 1e-4

    def f(yy, pp=p):
        return c.rhs(0.0, yy, pp)

    fd_p = (f(y, p + h) - f(y, p - h)) / (2 * h)
    np.testing.assert_allclose(d.param_jac(y, p)[:, 0], fd_p, rtol=1e-7)
    B_fd = (f(y + h * u + h * v) - f(y + h * u - h * v) - f(y - h * u + h * v) + f(y - h * u - h * v)) / (4 * h * h)
    np.testing.assert_allclose(d.bilinear(y, p, u, v), B_fd, rtol=1e-6)
    # mixed state-parameter column: d/dk (J u)
    H = d.hessian_along(y, p, u)
    Ju = lambda pp: c.jac(0.0, y, pp) @ u  # noqa: E731
    np.testing.assert_allclose(H[:, 2], (Ju(p + h) - Ju(p - h)) / (2 * h), rtol=1e-7)
    C_fd = (d.bilinear(y + h * w, p, u, v) - d.bilinear(y - h * w, p, u, v)) / (2 * h)
    np.testing.assert_allclose(d.trilinear(y, p, u, v, w), C_fd, rtol=1e-7)
    # complex directions by multilinearity
    q = u + 1j * v
    np.testing.assert_allclose(d.bilinear(y, p, q, np.conj(q)), d.bilinear(y, p, u, u) + d.bilinear(y, p, v, v),
                               rtol=1e-12, atol=1e-14)


def test_cusp_fold_curve_and_cusp_point(cusp):
    br = continue_branch(cusp, [-1.0], {"a": 0.0, "b": 1.0}, "a", (-1.0, 1.0), direction=0)
    assert len(br.special("fold")) == 2
    cv = continue_fold(cusp, br, free=("a", "b"), bounds={"b": (-1.0, 1.0)})
    a, b = cv.param_of("a"), cv.param_of("b")
    x = cv.y_of("x")
    # fold curve 27 a^2 = 4 b^3, parametrised by the state: b = 3 x^2, a = -2 x^3
    np.testing.assert_allclose(27 * a ** 2, 4 * b ** 3, atol=1e-6)
    np.testing.assert_allclose(b, 3 * x ** 2, atol=1e-9)
    np.testing.assert_allclose(a, -2 * x ** 3, atol=1e-9)
    # both branches of the cusp, from one b = 1 end to the other
    assert b.min() < 1e-6 and np.sort(b[[0, -1]]) == pytest.approx([1.0, 1.0])
    (cp,) = cv.special_points
    assert cp.kind == "cusp" and abs(cp.params["a"]) < 1e-6 and abs(cp.params["b"]) < 1e-6 and abs(cp.y[0]) < 1e-6
    # the quadratic normal-form coefficient (1/2) p B(q, q) = -3 x q: |a_nf| = 3 |x|, vanishing at the cusp
    np.testing.assert_allclose(np.abs(cv.coefficients["a"]), 3 * np.abs(x), atol=1e-8)
    assert cv.stop_reason == "bounds / bounds"


def test_bogdanov_takens_fold_and_hopf_curves(bogdanov_takens):
    c = bogdanov_takens
    # at b2 = -1 the equilibria are y = 0, x^2 - x + b1 = 0: a fold at b1 = 1/4 and a Hopf point at b1 = 0
    br = continue_branch(c, [(1 + 5 ** 0.5) / 2, 0.0], {"b1": -1.0, "b2": -1.0}, "b1", (-1.0, 1.0), direction=0)
    assert sorted(sp.kind for sp in br.special_points) == ["fold", "hopf"]
    box = {"b1": (-1.0, 1.0), "b2": (-2.0, 2.0)}
    fold = continue_fold(c, br, free=("b1", "b2"), bounds=box)
    b1, b2 = fold.param_of("b1"), fold.param_of("b2")
    np.testing.assert_allclose(b2 ** 2, 4 * b1, atol=1e-6)
    np.testing.assert_allclose(fold.y_of("x"), -b2 / 2, atol=1e-6)
    (bt,) = fold.special_points
    assert bt.kind == "bogdanov_takens" and abs(bt.params["b1"]) < 1e-6 and abs(bt.params["b2"]) < 1e-6
    assert np.max(np.abs(bt.eigenvalues)) < 1e-5  # a double zero eigenvalue
    hopf = continue_hopf(c, br, free=("b1", "b2"), bounds=box)
    on = hopf.hopf_mask
    h1, h2 = hopf.param_of("b1"), hopf.param_of("b2")
    # Hopf curve b1 = 0 with b2 < 0 and frequency^2 = -b2; beyond BT it continues as neutral saddles (b2 > 0)
    np.testing.assert_allclose(h1, 0.0, atol=1e-6)
    assert np.all(h2[on] < 1e-6) and np.all(h2[~on] > -1e-6) and on.any() and (~on).any()
    np.testing.assert_allclose(hopf.coefficients["omega2"], -h2, atol=1e-6)
    (bt2,) = hopf.special_points
    assert bt2.kind == "bogdanov_takens" and abs(bt2.params["b1"]) < 1e-6 and abs(bt2.params["b2"]) < 1e-6
    l1 = hopf.coefficients["l1"]
    assert np.all(np.isnan(l1[~on])) and np.all(np.isfinite(l1[on & (h2 < -1e-3)]))


def test_brusselator_hopf_curve_is_supercritical(brusselator):
    br = continue_branch(brusselator, [1.5, 1.0 / 1.5], {"a": 1.5, "b": 1.0}, "b", (0.5, 5.0))
    cv = continue_hopf(brusselator, br, free=("a", "b"), bounds={"a": (0.2, 3.0)})
    a, b = cv.param_of("a"), cv.param_of("b")
    np.testing.assert_allclose(b, 1 + a ** 2, atol=1e-6)
    np.testing.assert_allclose(cv.states, np.column_stack([a, b / a]), atol=1e-6)
    np.testing.assert_allclose(cv.coefficients["omega2"], a ** 2, atol=1e-6)
    assert np.sort(a[[0, -1]]) == pytest.approx([0.2, 3.0])
    assert np.all(cv.coefficients["l1"] < 0) and not cv.special_points
    nf = hopf_normal_form(brusselator, br)
    assert nf.criticality == "supercritical" and nf.frequency == pytest.approx(1.5, abs=1e-8)


@pytest.mark.parametrize("s", [1.0, -1.0])
@pytest.mark.parametrize("w", [1.0, 2.0])
def test_first_lyapunov_coefficient_of_the_hopf_normal_form(hopf_nf, s, w):
    # In Z = x + i y the system is Z' = (mu + i w) Z + s Z|Z|^2 - Z|Z|^4. With q = (1, -i)/sqrt(2) (|q| = 1),
    # x = z q + conj(z q) gives Z = sqrt(2) z, so z' = (mu + i w) z + 2 s z|z|^2 + ...: c1 = 2 s and
    # l1 = Re(c1) / w = 2 s / w.
    nf = hopf_normal_form(hopf_nf, [0.0, 0.0], {"mu": 0.0, "s": s, "w": w})
    assert nf.l1 == pytest.approx(2 * s / w, abs=1e-9)
    assert np.sign(nf.l1) == np.sign(s)
    assert nf.criticality == ("subcritical" if s > 0 else "supercritical")
    assert nf.frequency == pytest.approx(w)


def test_generalized_hopf_point(hopf_nf):
    br = continue_branch(hopf_nf, [0.0, 0.0], {"mu": -1.0, "s": 0.5, "w": 1.0}, "mu", (-1.0, 1.0))
    cv = continue_hopf(hopf_nf, br, free=("mu", "s"), bounds={"s": (-1.0, 1.0)})
    np.testing.assert_allclose(cv.param_of("mu"), 0.0, atol=1e-9)
    np.testing.assert_allclose(cv.coefficients["l1"], 2 * cv.param_of("s"), atol=1e-8)
    (gh,) = cv.special_points
    assert gh.kind == "generalized_hopf" and abs(gh.params["s"]) < 1e-6 and abs(gh.details["l1"]) < 1e-6


def test_curve_save_load_roundtrip(cusp, tmp_path):
    cv = continue_fold(cusp, [-0.57735], {"a": 0.3849, "b": 1.0}, ("a", "b"), {"b": (-1.0, 1.0)})
    cv.save(tmp_path / "fold")
    back = load_result(tmp_path / "fold")
    assert isinstance(back, BifurcationCurve) and back.kind == "fold" and back.free == ("a", "b")
    np.testing.assert_array_equal(back.param_values, cv.param_values)
    np.testing.assert_array_equal(back.coefficients["a"], cv.coefficients["a"])
    assert [(sp.kind, sp.index, sp.params) for sp in back.special_points] == \
        [(sp.kind, sp.index, sp.params) for sp in cv.special_points]


def test_curve_bad_inputs(cusp, hopf_nf):
    with pytest.raises(InvalidParameterError, match="name the two parameters"):
        continue_fold(cusp, [0.0], {"a": 0.0, "b": 0.0})
    with pytest.raises(InvalidParameterError, match="two different"):
        continue_fold(cusp, [0.0], {"a": 0.0, "b": 0.0}, ("a", "a"))
    with pytest.raises(InvalidParameterError, match="not parameters"):
        continue_fold(cusp, [0.0], {"a": 0.0, "b": 0.0}, ("a", "q"))
    with pytest.raises(InvalidParameterError, match="no fold point near"):  # det J = mu^2 + w^2 > 0
        continue_fold(hopf_nf, [0.0, 0.0], {"mu": 0.0, "s": 1.0, "w": 1.0}, ("mu", "s"))
    with pytest.raises(InvalidParameterError, match="contain the start"):
        continue_fold(cusp, [-0.57735], {"a": 0.3849, "b": 1.0}, ("a", "b"), {"b": (2.0, 3.0)})
    with pytest.raises(InvalidParameterError, match="not detected on fold curves"):
        continue_fold(cusp, [-0.57735], {"a": 0.3849, "b": 1.0}, ("a", "b"), detect=("generalized_hopf",))
    with pytest.raises(InvalidParameterError, match="no hopf point"):
        continue_hopf(cusp, continue_branch(cusp, [-1.0], {"a": 0.0, "b": 1.0}, "a", (-1.0, 1.0)), free=("a", "b"))
    with pytest.raises(InvalidParameterError, match="not on the imaginary axis"):
        hopf_normal_form(hopf_nf, [0.0, 0.0], {"mu": 0.5, "s": 1.0, "w": 1.0})
    with pytest.raises(InvalidParameterError, match="no complex eigenvalue pair"):
        hopf_normal_form(cusp, [0.0], {"a": 0.0, "b": -1.0})
    hand = CompiledSystem.from_functions(cusp.system, rhs_into=cusp.rhs_into, jac_into=cusp.jac_into)
    with pytest.raises(CompileError, match="hand-written"):
        continue_fold(hand, [-0.57735], {"a": 0.3849, "b": 1.0}, ("a", "b"))


def test_curves_are_drawn_over_a_phase_diagram(bogdanov_takens, tmp_path):
    from theorykit.analysis import PhaseDiagram, plot_curves, plot_phase_diagram

    c = bogdanov_takens
    br = continue_branch(c, [(1 + 5 ** 0.5) / 2, 0.0], {"b1": -1.0, "b2": -1.0}, "b1", (-1.0, 1.0), direction=0)
    box = {"b1": (-0.5, 0.5), "b2": (-1.0, 1.0)}
    curves = [continue_fold(c, br, free=("b1", "b2"), bounds=box), continue_hopf(c, br, free=("b1", "b2"), bounds=box)]
    # a labelled grid (which side of the fold: two equilibria or none) stands in for an ensemble of solves
    b2g, b1g = np.linspace(-1, 1, 21), np.linspace(-0.5, 0.5, 11)
    labels = (b1g[None, :] < b2g[:, None] ** 2 / 4).astype(np.int64)
    pd = PhaseDiagram(("b2", "b1"), b2g, b1g, labels, ("none", "two equilibria"), np.zeros((21, 11, 2)),
                      np.zeros((21, 11), np.int64))
    fig = plot_phase_diagram(pd, curves=curves, path=tmp_path / "pd.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "b2" and ax.get_ylabel() == "b1"
    # the fold curve is drawn with b2 on x: b1 = b2^2 / 4 along the plotted line
    line = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"][0]
    np.testing.assert_allclose(line.get_ydata(), line.get_xdata() ** 2 / 4, atol=1e-6)
    assert (tmp_path / "pd.png").stat().st_size > 0
    fig = plot_curves(curves, path=tmp_path / "curves.png")
    assert fig.axes[0].get_xlabel() == "b1" and fig.axes[0].get_ylabel() == "b2"
    with pytest.raises(InvalidParameterError, match="cannot be drawn"):
        plot_phase_diagram(pd.__class__(("b1", "x"), pd.x, pd.y, pd.labels, pd.label_names, pd.final_states,
                                         pd.status), curves=curves)
