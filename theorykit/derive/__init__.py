"""Stage 1 — derive: models and losses into immutable symbolic :class:`ODESystem` objects (SymPy only)."""

from ._cached import cached_derivation as cached_derivation
from ._parse import parse_expression as parse_expression
from ._flows import Law as Law, expectation as expectation, gradient_flow as gradient_flow, moment_symbol as moment_symbol
from ._system import Expectation as Expectation, latex as latex, ODESystem as ODESystem, make_system as make_system

__all__ = ["ODESystem", "latex", "cached_derivation", "make_system", "Expectation", "gradient_flow", "expectation", "Law", "moment_symbol",
           "parse_expression"]
