"""The immutable symbolic ODE system every theory is derived into."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import sympy as sp

from ..errors import IncompleteSystemError
from ._parse import as_expression


class Expectation(sp.Function):
    """An unevaluated expectation ``E[expr]`` over data; a system holding one is incomplete."""

    nargs = 1


def _check_name(name: str, what: str) -> str:
    """A symbol or observable name must be non-empty text without line breaks or control characters
    (names are shown in reports and mapped to safe identifiers in generated code)."""
    if not name or not name.isprintable():
        raise IncompleteSystemError(f"{what} name {name!r} must be non-empty, printable text")
    return name


def _as_symbol(obj: Any, what: str) -> sp.Symbol:
    if isinstance(obj, str):
        return sp.Symbol(_check_name(obj, what), real=True)
    if isinstance(obj, sp.Symbol):
        return obj
    raise IncompleteSystemError(f"{what} must be sympy Symbols or names, got {obj!r} ({type(obj).__name__})")


def _as_matrix(obj: Any, what: str, symbols: Mapping[str, sp.Symbol]) -> sp.ImmutableMatrix:
    """A matrix from a SymPy matrix or nested rows whose entries may be expression strings."""
    if isinstance(obj, sp.MatrixBase):
        return sp.ImmutableMatrix(obj)
    try:
        rows = [[as_expression(v, what, symbols) for v in row] for row in obj]
    except TypeError:
        raise IncompleteSystemError(f"{what} must be a matrix or a sequence of rows, got {obj!r}") from None
    return sp.ImmutableMatrix(rows)


_MOMENT_NAME = re.compile(r"^<(\w+)\^(\d+)>$")


def latex(expr: Any, **options: Any) -> str:
    """``sympy.latex`` that prints moment symbols ``<c^4>`` as :math:`\\langle c^{4} \\rangle`.

    ``options`` go to ``sympy.latex``; a ``symbol_names`` mapping given there takes precedence.
    """
    expr = as_expression(expr, "expression")
    names = {}
    for s in getattr(expr, "free_symbols", ()):
        m = _MOMENT_NAME.match(s.name)
        if m:
            names[s] = rf"\langle {sp.latex(sp.Symbol(m.group(1)))}^{{{m.group(2)}}} \rangle"
    names.update(options.pop("symbol_names", {}))
    return sp.latex(expr, symbol_names=names, **options)


def _names(symbols: Iterable[sp.Symbol]) -> list[str]:
    return [s.name for s in symbols]


@dataclass(frozen=True, eq=False)
class ODESystem:
    r"""An autonomous or time-dependent ODE (or Itô SDE) system in SymPy form.

    .. math:: \dot y_i = f_i(t, y; p), \qquad dy = f\,dt + G\,dW \;\text{(if ``noise`` is given)}

    Parameters
    ----------
    t : Symbol
        The time symbol.
    states : sequence of Symbol or str
        Ordered state variables ``y`` (a name given as a string becomes a real symbol).
    rhs : sequence of Expr or str
        Right-hand sides ``f``, one per state. Strings are parsed by
        :func:`~theorykit.derive.parse_expression` (never evaluated); their names refer to ``t``, the states
        and the listed params, and any other name becomes a new real symbol.
    params : sequence of Symbol or str, or ``"infer"``
        Ordered parameters ``p``. ``"infer"`` takes every free symbol that is neither a state nor ``t``,
        sorted by name; anything else must list them explicitly.
    observed : mapping str -> Expr or str
        Named observables (loss, cosines, order parameters) in terms of ``t``, states and params.
    noise : sympy Matrix or sequence of rows, optional
        Diffusion matrix ``G`` of shape ``(n_states, n_noise)`` for SDE forms.
    provenance : sequence of str
        How the system was obtained (model, derivation steps), oldest first.
    name : str
        A short name used in generated code and reports.

    Raises
    ------
    IncompleteSystemError
        If a free symbol is neither a state, a parameter nor ``t`` (the message names it), if the
        lengths disagree, if a symbol is used twice, if a name is empty or not printable, if an expression
        string is not an allowed expression, or if an unevaluated :class:`Expectation` remains.
    """

    t: sp.Symbol
    states: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...] | str = "infer"
    observed: Mapping[str, sp.Expr] = field(default_factory=dict)
    noise: sp.ImmutableMatrix | None = None
    provenance: tuple[str, ...] = ()
    name: str = "system"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        t = _as_symbol(self.t, "t")
        states = tuple(_as_symbol(s, "states") for s in self.states)
        explicit = () if isinstance(self.params, str) else tuple(_as_symbol(p, "params") for p in self.params)
        # expression strings name these symbols; other names become new real symbols (see parse_expression)
        table = {s.name: s for s in (t, *states, *explicit)}
        rhs = tuple(as_expression(r, f"rhs of {s}", table) for r, s in zip(self.rhs, states))
        if len(tuple(self.rhs)) != len(states):
            raise IncompleteSystemError(
                f"{len(states)} states but {len(tuple(self.rhs))} right-hand sides: give one rhs per state")
        if not states:
            raise IncompleteSystemError("an ODESystem needs at least one state")
        observed = {_check_name(str(k), "observable"): as_expression(v, f"observable {k!r}", table)
                    for k, v in dict(self.observed).items()}
        noise = None
        if self.noise is not None:
            noise = _as_matrix(self.noise, "noise matrix", table)
            if noise.shape[0] != len(states):
                raise IncompleteSystemError(
                    f"noise matrix must have one row per state ({len(states)}), got shape {noise.shape}")
        exprs = list(rhs) + list(observed.values()) + (list(noise) if noise is not None else [])
        if isinstance(self.params, str):
            if self.params != "infer":
                raise IncompleteSystemError(f"params must be a sequence of symbols or 'infer', got {self.params!r}")
            known = set(states) | {t}
            free = set().union(*(e.free_symbols for e in exprs)) - known
            params = tuple(sorted(free, key=lambda s: s.name))
        else:
            params = explicit
        set_(self, "t", t)
        set_(self, "states", states)
        set_(self, "rhs", rhs)
        set_(self, "params", params)
        set_(self, "observed", MappingProxyType(observed))
        set_(self, "noise", noise)
        set_(self, "provenance", tuple(str(p) for p in self.provenance))
        self.check()

    # ------------------------------------------------------------------ validation
    def check(self) -> None:
        """Raise :class:`~theorykit.errors.IncompleteSystemError` unless the system is complete and consistent."""
        all_syms = [self.t, *self.states, *self.params]
        names = [_check_name(s.name, "symbol") for s in all_syms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise IncompleteSystemError(f"symbol name(s) {dup} used more than once among t, states and params")
        allowed = set(all_syms)
        where = [(f"rhs of {s.name}", e) for s, e in zip(self.states, self.rhs)]
        where += [(f"observable {k!r}", e) for k, e in self.observed.items()]
        if self.noise is not None:
            where += [("noise matrix", e) for e in self.noise]
        for label, expr in where:
            if expr.has(Expectation):
                raise IncompleteSystemError(
                    f"{label} still contains an unevaluated expectation {expr.atoms(Expectation)}: "
                    "take it with theorykit.derive.expectation(...) first")
            stray = expr.free_symbols - allowed
            if stray:
                names_ = ", ".join(sorted(s.name for s in stray))
                raise IncompleteSystemError(
                    f"{label} has symbol(s) {names_} that are neither states, params nor t: "
                    "add them to params=, fix them with .with_params({...}) or substitute them")
            bad = expr.atoms(sp.Derivative, sp.Integral)
            if bad:
                raise IncompleteSystemError(f"{label} contains unevaluated {bad}: call .doit() first")

    # ------------------------------------------------------------------ basic views
    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def n_noise(self) -> int:
        return 0 if self.noise is None else self.noise.shape[1]

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(_names(self.states))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(_names(self.params))

    def symbol(self, name: str) -> sp.Symbol:
        """The state, parameter or time symbol called ``name``."""
        for s in (self.t, *self.states, *self.params):
            if s.name == name:
                return s
        raise KeyError(f"{name!r} is not a state, parameter or time of system {self.name!r}")

    def rhs_of(self, state: str | sp.Symbol) -> sp.Expr:
        """The right-hand side of one state."""
        key = state.name if isinstance(state, sp.Symbol) else state
        return self.rhs[self.state_names.index(key)]

    # ------------------------------------------------------------------ calculus
    def jacobian(self) -> sp.Matrix:
        """Symbolic Jacobian ``∂f_i/∂y_j`` (a new ``sympy.Matrix``, n_states × n_states)."""
        return sp.Matrix(self.rhs).jacobian(sp.Matrix(self.states))

    def steady_state_equations(self) -> tuple[sp.Expr, ...]:
        """The equations ``f(y) = 0`` whose solutions are the fixed points (time-independent systems)."""
        if any(r.has(self.t) for r in self.rhs):
            raise IncompleteSystemError(f"system {self.name!r} depends explicitly on {self.t}: it has no steady states")
        return self.rhs

    # ------------------------------------------------------------------ transforms
    def replace(self, **changes: Any) -> "ODESystem":
        """A new system with some fields replaced (validated again)."""
        fields = dict(t=self.t, states=self.states, rhs=self.rhs, params=self.params,
                      observed=dict(self.observed), noise=self.noise, provenance=self.provenance, name=self.name)
        fields.update(changes)
        return ODESystem(**fields)

    def _map_exprs(self, fn) -> dict[str, Any]:
        return dict(
            rhs=tuple(fn(r) for r in self.rhs),
            observed={k: fn(v) for k, v in self.observed.items()},
            noise=None if self.noise is None else self.noise.applyfunc(fn),
        )

    def _symbol_table(self) -> dict[str, sp.Symbol]:
        return {s.name: s for s in (self.t, *self.states, *self.params)}

    def substitute(self, mapping: Mapping[Any, Any], *, note: str | None = None) -> "ODESystem":
        """Substitute symbols/expressions everywhere; parameters that disappear are dropped.

        Keys given as names find the system's symbol of that name; values may be expression strings
        (parsed, see :func:`~theorykit.derive.parse_expression`). States cannot be substituted away (that
        changes the system's dimension): use a reduction instead.
        """
        table = self._symbol_table()

        def key(k: Any) -> Any:
            return (table.get(k) or _as_symbol(k, "substitution key")) if isinstance(k, str) else k

        mapping = {key(k): as_expression(v, f"substitution for {k}", table) for k, v in mapping.items()}
        hit_states = [k for k in mapping if k in self.states]
        if hit_states:
            raise IncompleteSystemError(
                f"cannot substitute state(s) {_names(hit_states)}: the states of a system are fixed")
        new = self._map_exprs(lambda e: e.subs(mapping))
        exprs = list(new["rhs"]) + list(new["observed"].values()) + (list(new["noise"]) if new["noise"] is not None else [])
        used = set().union(*(e.free_symbols for e in exprs))
        introduced = sorted((used - set(self.params) - set(self.states) - {self.t}), key=lambda s: s.name)
        params = tuple(p for p in self.params if p in used) + tuple(introduced)
        desc = note or "substitute " + ", ".join(f"{k}->{v}" for k, v in mapping.items())
        return self.replace(params=params, provenance=self.provenance + (desc,), **new)

    def with_params(self, values: Mapping[Any, Any]) -> "ODESystem":
        """Fix parameters to values (numbers, or expressions or expression strings in other parameters);
        returns a new system."""
        keys = [(_as_symbol(k, "parameter") if isinstance(k, str) else k) for k in values]
        unknown = [k for k in keys if k.name not in self.param_names]
        if unknown:
            raise IncompleteSystemError(
                f"{_names(unknown)} are not parameters of system {self.name!r}; its parameters are {list(self.param_names)}")
        # match by name so that "eta" finds Symbol("eta", positive=True) too
        by_name = {p.name: p for p in self.params}
        mapping = {by_name[k.name]: v for k, v in zip(keys, values.values())}
        return self.substitute(mapping, note="fix " + ", ".join(f"{k}={v}" for k, v in mapping.items()))

    def with_observed(self, **observed: Any) -> "ODESystem":
        """A new system with extra (or replaced) named observables."""
        return self.replace(observed={**self.observed, **observed})

    def with_provenance(self, step: str) -> "ODESystem":
        return self.replace(provenance=self.provenance + (step,))

    # ------------------------------------------------------------------ rendering
    def to_latex(self, *, environment: str = "align*") -> str:
        """The equations as a LaTeX ``align*`` block (``\\dot y = f``, then observables)."""
        lines = []
        for s, r in zip(self.states, self.rhs):
            lines.append(rf"\dot{{{latex(s)}}} &= {latex(r)}")
        for k, v in self.observed.items():
            label = k.replace("_", r"\_")
            lines.append(rf"\mathrm{{{label}}} &= {latex(v)}")
        body = " \\\\\n".join(lines)
        return f"\\begin{{{environment}}}\n{body}\n\\end{{{environment}}}"

    def to_markdown(self) -> str:
        """A Markdown section: a LaTeX display of the equations plus states, parameters and provenance."""
        out = [f"### {self.name}", "", "$$", self.to_latex(environment="aligned"), "$$", ""]
        out.append("States: " + ", ".join(f"${latex(s)}$" for s in self.states) + "  ")
        out.append("Parameters: " + (", ".join(f"${latex(p)}$" for p in self.params) or "none") + "  ")
        if self.noise is not None:
            out.append(f"Noise matrix $G$: ${latex(self.noise)}$  ")
        if self.provenance:
            out.append("")
            out.append("Derivation steps:")
            out += [f"{i}. {step}" for i, step in enumerate(self.provenance, 1)]
        return "\n".join(out) + "\n"

    def __repr__(self) -> str:
        return (f"ODESystem(name={self.name!r}, states={list(self.state_names)}, params={list(self.param_names)}, "
                f"observed={list(self.observed)}, noise={'yes' if self.noise is not None else 'no'})")

    # ------------------------------------------------------------------ identity
    def canonical(self) -> str:
        """A canonical text of the system (``srepr`` of every field) that defines its identity.

        Computed once per object (``srepr`` of large expressions is slow; the system is immutable)."""
        cached = self.__dict__.get("_canonical")
        if cached is None:
            parts = [sp.srepr(self.t), sp.srepr(self.states), sp.srepr(self.params), sp.srepr(self.rhs),
                     sp.srepr(tuple(sorted(self.observed.items()))), sp.srepr(self.noise)]
            cached = "\n".join(parts)
            object.__setattr__(self, "_canonical", cached)
        return cached

    def content_hash(self) -> str:
        """A stable SHA-256 hex digest of :meth:`canonical` (independent of process and hash seed)."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def __reduce__(self):  # the read-only observables mapping does not pickle: rebuild from fields
        return (ODESystem, (self.t, self.states, self.rhs, self.params, dict(self.observed), self.noise,
                            self.provenance, self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ODESystem) and self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(self.content_hash())

    def _repr_latex_(self) -> str:
        """The equations as LaTeX, so that Jupyter shows them typeset (as it does SymPy objects)."""
        from .._display import system_latex

        return system_latex(self)


def make_system(states: Sequence[Any], rhs: Sequence[Any], params: Sequence[Any] | str = "infer", *,
                t: Any = "t", **kwargs: Any) -> ODESystem:
    """Shorthand for :class:`ODESystem` taking sequences (``make_system(["x"], ["-k*x"])``).

    Names may be strings and expressions may be expression strings; both are handled by
    :class:`ODESystem` (strings are parsed by :func:`~theorykit.derive.parse_expression`, never evaluated).
    """
    return ODESystem(t=t, states=tuple(states), rhs=tuple(rhs), params=params if isinstance(params, str)
                     else tuple(params), **kwargs)
