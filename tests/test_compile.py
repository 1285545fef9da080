"""The compile stage: generated code agrees with SymPy, both backends agree, the disk cache is hit."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

from theorykit.compile import compile_system
from theorykit.derive import make_system
from theorykit.errors import IncompleteSystemError, InvalidParameterError

BACKENDS = ["numba", "numpy"]


def _system():
    return make_system(
        ["p", "s"],
        ["alpha*s*(tau - (1 + sigma2)*p) - eta*p + sin(p)/(2 + s**2)",
         "2*p*s*(tau - (1 + sigma2)*p) - 2*eta*s + sqrt(1 + p**2)*exp(-s)"],
        ["alpha", "eta", "sigma2", "tau"],
        observed={"loss": "(p**2 - s)**2/2 + tau", "ratio": "p/(1 + s**2)"},
        name="coupled_modes",
    )


PARAMS = {"alpha": 1.3, "eta": 0.1, "sigma2": 0.5, "tau": 0.9}
Y = np.array([0.4, -0.25])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rhs_jac_observed_match_sympy(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(tmp_path))
    system = _system()
    csys = compile_system(system, backend=backend)
    subs = {**dict(zip(system.states, Y)), **{system.symbol(k): v for k, v in PARAMS.items()}}
    want_f = np.array([float(e.subs(subs)) for e in system.rhs])
    want_J = np.array(system.jacobian().subs(subs), dtype=float)
    np.testing.assert_allclose(csys.rhs(0.0, Y, PARAMS), want_f, rtol=1e-13)
    np.testing.assert_allclose(csys.jac(0.0, Y, PARAMS), want_J, rtol=1e-13)
    assert csys.observed("loss", 0.0, Y, PARAMS) == pytest.approx(float(system.observed["loss"].subs(subs)), rel=1e-13)
    traj = np.vstack([Y, 2 * Y])
    np.testing.assert_allclose(csys.observed("ratio", [0.0, 1.0], traj, PARAMS),
                               [Y[0] / (1 + Y[1] ** 2), 2 * Y[0] / (1 + 4 * Y[1] ** 2)], rtol=1e-13)
    assert "def rhs_into" in csys.source and "def jac_into" in csys.source


def test_backends_agree_and_interfaces_match(tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(tmp_path))
    a, b = (compile_system(_system(), backend=be) for be in BACKENDS)
    for name in ("state_names", "param_names", "observable_names", "n_states", "n_params"):
        assert getattr(a, name) == getattr(b, name)
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.normal(size=2)
        np.testing.assert_allclose(a.rhs(0, y, PARAMS), b.rhs(0, y, PARAMS), rtol=1e-14)
        np.testing.assert_allclose(a.jac(0, y, PARAMS), b.jac(0, y, PARAMS), rtol=1e-14)


def test_jacobian_matches_finite_differences(tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(tmp_path))
    csys = compile_system(_system())
    h = 1e-6
    fd = np.column_stack([(csys.rhs(0, Y + h * e, PARAMS) - csys.rhs(0, Y - h * e, PARAMS)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(csys.jac(0, Y, PARAMS), fd, rtol=1e-6, atol=1e-9)


def test_cse_shares_subexpressions():
    src = compile_system(_system(), backend="numpy", cache=False).source
    assert "x0 =" in src
    plain = compile_system(_system(), backend="numpy", cse=False, cache=False).source
    assert "x0 =" not in plain


def test_noise_matrix_is_compiled():
    s = make_system(["x", "v"], ["v", "-k*x"], ["k", "D"], noise=sp.Matrix([[0], [sp.Symbol("D", real=True) * sp.Symbol("x", real=True)]]))
    c = compile_system(s, backend="numpy", cache=False)
    np.testing.assert_allclose(c.diffusion(0, [2.0, 1.0], {"k": 1, "D": 0.5}), [[0.0], [1.0]])


def test_bad_inputs():
    csys = compile_system(_system(), backend="numpy", cache=False)
    with pytest.raises(InvalidParameterError, match="missing \\['tau'\\]"):
        csys.pack_params({"alpha": 1, "eta": 0, "sigma2": 0})
    with pytest.raises(InvalidParameterError, match="unknown \\['bogus'\\]"):
        csys.pack_params({**PARAMS, "bogus": 1})
    with pytest.raises(InvalidParameterError, match="2 entries"):
        csys.pack_state([1.0])
    with pytest.raises(InvalidParameterError, match="finite"):
        csys.pack_state([np.nan, 1.0])
    with pytest.raises(InvalidParameterError, match="backend"):
        compile_system(_system(), backend="fortran")
    with pytest.raises(IncompleteSystemError):
        compile_system("not a system")
    with pytest.raises(KeyError, match="unknown observable"):
        csys.observed("nope", 0, Y, PARAMS)


@pytest.mark.numba
def test_cache_is_hit_in_a_second_process(tmp_path):
    """The first process generates and compiles; the second finds the module and numba's cache."""
    code = textwrap.dedent("""
        import json, time
        from theorykit.derive import make_system
        from theorykit.compile import compile_system
        from theorykit._cache import cache_dir
        s = make_system(["x", "y"], ["a*x - x*y**3", "x**2 - b*y"], ["a", "b"])
        before = sorted(p.name for p in (cache_dir("generated")).glob("*.py"))
        c = compile_system(s)
        c.rhs(0.0, [1.0, 2.0], [0.5, 0.25])
        stats = c.rhs_into.stats
        print(json.dumps({"before": before, "path": str(c.path), "cache_hits": len(stats.cache_hits),
                          "cache_misses": len(stats.cache_misses)}))
    """)
    env = {**os.environ, "THEORYKIT_CACHE_DIR": str(tmp_path)}
    import json

    first = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
    second = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                       check=True).stdout.strip().splitlines()[-1])
    assert first["before"] == [] and first["cache_misses"] >= 1
    assert second["path"] == first["path"] and os.path.basename(first["path"]) in second["before"]
    assert second["cache_hits"] >= 1 and second["cache_misses"] == 0


def test_from_functions_wraps_hand_written_kernels():
    from numba import njit

    from theorykit.compile import CompiledSystem
    from theorykit.errors import CompileError
    from theorykit.solve import solve

    @njit
    def rhs_into(t, y, p, out):
        out[0] = -p[0] * y[0]

    @njit
    def observed_into(t, y, p, out):
        out[0] = y[0] * y[0]

    system = make_system(["x"], ["-k*x"], ["k"], observed={"x2": "x**2"})
    csys = CompiledSystem.from_functions(system, rhs_into=rhs_into, observed_into=observed_into, source="decay")
    sol = solve(csys, [1.0], (0.0, 2.0), {"k": 0.5}, t_eval=[0.0, 2.0])
    assert sol.final[0] == pytest.approx(np.exp(-1.0), rel=1e-8)
    assert sol.observed("x2")[-1] == pytest.approx(np.exp(-2.0), rel=1e-8)
    with pytest.raises(CompileError, match="observed_into"):
        CompiledSystem.from_functions(system, rhs_into=rhs_into)


def _unsafe_parts(source, payload):
    """Strings outside the repr-ed header constants that hold ``payload``, and variables the functions
    assign that are not generated identifiers (``y_*``, ``p_*``, CSE temporaries ``x<n>``)."""
    import ast
    import re

    tree = ast.parse(source)
    header = {id(c) for node in tree.body if isinstance(node, ast.Assign) for c in ast.walk(node.value)}
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and id(node) not in header and payload in node.value]
    for func in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(func):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and not re.fullmatch(r"[yp]_\w+|x\d+", node.id):
                found.append(node.id)
    return found


INJECT = "__import__('builtins').theorykit_test_injected = 1"
HOSTILE_NAMES = [f'x"""; {INJECT}; """', f"y'''; {INJECT}; '''", "a b", "1st", "lambda", "def", "out", "math",
                 "p", "x0"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_names_never_reach_generated_code_unescaped(backend, tmp_path, monkeypatch):
    """Quotes, keywords, spaces and names of the generated code's own variables are mapped to safe
    identifiers; user text is only inside repr-ed string constants; numbers are unaffected."""
    import builtins

    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(tmp_path))
    states = [sp.Symbol(n, real=True) for n in HOSTILE_NAMES[:5]]
    params = [sp.Symbol(n, real=True) for n in HOSTILE_NAMES[5:]]
    rhs = [-(i + 1) * s + params[i % len(params)] for i, s in enumerate(states)]
    observable = f'o"""; {INJECT}; """'
    system = make_system(states, rhs, params, observed={observable: states[0] * 2, "x\\": states[1]},
                         name=f'evil"""\n{INJECT}\n"""')
    try:
        csys = compile_system(system, backend=backend)
        assert not hasattr(builtins, "theorykit_test_injected")
    finally:
        if hasattr(builtins, "theorykit_test_injected"):
            del builtins.theorykit_test_injected
    assert _unsafe_parts(csys.source, INJECT) == []
    y = np.arange(1.0, 6.0)
    p = np.arange(10.0, 10.0 + len(params))
    want = [-(i + 1) * y[i] + p[i % len(params)] for i in range(5)]
    np.testing.assert_allclose(csys.rhs(0.0, y, p), want)
    assert csys.observed(observable, 0.0, y, p) == 2.0
    # a name with a line break is refused where it is made
    with pytest.raises(IncompleteSystemError, match="printable"):
        make_system(["x\nimport os"], ["1"])


def test_names_that_unicode_folds_together_stay_distinct():
    """Python folds identifiers by NFKC ("ﬁ" is "fi"): two such states must not share a variable."""
    csys = compile_system(make_system(["ﬁ", "fi"], ["-ﬁ", "2*fi"], name="nfkc"), backend="numpy", cache=False)
    np.testing.assert_allclose(csys.rhs(0.0, [1.0, 10.0], []), [-1.0, 20.0])


def test_expressions_that_cannot_be_compiled_safely_are_refused():
    from theorykit.errors import CompileError

    x, k = sp.symbols("x k", real=True)
    bound = sp.Symbol("__import__('os').system('true')")
    summed = make_system([x], [sp.Sum(x * bound, (bound, 1, 3))], name="bound_variable")
    with pytest.raises(CompileError, match="cannot be compiled safely"):
        compile_system(summed, backend="numpy", cache=False)
    unknown = make_system([x], [sp.Function("os.system")(x)], name="unknown_function")
    with pytest.raises(CompileError, match="os.system"):
        compile_system(unknown, backend="numpy", cache=False)


@pytest.mark.numba
def test_numba_backend_compiles_in_memory_without_a_cache():
    csys = compile_system(make_system(["x"], ["-k*x"], ["k"], name="in_memory_numba"), cache=False)
    assert csys.path is None and "cache=True" not in csys.source
    assert "@njit(error_model='numpy', fastmath=False)\n" in csys.source
    np.testing.assert_allclose(csys.rhs(0.0, [2.0], [3.0]), [-6.0])


def test_every_documented_function_compiles_and_evaluates():
    from theorykit.derive._parse import FUNCTIONS

    x = 0.3
    calls = {name: f"{name}(x)" if 1 in arities else f"{name}(x, 0.7)" for name, (_, arities) in FUNCTIONS.items()}
    calls["acosh"] = "acosh(1 + x)"
    system = make_system(["x"], ["0"], observed=calls, name="all_functions")
    for backend in BACKENDS:
        csys = compile_system(system, backend=backend, cache=False)
        for name, text in calls.items():
            want = float(system.observed[name].subs(system.states[0], x).evalf(30))
            assert csys.observed(name, 0.0, [x], []) == pytest.approx(want, rel=1e-14), (backend, name)


def test_generate_function_module_prints_checks_and_seals_scalar_functions():
    from theorykit.compile import generate_function_module
    from theorykit._sealed import unseal
    from theorykit.errors import CompileError

    u, c = sp.symbols("u c", real=True)
    source = generate_function_module("demo", [("soft", (u,), sp.log(1 + sp.exp(u)) / 2, "softplus / 2"),
                                               ("sq", (u, c), (u - c) ** 2, "squared\ndistance")],
                                      doc="Demo.", backend="numpy")
    assert unseal(source) is not None and "# squared distance\ndef sq(u, c):" in source
    namespace: dict = {}
    exec(unseal(source), namespace)
    assert namespace["soft"](0.3) == pytest.approx(np.log1p(np.exp(0.3)) / 2, rel=1e-15)
    assert namespace["sq"](1.5, -0.5) == 4.0
    with pytest.raises(CompileError, match="not among its arguments"):
        generate_function_module("demo", [("f", (u,), u * c, "uses c")], doc="Demo.")
    with pytest.raises(CompileError, match="cannot name"):
        generate_function_module("demo", [("lambda", (u,), u, "a keyword")], doc="Demo.")
    with pytest.raises(CompileError, match="numeric code cannot evaluate"):
        generate_function_module("demo", [("f", (u,), sp.Integral(u, u), "an integral")], doc="Demo.")


def test_generated_function_modules_use_ieee_arithmetic_like_the_systems_modules():
    """x/0 in a generated scalar function is inf/nan for the calling kernel to check, never a
    ZeroDivisionError that a kernel calling it through numba could not handle; the decorator's
    ``'numpy'`` string is the only string the safety check lets into a function."""
    from theorykit.compile import generate_function_module
    from theorykit._sealed import unseal
    from theorykit.compile._codegen import _check_generated
    from theorykit.errors import CompileError

    u, c = sp.symbols("u c", real=True)
    source = generate_function_module("demo", [("ratio", (u, c), u / c, "u over c"),
                                               ("root_slope", (u,), 1 / (2 * sp.sqrt(u)), "d sqrt(u) / du")],
                                      doc="Demo.", numba_cache=False)
    namespace: dict = {"__name__": "theorykit_test_ieee_functions"}
    exec(unseal(source), namespace)
    assert namespace["ratio"](1.0, 0.0) == np.inf and np.isnan(namespace["ratio"](0.0, 0.0))
    assert namespace["root_slope"](0.0) == np.inf
    tampered = unseal(source).replace("return u/c", "return 'numpy'")
    assert tampered != unseal(source)
    with pytest.raises(CompileError, match="the string 'numpy'"):
        _check_generated(tampered, {"u", "c"}, "demo")
