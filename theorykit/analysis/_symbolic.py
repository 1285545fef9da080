"""The symbolic fixed-point route (SymPy Gröbner bases) and high-precision root refinement (mpmath).

Kept apart from the numeric analysis modules so that they never import SymPy; ``theorykit.analysis``
imports this module on first use of :func:`symbolic_fixed_points` or :func:`refine_fixed_point`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp

from ..errors import InvalidParameterError


def _system_of(system):
    """An :class:`ODESystem` from an ODESystem or a CompiledSystem (its ``.system``)."""
    from ..derive import ODESystem

    if isinstance(system, ODESystem):
        return system
    inner = getattr(system, "system", None)
    if isinstance(inner, ODESystem):
        return inner
    raise InvalidParameterError(f"system must be an ODESystem or a CompiledSystem, got {type(system).__name__}")


def _exact(value: Any) -> sp.Expr:
    """A parameter value as an exact SymPy number: floats by their shortest decimal (0.1 -> 1/10)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, str):  # parsed, never evaluated
        from ..derive import parse_expression

        return sp.nsimplify(parse_expression(value, what="parameter value"), rational=True)
    x = float(value)
    if not np.isfinite(x):
        raise InvalidParameterError(f"parameter values must be finite, got {value!r}")
    return sp.Rational(repr(x))


def _fix_params(system, params: Mapping[str, Any] | None):
    if not params:
        return system
    return system.with_params({k: _exact(v) for k, v in params.items()})


@dataclass(frozen=True, eq=False)
class SymbolicFixedPoints:
    """The steady states of a polynomial or rational system, solved symbolically.

    Attributes
    ----------
    solutions : tuple of dict Symbol -> Expr
        Every solution (real and complex) of ``f = 0`` with non-vanishing denominators.
    polynomial : Expr or None
        The univariate polynomial left in ``variable`` after eliminating every other state with a
        lex-order Gröbner basis (``None`` if the system is not polynomial after clearing denominators,
        or the solution set is not zero-dimensional).
    variable : Symbol
        The state the other ones were eliminated in favour of (the last in lex order).
    degree : int or None
        Degree of ``polynomial`` in ``variable`` (the number of solutions with multiplicity,
        counted in that coordinate).
    groebner : tuple of Expr
        The reduced lex Gröbner basis (empty when not computed).
    states : tuple of Symbol
    """

    solutions: tuple[dict, ...]
    polynomial: sp.Expr | None
    variable: sp.Symbol
    degree: int | None
    groebner: tuple[sp.Expr, ...]
    states: tuple[sp.Symbol, ...]

    def real_solutions(self, tol: float = 1e-12) -> np.ndarray:
        """The numerically real solutions as float64[n_real, n_states] (parameters must all be fixed)."""
        rows = []
        for sol in self.solutions:
            vals = [complex(sp.N(sol[s], 30)) for s in self.states]
            if all(abs(v.imag) <= tol * max(1.0, abs(v.real)) for v in vals):
                rows.append([v.real for v in vals])
        return np.array(rows, dtype=np.float64).reshape(-1, len(self.states))


def symbolic_fixed_points(system, params: Mapping[str, Any] | None = None, *,
                          variable: str | None = None) -> SymbolicFixedPoints:
    """Solve the steady-state equations ``f(y) = 0`` of a polynomial or rational system with SymPy.

    The numerators of the right-hand sides are reduced to a lex-order Gröbner basis in which the last
    element is a univariate polynomial in ``SymbolicFixedPoints.variable``; its degree bounds the
    number of isolated fixed points.

    Parameters
    ----------
    system : ODESystem or CompiledSystem
    params : mapping name -> value, optional
        Parameters to fix first; floats are made exact by their shortest decimal form. Parameters left
        free stay symbolic (the Gröbner basis is then computed over the rational functions in them).
    variable : str, optional
        The state to keep in the eliminant (default: the last state).

    Raises
    ------
    InvalidParameterError
        If ``variable`` is not a state, or the system depends on time.
    """
    system = _fix_params(_system_of(system), params)
    states = list(system.states)
    if variable is not None:
        names = [s.name for s in states]
        if variable not in names:
            raise InvalidParameterError(f"variable {variable!r} is not a state; states are {names}")
        states.append(states.pop(names.index(variable)))
    try:
        eqs = system.steady_state_equations()
    except Exception as exc:
        raise InvalidParameterError(str(exc)) from exc
    nums, dens = [], []
    for e in eqs:
        num, den = sp.together(sp.sympify(e, strict=True)).as_numer_denom()
        nums.append(sp.expand(num))
        dens.append(den)
    polynomial_ok = all(n.is_polynomial(*states) for n in nums)
    basis: tuple[sp.Expr, ...] = ()
    poly = None
    degree = None
    var = states[-1]
    if polynomial_ok:
        nonzero = [n for n in nums if n != 0]
        if nonzero:
            G = sp.groebner(nonzero, *states, order="lex")
            basis = tuple(G.exprs)
            uni = [g for g in basis if g.free_symbols & set(states) <= {var}]
            if uni and not (len(basis) == 1 and basis[0] == 1):
                poly = sp.factor_terms(uni[-1])
                degree = int(sp.Poly(uni[-1], var).degree())
            elif len(basis) == 1 and basis[0] == 1:
                poly, degree = sp.Integer(1), 0
    raw = sp.solve(nums, states, dict=True) if any(n != 0 for n in nums) else []
    sols = []
    for sol in raw:
        if set(sol) != set(states):
            continue  # a positive-dimensional family: no isolated fixed point to report
        if any(sp.simplify(d.subs(sol)) == 0 for d in dens):
            continue
        sols.append({s: sp.simplify(sol[s]) for s in system.states})
    return SymbolicFixedPoints(tuple(sols), poly, var, degree, basis, tuple(system.states))


@dataclass(frozen=True, eq=False)
class RefinedFixedPoint:
    """A fixed point refined in multiple precision.

    Attributes
    ----------
    y : tuple of mpmath.mpf
    residual : mpmath.mpf
        ``max |f(y)|`` evaluated at ``dps`` digits.
    dps : int
        Decimal digits of the working precision.
    converged : bool
        ``residual <= 10**(-(dps - 5))`` (near a non-simple root Newton converges linearly and the root is
        only determined to about half the digits).
    """

    y: tuple
    residual: Any
    dps: int
    converged: bool

    def to_numpy(self) -> np.ndarray:
        return np.array([float(v) for v in self.y], dtype=np.float64)


def _mp_value(v: Any) -> mpmath.mpf:
    if isinstance(v, (str, mpmath.mpf)):
        return mpmath.mpf(v)
    if isinstance(v, sp.Basic):
        return mpmath.mpf(sp.N(v, mpmath.mp.dps + 5))
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return mpmath.mpf(repr(float(v)))


def refine_fixed_point(system, y, params: Mapping[str, Any] | None = None, *, dps: int = 50,
                       max_steps: int = 200) -> RefinedFixedPoint:
    """Refine an approximate fixed point with ``mpmath.findroot`` (multidimensional Newton) at ``dps`` digits.

    The right-hand side and Jacobian are lambdified to mpmath from the symbolic system, so the result
    carries the full working precision; use it to certify roots near bifurcations.

    Parameters
    ----------
    system : ODESystem or CompiledSystem
    y : float64[n_states] or mapping state -> value
        The starting point (e.g. ``FixedPoint.y`` from :func:`find_fixed_points`).
    params : mapping name -> value, optional
        Values of all parameters; floats are read by their shortest decimal form (``0.1`` means 1/10),
        strings and mpmath numbers at full precision.
    dps : int
        Decimal digits of the working precision (``mpmath.mp.dps`` inside this call).

    Raises
    ------
    InvalidParameterError
        On missing parameters, a wrong-size ``y``, or ``dps < 15``.
    """
    from .._checks import check_int

    system = _system_of(system)
    dps = check_int("dps", dps, 15, 10_000)
    params = dict(params or {})
    missing = [n for n in system.param_names if n not in params]
    unknown = [k for k in params if k not in system.param_names]
    if missing or unknown:
        raise InvalidParameterError(f"params: missing {missing}, unknown {unknown}; "
                                    f"expected {list(system.param_names)}")
    if isinstance(y, Mapping):
        y = [y[n] for n in system.state_names]
    y = list(y)
    if len(y) != system.n_states:
        raise InvalidParameterError(f"y must have {system.n_states} entries {list(system.state_names)}, got {len(y)}")
    args = [*system.states, *system.params]
    f = sp.lambdify(args, list(system.rhs), modules="mpmath")
    J = sp.lambdify(args, system.jacobian(), modules="mpmath")
    with mpmath.workdps(dps):
        p = [_mp_value(params[n]) for n in system.param_names]
        x0 = [_mp_value(v) for v in y]

        def fun(*x):
            return f(*x, *p)

        def jac(*x):
            return mpmath.matrix(J(*x, *p))

        try:
            root = mpmath.findroot(fun, x0, J=jac, tol=mpmath.mpf(10) ** (-2 * dps), maxsteps=max_steps,
                                   verify=False)
        except (ZeroDivisionError, ValueError) as exc:
            raise InvalidParameterError(f"refinement failed from y={y}: {exc}") from exc
        vals = tuple(root) if isinstance(root, mpmath.matrix) else (root,)
        vals = tuple(+v for v in vals)
        residual = max(abs(v) for v in fun(*vals))
        converged = bool(residual <= mpmath.mpf(10) ** (-(dps - 5)))
    return RefinedFixedPoint(vals, residual, dps, converged)


__all__ = ["SymbolicFixedPoints", "symbolic_fixed_points", "RefinedFixedPoint", "refine_fixed_point"]
