"""Tests of the high-dimensional contrastive theory: symbolic derivation, quadrature ODEs, SGD and PDE."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from theorykit.compile import compile_system
from theorykit.derive import Law, moment_symbol
from theorykit.errors import InvalidParameterError
from theorykit.theories import contrastive_highdim as ch
from theorykit.validate import compare

ROOT = Path(__file__).resolve().parents[1]
M2, M4 = moment_symbol("c", 2), moment_symbol("c", 4)


@pytest.fixture(scope="module")
def ode():
    return ch.compiled_ode(d=2, K=1, act="tanh", gh_points=12)


def _m(result, d=2, K=1):
    """Cosines float64[n_t, d, K] of a run or an ODE solution."""
    return ch.order_parameters(result, d, K)["m"]


# ------------------------------------------------------------------------------------ symbolic
def test_moment_cancellation_at_origin_is_symbolic():
    res = ch.small_q_expansion(2, 3)
    J = res["jacobian_origin"]
    free = set().union(*(e.free_symbols for e in J))
    assert M2 in free and M4 not in free
    # the fourth moment is present in the expanded dynamics, so its absence at q = 0 is a cancellation
    assert any(r.has(M4) for r in res["system"].rhs)
    # growth rate of the cosines: -tau <c^2> G_1 - tau^2 D_0 / (2Q); lambda and B_0 cancel
    tau, Q = sp.Symbol("tau", real=True), sp.Symbol("Q", positive=True)
    G1, D0 = sp.Symbol("G_1", real=True), sp.Symbol("D_0", real=True)
    assert sp.simplify(res["growth_rate"] - (-tau * M2 * G1 - tau**2 * D0 / (2 * Q))) == 0


def test_cubic_anisotropy_is_excess_kurtosis():
    expr = ch.cubic_anisotropy(2)
    q1, G3 = sp.Symbol("q_1", real=True), sp.Symbol("G_3", real=True)
    assert sp.simplify(expr - G3 / 6 * (M4 - 3 * M2**2) * q1**3) == 0


def test_stein_lemma_identity():
    assert ch.stein_check()


def test_integrand_matches_finite_differences():
    fn = compile_system(ch.integrand_system("tanh"), jac=False)
    rng = np.random.default_rng(1)
    loss = lambda a, b: -np.tanh(a) * np.tanh(b)  # noqa: E731
    h = 1e-4
    for z in rng.normal(size=(5, 2)):
        out = np.array([fn.observed(k, 0.0, z, []) for k in ("d1", "d2", "l11", "l12", "l22")])
        a, b = z
        d1 = (loss(a + h, b) - loss(a - h, b)) / (2 * h)
        d2 = (loss(a, b + h) - loss(a, b - h)) / (2 * h)
        l11 = (loss(a + h, b) - 2 * loss(a, b) + loss(a - h, b)) / h**2
        l22 = (loss(a, b + h) - 2 * loss(a, b) + loss(a, b - h)) / h**2
        l12 = (loss(a + h, b + h) - loss(a + h, b - h) - loss(a - h, b + h) + loss(a - h, b - h)) / (4 * h * h)
        np.testing.assert_allclose(out, [d1, d2, l11, l12, l22], atol=2e-6)


def test_linear_variance_cancels_at_rho_minus_one():
    sysl = ch.linear_system(2)
    D = sysl.observed["D"]
    beta = sp.Symbol("beta", real=True)
    s = {sp.Symbol("rho", real=True): -1, sp.Symbol("eta", real=True): 0, beta: 0}
    sigma, Q = sp.Symbol("sigma", real=True), sp.Symbol("Q", positive=True)
    assert sp.simplify(D.subs(s) - 4 * Q * sigma**4) == 0
    s0 = {sp.Symbol("rho", real=True): 0, sp.Symbol("eta", real=True): 0, beta: 0}
    q1, q2 = sp.symbols("q_1 q_2", real=True)
    assert sp.simplify(D.subs(s0) - (2 * M2 * (q1**2 + q2**2) * sigma**2 + 2 * Q * sigma**4)) == 0


def test_quadrature_ode_matches_exact_linear_system():
    """Two independent routes: moment substitution (exact, compiled by compile_system) and Gauss quadrature."""
    exact = compile_system(ch.linear_system(2))
    quad = ch.ContrastiveODE(d=2, act="linear", gh_points=6)
    rng = np.random.default_rng(3)
    for _ in range(4):
        hyp = ch.Hyper(tau=rng.uniform(0.2, 1), lam=rng.uniform(0, 1), sigma=rng.uniform(0, 1.2),
                       rho=rng.uniform(-1, 1), eta=rng.uniform(0, 0.3), beta=rng.uniform(0, 1))
        law = ch.HiddenLaw.sparse_ternary(rng.uniform(0.2, 1), m2=rng.uniform(0.5, 2))
        y = np.array([rng.normal() * 0.3, rng.normal() * 0.3, 1.0 + rng.uniform()])
        p = {"<c^2>": law.m2, "beta": hyp.beta, "eta": hyp.eta, "lambda": hyp.lam, "rho": hyp.rho, "sigma": hyp.sigma,
             "tau": hyp.tau}
        np.testing.assert_allclose(quad.csys.rhs(0, y, quad.pack(hyp, law)), exact.rhs(0, y, p), rtol=1e-9, atol=1e-12)


def _expectations_reference(ode, q, Q, hyper, law):
    """``(A, B, D)`` of :meth:`ContrastiveODE.expectations` by scipy's adaptive quadrature over the two Gaussian
    coordinates (the library's rules not involved), summed over the law's atoms."""
    from scipy.integrate import quad_vec

    a = np.sqrt(0.5 * (hyper.s2 + hyper.kappa) * Q)
    b = np.sqrt(0.5 * (hyper.s2 - hyper.kappa) * Q)
    buf, p0 = np.empty(7), np.empty(0)

    def parts(g0, g1, h):
        ode.integrand(0.0, np.array([h + a * g0 + b * g1, h + a * g0 - b * g1]), p0, buf)
        weight = np.exp(-0.5 * (g0 * g0 + g1 * g1)) / (2 * np.pi)
        return weight * np.array([buf[0] + buf[1], hyper.s2 * (buf[2] + buf[4]) + 2 * hyper.kappa * buf[3],
                                  hyper.s2 * (buf[0] ** 2 + buf[1] ** 2) + 2 * hyper.kappa * buf[0] * buf[1]])

    def mean(h):
        inner = lambda g0: quad_vec(lambda g1: parts(g0, g1, h), -9, 9, epsabs=1e-12, epsrel=1e-10)[0]  # noqa: E731
        return quad_vec(inner, -9, 9, epsabs=1e-11, epsrel=1e-9)[0]

    cx, cw = law.rule()
    A, B, D = np.zeros(len(q)), 0.0, 0.0
    for i, wi in zip(cx, cw):
        for j, wj in zip(cx, cw):
            if wi * wj == 0.0:
                continue
            c = np.array([i, j])
            m = mean(float(q @ c))
            A, B, D = A + wi * wj * m[0] * c, B + wi * wj * m[1], D + wi * wj * m[2]
    return A, B, D


@pytest.mark.parametrize("sigma, Q", [(0.5, 0.9), (1.0, 0.9), (1.5, 2.0)])
def test_quadrature_expectations_match_adaptive_quadrature(ode, sigma, Q):
    """The Gaussian scales max(a, b) = 0.34, 0.67, 1.5 (Gauss-Hermite below 0.4, the trapezoid rule above):
    within 1e-6 of scipy's adaptive quadrature. 12-node Gauss-Hermite alone was 0.7% off in Q* at sigma = 1."""
    hyper = ch.Hyper(tau=1.0, lam=0.2, sigma=sigma)
    law = ch.HiddenLaw.rademacher()
    q = np.array([0.3, 0.1])
    got = ode.expectations(q, Q, hyper, law)
    want = _expectations_reference(ode, q, Q, hyper, law)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("q, Q, sigma", [([0.96, 0.0], 0.95, 0.5), ([0.709, 0.142], 0.549, 0.5),
                                         ([0.85, 0.28], 1.33, 1.0)])
def test_gaussian_law_averages_are_exact(ode, q, Q, sigma):
    """For c ~ N(0, s² I) the average over c is done exactly (h = q·c joins the Gaussian part); a fine trapezoid
    rule in each coordinate of c (213² atoms) agrees to 1e-6, where the 8-node rule was up to 3.6% off."""
    from theorykit.theories.contrastive_highdim import _kernels

    law = ch.HiddenLaw.gaussian(1.7)
    hyper = ch.Hyper(tau=0.5, lam=0.5, sigma=sigma, rho=-0.5)
    q = np.array(q)
    A, B, D = ode.expectations(q, Q, hyper, law)
    z = np.arange(-8.5, 8.5 + 0.04, 0.08)  # a fine trapezoid rule over each coordinate of c
    w = np.exp(-0.5 * z * z)
    gx, gw = ode.gauss_hermite
    A_ref = np.empty(2)
    B_ref, D_ref, _, _ = _kernels.expectations_into(ode.integrand, q, Q, hyper.s2, hyper.kappa, law.scale * z,
                                                    w / w.sum(), 0.0, gx, gw, A_ref)
    np.testing.assert_allclose(A, A_ref, rtol=1e-6, atol=1e-12)
    assert B == pytest.approx(B_ref, rel=1e-6) and D == pytest.approx(D_ref, rel=1e-6)
    cx, cw = law.rule()
    B8, _, _, _ = _kernels.expectations_into(ode.integrand, q, Q, hyper.s2, hyper.kappa, cx, cw, 0.0, gx, gw, A_ref)
    assert abs(B8 / B_ref - 1) > 1e-4  # the 8-node rule the exact average replaces is measurably off here


# ------------------------------------------------------------------------------------ stability
def test_equal_second_moment_gives_equal_eigenvalues(ode):
    hyp = ch.Hyper(tau=1.0, lam=0.2, sigma=1.0)
    laws = [ch.HiddenLaw.rademacher(), ch.HiddenLaw.sparse_ternary(0.1), ch.HiddenLaw.uniform(),
            ch.HiddenLaw.from_moments({2: 1.0, 4: 2.5})]
    assert len({round(l.moment(4), 6) for l in laws}) == 4
    eig = [np.sort(ch.uninformative_state(ode, hyp, l).eigenvalues.real) for l in laws]
    for e in eig[1:]:
        np.testing.assert_allclose(e, eig[0], rtol=1e-7)
    # a different <c^2> changes them
    e2 = np.sort(ch.uninformative_state(ode, hyp, ch.HiddenLaw.rademacher(1.5)).eigenvalues.real)
    assert np.max(np.abs(e2 - eig[0])) > 0.1


def test_small_q_defaults_are_the_computed_coefficients(ode):
    hyp = ch.Hyper(tau=1.0, lam=0.2, sigma=1.0)
    u = ch.uninformative_state(ode, hyp, ch.HiddenLaw.rademacher())
    assert abs(u.Q_star - ch.systems()["small_q"].y0["Q"]) < 1e-4
    coef = ch.gaussian_coefficients(ode, hyp, u.Q_star)
    for k, v in coef.items():
        assert abs(ch.SMALL_Q_DEFAULTS[k] - v) < 1e-3 * max(1.0, abs(v)), k
    # the expansion reproduces the quadrature growth rate at the origin
    assert abs(-hyp.tau * (coef["G_1"] + coef["B_0"] + hyp.lam) - u.growth) < 1e-6


def test_threshold_matches_simulations(ode):
    hyp = ch.Hyper(tau=1.0, lam=0.2, sigma=1.0)
    m2c = ch.learnability_threshold(ode, hyp)
    u = ch.uninformative_state(ode, hyp, ch.HiddenLaw.rademacher())
    out = {}
    for r in (0.25, 2.0):
        law = ch.HiddenLaw.rademacher(r * m2c)
        uu = ch.uninformative_state(ode, hyp, law)
        assert uu.learnable == (r > 1)
        # below: decay rate 0.15, stationary |m| fluctuations ~ 0.03 at n = 1500; above: growth rate 0.2
        q0 = np.array([0.2, 0.0]) * np.sqrt(u.Q_star)
        run = ch.simulate_sgd(1500, 12.0, hyp, law, q0, u.Q_star, record_dt=1.0, seed=5)
        out[r] = float(np.mean(np.abs(run.observable("m_1")[-3:]))) / 0.2
    assert out[0.25] < 0.5 and out[2.0] > 2.0, out


# ------------------------------------------------------------------------------------ simulation
def test_ode_matches_sgd_n2000(ode):
    hyp = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=-0.5)
    law = ch.HiddenLaw.rademacher()
    run = ch.simulate_sgd(2000, 3.0, hyp, law, [0.3, 0.2], 1.0, record_dt=0.5, seed=0)
    assert run.names == ("q_1", "q_2", "Q", "m_1", "m_2")
    errors = compare(ch.ode_solution(ode, hyp, law, [0.3, 0.2], 1.0, run.t), run, ("m_1", "m_2", "Q"))
    # tolerance: about 3 standard deviations of the O(n^-1/2) fluctuations at n = 2000
    assert errors.max_error(["m_1", "m_2"]) < 0.05
    assert errors.errors["Q"] < 0.05


def test_negative_pair_adds_only_variance():
    res = ch.negative_term()
    assert res["A"] == 0 and res["B"] == 0
    beta, sigma, eta = sp.symbols("beta sigma eta", real=True)
    E = {k: sp.Symbol(f"E[{k}]") for k in ("F_1**2", "Fp_3**2", "F_3**2", "Fp_1**2")}
    expected = beta**2 * (eta + sigma**2) * (E["F_1**2"] * E["Fp_3**2"] + E["F_3**2"] * E["Fp_1**2"])
    assert sp.simplify(res["D"] - expected) == 0


def test_ode_matches_sgd_with_negative_pair(ode):
    hyp = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, beta=1.0)
    law = ch.HiddenLaw.rademacher()
    y = ode.state([0.3, 0.2], 1.0)
    # the negative pair changes the dynamics (through D only)
    dQ = [ode.csys.rhs(0, y, ode.pack(h, law))[2] for h in (hyp, hyp.replace(beta=0.0))]
    assert abs(dQ[0] - dQ[1]) > 0.01
    run = ch.simulate_sgd(2000, 3.0, hyp, law, [0.3, 0.2], 1.0, record_dt=0.5, seed=4)
    errors = compare(ch.ode_solution(ode, hyp, law, [0.3, 0.2], 1.0, run.t), run, ("m_1", "m_2", "Q"))
    assert errors.max_error(["m_1", "m_2"]) < 0.05
    assert errors.errors["Q"] < 0.05


def test_pde_particles_match_ode_under_l2(ode):
    hyp = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5)
    law = ch.HiddenLaw.sparse_ternary(0.5)
    pde = ch.simulate_pde(ode, 3000, 2.0, hyp, law, [0.3, 0.2], 1.0, reg="L2", dt=0.01, seed=2)
    assert pde.names == ("q_1", "q_2", "Q", "m_1", "m_2") and pde.t[-1] == pytest.approx(2.0)
    errors = compare(ch.ode_solution(ode, hyp, law, [0.3, 0.2], 1.0, pde.t), pde, ("m_1", "m_2", "Q"))
    assert errors.max_error(["m_1", "m_2"]) < 0.04
    assert errors.errors["Q"] < 0.04


def test_two_neurons_follow_the_single_neuron_equations(ode):
    hyp = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=0.3)
    law = ch.HiddenLaw.uniform()
    ode2 = ch.ContrastiveODE(d=2, K=2, act="tanh", gh_points=12)
    q0 = np.array([[0.3, -0.1], [0.2, 0.4]])
    y2 = ode2.state(q0, 1.0)
    f2 = ode2.csys.rhs(0, y2, ode2.pack(hyp, law))
    for k in range(2):
        f1 = ode.csys.rhs(0, ode.state(q0[:, k], 1.0), ode.pack(hyp, law))
        np.testing.assert_allclose(f2[3 * k:3 * k + 3], f1, rtol=1e-12)
    run = ch.simulate_sgd(2000, 2.0, hyp, law, q0, 1.0, K=2, record_dt=0.5, seed=3)
    assert run.names == ("q_1_1", "q_1_2", "q_2_1", "q_2_2", "Q_1", "Q_2", "m_1_1", "m_1_2", "m_2_1", "m_2_2")
    # the two-neuron ODE system names its states and observables the same way
    errors = compare(ch.ode_solution(ode2, hyp, law, q0, 1.0, run.t), run, run.names)
    assert errors.max_error([n for n in run.names if n.startswith("m")]) < 0.05
    for k in range(2):
        ref = _m(ch.ode_solution(ode, hyp, law, q0[:, k], 1.0, run.t))
        assert np.max(np.abs(_m(run, 2, 2)[:, :, k] - ref[:, :, 0])) < 0.05


@pytest.mark.slow
def test_pde_particles_match_sgd_under_l1(ode):
    hyp = ch.Hyper(tau=0.5, lam=0.3, sigma=0.5)
    law = ch.HiddenLaw.rademacher()
    pde = ch.simulate_pde(ode, 4000, 3.0, hyp, law, [0.3, 0.2], 1.0, reg="L1", dt=0.01, seed=1)
    sgd = ch.simulate_sgd(2000, 3.0, hyp, law, [0.3, 0.2], 1.0, reg="L1", record_dt=0.5, seed=1)
    errors = compare(pde, sgd, ("m_1", "m_2", "Q"))
    assert errors.max_error(["m_1", "m_2"]) < 0.06
    assert errors.errors["Q"] < 0.06


def _numpy_online_steps(W, U, C, e1, e2, eta1, e3, eta3, hyp, reg, act="tanh"):
    """Reference online SGD written with numpy from the loss -f(z1) f(z2) + beta f(z1) f(z3): ``W`` (n, K),
    ``U`` (n, d), one row of samples per step."""
    f = np.tanh if act == "tanh" else (lambda z: z)
    df = (lambda z: 1 - np.tanh(z) ** 2) if act == "tanh" else np.ones_like
    n = W.shape[0]
    r2 = np.sqrt(1 - hyp.rho**2)
    for s in range(len(C)):
        base = U @ C[s, 0] + np.sqrt(hyp.eta) * eta1[s]
        x1 = base + hyp.sigma * e1[s]
        x2 = base + hyp.sigma * (hyp.rho * e1[s] + r2 * e2[s])
        x3 = U @ C[s, 1] + np.sqrt(hyp.eta) * eta3[s] + hyp.sigma * e3[s]
        z1, z2, z3 = W.T @ x1, W.T @ x2, W.T @ x3
        g = (np.outer(x1, -df(z1) * (f(z2) - hyp.beta * f(z3))) + np.outer(x2, -f(z1) * df(z2))
             + np.outer(x3, hyp.beta * f(z1) * df(z3)))
        g += hyp.lam * W if reg == "L2" else hyp.lam / np.sqrt(n) * np.sign(W)
        W = W - hyp.tau / n * g
    return W


@pytest.mark.numba
@pytest.mark.parametrize("act, reg, hyp", [
    ("tanh", "L2", ch.Hyper(tau=0.8, lam=0.3, sigma=0.6, rho=0.4, eta=0.2, beta=0.7)),
    ("tanh", "L1", ch.Hyper(tau=0.8, lam=0.3, sigma=0.6, rho=0.4, eta=0.2, beta=0.7)),
    ("tanh", "L2", ch.Hyper(tau=0.5, lam=0.5, sigma=0.5)),
    ("tanh", "L1", ch.Hyper(tau=0.5, lam=0.3, sigma=0.5, rho=-1.0)),
    ("linear", "L2", ch.Hyper(tau=0.3, lam=0.2, sigma=0.4, rho=1.0, eta=0.1))])
def test_sgd_kernel_matches_numpy_steps_on_the_same_samples(act, reg, hyp):
    """A few steps of the online step kernel on pre-drawn samples equal a numpy implementation of the same
    updates, to rounding (negative pair, background noise, correlated and identical views, both
    activations and regularisers); rows that are not drawn enter as zeros."""
    from theorykit.theories.contrastive_highdim import _kernels as K

    rng = np.random.default_rng(9)
    n, d, K_, m = 37, 3, 2, 6
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    W = rng.standard_normal((n, K_)) / np.sqrt(n)
    C = rng.choice([-1.0, 1.0], size=(m, 2, d))
    Z = rng.standard_normal((m, 5, n))  # rows e1, e2, eta1, e3, eta3
    drawn = [True, hyp.rho**2 < 1, hyp.eta > 0, hyp.beta != 0, hyp.beta != 0 and hyp.eta > 0]
    full = np.where(np.array(drawn)[None, :, None], Z, 0.0)
    ref = _numpy_online_steps(W, U, C, *(full[:, i] for i in range(5)), hyp, reg, act)
    rows = np.cumsum(drawn) - 1  # the kernel gets only the drawn rows, in this order
    Wk = np.ascontiguousarray(W.T)
    coeffs = np.array([hyp.eta, hyp.sigma, hyp.rho, hyp.beta, hyp.tau, hyp.lam])
    K.sgd_steps(Wk, np.ascontiguousarray(U.T), C[:, :1 + (hyp.beta != 0)], np.ascontiguousarray(Z[:, drawn]),
                np.where(drawn, rows, -1)[1:], coeffs, K.ACT_CODES[act], K.REG_CODES[reg])
    assert np.abs(Wk.T - W).max() > 1e-3  # the steps moved the weights
    np.testing.assert_allclose(Wk.T, ref, rtol=1e-12, atol=1e-15)
    q, Q = np.empty((d, K_)), np.empty(K_)
    K.overlaps(np.ascontiguousarray(W.T), np.ascontiguousarray(U.T), q, Q)
    np.testing.assert_allclose(q, U.T @ W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(Q, np.sum(W**2, axis=0), rtol=1e-12)


@pytest.mark.numba
def test_replicates_run_in_threads_and_equal_single_runs():
    hyp, law = ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=-0.5), ch.HiddenLaw.rademacher()
    runs = ch.simulate_sgd_replicates(300, 1.0, hyp, law, [0.3, 0.2], 1.0, seeds=[4, 7, 9], threads=2,
                                      record_dt=0.5)
    for seed, run in zip([4, 7, 9], runs):
        single = ch.simulate_sgd(300, 1.0, hyp, law, [0.3, 0.2], 1.0, record_dt=0.5, seed=seed)
        assert run.seed == single.seed
        for name in single.names:
            np.testing.assert_array_equal(run.observable(name), single.observable(name))
    assert runs[0].observable("q_1")[-1] != runs[1].observable("q_1")[-1]
    with pytest.raises(InvalidParameterError, match="threads"):
        ch.simulate_sgd_replicates(300, 1.0, hyp, law, [0.3, 0.2], 1.0, seeds=[1], threads=0)


@pytest.mark.numba
@pytest.mark.parametrize("hyp", [ch.Hyper(tau=0.5, lam=0.5, sigma=0.5),
                                 ch.Hyper(tau=0.5, lam=0.5, sigma=0.5, rho=1.0, eta=0.1, beta=0.5)])
def test_sgd_is_reproducible_from_its_seed_and_independent_of_chunking(monkeypatch, hyp):
    import theorykit.simulate._driver as driver

    law = ch.HiddenLaw.sparse_ternary(0.5)
    run = lambda seed: ch.simulate_sgd(200, 1.0, hyp, law, [0.3, 0.2], 1.0, record_dt=0.25, seed=seed)  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    for name in a.names:
        np.testing.assert_array_equal(a.observable(name), b.observable(name))
    assert np.abs(a.observable("q_1") - c.observable("q_1")).max() > 1e-6
    monkeypatch.setattr(driver, "CHUNK_BYTES", 3 * 8 * (6 * 200 + 4))  # 3 steps per chunk instead of 50
    e = run(3)
    for name in a.names:
        np.testing.assert_array_equal(e.observable(name), a.observable(name))
    assert e.t.shape == (5,) and e.t[-1] == pytest.approx(1.0)
    assert ch.order_parameters(e, 2)["q"].shape == (5, 2, 1)


@pytest.mark.parametrize("law", [ch.HiddenLaw.rademacher(), ch.HiddenLaw.sparse_ternary(0.2),
                                 ch.HiddenLaw.gaussian(2.0), ch.HiddenLaw.uniform(0.5)],
                         ids=["rademacher", "ternary", "gaussian", "uniform"])
def test_hidden_variable_draws_have_the_law_moments(law):
    c = np.empty((200_000, 2))
    law.draw(np.random.default_rng(0), c)
    for k in (2, 4):
        ck = c**k
        # 5 standard errors of the sample mean of c^k
        assert abs(ck.mean() - law.moment(k)) <= 5 * ck.std() / np.sqrt(ck.size) + 1e-12, (k, law.moment(k))
    assert abs(c.mean()) < 5 * c.std() / np.sqrt(c.size)


# ------------------------------------------------------------------------------------ input errors
@pytest.mark.parametrize("kw", [{"rho": 1.5}, {"rho": -1.01}, {"sigma": -0.1}, {"tau": -1.0}, {"tau": 0.0},
                                {"lam": -0.2}, {"beta": -1.0}])
def test_bad_hyper_parameters(kw):
    with pytest.raises(InvalidParameterError) as err:
        ch.Hyper(**kw)
    assert next(iter(kw)) in str(err.value)


@pytest.mark.parametrize("kw, name", [({"act": "relu"}, "activation"), ({"reg": "L3"}, "regularizer"),
                                      ({"n": 2}, "n"), ({"t_final": 0.001}, "t_final * n"),
                                      ({"record_dt": 0.0}, "record_dt")])
def test_bad_simulation_settings(kw, name):
    args = {"n": 100, "t_final": 1.0, "act": "tanh", "reg": "L2", "record_dt": 0.5} | kw
    n, t_final = args.pop("n"), args.pop("t_final")
    with pytest.raises(InvalidParameterError) as err:
        ch.simulate_sgd(n, t_final, ch.Hyper(), ch.HiddenLaw.rademacher(), [0.3, 0.2], 1.0, **args)
    assert name in str(err.value)


@pytest.mark.parametrize("q0, Q0, K, match", [([0.9, 0.9], 1.0, 1, "Q0"), ([0.3, 0.2], 0.0, 1, "Q0"),
                                               ([[0.3], [0.2]], 1.0, 2, "K = 2"), ([0.3, np.nan], 1.0, 1, "q0")])
def test_bad_starts_are_refused_by_simulation_and_ode(ode, q0, Q0, K, match):
    with pytest.raises(InvalidParameterError, match=match):
        ch.simulate_sgd(100, 1.0, ch.Hyper(), ch.HiddenLaw.rademacher(), q0, Q0, K=K)
    with pytest.raises(InvalidParameterError, match=match):
        (ode if K == 1 else ch.compiled_ode(d=2, K=K)).state(q0, Q0)


def test_pde_refuses_overlaps_of_another_dimension(ode):
    with pytest.raises(InvalidParameterError, match="d = 2"):
        ch.simulate_pde(ode, 100, 1.0, ch.Hyper(), ch.HiddenLaw.rademacher(), [0.3, 0.2, 0.1], 1.0)


def test_inconsistent_moments_rejected():
    with pytest.raises(InvalidParameterError, match="inconsistent"):
        ch.HiddenLaw.from_moments({2: 1.0, 4: 0.5})
    with pytest.raises(InvalidParameterError):
        ch.HiddenLaw.from_moments({4: 3.0})
    with pytest.raises(InvalidParameterError):
        ch.HiddenLaw.sparse_ternary(1.5)


def test_law_from_moments_rules():
    rad = ch.HiddenLaw.from_moments({2: 1.0, 4: 1.0})
    np.testing.assert_allclose(sorted(rad.nodes), [-1, 1], atol=1e-12)
    g = ch.HiddenLaw.from_moments(Law.gaussian(1))
    for k in (2, 4, 6, 8):
        assert abs(g.moment(k) - float(sp.factorial2(k - 1))) < 1e-8 * float(sp.factorial2(k - 1))
    sp_ = ch.HiddenLaw.sparse_ternary(0.25)
    assert abs(sp_.kappa4 - 1.0) < 1e-12


def test_derivation_markdown_is_current():
    path = ROOT / "derivations" / "contrastive_highdim.py"
    spec = importlib.util.spec_from_file_location("contrastive_highdim_derivation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = (ROOT / "derivations" / "contrastive_highdim.md").read_text()
    assert mod.render() == committed
