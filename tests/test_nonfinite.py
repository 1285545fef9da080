"""Bad arithmetic is a status, never a result: division by zero, sqrt/log of negative numbers and overflow
end every method on both backends as ``NON_FINITE`` (or another failure status), with nothing on stderr."""

from __future__ import annotations

import subprocess
import sys

import numba
import numpy as np
import pytest

from solve_helpers import BACKENDS
from theorykit.compile import CompiledSystem, compile_system
from theorykit.derive import make_system
from theorykit.solve import Status, solve, solve_ensemble

pytestmark = pytest.mark.numba

METHODS = ("dopri5", "rk4", "euler_maruyama", "bdf", "radau", "lsoda")
FIXED = ("rk4", "euler_maruyama")

#: one-state right-hand sides that are not finite at the start x = 1 (with r = 0)
BAD_AT_START = {
    "division by zero": "-x/r",
    "sqrt of a negative number": "sqrt(x - 2)",
    "log of a negative number": "log(x - 2) + r",
    "overflow": "exp(1000*x) + r",
    "fractional power of a negative number": "(x - 2)**1.5 + r",
}


def _opts(method):
    return {"dt": 0.01} if method in FIXED else {}


def test_direct_evaluation_is_ieee_on_both_backends(recwarn):
    """``csys.rhs`` / ``csys.jac`` called directly give the same values, inf and nan on both backends (the numpy
    backend used to raise ZeroDivisionError, ValueError or OverflowError), without a warning."""
    rhs = ["1/a - sqrt(x) + log(x) + 1/t + x**(-2) + 0.5/sqrt(x)", "exp(x) + cosh(x) + acosh(x)",
           "asin(y) + atanh(y) + x*y"]
    system = make_system(["x", "y", "z"], rhs, ["a"], name="ieee_direct")
    numba_sys, numpy_sys = (compile_system(system, backend=be) for be in ("numba", "numpy"))
    points = [(1.0, 1.0, 0.0, 0.0), (1.0, -1.0, 0.5, 1.0), (1.0, 1000.0, 2.0, 1.0), (1.0, 0.0, 1.0, 1.0),
              (0.0, 2.0, -0.5, 1.0), (1.0, 2.0, 0.5, 2.0), (1.0, 1e-300, 0.0, 1.0)]
    kinds = set()
    for t, x, y, a in points:
        for f in ("rhs", "jac"):
            want = getattr(numba_sys, f)(t, [x, y, 0.0], [a])
            got = getattr(numpy_sys, f)(t, [x, y, 0.0], [a])
            np.testing.assert_array_equal(got, want, err_msg=f"{f} at t={t}, x={x}, y={y}, a={a}")
            kinds |= {"inf" if np.isinf(v) else "nan" if np.isnan(v) else "finite" for v in want.ravel()}
    assert kinds == {"inf", "nan", "finite"}  # the points reach every outcome
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.fixture(scope="module")
def bad_systems():
    systems = {(name, be): compile_system(make_system(["x"], [rhs], ["r"], name=f"bad_{i}"), backend=be)
               for i, (name, rhs) in enumerate(BAD_AT_START.items()) for be in BACKENDS}
    late = make_system(["y", "z"], ["1", "sqrt(1 - y)"], [], name="bad_late")  # nan once t = y > 1
    systems.update({("late", be): compile_system(late, backend=be) for be in BACKENDS})
    return systems


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(BAD_AT_START))
def test_bad_arithmetic_at_the_start_is_non_finite(bad_systems, case, backend, capfd):
    csys = bad_systems[(case, backend)]
    for method in METHODS:
        sol = solve(csys, {"x": 1.0}, (0.0, 2.0), {"r": 0.0}, method=method, throw=False, **_opts(method))
        assert sol.status is Status.NON_FINITE, (method, sol)
        np.testing.assert_array_equal(sol.t, [0.0])
        np.testing.assert_array_equal(sol.y, [[1.0]])
    for method in ("dopri5", "rk4"):
        ens = solve_ensemble(csys, [[1.0], [1.0], [1.5]], (0.0, 2.0), {"r": 0.0}, method=method, **_opts(method))
        assert ens.statuses == (Status.NON_FINITE,) * 3
        assert np.all(np.isnan(ens.y[:, 1:])) and np.all(ens.t_final == 0.0)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_bad_parameter_row_fails_alone(bad_systems, backend, capfd):
    """x' = -x/r over rows r = 1, 0, 2, 0, 0.5: the r = 0 rows are NON_FINITE, the others exp(-t/r)."""
    csys = bad_systems[("division by zero", backend)]
    r = np.array([1.0, 0.0, 2.0, 0.0, 0.5])
    for method in ("dopri5", "rk4"):
        ens = solve_ensemble(csys, [1.0], (0.0, 1.0), r[:, None], method=method, **_opts(method))
        good = r != 0.0
        assert ens.statuses == tuple(Status.SUCCESS if g else Status.NON_FINITE for g in good), method
        np.testing.assert_allclose(ens.final[good, 0], np.exp(-1.0 / r[good]), rtol=1e-6)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arithmetic_midway_stops_before_it(bad_systems, backend, capfd):
    csys = bad_systems[("late", backend)]
    t_eval = np.linspace(0.0, 2.0, 21)
    for method in METHODS:
        sol = solve(csys, [0.0, 0.0], (0.0, 2.0), None, method=method, t_eval=t_eval, throw=False, **_opts(method))
        assert sol.status is Status.NON_FINITE, (method, sol)
        assert 0.9 <= sol.t_final <= 1.0 + 1e-9 and np.all(np.isfinite(sol.y)) and np.all(np.isfinite(sol.final))
        np.testing.assert_array_equal(sol.t, t_eval[t_eval <= sol.t_final])
    ens = solve_ensemble(csys, [[0.0, 0.0], [0.5, 0.0]], (0.0, 2.0), None, t_eval=t_eval)
    assert ens.statuses == (Status.NON_FINITE,) * 2
    assert np.all(np.isfinite(ens.final)) and np.all(np.isnan(ens.y[:, -1]))
    assert capfd.readouterr().err == ""


# --- hand-written numba functions keep numba's default error model: their ZeroDivisionError cannot
# leave a function called through a pointer, numba only prints it; the solvers must not be fooled.
def _divide_rhs(t, y, p, out):
    out[0] = -y[0] / p[0]
    out[1] = 1.0


def _divide_jac(t, y, p, out):
    out[0, 0] = -1.0 / p[0]
    out[0, 1] = 0.0
    out[1, 0] = 0.0
    out[1, 1] = 0.0


def _no_observed(t, y, p, out):
    return None


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_written_functions_that_raise(backend, capfd):
    wrap = numba.njit if backend == "numba" else (lambda f: f)
    names = make_system(["x", "y"], ["0", "0"], ["r"], name="hand_written_division")  # names only
    csys = CompiledSystem.from_functions(names, rhs_into=wrap(_divide_rhs), jac_into=wrap(_divide_jac),
                                         observed_into=wrap(_no_observed), backend=backend)
    for method in METHODS:
        sol = solve(csys, [1.0, 0.0], (0.0, 1.0), [0.0], method=method, throw=False, **_opts(method))
        assert sol.status is Status.NON_FINITE, (method, sol)
        ok = solve(csys, [1.0, 0.0], (0.0, 1.0), [2.0], method=method, throw=False, **_opts(method))
        assert ok.status is Status.SUCCESS and abs(ok.final[0] - np.exp(-0.5)) < 1e-3
    ens = solve_ensemble(csys, [1.0, 0.0], (0.0, 1.0), [[0.0], [2.0], [0.0], [1.0]] * 10)
    assert ens.statuses == (Status.NON_FINITE, Status.SUCCESS, Status.NON_FINITE, Status.SUCCESS) * 10
    np.testing.assert_allclose(ens.final[1::2, 0], np.exp(-1.0 / np.array([2.0, 1.0] * 10)), rtol=1e-7)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_parameter_gives_a_failure_status_not_an_exception(backend, capfd):
    from theorykit.theories.reference import saddle_node

    csys = compile_system(saddle_node(), backend=backend)
    for method in ("dopri5", "rk4", "bdf", "radau", "lsoda"):
        sol = solve(csys, {"x": -1.0}, (0.0, 50.0), {"r": -1e308}, method=method, throw=False, **_opts(method))
        assert not sol.success and np.all(np.isfinite(sol.y)), (method, sol)
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------------------------- analysis
def test_analysis_never_labels_bad_arithmetic_a_result(bad_systems, capfd):
    from theorykit.analysis import basin_map, continue_branch, find_fixed_points, phase_diagram

    for backend in BACKENDS:
        div = bad_systems[("division by zero", backend)]
        assert find_fixed_points(div, {"r": 0.0}) == ()  # f is nan everywhere
        branch = continue_branch(div, [0.0], {"r": 1.0}, "r", (-1.0, 1.0), direction=-1)
        assert branch.special_points == ()  # the test functions change sign through the pole at r = 0
        assert np.all(np.isfinite(branch.states)) and np.all(np.isfinite(branch.eigenvalues))
        assert np.all(branch.stable == (branch.param_values > 0))
        basins = basin_map(div, {"r": 0.0}, np.array([[1.0], [2.0]]), t_final=1.0, progress=False)
        assert np.all(basins.status == Status.NON_FINITE)
        assert set(np.array(basins.label_names)[basins.labels]) == {"diverged"}
        pd = phase_diagram(compile_system(make_system(["x"], ["-x/r + q"], ["r", "q"], name="bad_grid"), backend),
                           {"r": [-1.0, 0.0, 1.0], "q": [0.0, 1.0]}, {"r": 1.0, "q": 0.0}, y0={"x": 1.0},
                           t_final=1.0, progress=False)
        np.testing.assert_array_equal(pd.status[1], [Status.NON_FINITE] * 2)
        assert np.all(pd.labels[1] == pd.label_names.index("diverged"))
        assert np.all(pd.status[[0, 2]] == Status.SUCCESS)
        sq = bad_systems[("sqrt of a negative number", backend)]
        assert find_fixed_points(sq, {"r": 0.0}) == ()
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_roots_at_a_non_differentiable_point_get_no_stability_label(backend, capfd):
    """sqrt(s) - s and -sqrt(s): Newton stops a hair above s = 0, where the Jacobian 1/(2 sqrt(s)) is finite
    but huge and inf at s = 0 itself; that root is non-hyperbolic with nan eigenvalues, never "stable"."""
    from theorykit.analysis import find_fixed_points, linearize

    up = compile_system(make_system(["s"], ["sqrt(s) - s"], [], name="sqrt_minus_s"), backend=backend)
    down = compile_system(make_system(["s"], ["-sqrt(s)"], [], name="minus_sqrt_s"), backend=backend)
    (one, zero) = find_fixed_points(up, {}, bounds=(-1.0, 2.0))
    assert one.kind == "stable node" and one.stable and one.y[0] == pytest.approx(1.0, abs=1e-12)
    assert abs(zero.y[0]) < 1e-10 and zero.kind == "non-hyperbolic" and not zero.stable
    assert np.all(np.isnan(zero.eigenvalues))
    (edge,) = find_fixed_points(down, {}, bounds=(0.0, 2.0))
    assert abs(edge.y[0]) < 1e-10 and edge.kind == "non-hyperbolic" and not edge.stable
    for s in (0.0, 1e-30):
        fp = linearize(down, [s], {})
        assert fp.kind == "non-hyperbolic" and not fp.stable and np.all(np.isnan(fp.eigenvalues)), s
    smooth = linearize(down, [0.25], {})  # away from s = 0 the linearisation stands: f' = -1/(2 sqrt(s)) = -1
    assert smooth.kind == "stable node" and smooth.eigenvalues[0] == pytest.approx(-1.0, rel=1e-12)
    # s^(3/2) - s is differentiable up to the domain's edge s = 0 (f' -> -1): a root just above it keeps its label
    edge_ok = compile_system(make_system(["s"], ["s*sqrt(s) - s"], [], name="s_three_halves"), backend=backend)
    fp = linearize(edge_ok, [1e-14], {})
    assert fp.kind == "stable node" and fp.stable and fp.eigenvalues[0] == pytest.approx(-1.0, abs=1e-6)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("backend", BACKENDS)
def test_bifurcation_starts_with_a_non_finite_jacobian_are_refused(backend):
    """x sqrt(x^2 + y^2) has the Jacobian 0/0 = nan at the origin: fold, Hopf and cycle starts there are one
    InvalidParameterError naming the start, not a LinAlgError from the eigen-decomposition."""
    from theorykit.analysis import continue_cycles, continue_fold, continue_hopf, find_fixed_points, hopf_normal_form
    from theorykit.errors import InvalidParameterError

    r = "sqrt(x*x + y*y)"
    csys = compile_system(make_system(["x", "y"], [f"m*x - y - x*{r}", f"x + m*y - y*{r}"], ["m", "k"],
                                      name="hopf_with_a_kink"), backend=backend)
    prm = {"m": 0.0, "k": 0.0}
    (origin,) = find_fixed_points(csys, prm, guesses=[[0.0, 0.0]], n_starts=0)
    assert origin.kind == "non-hyperbolic" and not origin.stable
    calls = {"hopf_normal_form": lambda: hopf_normal_form(csys, [0.0, 0.0], prm),
             "continue_hopf": lambda: continue_hopf(csys, [0.0, 0.0], prm, free=("m", "k"),
                                                    bounds={"m": (-1, 1), "k": (-1, 1)}),
             "continue_fold": lambda: continue_fold(csys, [0.0, 0.0], prm, free=("m", "k"),
                                                    bounds={"m": (-1, 1), "k": (-1, 1)}),
             "continue_cycles": lambda: continue_cycles(csys, [0.0, 0.0], prm, "m", (-1.0, 1.0))}
    for name, call in calls.items():
        with pytest.raises(InvalidParameterError, match=r"start: the Jacobian is not finite at \[0.0, 0.0\]"):
            call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_phase_portraits_draw_bad_arithmetic_as_gaps(bad_systems, backend, tmp_path):
    """-x/r at r = 0 (nan or inf everywhere) and r = -1e308 (finite, near the largest float): the portraits
    are written without an exception or a warning (the numpy backend's scalar division used to warn)."""
    import warnings

    from theorykit.analysis import plot_phase_portrait
    from theorykit.theories.reference import saddle_node

    plane = compile_system(make_system(["x", "y"], ["-x/r", "y - x"], ["r"], name="bad_plane"), backend=backend)
    cases = [(bad_systems[("division by zero", backend)], {"r": 0.0}), (plane, {"r": 0.0}),
             (compile_system(saddle_node(), backend=backend), {"r": -1e308})]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k, (csys, prm) in enumerate(cases):
            plot_phase_portrait(csys, prm, path=tmp_path / f"portrait_{k}.png")
            assert (tmp_path / f"portrait_{k}.png").stat().st_size > 0


# -------------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv", [["noncontrastive.cosine_reduced", "-p", "nu_u=0", "--t-final", "1"],
                                  ["reference.saddle_node", "-p", "r=-1e308"],
                                  ["reference.saddle_node", "-p", "r=-1e308", "--method", "radau"],
                                  ["reference.saddle_node", "-p", "r=-1e308", "--method", "bdf", "--backend", "numpy"]])
def test_cli_reports_a_failure_status(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "theorykit.cli", "solve", *argv, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert "status NON_FINITE" in proc.stdout or "status STEP_SIZE_UNDERFLOW" in proc.stdout, proc.stdout


def test_cli_fixed_points_of_an_undefined_right_hand_side_fail(tmp_path, capsys):
    """nu_u = 0 makes the cosine system nan everywhere: no fixed point, said so, exit status 1."""
    from theorykit.cli import main

    args = ["fixed-points", "noncontrastive.cosine_reduced", "--n-starts", "4"]
    assert main([*args, "-p", "nu_u=0", "--out", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "0 fixed point(s)" in out and "not finite (nan/inf)" in out
    assert main([*args, "--out", str(tmp_path / "good")]) == 0
    assert "not finite" not in capsys.readouterr().out
