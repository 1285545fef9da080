"""Expression strings into SymPy expressions by walking Python's syntax tree: text is parsed, never executed.

``sympy.sympify`` evaluates its input with ``eval`` and gives some names a meaning of its own (``E`` is
Euler's number, ``I`` the imaginary unit, ``beta`` and ``gamma`` are functions), so it is not used on
user text anywhere in theorykit. This module builds the expression node by node instead.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from numbers import Number
from typing import Any, Callable, Mapping

import numpy as np
import sympy as sp

from ..errors import IncompleteSystemError

#: functions an expression string may call: name -> (SymPy function, allowed numbers of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], tuple[int, ...]]] = {
    "exp": (sp.exp, (1,)), "log": (sp.log, (1, 2)), "sqrt": (sp.sqrt, (1,)),
    "sin": (sp.sin, (1,)), "cos": (sp.cos, (1,)), "tan": (sp.tan, (1,)),
    "asin": (sp.asin, (1,)), "acos": (sp.acos, (1,)), "atan": (sp.atan, (1,)), "atan2": (sp.atan2, (2,)),
    "sinh": (sp.sinh, (1,)), "cosh": (sp.cosh, (1,)), "tanh": (sp.tanh, (1,)),
    "asinh": (sp.asinh, (1,)), "acosh": (sp.acosh, (1,)), "atanh": (sp.atanh, (1,)),
    "abs": (sp.Abs, (1,)), "Abs": (sp.Abs, (1,)), "sign": (sp.sign, (1,)),
    "erf": (sp.erf, (1,)), "erfc": (sp.erfc, (1,)),
    "min": (sp.Min, (2, 3, 4, 5, 6, 7, 8)), "Min": (sp.Min, (2, 3, 4, 5, 6, 7, 8)),
    "max": (sp.Max, (2, 3, 4, 5, 6, 7, 8)), "Max": (sp.Max, (2, 3, 4, 5, 6, 7, 8)),
}

_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}

MAX_LENGTH = 100_000  # characters of one expression string
MAX_EXACT_BITS = 100_000  # an exact integer power larger than this is refused, not computed
_ALLOWED = ("numbers, names, + - * / **, parentheses and the functions "
            + ", ".join(sorted({k for k in FUNCTIONS if k.islower()})))


def _quote(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _refuse(what: str, text: str, piece: str, why: str = "is not allowed") -> IncompleteSystemError:
    return IncompleteSystemError(f"{what} {_quote(text)}: {_quote(piece)} {why}; an expression may contain only "
                                 f"{_ALLOWED}")


def _placeholder(text: str) -> str:
    """A name absent from ``text`` that stands for the keyword ``lambda`` used as a symbol name."""
    name = "lambda_"
    while name in text:
        name += "_"
    return name


def parse_expression(text: str, symbols: Mapping[str, sp.Symbol] | None = None, *,
                     what: str = "expression") -> sp.Expr:
    """Parse an expression string into a SymPy expression without evaluating it as code.

    Accepted: numbers, names, ``+ - * / **``, unary ``-`` and ``+``, parentheses and calls of the functions
    ``exp, log`` (one argument, or ``log(x, base)``), ``sqrt, sin, cos, tan, asin, acos, atan, atan2, sinh,
    cosh, tanh, asinh, acosh, atanh, abs`` (also ``Abs``), ``sign, erf, erfc, min, max`` (also ``Min``,
    ``Max``). Everything else (attribute access, other calls, subscripts, comparisons, lambdas, keywords,
    strings, ``^``) is refused.

    Every name is a symbol: the one in ``symbols`` with that name, else a new real ``Symbol``. No name
    means a constant: ``E``, ``I``, ``N``, ``S``, ``O``, ``Q``, ``pi``, ``beta``, ``gamma``, ``zeta`` and
    ``lambda`` are symbols like any other (pass a SymPy expression such as ``sympy.pi`` for a constant).
    A function name that is not called (``gamma*x``) is a symbol too.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"-k*x + sin(x)/2"``.
    symbols : mapping str -> Symbol, optional
        Symbols to use for names (states, parameters, time), so that ``"x"`` is the state ``x``.
    what : str
        What the text is, for error messages (e.g. ``"rhs of x"``).

    Returns
    -------
    sympy.Expr
        The same expression as writing it with SymPy objects in Python: ``"x/2"`` gives ``x/2``.

    Raises
    ------
    IncompleteSystemError
        If the text is not such an expression (the message quotes the offending part).

    Examples
    --------
    >>> expr = parse_expression("-E*x")
    >>> expr.has(sp.E), sorted(s.name for s in expr.free_symbols)
    (False, ['E', 'x'])
    """
    if not isinstance(text, str):
        raise IncompleteSystemError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise IncompleteSystemError(f"{what} is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    table = dict(symbols or {})
    lam = _placeholder(text)
    source = re.sub(r"\blambda\b", lam, text).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = getattr(exc, "msg", None) or "too long a chain or too deep a nesting for Python's parser"
        raise IncompleteSystemError(f"{what} {_quote(text)} is not an expression ({detail}); an expression may "
                                    f"contain only {_ALLOWED}") from None

    def segment(node: ast.AST) -> str:
        return (ast.get_source_segment(source, node) or type(node).__name__).replace(lam, "lambda")

    _check_grammar(tree, lambda node, why="is not allowed": _refuse(what, text, segment(node), why))
    # post-order walk with an explicit stack: long sums or products never hit the recursion limit
    values: list[Any] = []
    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, ast.Name):
            name = segment(node)
            if name not in table:
                table[name] = sp.Symbol(name, real=True)
            values.append(table[name])
        elif isinstance(node, ast.Constant):
            values.append(_number(node.value, segment(node)))
        elif not children_done:
            children = [node.left, node.right] if isinstance(node, ast.BinOp) else (
                [node.operand] if isinstance(node, ast.UnaryOp) else node.args)  # type: ignore[attr-defined]
            stack += [(node, True), *((c, False) for c in reversed(children))]
        elif isinstance(node, ast.BinOp):
            right, left = values.pop(), values.pop()
            if isinstance(node.op, ast.Pow):
                _check_power_size(left, right, what, text, segment(node))
            values.append(_build(_OPERATORS[type(node.op)], (left, right), what, text, segment(node)))
        elif isinstance(node, ast.UnaryOp):
            values.append(_build(_UNARY[type(node.op)], (values.pop(),), what, text, segment(node)))
        else:  # a call, checked by _check_grammar
            n = len(node.args)  # type: ignore[attr-defined]
            args = values[len(values) - n:]
            del values[len(values) - n:]
            values.append(_build(FUNCTIONS[node.func.id][0], args, what, text, segment(node)))  # type: ignore
    (result,) = values
    return result


def _check_grammar(tree: ast.Expression, refuse: Callable[..., IncompleteSystemError]) -> None:
    """Raise ``refuse(node, why)`` for the outermost node outside the grammar, before anything is built."""
    for node in ast.walk(tree.body):
        if isinstance(node, (ast.operator, ast.unaryop, ast.Load)):
            continue  # judged with their BinOp / UnaryOp
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _OPERATORS:
                hint = " (write powers as **)" if isinstance(node.op, ast.BitXor) else ""
                raise refuse(node, f"uses the operator {type(node.op).__name__}{hint}, which is not allowed")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise refuse(node)
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS:
                raise refuse(node, "calls a function that is not allowed")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise refuse(node)
            if len(node.args) not in FUNCTIONS[name][1]:
                raise refuse(node, f"gives {name} {len(node.args)} argument(s)")
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise refuse(node)
            if isinstance(node.value, float) and not math.isfinite(node.value):
                raise refuse(node, "is out of the range of a double-precision number")
        elif not isinstance(node, ast.Name):
            raise refuse(node)


def _build(func: Callable[..., Any], args: Any, what: str, text: str, piece: str) -> Any:
    """``func(*args)``, with SymPy's refusals (e.g. ``max`` of ``nan``) as :class:`IncompleteSystemError`."""
    try:
        return func(*args)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _refuse(what, text, piece, f"cannot be formed ({exc})") from None


def _number(value: int | float, literal: str) -> sp.Expr:
    if isinstance(value, int):
        return sp.Integer(value)
    return sp.Float(literal.replace("_", ""))  # from the text, as sympify does: "0.1" keeps its digits


def _check_power_size(base: Any, exponent: Any, what: str, text: str, piece: str) -> None:
    """Refuse exact powers too large to compute (``9**9**9``), which SymPy would try to evaluate."""
    if not (exponent.is_Rational and base.is_number and not base.is_Float):
        return
    size = max(abs(base.p), abs(base.q)) if base.is_Rational else 2
    if size > 1 and abs(float(exponent)) * math.log2(size) > MAX_EXACT_BITS:
        raise _refuse(what, text, piece, f"is an exact number of more than {MAX_EXACT_BITS} bits")


def as_expression(obj: Any, what: str, symbols: Mapping[str, sp.Symbol] | None = None) -> sp.Expr:
    """A SymPy expression from a SymPy object, a Python/NumPy number or an expression string (parsed
    by :func:`parse_expression`); anything else is an :class:`IncompleteSystemError`."""
    if isinstance(obj, str):
        return parse_expression(obj, symbols, what=what)
    if isinstance(obj, (sp.Basic, sp.MatrixBase)):  # mutable matrices are not Basic
        return obj
    if isinstance(obj, (bool, np.bool_)) or not isinstance(obj, (Number, Fraction, np.number)):
        raise IncompleteSystemError(f"{what} must be a SymPy expression, a number or an expression string, "
                                    f"got {obj!r} ({type(obj).__name__})")
    return sp.sympify(obj, strict=True)  # strict: no conversion through str() and eval
