"""Expression strings are parsed, never executed: the grammar, the names, every entry point."""

import builtins

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theorykit.derive import Law, ODESystem, expectation, gradient_flow, latex, make_system, parse_expression
from theorykit.errors import IncompleteSystemError

# names SymPy's own parser gives a meaning (constants, functions, singletons), plus plain ones
SPECIAL_NAMES = ["E", "I", "N", "S", "O", "Q", "pi", "beta", "gamma", "zeta", "lambda", "oo", "nan", "Symbol",
                 "exp", "sin"]
NAMES = ["x", "k", "x_1", "Eta", *SPECIAL_NAMES]
UNARY = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
         "atan": sp.atan, "sinh": sp.sinh, "tanh": sp.tanh, "asinh": sp.asinh, "abs": sp.Abs, "sign": sp.sign,
         "erf": sp.erf, "erfc": sp.erfc}
BINARY = {"atan2": sp.atan2, "log": sp.log, "min": sp.Min, "max": sp.Max}
OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}

# (text, a function building the same expression with SymPy objects in Python): the trusted construction
leaves = st.one_of(
    st.sampled_from(NAMES).map(lambda n: (n, lambda: sp.Symbol(n, real=True))),
    st.integers(0, 40).map(lambda k: (str(k), lambda: sp.Integer(k))),
    st.floats(0, 1e4, allow_nan=False, allow_infinity=False).map(lambda f: (repr(f), lambda: sp.Float(repr(f)))),
)
exponents = st.one_of(st.integers(-3, 3).map(lambda k: (f"({k})", lambda: sp.Integer(k))),
                      st.sampled_from(["x", "k", "E"]).map(lambda n: (n, lambda: sp.Symbol(n, real=True))),
                      st.sampled_from(["0.5", "1.5"]).map(lambda f: (f, lambda: sp.Float(f))))


def _extend(children):
    def call(func, *args):
        return lambda: func(*(a[1]() for a in args))

    return st.one_of(
        st.tuples(st.sampled_from(sorted(OPERATORS)), children, children).map(
            lambda t: (f"({t[1][0]}) {t[0]} ({t[2][0]})", call(OPERATORS[t[0]], t[1], t[2]))),
        st.tuples(children, exponents).map(lambda t: (f"({t[0][0]})**{t[1][0]}", call(lambda a, b: a**b, *t))),
        children.map(lambda c: (f"-({c[0]})", call(lambda a: -a, c))),
        st.tuples(st.sampled_from(sorted(UNARY)), children).map(
            lambda t: (f"{t[0]}({t[1][0]})", call(UNARY[t[0]], t[1]))),
        st.tuples(st.sampled_from(sorted(BINARY)), children, children).map(
            lambda t: (f"{t[0]}({t[1][0]}, {t[2][0]})", call(BINARY[t[0]], t[1], t[2]))),
    )


expressions = st.recursive(leaves, _extend, max_leaves=10)

# constructs outside the grammar, each with the piece of text the error message must quote
FORBIDDEN = [
    ("x.real", "x.real"), ("__import__('os')", "__import__('os')"), ("f(x)", "f(x)"), ("x[0]", "x[0]"),
    ("x if k else 1", "x if k else 1"), ("x < 1", "x < 1"), ("'s'", "'s'"), ("x ^ 2", "x ^ 2"),
    ("x // 2", "x // 2"), ("x % 2", "x % 2"), ("[x]", "[x]"), ("{x}", "{x}"), ("x @ k", "x @ k"),
    ("not x", "not x"), ("x and k", "x and k"), ("(x := 1)", "x := 1"), ("exp(x=1)", "exp(x=1)"),
    ("exp(*x)", "exp(*x)"), ("sin.__class__", "sin.__class__"), ("1j", "1j"), ("True", "True"), ("None", "None"),
    ("~x", "~x"), ("x << 1", "x << 1"), ("{x: 1}", "{x: 1}"), ("f'{x}'", "f'{x}'"), ("b'x'", "b'x'"),
    ("exp(x)(1)", "exp(x)(1)"), ("x()", "x()"), ("open('f')", "open('f')"), ("eval('1')", "eval('1')"),
    ("[i for i in x]", "[i for i in x]"), ("sqrt(x, 2)", "sqrt(x, 2)"), ("exp()", "exp()"), ("1e400", "1e400"),
    ("9**9**9", "9**9**9"), ("...", "..."),
]
NOT_EXPRESSIONS = ["lambda: 1", "lambda x: x", "import os", "x = 1", "x; k", "def f(): pass", "x +", "exec 'x'",
                   "(", "x\nimport os"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_allowed_expressions_parse_to_the_trusted_construction(case):
    text, build = case
    try:
        trusted = build()
    except (ValueError, TypeError, ArithmeticError):  # SymPy refuses it (e.g. max of nan): so must the parser
        with pytest.raises(IncompleteSystemError, match="cannot be formed"):
            parse_expression(text)
    else:
        assert parse_expression(text) == trusted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, st.sampled_from(FORBIDDEN), st.booleans())
def test_forbidden_constructs_anywhere_are_refused_naming_them(case, forbidden, first):
    text, _ = case
    snippet, quoted = forbidden
    bad = f"({snippet})*({text})" if first else f"({text}) + ({snippet})"
    with pytest.raises(IncompleteSystemError, match="is not allowed|calls a function|gives|bits|range|operator") as err:
        parse_expression(bad)
    assert repr(quoted)[1:-1] in str(err.value)


@pytest.mark.parametrize("text", NOT_EXPRESSIONS)
def test_non_expressions_are_refused(text):
    with pytest.raises(IncompleteSystemError, match="is not an expression"):
        parse_expression(text)


def test_power_is_star_star_with_a_hint_for_caret():
    with pytest.raises(IncompleteSystemError, match=r"write powers as \*\*"):
        parse_expression("x^2")


def _marker_code(name):
    return f"__import__('builtins').setattr(__import__('builtins'), '{name}', 1)"


@pytest.mark.parametrize("entry", ["make_system", "ODESystem", "observed", "with_params", "substitute", "noise",
                                   "gradient_flow", "lr", "gaussian", "from_moments", "expectation", "latex"])
def test_no_entry_point_executes_a_string(entry):
    """A string that would set a marker attribute on ``builtins`` if evaluated is refused, and nothing ran."""
    marker = f"theorykit_test_executed_{entry}"
    code = _marker_code(marker)
    x, w = sp.symbols("x w", real=True)
    base = make_system(["x"], ["-k*x"], ["k"])
    calls = {
        "make_system": lambda: make_system(["x"], [code]),
        "ODESystem": lambda: ODESystem(t="t", states=("x",), rhs=(code,)),
        "observed": lambda: make_system(["x"], ["-x"], observed={"o": code}),
        "with_params": lambda: base.with_params({"k": code}),
        "substitute": lambda: base.substitute({"k": code}),
        "noise": lambda: make_system(["x"], ["-x"], noise=[[code]]),
        "gradient_flow": lambda: gradient_flow(code, [w]),
        "lr": lambda: gradient_flow(w**2, [w], lr={w: code}),
        "gaussian": lambda: Law.gaussian(variance=code),
        "from_moments": lambda: Law.from_moments({2: code}),
        "expectation": lambda: expectation(code, {x: Law.gaussian(1)}),
        "latex": lambda: latex(code),
    }
    try:
        with pytest.raises(IncompleteSystemError, match="not allowed"):
            calls[entry]()
        assert not hasattr(builtins, marker)
    finally:
        if hasattr(builtins, marker):
            delattr(builtins, marker)


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_names_sympy_treats_specially_are_real_parameters(name):
    s = make_system(["x"], [f"-{name}*x"])
    assert s.param_names == (name,)
    (p,) = s.params
    assert p.is_Symbol and p.is_real
    assert s.rhs[0] == -p * s.states[0]


def test_strings_refer_to_the_declared_symbols():
    k = sp.Symbol("k", positive=True)
    s = make_system(["x"], ["-k*x + c"], [k, "c"], observed={"energy": "k*x**2/2"})
    assert s.params[0] is k and s.rhs[0].has(k)
    direct = ODESystem(t="t", states=("x",), rhs=("-x*t",), params=())  # "x" and "t" are the declared symbols
    assert direct.rhs[0] == -direct.states[0] * direct.t
    fixed = s.with_params({"c": "2*k"})
    assert fixed.rhs[0] == -k * s.states[0] + 2 * k


def test_numbers_keep_their_exact_meaning():
    assert parse_expression("1/2") == sp.Rational(1, 2)
    assert parse_expression("2**-1") == sp.Rational(1, 2)
    assert parse_expression("0.1") == sp.Float("0.1")
    assert parse_expression("-x**2") == -sp.Symbol("x", real=True) ** 2
    assert parse_expression("1_000") == 1000


def test_long_and_deep_inputs_are_handled():
    n = 500
    total = parse_expression(" + ".join(f"x{i}" for i in range(n)))
    assert len(total.args) == n
    with pytest.raises(IncompleteSystemError, match="not an expression"):  # Python's parser gives up: an error
        parse_expression(" + ".join(f"x{i}" for i in range(5000)))
    with pytest.raises(IncompleteSystemError, match="not an expression"):
        parse_expression("(" * 1000 + "x" + ")" * 1000)
    with pytest.raises(IncompleteSystemError, match="characters long"):
        parse_expression("x+" * 60_000 + "x")


def test_a_parameter_named_like_a_constant_is_a_parameter_numerically():
    """``-E*x`` with E = 0.5 decays like exp(-t/2), not exp(-e t)."""
    from theorykit.compile import compile_system

    csys = compile_system(make_system(["x"], ["-E*x"], name="decay_E"), backend="numpy", cache=False)
    assert csys.param_names == ("E",)
    np.testing.assert_allclose(csys.rhs(0.0, [2.0], {"E": 0.5}), [-1.0])


def test_sympy_objects_and_numbers_pass_through_unchanged():
    x = sp.Symbol("x", real=True)
    assert latex(sp.Matrix([[x, 1]])) == sp.latex(sp.Matrix([[x, 1]]))
    assert make_system([x], [np.float64(0.5) * x]).rhs[0] == sp.Float(0.5) * x
    with pytest.raises(IncompleteSystemError, match="must be a SymPy expression"):
        make_system([x], [object()])
