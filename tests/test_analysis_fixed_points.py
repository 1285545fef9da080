"""Fixed points: Newton route against closed forms, stability classes, symbolic route, mpmath refinement."""

from __future__ import annotations

import subprocess
import sys

import mpmath
import numpy as np
import pytest

from theorykit.analysis import classify_eigenvalues, find_fixed_points, linearize
from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import reference as R


@pytest.fixture(scope="module")
def linear():
    return compile_system(make_system(["x", "y"], ["a*x + b*y", "c*x + d*y"], ["a", "b", "c", "d"], name="linear"))


@pytest.mark.parametrize("mat, kind", [
    ((-1.0, 0.0, 0.0, -3.0), "stable node"),
    ((-0.5, -2.0, 2.0, -0.5), "stable focus"),
    ((1.0, 2.0, 3.0, -1.0), "saddle"),
    ((2.0, 1.0, 0.0, 1.0), "unstable node"),
    ((0.3, 1.0, -1.0, 0.3), "unstable focus"),
    ((0.0, 1.0, -4.0, 0.0), "center"),
    ((0.0, 1.0, 0.0, -2.0), "non-hyperbolic"),
])
def test_linear_system_eigenvalues_and_class(linear, mat, kind):
    a, b, c, d = mat
    params = dict(a=a, b=b, c=c, d=d)
    fps = find_fixed_points(linear, params, n_starts=4, guesses=[[0.3, -0.2]]) if kind != "non-hyperbolic" \
        else (linearize(linear, [0.0, 0.0], params),)
    # a non-singular linear system has exactly one equilibrium, the origin
    assert len(fps) == 1
    fp = fps[0]
    np.testing.assert_allclose(fp.y, 0.0, atol=1e-12)
    # closed form: lambda = T/2 ± sqrt(T^2/4 - D)
    T, D = a + d, a * d - b * c
    disc = np.sqrt(complex(T * T / 4 - D))
    expected = sorted([T / 2 + disc, T / 2 - disc], key=lambda z: (-z.real, -z.imag))
    np.testing.assert_allclose(fp.eigenvalues, expected, atol=1e-12)
    assert fp.kind == kind
    assert fp.stable == kind.startswith("stable")


def test_classify_tolerance_and_errors():
    assert classify_eigenvalues([-1e-10, -1.0]) == ("non-hyperbolic", False)
    assert classify_eigenvalues([-1e-10, -1.0], eig_tol=1e-12) == ("stable node", True)
    with pytest.raises(InvalidParameterError):
        classify_eigenvalues([])


def test_normal_forms_against_closed_forms():
    sn = compile_system(R.saddle_node())
    fps = find_fixed_points(sn, {"r": -0.25})
    np.testing.assert_allclose(sorted(fp.y[0] for fp in fps), [-0.5, 0.5], atol=1e-12)
    assert [fp.kind for fp in fps] == ["stable node", "unstable node"]
    assert find_fixed_points(sn, {"r": 0.25}) == ()

    pf = compile_system(R.pitchfork())
    fps = find_fixed_points(pf, {"r": 0.7})
    ys = sorted(fp.y[0] for fp in fps)
    np.testing.assert_allclose(ys, [-np.sqrt(0.7), 0.0, np.sqrt(0.7)], atol=1e-12)
    for fp in fps:  # f'(x) = r - 3x^2
        np.testing.assert_allclose(fp.eigenvalues.real, 0.7 - 3 * fp.y[0] ** 2, atol=1e-10)

    dw = compile_system(R.double_well())
    fps = find_fixed_points(dw, {}, seed=3)
    assert len(fps) == 3
    assert sum(fp.stable for fp in fps) == 2
    assert [fp.kind for fp in fps if not fp.stable] == ["saddle"]


def test_hopf_fixed_point_focus():
    h = compile_system(R.hopf())
    for mu, kind in ((-0.3, "stable focus"), (0.3, "unstable focus")):
        (fp,) = find_fixed_points(h, {"mu": mu, "omega": 2.0}, n_starts=16)
        assert fp.kind == kind
        np.testing.assert_allclose(fp.eigenvalues, [mu + 2j, mu - 2j], atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    sn = compile_system(R.saddle_node())
    with pytest.raises(InvalidParameterError, match="bounds"):
        find_fixed_points(sn, {"r": -1}, bounds=(1.0, -1.0))
    with pytest.raises(InvalidParameterError, match="n_starts"):
        find_fixed_points(sn, {"r": -1}, n_starts=-2)
    with pytest.raises(InvalidParameterError, match="guesses"):
        find_fixed_points(sn, {"r": -1}, guesses=np.zeros((2, 3)))
    with pytest.raises(InvalidParameterError, match="missing"):
        find_fixed_points(sn, {"s": 1.0})
    with pytest.raises(InvalidParameterError, match="nowhere"):
        find_fixed_points(sn, {"r": -1}, n_starts=0)


def test_symbolic_route_reports_degree_and_matches_newton():
    from theorykit.analysis import symbolic_fixed_points

    # y = x^2, x = y^2  ->  eliminant y (y^3 - 1): degree 4 (Bezout 2 x 2)
    s = make_system(["x", "y"], ["y - x**2", "x - y**2"], [], name="two_parabolas")
    res = symbolic_fixed_points(s)
    assert res.degree == 4 and res.variable.name == "y"
    import sympy as sp

    y = res.variable
    assert sp.expand(res.polynomial - (y ** 4 - y)) == 0
    num = find_fixed_points(compile_system(s), {}, n_starts=32)
    np.testing.assert_allclose(sorted(map(tuple, res.real_solutions())), sorted(tuple(fp.y) for fp in num),
                               atol=1e-10)
    # circle and line: degree 2; free parameters stay symbolic
    c = make_system(["x", "y"], ["x**2 + y**2 - rho", "y - x"], ["rho"], name="circle_line")
    res = symbolic_fixed_points(c)
    assert res.degree == 2
    res = symbolic_fixed_points(c, {"rho": 2})
    np.testing.assert_allclose(sorted(res.real_solutions()[:, 0]), [-1.0, 1.0], atol=1e-14)
    # the pitchfork with r free: x (x^2 - r), three solutions
    res = symbolic_fixed_points(R.pitchfork())
    assert res.degree == 3 and len(res.solutions) == 3
    with pytest.raises(InvalidParameterError, match="variable"):
        symbolic_fixed_points(s, variable="z")


def test_symbolic_parameter_strings_are_parsed_not_evaluated():
    from theorykit.analysis import symbolic_fixed_points
    from theorykit.errors import IncompleteSystemError

    c = make_system(["x", "y"], ["x**2 + y**2 - rho", "y - x"], ["rho"], name="circle_line")
    res = symbolic_fixed_points(c, {"rho": "1/2"})  # exact: x = +-1/2
    np.testing.assert_allclose(sorted(res.real_solutions()[:, 0]), [-0.5, 0.5], atol=1e-15)
    with pytest.raises(IncompleteSystemError, match="not allowed"):
        symbolic_fixed_points(c, {"rho": "__import__('os').getpid()"})


def test_symbolic_rational_system_excludes_poles():
    from theorykit.analysis import symbolic_fixed_points

    s = make_system(["x"], ["(x**2 - 1)/(x - 1)"], [], name="rational")
    res = symbolic_fixed_points(s)
    # numerator (x - 1)(x + 1) has degree 2, but x = 1 is a pole of f, so only x = -1 is a fixed point
    assert res.degree == 2
    assert [float(sol[s.states[0]]) for sol in res.solutions] == [-1.0]


def test_mpmath_refinement_sqrt2_and_cubic():
    from theorykit.analysis import refine_fixed_point

    s = make_system(["x"], ["x**2 - 2"], [], name="sqrt2")
    (fp,) = [fp for fp in find_fixed_points(compile_system(s), {}) if fp.y[0] > 0]
    ref = refine_fixed_point(s, fp.y, dps=50)
    assert ref.converged
    with mpmath.workdps(60):
        assert abs(ref.y[0] - mpmath.sqrt(2)) < mpmath.mpf(10) ** -40
    # the real root of x^3 - x - 1 (plastic number), closed form by Cardano
    cub = make_system(["x"], ["x**3 - x - c"], ["c"], name="cubic")
    ref = refine_fixed_point(cub, [1.3], {"c": 1}, dps=45)
    with mpmath.workdps(60):
        r69 = mpmath.sqrt(69)
        plastic = mpmath.cbrt((9 + r69) / 18) + mpmath.cbrt((9 - r69) / 18)
        assert abs(ref.y[0] - plastic) < mpmath.mpf(10) ** -35
    # a parameter given as a decimal string is used at full precision: x^2 = 0.1 exactly
    sq = make_system(["x"], ["x**2 - q"], ["q"], name="sq")
    ref = refine_fixed_point(sq, [0.3], {"q": "0.1"}, dps=40)
    with mpmath.workdps(50):
        assert abs(ref.y[0] - mpmath.sqrt(mpmath.mpf(1) / 10)) < mpmath.mpf(10) ** -35
    with pytest.raises(InvalidParameterError, match="missing"):
        refine_fixed_point(cub, [1.3], {})
    with pytest.raises(InvalidParameterError, match="dps"):
        refine_fixed_point(s, [1.4], dps=5)


def test_numeric_modules_do_not_import_sympy_or_matplotlib():
    code = ("import sys, theorykit.analysis as a; "
            "print(int('sympy' in sys.modules), int('matplotlib' in sys.modules), "
            "int('theorykit.analysis._symbolic' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0", "0"]


def test_multiple_roots_are_merged_and_non_hyperbolic():
    # at the fold r = 0, x = 0 is a double root: Newton converges only linearly, from every start
    (fp,) = find_fixed_points(compile_system(R.saddle_node()), {"r": 0.0})
    assert abs(fp.y[0]) < 1e-6 and fp.kind == "non-hyperbolic" and not fp.stable
    # eta = 0: each mode has a double root at 0 and a simple one at tau / (1 + sigma2): 2 x 2 equilibria
    fps = find_fixed_points(compile_system(R.eigenmode_cubic()), {"eta": 0.0, "sigma2": 0.5, "tau": 1.0,
                                                                  "tau2": 0.5})
    got = sorted(tuple(np.round(fp.y, 6) + 0.0) for fp in fps)
    assert got == sorted((a, b) for a in (0.0, round(1 / 1.5, 6)) for b in (0.0, round(0.5 / 1.5, 6)))
    assert [fp.kind for fp in fps].count("stable node") == 1


def test_exact_roots_as_guesses_are_all_kept():
    """Guesses that already are roots must not be merged into one by the de-duplication."""
    from theorykit.analysis import find_fixed_points
    from theorykit.compile import compile_system
    from theorykit.theories.reference import transcritical

    csys = compile_system(transcritical(), backend="numpy")
    fps = find_fixed_points(csys, {"r": 1.0}, guesses=[[0.0], [1.0]], n_starts=0)
    assert sorted(float(fp.y[0]) for fp in fps) == [0.0, 1.0]
