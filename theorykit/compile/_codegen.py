"""Python source generation for an :class:`ODESystem`: one joint CSE pass over rhs, Jacobian,
observables and diffusion, then one function per quantity that evaluates only what it needs.

No user text reaches the generated code except as string literals written by ``repr``: symbols become
ASCII identifiers (``y_<name>``, ``p_<name>``), names are listed in ``repr``-ed constants, and the finished
source is checked name by name before it is used (:func:`_check_generated`).
"""

from __future__ import annotations

import ast
import keyword
import re
from typing import Sequence

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import PythonCodePrinter

from .._sealed import seal
from ..derive import ODESystem
from ..errors import CompileError

#: bump when the generated code's layout changes, so cached modules are regenerated
CODEGEN_VERSION = "5"
_HEADER_CONSTANTS = ("SYSTEM_NAME", "SYSTEM_HASH", "STATES", "PARAMS", "OBSERVABLES")
#: names generated code may use besides the arguments, the unpacked symbols and the CSE temporaries
_RUNTIME_NAMES = frozenset({"math", "njit", "abs", "min", "max", "float", *_HEADER_CONSTANTS})
#: the decorator of generated numba functions, without and with numba's own on-disk cache (see _decorator); the
#: flags are explicit, as numba compiles a function with the unset flags of the caller that first calls it (a
#: fastmath caller would make the cached code of a generated function depend on which caller came first)
_DECORATORS = {False: "@njit(error_model='numpy', fastmath=False)\n",
               True: "@njit(cache=True, error_model='numpy', fastmath=False)\n"}


class _Printer(PythonCodePrinter):
    """Scalar Python printer whose output numba compiles: ``math.*`` calls, float literals."""

    def _print_Rational(self, expr):  # 1/2 -> 0.5 keeps integer arithmetic out of float code
        return repr(float(expr.p) / float(expr.q))

    def _print_Integer(self, expr):
        return f"{int(expr)}.0" if abs(int(expr)) < 2**53 else repr(float(expr))

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 0 < int(exp) <= 4:
            b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"] + 1)
            # parenthesised so that a printed denominator "a/(b*b)" keeps its meaning
            return "(" + "*".join([b] * int(exp)) + ")" if int(exp) > 1 else b
        if exp.is_Integer and int(exp) < 0 and int(exp) >= -4:
            b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"] + 1)
            return "1.0/(" + "*".join([b] * -int(exp)) + ")"
        if exp == sp.Rational(1, 2):
            return f"math.sqrt({self._print(base)})"
        if exp == -sp.Rational(1, 2):
            return f"1.0/math.sqrt({self._print(base)})"
        return super()._print_Pow(expr, rational=rational)


def _identifier(name: str, prefix: str) -> str:
    """``prefix`` + ``name`` with every character outside ``[A-Za-z0-9_]`` replaced by ``_`` (ASCII only:
    Python folds Unicode identifiers by NFKC, which could merge two distinct names)."""
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)


def module_head(system: ODESystem, backend: str, numba_cache: bool, doc: str) -> tuple[list[str], str]:
    """The first lines of a generated module (docstring ``doc``, imports, the system's names as ``repr``-ed
    constants) and the decorator its functions get (``@njit(error_model="numpy")``, see ``_decorator``)."""
    head = [f'"""{doc}"""', "import math"] + (["from numba import njit"] if backend == "numba" else []) + [
        "",
        f"SYSTEM_NAME = {system.name!r}",
        f"SYSTEM_HASH = {system.content_hash()!r}",
        f"STATES = {system.state_names!r}",
        f"PARAMS = {system.param_names!r}",
        f"OBSERVABLES = {tuple(system.observed)!r}",
        "",
        "",
        "",
    ]
    return head, _decorator(backend, numba_cache)


def _decorator(backend: str, numba_cache: bool) -> str:
    """The line above every generated function: ``@njit(error_model='numpy')`` (with ``cache=True`` when
    ``numba_cache``) or nothing.

    IEEE arithmetic (x/0 -> inf, not ZeroDivisionError): an exception cannot leave a function that the
    solvers call through a pointer, while inf/nan reach the solvers' and analyses' finiteness checks as a
    status.
    """
    return _DECORATORS[numba_cache] if backend == "numba" else ""


def _numeric_code(printer: PythonCodePrinter, expr: sp.Expr, owner: str) -> str:
    """``expr`` printed as numeric Python, or a :class:`CompileError` naming ``owner``."""
    try:
        return printer.doprint(expr)
    except PrintMethodNotImplementedError as exc:
        raise CompileError(f"{owner} uses something numeric code cannot evaluate: "
                           f"{str(exc).splitlines()[0]}") from None


def finish_module(source: str, identifiers: set[str], system: ODESystem) -> str:
    """``source`` checked by :func:`_check_generated` (``identifiers``: the variables it may use besides
    ``math``, ``njit``, a few builtins and the header constants), then sealed (:func:`seal`)."""
    _check_generated(source, identifiers, system.name)
    return seal(source)


def _check_generated(source: str, identifiers: set[str], system_name: str) -> None:
    """Refuse generated code that uses a name, attribute or string it should not: the last guard that
    no user text (e.g. a bound variable of a ``Sum``) reaches the module outside ``repr``-ed constants."""
    refusal = (f"generated code for system {system_name!r} would contain {{}}: the system holds an expression "
               "that cannot be compiled safely (bound variables, unknown functions)")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CompileError(refusal.format(f"a syntax error at {exc.text!r}")) from None
    allowed_strings: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets][0] in _HEADER_CONSTANTS:
            allowed_strings |= {id(c) for c in ast.walk(node.value)}
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # the docstring
            allowed_strings.add(id(node.value))
        elif isinstance(node, ast.FunctionDef):  # error_model='numpy' of the decorator _decorator writes
            allowed_strings |= {id(c) for d in node.decorator_list if f"@{ast.unparse(d)}\n" in _DECORATORS.values()
                                for c in ast.walk(d)}
    for node in ast.walk(tree):
        bad = None
        if isinstance(node, ast.Name) and node.id not in identifiers and node.id not in _RUNTIME_NAMES:
            bad = f"the name {node.id!r}"
        elif isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "math"):
            bad = f"the attribute {node.attr!r}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and id(node) not in allowed_strings \
                and node.value not in ("nan", "inf", "-inf"):
            bad = f"the string {node.value!r}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and ast.unparse(node) not in ("import math",
                                                                                         "from numba import njit"):
            bad = f"the import {ast.unparse(node)!r}"
        if bad:
            raise CompileError(refusal.format(bad))


def generate_source(system: ODESystem, *, backend: str, jac: bool = True, cse: bool = True,
                    numba_cache: bool = True) -> str:
    """Return the source of a module defining ``rhs_into``, ``jac_into``, ``observed_into`` and
    ``diffusion_into`` for ``system``, decorated with ``numba.njit(error_model='numpy')`` if
    ``backend == "numba"`` (with ``cache=True`` when ``numba_cache``, for modules kept on disk).

    All functions share the signature ``(t, y, p, out)`` with float64 arrays ``y`` [n_states],
    ``p`` [n_params] and ``out`` of the quantity's shape; they write into ``out`` and return nothing.
    The module's constants ``STATES``, ``PARAMS`` and ``OBSERVABLES`` list the names in slot order. The
    first line holds the SHA-256 of the rest, so that an edited copy is detected.

    Raises
    ------
    CompileError
        If an expression uses a function that cannot be compiled, or the generated code fails the
        safety check.
    """
    printer = _Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})

    def code(expr: sp.Expr) -> str:
        return _numeric_code(printer, expr, f"system {system.name!r}")

    # local names for t, states and params, readable in the generated source
    local = {system.t: sp.Symbol("t")}
    used: set[str] = {"t", "y", "p", "out", "math", "np"}
    unpack: list[str] = []  # "    y_x = y[0]" lines, states then params
    for symbols, array in ((system.states, "y"), (system.params, "p")):
        for i, s in enumerate(symbols):
            ident = _identifier(s.name, f"{array}_")
            while ident in used:
                ident += "_"
            used.add(ident)
            local[s] = sp.Symbol(ident)
            unpack.append(f"    {ident} = {array}[{i}]")

    blocks: dict[str, list[tuple[tuple[int, ...], sp.Expr]]] = {
        "rhs_into": [((i,), r) for i, r in enumerate(system.rhs)],
        "observed_into": [((i,), v) for i, v in enumerate(system.observed.values())],
    }
    if jac:
        J = system.jacobian()
        blocks["jac_into"] = [((i, j), J[i, j]) for i in range(J.rows) for j in range(J.cols)]
    if system.noise is not None:
        G = system.noise
        blocks["diffusion_into"] = [((i, j), G[i, j]) for i in range(G.rows) for j in range(G.cols)]

    order = [n for n in ("rhs_into", "jac_into", "observed_into", "diffusion_into") if n in blocks]
    flat = [e.xreplace(local) for name in order for _, e in blocks[name]]
    if cse and flat:
        tmp_syms = sp.numbered_symbols("x")
        replacements, reduced = sp.cse(flat, symbols=tmp_syms, optimizations="basic")
    else:
        replacements, reduced = [], flat
    rep_map = dict(replacements)

    def needed_temps(exprs: list[sp.Expr]) -> list[tuple[sp.Symbol, sp.Expr]]:
        need: set[sp.Symbol] = set()
        stack = [s for e in exprs for s in e.free_symbols if s in rep_map]
        while stack:
            s = stack.pop()
            if s in need:
                continue
            need.add(s)
            stack.extend(x for x in rep_map[s].free_symbols if x in rep_map)
        return [(s, e) for s, e in replacements if s in need]

    head, dec = module_head(system, backend, numba_cache, "Generated by theorykit. The names of y[i], p[i] and the "
                            "observables' out[i] are STATES[i],\nPARAMS[i] and OBSERVABLES[i]; SYSTEM_HASH is the "
                            "content hash of the system.")
    unpack_syms = [local[s] for s in (*system.states, *system.params)]
    functions: list[str] = []
    pos = 0
    for name in ("rhs_into", "jac_into", "observed_into", "diffusion_into"):
        entries = blocks.get(name, [])
        exprs = reduced[pos:pos + len(entries)]
        pos += len(entries)
        if name not in blocks and name in ("jac_into", "diffusion_into"):
            continue
        temps = needed_temps(exprs)
        used_syms = set().union(set(), *(e.free_symbols for e in exprs), *(e.free_symbols for _, e in temps))
        lines = [f"{dec}def {name}(t, y, p, out):"]
        lines += [ln for ln, sym in zip(unpack, unpack_syms) if sym in used_syms]
        lines += [f"    {s} = {code(e)}" for s, e in temps]
        for (idx, _), e in zip(entries, exprs):
            target = f"out[{idx[0]}]" if len(idx) == 1 else f"out[{idx[0]}, {idx[1]}]"
            lines.append(f"    {target} = {code(e)}")
        if len(lines) == 1:
            lines.append("    return None")
        functions.append("\n".join(lines) + "\n")
    source = "\n".join(head) + "\n\n".join(functions)
    identifiers = {"t", "y", "p", "out"} | {str(s) for s in local.values()} | {str(s) for s, _ in replacements}
    return finish_module(source, identifiers, system)


def generate_function_module(name: str, functions: Sequence[tuple[str, Sequence[sp.Symbol], sp.Expr, str]], *,
                             doc: str, backend: str = "numba", numba_cache: bool = True) -> str:
    """Source of a module of scalar functions, printed, checked and sealed as the systems' modules are.

    For scalar building blocks that hand-written numba kernels call (an activation, a loss entry), derived
    with SymPy but not part of an :class:`~theorykit.derive.ODESystem`. Each entry ``(name, args, expr, comment)`` becomes
    ``def name(*args): return <expr>`` under the line ``# comment``, decorated with
    ``numba.njit(error_model='numpy')`` for ``backend="numba"`` (``cache=True`` when ``numba_cache``), so that
    x/0 is inf or nan for the calling kernel to check, as in the systems' modules.

    Parameters
    ----------
    name : str
        What the module holds, for error messages.
    functions : sequence of (str, sequence of Symbol, Expr, str)
        Name, arguments (symbols whose names are Python identifiers), expression in the arguments only,
        one-line comment.
    doc : str
        The module docstring.

    Raises
    ------
    CompileError
        If a name is not an identifier, an expression uses a symbol outside its arguments or something numeric
        code cannot evaluate, or the source fails the safety check of the systems' modules.
    """
    printer = _Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
    dec = _decorator(backend, numba_cache)
    head = [f'"""{doc}"""', "import math"] + (["from numba import njit"] if backend == "numba" else []) + ["", "", ""]
    identifiers: set[str] = set()
    blocks = []
    for fn, args, expr, comment in functions:
        arg_names = [str(a) for a in args]
        bad = [n for n in (fn, *arg_names) if not n.isidentifier() or keyword.iskeyword(n) or n in _RUNTIME_NAMES]
        if bad:
            raise CompileError(f"{name}: {bad} cannot name a function or argument in generated code")
        stray = sorted(str(s) for s in expr.free_symbols - set(args))
        if stray:
            raise CompileError(f"{name}: function {fn!r} uses {stray}, which are not among its arguments {arg_names}")
        identifiers |= set(arg_names)
        blocks.append(f"# {' '.join(comment.split())}\n{dec}def {fn}({', '.join(arg_names)}):\n"
                      f"    return {_numeric_code(printer, expr, f'{name}: function {fn!r}')}\n")
    source = "\n".join(head) + "\n\n".join(blocks)
    _check_generated(source, identifiers, name)
    return seal(source)
