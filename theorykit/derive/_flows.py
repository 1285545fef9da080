"""Building systems from losses: gradient flows and expectations over data by moment substitution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import sympy as sp

from ..errors import IncompleteSystemError
from ._parse import as_expression
from ._system import ODESystem


def gradient_flow(
    loss: sp.Expr,
    states: Sequence[sp.Symbol],
    params: Sequence[sp.Symbol] | str = "infer",
    *,
    lr: Mapping[sp.Symbol, Any] | None = None,
    t: sp.Symbol | None = None,
    observed: Mapping[str, Any] | None = None,
    name: str = "gradient_flow",
    provenance: Sequence[str] = (),
) -> ODESystem:
    r"""The gradient flow :math:`\dot\theta_i = -\eta_i\,\partial L/\partial\theta_i` of a symbolic loss.

    Parameters
    ----------
    loss : Expr or str
        The (already averaged) loss :math:`L(\theta)`; a string is parsed by
        :func:`~theorykit.derive.parse_expression`, its names referring to ``states`` and ``params``.
    states : sequence of Symbol
        The trained variables :math:`\theta`.
    params : sequence of Symbol or "infer"
        Parameters of the resulting system (see :class:`ODESystem`).
    lr : mapping Symbol -> Expr, optional
        Per-state learning-rate factors :math:`\eta_i` (default 1), e.g. a predictor rate ratio.
    observed : mapping, optional
        Extra observables; ``"loss"`` is always added.
    """
    t = t if t is not None else sp.Symbol("t", real=True)
    table = {s.name: s for s in (t, *states, *([] if isinstance(params, str) else params))
             if isinstance(s, sp.Symbol)}
    loss = as_expression(loss, "loss", table)
    lr = dict(lr or {})
    unknown = [k for k in lr if k not in states]
    if unknown:
        raise IncompleteSystemError(f"lr keys {unknown} are not states {list(states)}")
    rhs = tuple(sp.expand(-as_expression(lr.get(s, 1), f"lr of {s}", table) * sp.diff(loss, s)) for s in states)
    obs = {"loss": loss, **dict(observed or {})}
    return ODESystem(t=t, states=tuple(states), rhs=rhs, params=params, observed=obs, name=name,
                     provenance=tuple(provenance) + ("gradient flow of the loss, rates " + (
                         ", ".join(f"{k}: {v}" for k, v in lr.items()) or "1"),))


def moment_symbol(var: sp.Symbol | str, k: int) -> sp.Symbol:
    """The symbol ``<var^k>`` standing for the k-th moment of a random variable."""
    name = var if isinstance(var, str) else var.name
    return sp.Symbol(f"<{name}^{k}>", real=True)


@dataclass(frozen=True)
class Law:
    """The law of a scalar random variable, seen only through its moments.

    Use :meth:`gaussian`, :meth:`symbolic` or :meth:`from_moments`. ``moment(k)`` returns the k-th raw
    moment as a SymPy expression.
    """

    kind: str
    mean: sp.Expr = sp.Integer(0)
    variance: sp.Expr = sp.Integer(1)
    symbol_name: str = ""
    symmetric: bool = True
    values: tuple[tuple[int, sp.Expr], ...] = ()

    @classmethod
    def gaussian(cls, variance: Any = 1, mean: Any = 0) -> "Law":
        """N(mean, variance); moments by the Gaussian recursion."""
        mean, variance = as_expression(mean, "mean"), as_expression(variance, "variance")
        return cls("gaussian", mean=mean, variance=variance, symmetric=mean == 0)

    @classmethod
    def symbolic(cls, name: str, *, symmetric: bool = True, normalized: bool = False) -> "Law":
        """Moments kept as symbols ``<name^k>``; odd ones vanish if ``symmetric``; ``<name^0>=1``.

        ``normalized=True`` sets ``<name^2> = 1``.
        """
        vals = ((2, sp.Integer(1)),) if normalized else ()
        return cls("symbolic", symbol_name=name, symmetric=symmetric, values=vals)

    @classmethod
    def from_moments(cls, moments: Mapping[int, Any], *, name: str = "c") -> "Law":
        """A law given by explicit raw moments ``{k: E[X^k]}`` (missing ones raise when needed)."""
        return cls("moments", symbol_name=name, symmetric=False,
                   values=tuple(sorted((int(k), as_expression(v, f"moment {k}")) for k, v in moments.items())))

    def moment(self, k: int) -> sp.Expr:
        if k < 0:
            raise ValueError("moment order must be non-negative")
        if k == 0:
            return sp.Integer(1)
        given = dict(self.values)
        if k in given:
            return given[k]
        if self.kind == "gaussian":
            # E[(m + s Z)^k] = sum_j C(k, j) m^(k-j) s^j E[Z^j], E[Z^j] = (j-1)!! for even j
            m, v = self.mean, self.variance
            return sp.expand(sum(sp.binomial(k, j) * m ** (k - j) * v ** sp.Rational(j, 2) * sp.factorial2(j - 1)
                                 for j in range(0, k + 1, 2)))
        if self.symmetric and k % 2 == 1:
            return sp.Integer(0)
        if self.kind == "symbolic":
            return moment_symbol(self.symbol_name, k)
        raise IncompleteSystemError(f"moment of order {k} of law {self.symbol_name!r} was not given")


def expectation(expr: Any, laws: Mapping[sp.Symbol, Law]) -> sp.Expr:
    r"""Expectation of a polynomial in independent random variables, by moment substitution.

    Every monomial :math:`\prod_i X_i^{k_i}` becomes :math:`\prod_i \mathbb E[X_i^{k_i}]`. Coefficients may
    depend on any other symbols (weights, parameters).

    Raises
    ------
    IncompleteSystemError
        If ``expr`` is not polynomial in one of the random variables (the message names it).
    """
    expr = sp.expand(as_expression(expr, "expectation argument", {s.name: s for s in laws}))
    rvs = list(laws)
    if not rvs:
        return expr
    try:
        poly = sp.Poly(expr, *rvs)
    except sp.PolynomialError as exc:
        raise IncompleteSystemError(f"expectation needs an expression polynomial in {rvs}: {exc}") from None
    for gen in poly.gens:
        if gen not in rvs:
            raise IncompleteSystemError(f"expectation: {gen} appears non-polynomially")
    for rv in rvs:
        if any(rv in c.free_symbols for c in poly.coeffs()):
            raise IncompleteSystemError(f"expectation: {rv} appears non-polynomially (e.g. in a denominator or function)")
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        term = coeff
        for rv, k in zip(rvs, powers):
            if k:
                term *= laws[rv].moment(k)
        total += term
    return sp.expand(total)
