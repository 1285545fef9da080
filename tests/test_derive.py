"""The symbolic stage: ODESystem validation and transforms, gradient flows, expectations."""

import numpy as np
import pytest
import sympy as sp

from theorykit.derive import Expectation, Law, ODESystem, expectation, gradient_flow, make_system, moment_symbol
from theorykit.errors import IncompleteSystemError

x, y, k, a, t = sp.symbols("x y k a t", real=True)


def test_infer_params_sorted_by_name():
    s = ODESystem(t=t, states=(x, y), rhs=(-k * x + y, x * y - a))
    assert s.param_names == ("a", "k")
    assert s.state_names == ("x", "y")


def test_stray_symbol_is_named():
    z = sp.Symbol("zeta")
    with pytest.raises(IncompleteSystemError, match="zeta"):
        ODESystem(t=t, states=(x,), rhs=(-k * x + z,), params=(k,))


def test_length_mismatch_and_duplicates_raise():
    with pytest.raises(IncompleteSystemError, match="2 states but 1"):
        ODESystem(t=t, states=(x, y), rhs=(-x,), params=())
    with pytest.raises(IncompleteSystemError, match="more than once"):
        ODESystem(t=t, states=(x,), rhs=(-x,), params=(sp.Symbol("x"),))


def test_leftover_expectation_is_refused():
    with pytest.raises(IncompleteSystemError, match="expectation"):
        ODESystem(t=t, states=(x,), rhs=(Expectation(x * k),), params=(k,))


def test_jacobian_matches_finite_differences():
    s = make_system(["x", "y"], ["sin(x)*y - k*x**3", "exp(-x*y) + k*y**2"], ["k"])
    J = sp.lambdify((*s.states, *s.params), s.jacobian())
    f = sp.lambdify((*s.states, *s.params), list(s.rhs))
    pt, kval, h = np.array([0.3, -0.7]), 1.3, 1e-6
    fd = np.empty((2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd[:, j] = (np.array(f(*(pt + e), kval)) - np.array(f(*(pt - e), kval))) / (2 * h)
    np.testing.assert_allclose(np.array(J(*pt, kval), dtype=float), fd, rtol=1e-7, atol=1e-9)


def test_transforms_return_new_systems_and_keep_provenance():
    s = make_system(["x"], ["-k*x + a"], ["k", "a"], provenance=("start",))
    fixed = s.with_params({"k": 2})
    assert fixed is not s and s.param_names == ("k", "a") and fixed.param_names == ("a",)
    assert fixed.provenance[0] == "start" and "k=2" in fixed.provenance[-1]
    sub = s.substitute({"a": sp.Symbol("b", real=True) ** 2})
    assert sub.param_names == ("k", "b")
    with pytest.raises(IncompleteSystemError, match="cannot substitute state"):
        s.substitute({s.states[0]: 1})
    with pytest.raises(IncompleteSystemError, match="not parameters"):
        s.with_params({"nope": 1})


def test_content_hash_is_stable_and_discriminating():
    s1 = make_system(["x"], ["-k*x"], ["k"])
    s2 = make_system(["x"], ["-k*x"], ["k"])
    s3 = make_system(["x"], ["-k*x + 1"], ["k"])
    assert s1.content_hash() == s2.content_hash() and s1 == s2
    assert s1.content_hash() != s3.content_hash()
    # the same hash in another process (no dependence on Python's hash seed)
    import subprocess
    import sys

    code = ("from theorykit.derive import make_system;"
            "print(make_system(['x'], ['-k*x'], ['k']).content_hash())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == s1.content_hash()


def test_rendering_contains_equations():
    s = make_system(["x"], ["-k*x"], ["k"], observed={"energy": "x**2/2"}, name="decay")
    tex = s.to_latex()
    assert r"\dot{x} &= - k x" in tex and tex.startswith(r"\begin{align*}")
    md = s.to_markdown()
    assert "### decay" in md and "$$" in md and "energy" in md


def test_gradient_flow_of_quadratic_loss_is_linear_ode():
    # L = 1/2 (w - w*)^T A (w - w*)  ->  w' = -lr * A (w - w*)
    w1, w2, s1, s2, lr = sp.symbols("w1 w2 s1 s2 lr", real=True)
    A = sp.Matrix([[2, 1], [1, 3]])
    wv = sp.Matrix([w1 - s1, w2 - s2])
    loss = (wv.T * A * wv)[0] / 2
    sys_ = gradient_flow(loss, [w1, w2], lr={w1: lr, w2: 1})
    expected = [-lr * (A * wv)[0], -(A * wv)[1]]
    for got, want in zip(sys_.rhs, expected):
        assert sp.simplify(got - want) == 0
    assert "loss" in sys_.observed


def test_expectation_gaussian_moments_and_symbolic_laws():
    z, c, w = sp.symbols("z c w", real=True)
    s2 = sp.Symbol("sigma2", positive=True)
    assert sp.simplify(expectation(z**4, {z: Law.gaussian(s2)}) - 3 * s2**2) == 0
    assert expectation(z**3 + z, {z: Law.gaussian(1)}) == 0
    assert sp.expand(expectation((1 + z) ** 2, {z: Law.gaussian(1, mean=2)}) - 10) == 0
    got = expectation(w**2 * c**4 + c**3 + c, {c: Law.symbolic("c")})
    assert got == w**2 * moment_symbol("c", 4)
    # independence: E[z^2 c^2] = E[z^2] E[c^2]
    assert expectation(z**2 * c**2, {z: Law.gaussian(2), c: Law.symbolic("c")}) == 2 * moment_symbol("c", 2)
    assert expectation(c**4, {c: Law.from_moments({4: sp.Rational(9, 5)})}) == sp.Rational(9, 5)
    with pytest.raises(IncompleteSystemError, match="not given"):
        expectation(c**6, {c: Law.from_moments({4: 1})})
    with pytest.raises(IncompleteSystemError, match="polynomial"):
        expectation(sp.exp(z), {z: Law.gaussian(1)})


def test_expectation_agrees_with_monte_carlo():
    z, w = sp.symbols("z w", real=True)
    expr = (w * z - 1) ** 4
    exact = float(expectation(expr, {z: Law.gaussian(0.5)}).subs(w, 0.8))
    rng = np.random.default_rng(0)
    samples = (0.8 * rng.normal(0, np.sqrt(0.5), 400_000) - 1) ** 4
    assert abs(samples.mean() - exact) < 5 * samples.std() / np.sqrt(samples.size)


def test_cached_derivation_skips_work_second_time(tmp_path, monkeypatch):
    monkeypatch.setenv("THEORYKIT_CACHE_DIR", str(tmp_path))
    from theorykit.derive import cached_derivation

    calls = []

    @cached_derivation
    def build(order):
        calls.append(order)
        return make_system(["x"], [f"-k*x**{order}"], ["k"])

    first = build(3)
    second = build(3)
    assert calls == [3] and first == second and first is not second
    build(5)
    assert calls == [3, 5]
    assert len(list((tmp_path / "derivations").glob("build-*.pkl"))) == 2


def test_moment_symbols_render_as_angle_brackets():
    from theorykit.derive import latex

    s = ODESystem(t=t, states=(x,), rhs=(moment_symbol("c", 4) * x - moment_symbol("c", 2),), params="infer")
    assert r"\langle c^{4} \rangle x" in s.to_latex()
    assert r"\langle c^{2} \rangle" in s.to_markdown()
    assert latex(moment_symbol("c", 2)) == r"\langle c^{2} \rangle"
