"""Tests of ``theorykit.solve.solve``: accuracy on closed-form systems, backends, statuses, events, inputs."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from solve_helpers import ALL_METHODS, BACKENDS, REFERENCES, SMOOTH_REFERENCES, method_options, robertson_rhs_numpy
from theorykit.errors import InvalidParameterError, SolveError
from theorykit.solve import METHODS, NormAbove, Status, Threshold, solve

pytestmark = pytest.mark.numba

KERNEL_METHODS = ("dopri5", "rk4")


def test_import_does_not_load_sympy():
    code = "import sys, theorykit.solve; assert 'sympy' not in sys.modules, 'solve imported sympy'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("name", SMOOTH_REFERENCES)
def test_closed_form_references(name, method):
    ref = REFERENCES[name]
    csys = ref.compiled("numba")
    t_eval = np.linspace(*ref.t_span, 41)
    sol = solve(csys, ref.y0, ref.t_span, ref.p, method=method, t_eval=t_eval, **method_options(method))
    assert sol.status is Status.SUCCESS and sol.success
    assert not sol.y.flags.writeable  # results are immutable, inputs untouched
    assert t_eval.flags.writeable and ref.y0.flags.writeable
    again = solve(csys, sol.final, ref.t_span, sol.params, method=method, **method_options(method))
    assert again.success  # read-only arrays are accepted as inputs
    np.testing.assert_array_equal(sol.t, t_eval)
    exact = ref.exact(t_eval, ref.y0, ref.p)
    np.testing.assert_allclose(sol.y, exact, rtol=0, atol=1e-7)
    np.testing.assert_allclose(sol.final, exact[-1], rtol=0, atol=1e-7)
    assert sol.t_final == ref.t_span[1]


@pytest.mark.parametrize("method", KERNEL_METHODS)
@pytest.mark.parametrize("name", SMOOTH_REFERENCES)
def test_numba_and_numpy_backends_agree(name, method):
    ref = REFERENCES[name]
    opts = method_options(method, dt=1e-2)
    t_eval = np.linspace(*ref.t_span, 11)
    a = solve(ref.compiled("numba"), ref.y0, ref.t_span, ref.p, method=method, t_eval=t_eval, **opts)
    b = solve(ref.compiled("numpy"), ref.y0, ref.t_span, ref.p, method=method, t_eval=t_eval, **opts)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-12, atol=1e-14)
    assert a.stats == b.stats


def test_rk4_converges_at_fourth_order():
    ref = REFERENCES["oscillator"]
    errs = []
    for dt in (0.04, 0.02):
        sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method="rk4", dt=dt)
        errs.append(np.abs(sol.final - ref.exact(np.array([ref.t_span[1]]), ref.y0, ref.p)[0]).max())
    assert 14.0 < errs[0] / errs[1] < 18.0  # 2**4 = 16


def test_dopri5_error_follows_tolerance_and_steps_adapt():
    ref = REFERENCES["logistic"]
    t1 = np.array([ref.t_span[1]])
    loose = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, rtol=1e-5, atol=1e-8)
    tight = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, rtol=1e-10, atol=1e-13)
    err_loose = abs(loose.final[0] - ref.exact(t1, ref.y0, ref.p)[0, 0])
    err_tight = abs(tight.final[0] - ref.exact(t1, ref.y0, ref.p)[0, 0])
    assert err_tight < 1e-9 < err_loose < 1e-4
    assert tight.stats["n_steps"] > 3 * loose.stats["n_steps"]
    assert tight.stats["n_rhs_evals"] >= 6 * tight.stats["n_steps"]
    # without t_eval every accepted step is saved, so t is increasing and ends at t1
    assert np.all(np.diff(tight.t) > 0) and tight.t.size == tight.stats["n_steps"] + 1


@pytest.mark.parametrize("method", ["dopri5", "bdf", "radau", "lsoda"])
def test_robertson_against_independent_radau(method):
    ref = REFERENCES["robertson"]
    t_span = (0.0, 1.0) if method == "dopri5" else ref.t_span  # dopri5 is stability-limited: short horizon
    t_eval = np.linspace(*t_span, 9)
    sol = solve(ref.compiled(), ref.y0, t_span, ref.p, method=method, t_eval=t_eval, rtol=1e-8, atol=1e-12)
    expected = solve_ivp(robertson_rhs_numpy, t_span, ref.y0, method="Radau", t_eval=t_eval, rtol=1e-12,
                         atol=1e-16).y.T
    np.testing.assert_allclose(sol.y, expected, rtol=2e-5, atol=1e-11)
    np.testing.assert_allclose(sol.y.sum(axis=1), 1.0, atol=1e-10)  # y1 + y2 + y3 is conserved


@pytest.mark.parametrize("backend", BACKENDS)
def test_dopri5_detects_stiffness_and_warns(backend):
    import warnings

    from theorykit.errors import StiffnessWarning

    ref = REFERENCES["robertson"]
    with pytest.warns(StiffnessWarning, match="bdf"):
        sol = solve(ref.compiled(backend), ref.y0, (0.0, 1.0), ref.p, rtol=1e-6, atol=1e-10)
    assert sol.stats["stiff_steps"] > 0
    smooth = REFERENCES["oscillator"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", StiffnessWarning)
        quiet = solve(smooth.compiled(backend), smooth.y0, smooth.t_span, smooth.p)
    assert quiet.stats["stiff_steps"] == 0


def test_stiff_methods_use_the_jacobian():
    ref = REFERENCES["robertson"]
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method="radau")
    assert sol.stats["n_jac_evals"] > 0
    assert sol.stats["n_steps"] < 1000  # an explicit method would need ~1e5 steps here


def test_mapping_inputs_equal_packed_arrays():
    ref = REFERENCES["logistic"]
    a = solve(ref.compiled(), {"n": 0.1}, ref.t_span, {"K": 2.0, "r": 1.3})
    b = solve(ref.compiled(), ref.y0, ref.t_span, ref.p)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.params, ref.p)


def test_solution_accessors():
    ref = REFERENCES["oscillator"]
    t_eval = np.linspace(0, 2, 5)
    sol = solve(ref.compiled(), ref.y0, (0.0, 2.0), ref.p, t_eval=t_eval, dense=True)
    np.testing.assert_array_equal(sol.y_of("v"), sol.y[:, 1])
    with pytest.raises(KeyError, match="available"):
        sol.y_of("nope")
    ts = np.array([0.0, 0.123, 1.0, 1.777, 2.0])
    np.testing.assert_allclose(sol.at(ts), ref.exact(ts, ref.y0, ref.p), atol=1e-8)
    np.testing.assert_allclose(sol.at(0.5), ref.exact(np.array([0.5]), ref.y0, ref.p)[0], atol=1e-8)
    with pytest.raises(InvalidParameterError):
        solve(ref.compiled(), ref.y0, (0.0, 2.0), ref.p).at(1.0)  # no dense output kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_observed_uses_compiled_observables(backend):
    ref = REFERENCES["mode"]
    sol = solve(ref.compiled(backend), ref.y0, ref.t_span, ref.p, t_eval=np.linspace(*ref.t_span, 21))
    inv0 = ref.y0[1] - ref.y0[0] ** 2
    eta = ref.p[2]
    # s - p^2 decays exactly as exp(-2 eta t) for alpha_p = 1
    np.testing.assert_allclose(sol.observed("invariant"), inv0 * np.exp(-2 * eta * sol.t), rtol=1e-7, atol=1e-10)
    with pytest.raises(KeyError):
        sol.observed("loss")


# ------------------------------------------------------------------------------------------- statuses
@pytest.mark.parametrize("method", ["dopri5", "lsoda"])
def test_blow_up_is_reported_not_garbage(method):
    ref = REFERENCES["square"]  # y' = y^2, y(0) = 1: y = 1 / (1 - t) blows up at t = 1
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method, throw=False)
    assert sol.status is Status.BLOW_UP and not sol.success
    assert np.all(np.isfinite(sol.y))
    assert abs(sol.t_final - 1.0) < 1e-6
    assert sol.t[-1] == sol.t_final
    ok = sol.y[:, 0] < 10.0  # further on, errors in t are amplified by 1 / (1 - t)
    np.testing.assert_allclose(sol.y[ok, 0], 1.0 / (1.0 - sol.t[ok]), rtol=1e-5)
    with pytest.raises(SolveError, match="BLOW_UP") as info:
        solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method)
    assert info.value.status is Status.BLOW_UP


def test_step_size_underflow_without_blow_up_bound():
    ref = REFERENCES["square"]
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, blow_up=np.inf, throw=False)
    assert sol.status is Status.STEP_SIZE_UNDERFLOW
    assert np.all(np.isfinite(sol.y)) and abs(sol.t_final - 1.0) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_fixed_step_overflow_is_non_finite(backend):
    ref = REFERENCES["square"]
    sol = solve(ref.compiled(backend), ref.y0, ref.t_span, ref.p, method="rk4", dt=0.01, blow_up=np.inf,
                throw=False)
    assert sol.status is Status.NON_FINITE
    assert np.all(np.isfinite(sol.y)) and np.all(np.isfinite(sol.final))
    assert sol.t_final < 1.1 and sol.t[-1] == sol.t_final


@pytest.mark.parametrize("method", ["dopri5", "radau"])
def test_nan_rhs_is_non_finite(method):
    ref = REFERENCES["sqrt"]  # y' = sqrt(1 - t) is nan for t > 1
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method, throw=False)
    assert sol.status is Status.NON_FINITE
    assert sol.t_final <= 1.0 + 1e-12 and np.all(np.isfinite(sol.y))
    np.testing.assert_allclose(sol.y, ref.exact(sol.t, ref.y0, ref.p), atol=1e-6)
    late = solve(ref.compiled(), ref.y0, (1.5, 2.0), ref.p, method=method, throw=False)  # nan from the start
    assert late.status is Status.NON_FINITE
    np.testing.assert_array_equal(late.t, [1.5])
    np.testing.assert_array_equal(late.y, [ref.y0])


@pytest.mark.parametrize("method", ["dopri5", "rk4", "bdf"])
def test_max_steps(method):
    ref = REFERENCES["oscillator"]
    opts = {"dt": 0.01} if method == "rk4" else {}
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method, max_steps=20, throw=False, **opts)
    assert sol.status is Status.MAX_STEPS
    assert sol.t.size <= 21 and sol.t_final < ref.t_span[1]
    np.testing.assert_allclose(sol.y, ref.exact(sol.t, ref.y0, ref.p), atol=1e-6)
    with pytest.raises(SolveError, match="max_steps"):
        solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method, max_steps=20, **opts)


def test_partial_solution_keeps_only_reached_outputs():
    ref = REFERENCES["square"]
    t_eval = np.linspace(0.05, 1.95, 20)  # 1.0 itself left out: the numerical solution blows up just after it
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, t_eval=t_eval, throw=False)
    assert sol.status is Status.BLOW_UP
    np.testing.assert_array_equal(sol.t, t_eval[t_eval <= sol.t_final])
    np.testing.assert_allclose(sol.y[:, 0], 1.0 / (1.0 - sol.t), rtol=1e-6)


def test_every_status_has_a_fix_it_message():
    for status in Status:
        assert len(status.message) > 20
    assert Status.SUCCESS.success and Status.EVENT.success and not Status.MAX_STEPS.success


# --------------------------------------------------------------------------------------------- events
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_terminal_threshold_event_located(method, backend):
    if backend == "numpy" and method not in ("dopri5", "radau"):
        pytest.skip("one kernel and one scipy method suffice on the slow backend")
    ref = REFERENCES["decay"]
    opts = {"dt": 1e-3} if method == "rk4" else {"rtol": 1e-10, "atol": 1e-12}
    t_eval = np.linspace(0.0, 5.0, 51)
    sol = solve(ref.compiled(backend), ref.y0, ref.t_span, ref.p, method=method, t_eval=t_eval,
                events=[Threshold("x", 0.5, direction=-1, terminal=True)], **opts)
    t_half = math.log(2.0) / ref.p[0]
    assert sol.status is Status.EVENT and sol.success
    assert len(sol.events) == 1 and sol.events.which[0] == 0
    assert abs(sol.events.t[0] - t_half) < 1e-8
    assert abs(sol.events.y[0, 0] - 0.5) < 1e-8
    assert abs(sol.t_final - t_half) < 1e-8 and abs(sol.final[0] - 0.5) < 1e-8
    np.testing.assert_array_equal(sol.t, t_eval[t_eval <= sol.t_final])


@pytest.mark.parametrize("method", ["dopri5", "rk4", "radau"])
def test_non_terminal_events_with_direction(method):
    ref = REFERENCES["oscillator"]
    opts = {"dt": 1e-3} if method == "rk4" else {"rtol": 1e-10, "atol": 1e-12}
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method=method,
                events=[Threshold("x", 0.0), Threshold(1, 0.0, direction=+1)], **opts)
    assert sol.status is Status.SUCCESS
    w = ref.p[0]
    phase = math.atan2(ref.y0[1] / w, ref.y0[0])  # x = A cos(w t - phase)
    zeros = (np.pi / 2 + phase + np.pi * np.arange(10)) / w
    zeros = zeros[zeros <= ref.t_span[1]]
    np.testing.assert_allclose(sol.events.times_of(0), zeros, atol=1e-8)
    # v = -A w sin(w t - phase) rises through 0 where w t - phase = pi (mod 2 pi)
    v_rise = (np.pi + phase + 2 * np.pi * np.arange(5)) / w
    v_rise = v_rise[v_rise <= ref.t_span[1]]
    np.testing.assert_allclose(sol.events.times_of(1), v_rise, atol=1e-8)
    assert np.all(np.diff(sol.events.t) > 0)
    assert sol.stats["n_events"] == len(zeros) + len(v_rise)


def test_norm_event_stops_divergence():
    ref = REFERENCES["logistic"]
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, events=[NormAbove(1.5)], rtol=1e-10, atol=1e-12)
    r, k = ref.p
    # logistic crosses 1.5: solve K / (1 + (K/y0 - 1) e^{-rt}) = 1.5
    t_cross = -math.log((k / 1.5 - 1.0) / (k / ref.y0[0] - 1.0)) / r
    assert sol.status is Status.EVENT
    assert abs(sol.events.t[0] - t_cross) < 1e-8


def test_events_validated():
    ref = REFERENCES["decay"]
    with pytest.raises(InvalidParameterError, match="not one of"):
        solve(ref.compiled(), ref.y0, ref.t_span, ref.p, events=[Threshold("q", 0.5)])
    with pytest.raises(InvalidParameterError, match="direction"):
        solve(ref.compiled(), ref.y0, ref.t_span, ref.p, events=[Threshold("x", 0.5, direction=2)])


# ---------------------------------------------------------------------------------------------- inputs
def _bad_inputs():
    ref = REFERENCES["oscillator"]
    y0, p, ts = ref.y0, ref.p, ref.t_span
    return {
        "t_span decreasing": dict(y0=y0, t_span=(1.0, 0.0), params=p),
        "t_span equal": dict(y0=y0, t_span=(1.0, 1.0), params=p),
        "t_span not a pair": dict(y0=y0, t_span=1.0, params=p),
        "t_eval outside": dict(y0=y0, t_span=ts, params=p, t_eval=[0.0, 11.0]),
        "t_eval unsorted": dict(y0=y0, t_span=ts, params=p, t_eval=[0.0, 2.0, 1.0]),
        "negative rtol": dict(y0=y0, t_span=ts, params=p, rtol=-1e-6),
        "negative atol": dict(y0=y0, t_span=ts, params=p, atol=-1e-6),
        "y0 wrong length": dict(y0=[1.0], t_span=ts, params=p),
        "y0 non-finite": dict(y0=[np.nan, 0.0], t_span=ts, params=p),
        "y0 unknown name": dict(y0={"x": 1.0, "z": 0.0}, t_span=ts, params=p),
        "params wrong length": dict(y0=y0, t_span=ts, params=[1.0, 2.0]),
        "params non-finite": dict(y0=y0, t_span=ts, params=[np.inf]),
        "unknown method": dict(y0=y0, t_span=ts, params=p, method="euler"),
        "dt missing": dict(y0=y0, t_span=ts, params=p, method="rk4"),
        "dt negative": dict(y0=y0, t_span=ts, params=p, method="rk4", dt=-0.1),
        "dt for adaptive": dict(y0=y0, t_span=ts, params=p, dt=0.1),
        "max_steps zero": dict(y0=y0, t_span=ts, params=p, max_steps=0),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_inputs_raise(case):
    kwargs = _bad_inputs()[case]
    with pytest.raises(InvalidParameterError):
        solve(REFERENCES["oscillator"].compiled(), **kwargs)


def test_numba_backend_needs_jitted_functions():
    from theorykit.compile import CompiledSystem

    ref = REFERENCES["decay"]
    jitted = ref.compiled("numba")
    fake = CompiledSystem.from_functions(jitted.system, rhs_into=ref.rhs,  # a plain Python function
                                         jac_into=jitted.jac_into, observed_into=jitted.observed_into)
    with pytest.raises(InvalidParameterError, match="numba"):
        solve(fake, ref.y0, ref.t_span, ref.p)


def test_unknown_method_lists_allowed_ones():
    ref = REFERENCES["decay"]
    with pytest.raises(InvalidParameterError) as info:
        solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method="rk45")
    for name in METHODS:
        assert name in str(info.value)


# ------------------------------------------------------------------------- through theorykit.compile
@pytest.fixture(scope="module")
def compiled_systems():
    from theorykit.compile import compile_system
    from theorykit.derive import make_system

    decay = make_system(["x"], ["-k*x"], ["k"], observed={"energy": "x**2/2"}, name="solve_decay")
    mode = make_system(["p", "q"], ["p*(tau*p - (1 + s2)*p**2 - eta)", "q*(tau*q - (1 + s2)*q**2 - eta)"],
                       ["tau", "s2", "eta"], name="solve_two_modes")
    return {(name, be): compile_system(sys_, backend=be) for name, sys_ in (("decay", decay), ("mode", mode))
            for be in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_decay(compiled_systems, backend):
    csys = compiled_systems[("decay", backend)]
    t_eval = np.linspace(0.0, 4.0, 9)
    sol = solve(csys, {"x": 2.0}, (0.0, 4.0), {"k": 0.5}, t_eval=t_eval,
                events=[Threshold("x", 1.0, terminal=False)])
    np.testing.assert_allclose(sol.y_of("x"), 2.0 * np.exp(-0.5 * t_eval), rtol=1e-8)
    np.testing.assert_allclose(sol.observed("energy"), 2.0 * np.exp(-t_eval), rtol=1e-7)
    assert abs(sol.events.t[0] - 2.0 * math.log(2.0)) < 1e-8


@pytest.mark.parametrize("method", ["dopri5", "rk4", "bdf"])
def test_compiled_polynomial_modes_reach_fixed_points(compiled_systems, method):
    # p' = p (tau p - c p^2 - eta): from above the saddle, p -> larger root; from below, p -> 0
    tau, s2, eta = 1.0, 0.25, 0.1
    c = 1.0 + s2
    disc = math.sqrt(tau**2 - 4 * eta * c)
    saddle, stable = (tau - disc) / (2 * c), (tau + disc) / (2 * c)
    opts = {"dt": 0.01} if method == "rk4" else {}
    results = {}
    for be in BACKENDS:
        csys = compiled_systems[("mode", be)]
        results[be] = solve(csys, [saddle * 1.2, saddle * 0.8], (0.0, 200.0), {"tau": tau, "s2": s2, "eta": eta},
                            method=method, **opts)
        np.testing.assert_allclose(results[be].final, [stable, 0.0], atol=1e-6)
    np.testing.assert_allclose(results["numba"].final, results["numpy"].final, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------ bounded step buffers
@pytest.mark.parametrize("backend", BACKENDS)
def test_long_runs_continue_in_new_buffers(monkeypatch, backend):
    import theorykit.solve._solve as solve_module

    ref = REFERENCES["oscillator"]
    csys = ref.compiled(backend)
    events = [Threshold("x", 0.0)]
    full = solve(csys, ref.y0, ref.t_span, ref.p, dense=True, events=events)
    monkeypatch.setattr(solve_module, "BUFFER_BYTES", 8 * 2 * 6 * 20)  # about 20 steps per buffer
    part = solve(csys, ref.y0, ref.t_span, ref.p, dense=True, events=events)
    assert part.status is Status.SUCCESS and part.stats["n_steps"] > 60
    assert np.all(np.diff(part.t) > 0) and part.t.size == part.stats["n_steps"] + 1
    assert part.dense.t0.size == part.stats["n_steps"]
    np.testing.assert_allclose(part.y, ref.exact(part.t, ref.y0, ref.p), atol=1e-7)
    ts = np.linspace(*ref.t_span, 37)
    np.testing.assert_allclose(part.at(ts), ref.exact(ts, ref.y0, ref.p), atol=1e-7)
    np.testing.assert_allclose(part.events.t, full.events.t, atol=1e-8)
    t_eval = np.linspace(*ref.t_span, 7)
    sol = solve(csys, ref.y0, ref.t_span, ref.p, dense=True, t_eval=t_eval)
    np.testing.assert_array_equal(sol.t, t_eval)
    np.testing.assert_allclose(sol.y, ref.exact(t_eval, ref.y0, ref.p), atol=1e-7)
    # a fixed-step SDE path is the same whether or not it was split
    ou = REFERENCES["ou"]
    whole = solve(ou.compiled(backend), ou.y0, (0.0, 1.0), ou.p, method="euler_maruyama", dt=0.01, seed=5)
    monkeypatch.setattr(solve_module, "BUFFER_BYTES", 8 * 1 * 20)
    split = solve(ou.compiled(backend), ou.y0, (0.0, 1.0), ou.p, method="euler_maruyama", dt=0.01, seed=5)
    np.testing.assert_array_equal(whole.t, split.t)
    np.testing.assert_array_equal(whole.y, split.y)


def test_euler_maruyama_without_noise_is_first_order_euler():
    ref = REFERENCES["decay"]
    t1 = np.array([ref.t_span[1]])
    errs = [abs(solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method="euler_maruyama", dt=dt, seed=0).final[0]
                - ref.exact(t1, ref.y0, ref.p)[0, 0]) for dt in (0.01, 0.005)]
    assert 1.8 < errs[0] / errs[1] < 2.2
    # explicit Euler on y' = -k y: y_n = (1 - k dt)^n y0, exactly
    sol = solve(ref.compiled(), ref.y0, ref.t_span, ref.p, method="euler_maruyama", dt=0.01, seed=0)
    np.testing.assert_allclose(sol.final[0], (1 - ref.p[0] * 0.01) ** 500, rtol=1e-10)
