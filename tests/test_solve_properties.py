"""Property: for random right-hand sides built from + - * / pow sqrt log exp with random parameters,
``solve`` never reports SUCCESS with a non-finite or wrong state.

The reference is ``scipy.integrate.solve_ivp`` (RK45, the same Dormand–Prince pair) on the same
expressions lambdified with SymPy: where it succeeds with finite values, a successful theorykit solve
must agree with it; where it fails, theorykit must report a failure status too. A failure status where
scipy succeeds is allowed (theorykit also stops on ``blow_up`` and ``max_steps``).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st
from scipy.integrate import solve_ivp

from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.solve import Status, solve

pytestmark = pytest.mark.numba

X, Y = sp.symbols("x y", real=True)
A, B = sp.symbols("a b", real=True)
T_SPAN = (0.0, 0.73)  # not a simple fraction: no blow-up time of the random systems lands on t1 exactly
RTOL, ATOL = 1e-8, 1e-10
#: rhs evaluations after which the (pure Python) reference gives up; its verdict is then unknown
REFERENCE_BUDGET = 20_000

_leaf = st.one_of(st.sampled_from([X, Y, A, B]),
                  st.sampled_from([sp.Integer(k) for k in (0, 1, 2, -1)] + [sp.Rational(1, 2), sp.Rational(-3, 2)]))
_unary = [sp.sqrt, sp.log, sp.exp, lambda e: -e]
_binary = [sp.Add, lambda u, v: u - v, sp.Mul, lambda u, v: u / v]
_powers = [2, 3, -1, -2, sp.Rational(1, 2), sp.Rational(3, 2), sp.Rational(-1, 2)]


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(_unary), children).map(lambda fx: fx[0](fx[1])),
        st.tuples(st.sampled_from(_binary), children, children).map(lambda fuv: fuv[0](fuv[1], fuv[2])),
        st.tuples(children, st.sampled_from(_powers)).map(lambda ep: ep[0] ** ep[1]),
    )


expressions = st.recursive(_leaf, _extend, max_leaves=6)
values = st.one_of(st.just(0.0), st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False))


def _usable(expr) -> bool:
    """Real expressions only: SymPy may fold constants into complex numbers, zoo or nan."""
    return expr.is_real is not False and not expr.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo)


def _reference(system, y0, p):
    """solve_ivp on the lambdified rhs: (final state, verdict) with verdict True (succeeded with finite
    values), False (failed) or None (gave up after REFERENCE_BUDGET evaluations)."""
    f = sp.lambdify((system.t, (X, Y), (A, B)), list(system.rhs), "numpy")
    calls = [0]

    class Budget(Exception):
        pass

    def fun(t, y):
        calls[0] += 1
        if calls[0] > REFERENCE_BUDGET:
            raise Budget
        return np.array(f(t, y, p), dtype=np.float64)

    with np.errstate(all="ignore"):
        try:
            sol = solve_ivp(fun, T_SPAN, y0, method="RK45", rtol=RTOL, atol=ATOL)
        except Budget:
            return None, None
    ok = sol.status == 0 and bool(np.all(np.isfinite(sol.y)))
    return (sol.y[:, -1] if ok else None), ok


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(fx=expressions, fy=expressions, y0=st.tuples(values, values), p=st.tuples(values, values),
       backend=st.sampled_from(["numpy", "numpy", "numba"]))
def test_random_right_hand_sides_never_succeed_wrongly(fx, fy, y0, p, backend):
    assume(_usable(fx) and _usable(fy))
    system = make_system([X, Y], [fx, fy], [A, B], name="property")
    csys = compile_system(system, backend=backend, jac=False)
    y0, p = np.array(y0), np.array(p)
    sol = solve(csys, y0, T_SPAN, p, rtol=RTOL, atol=ATOL, throw=False)
    # whatever the status: the reported trajectory is finite and stops where it says
    assert np.all(np.isfinite(sol.y)) and np.all(np.isfinite(sol.final))
    assert sol.t[-1] == sol.t_final and T_SPAN[0] <= sol.t_final <= T_SPAN[1]
    ref_final, ref_ok = _reference(system, y0, p)
    event(f"theorykit {sol.status.name}, solve_ivp {({True: 'succeeds', False: 'fails', None: 'gave up'})[ref_ok]}")
    if ref_ok is None:
        return
    if sol.status is Status.SUCCESS:
        assert ref_ok, f"SUCCESS where solve_ivp fails: {fx}, {fy} at y0={y0}, p={p}"
        np.testing.assert_allclose(sol.final, ref_final, rtol=1e-4, atol=1e-6,
                                   err_msg=f"x' = {fx}, y' = {fy}, y0={y0}, p={p}")
    elif not ref_ok:
        assert not sol.success
