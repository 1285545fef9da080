"""Tests of the non-contrastive theory: derivation against finite differences of the sampled loss, the
degrees of the reduced dynamics, closed-form equilibria, conservation, ODE vs SGD and bad input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from theorykit.compile import compile_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import noncontrastive as nc
from theorykit.theories.noncontrastive import _analysis as A
from theorykit.theories.noncontrastive import _symbolic as S
from theorykit.validate import compare

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers (independent)
def _aligned_networks(d, p0, s0, rng):
    """W = U diag(sqrt s) V^T and W_p = U diag(p) U^T with the modes split into equal groups."""
    G = len(p0)
    q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    grp = np.repeat(np.arange(G), d // G)
    W = (q1 * np.sqrt(np.asarray(s0))[grp]) @ q2.T
    Wp = (q1 * np.asarray(p0)[grp]) @ q1.T
    return q1, q2, W, Wp


def _sample_loss(loss, Wp, W, Wt, X1, X2):
    """Per-sample loss written directly from its definition (not from the theory module)."""
    U = X1 @ W.T @ Wp.T
    V = X2 @ Wt.T
    if loss == "euclidean":
        return 0.5 * np.sum((U - V) ** 2, axis=1)
    d = W.shape[0]
    return -d * np.sum(U * V, axis=1) / (np.linalg.norm(U, axis=1) * np.linalg.norm(V, axis=1))


def _paper_roots(eta, sigma2):
    """Tian et al. 2021: roots of (1 + sigma2) p^2 - p + eta = 0."""
    r = math.sqrt(1 - 4 * eta * (1 + sigma2))
    return (1 - r) / (2 * (1 + sigma2)), (1 + r) / (2 * (1 + sigma2))


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("loss", ["euclidean", "cosine"])
def test_derived_gradient_matches_finite_differences_of_sampled_loss(loss):
    """dL/dp_j and dL/dw_j by central differences of the sampled loss (target fixed: stop-gradient)
    equal the derived eigenmode right-hand sides within Monte-Carlo error (+ O(1/d) for the cosine)."""
    d, N, sigma2 = 64, 20000, 0.5
    rng = np.random.default_rng(3)
    p0, s0 = [1.0, 0.5], [0.8, 0.3]
    U, V, W, Wp = _aligned_networks(d, p0, s0, rng)
    Wt = W.copy()
    X = rng.standard_normal((N, d))
    X1 = X + np.sqrt(sigma2) * rng.standard_normal((N, d))
    X2 = X + np.sqrt(sigma2) * rng.standard_normal((N, d))
    groups = 2 if loss == "cosine" else 1
    csys = A.compiled_ode(loss, groups)
    prm = A.pack(csys, A.hyper(0.0, sigma2, 1.0, 0.0, fractions=[0.5, 0.5] if groups == 2 else None))
    h = 1e-5
    for g, j in ((0, 0), (1, d - 1)):
        if groups == 2:
            f = csys.rhs(0.0, np.array([p0[0], s0[0], p0[1], s0[1]]), prm)[2 * g: 2 * g + 2]
        else:
            f = csys.rhs(0.0, np.array([p0[g], s0[g]]), prm)
        # with eta = 0, alpha_p = 1: p' = -dL/dp, s' = 2 w w' = -2 w dL/dw
        derived = {"p": -f[0], "w": -f[1] / (2 * math.sqrt(s0[g]))}
        Ep = np.outer(U[:, j], U[:, j])
        Ew = np.outer(U[:, j], V[:, j])
        fd = {"p": (_sample_loss(loss, Wp + h * Ep, W, Wt, X1, X2) - _sample_loss(loss, Wp - h * Ep, W, Wt, X1, X2)) / (2 * h),
              "w": (_sample_loss(loss, Wp, W + h * Ew, Wt, X1, X2) - _sample_loss(loss, Wp, W - h * Ew, Wt, X1, X2)) / (2 * h)}
        for k in ("p", "w"):
            se = fd[k].std() / math.sqrt(N)
            allowance = 4 * se + (2.0 / d * abs(derived[k]) if loss == "cosine" else 0.0)
            assert abs(fd[k].mean() - derived[k]) < allowance, (loss, g, k, fd[k].mean(), derived[k], se)


def _expected_euclidean_loss(Wp, W, Wt, sigma2, eta_p, eta_s, alpha_p):
    """E over x ~ N(0, I), x_i = x + sigma e_i of 1/2 |Wp W x1 - Wt x2|^2 (traces), plus the weight decays as the
    penalty eta_p |Wp|^2/(2 alpha_p) + eta_s |W|^2/2 (written from the model's definition)."""
    A = Wp @ W
    return 0.5 * ((1 + sigma2) * np.sum(A ** 2) - 2 * np.sum(A * Wt) + (1 + sigma2) * np.sum(Wt ** 2)) \
        + eta_p * np.sum(Wp ** 2) / (2 * alpha_p) + eta_s * np.sum(W ** 2) / 2


def test_separate_decay_flow_matches_finite_differences_of_the_regularised_loss():
    """Aligned networks, two groups: p' = -alpha_p dL/dp and s' = -2 w dL/dw (directional differences along
    U_j U_j^T and U_j V_j^T of the exact expected loss with the decay penalty, target W_t = tau W fixed)."""
    rng = np.random.default_rng(8)
    d, p0, s0, tau = 6, [0.7, -0.3], [0.5, 0.2], 0.8
    U, V, W, Wp = _aligned_networks(d, p0, s0, rng)
    prm = dict(eta_p=0.07, eta_s=0.02, sigma2=0.4, alpha_p=1.6)
    L = lambda Wp_, W_: _expected_euclidean_loss(Wp_, W_, tau * W, **prm)  # noqa: E731
    csys = A.compiled_ode("euclidean", 1, byol=True, separate_decays=True)
    h = 1e-6
    for g, j in ((0, 0), (1, d - 1)):
        f = csys.rhs(0.0, np.array([p0[g], s0[g], tau]), A.pack(csys, {**prm, "beta": 0.5}))
        Ep, Ew = np.outer(U[:, j], U[:, j]), np.outer(U[:, j], V[:, j])
        dp = -prm["alpha_p"] * (L(Wp + h * Ep, W) - L(Wp - h * Ep, W)) / (2 * h)
        ds = -2 * math.sqrt(s0[g]) * (L(Wp, W + h * Ew) - L(Wp, W - h * Ew)) / (2 * h)
        np.testing.assert_allclose(f[:2], [dp, ds], rtol=1e-7, atol=1e-10)


def test_alignment_system_matches_finite_differences_of_the_regularised_loss():
    """Unaligned 3 x 3 weights: W' = -dL/dW and the symmetrised P' = -alpha_p (G + G^T)/2 with G = dL/dW_p, by
    central differences of the exact expected loss (target W_t = tau W held fixed)."""
    from theorykit.theories.noncontrastive import _alignment as AL

    rng = np.random.default_rng(9)
    n, prm = 3, dict(eta_p=0.05, eta_s=0.02, sigma2=0.3, alpha_p=1.4, tau=0.7)
    W, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    Wp = (B + B.T) / 2
    csys = nc.compiled_alignment(n)
    dW, dWp = AL.unpack_weights(csys.rhs(0.0, AL.pack_weights(W, Wp), csys.pack_params(prm)), n)
    L = lambda Wp_, W_: _expected_euclidean_loss(Wp_, W_, prm["tau"] * W, prm["sigma2"], prm["eta_p"],  # noqa: E731
                                                 prm["eta_s"], prm["alpha_p"])
    h, gW, gP = 1e-6, np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            E = np.zeros((n, n))
            E[i, j] = h
            gW[i, j] = (L(Wp, W + E) - L(Wp, W - E)) / (2 * h)
            gP[i, j] = (L(Wp + E, W) - L(Wp - E, W)) / (2 * h)
    np.testing.assert_allclose(dW, -gW, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dWp, -prm["alpha_p"] * (gP + gP.T) / 2, rtol=1e-7, atol=1e-9)
    # and in F = W W^T the flow is Tian et al.'s Eq. 7, the commutator following Theorem 3 (random states)
    res = AL.identity_residuals(n, prm, rng)
    assert res["eq7"] < 1e-12 and res["theorem3"] < 1e-12


def test_commutator_stays_within_theorem3_bounds_and_obeys_eq17():
    from theorykit.theories.noncontrastive import _alignment as AL
    from theorykit.theories.noncontrastive import _studies_tian as T

    prm = dict(eta_p=0.01, eta_s=0.01, sigma2=0.5, alpha_p=1.0, tau=1.0)
    starts = T.alignment_starts(3, prm["sigma2"])
    t = np.linspace(0.0, 12.0, 601)
    recs = {}
    for case, (W0, Wp0) in starts.items():
        sol = nc.alignment_solution(W0, Wp0, t, **prm)
        recs[case] = rec = AL.commutator_record(sol.t, sol.y, 3, prm)
        assert np.all(rec["comm"] <= rec["upper"] * (1 + 1e-6)) and np.all(rec["comm"] >= rec["lower"] * (1 - 1e-6))
        # the observable of the compiled system is the same squared norm
        np.testing.assert_allclose(sol.observed("comm2"), rec["comm"] ** 2, rtol=1e-6, atol=1e-12)
        # the Eq. 17 margin (diagonal of K in the predictor's eigenbasis) bounds lambda_min(K) from above
        assert np.all(rec["eq17_margin"] >= rec["k_min"] - 1e-12)
    assert recs["stable"]["k_min"].min() > 0 and recs["stable"]["comm"][-1] < 1e-3 * recs["stable"]["comm"][0]
    assert recs["violated"]["eq17_margin"][0] < 0 and recs["violated"]["comm"][-1] > recs["violated"]["comm"][0]


def test_byol_target_from_zero_follows_eq15_and_sgd_starts_at_zero():
    from theorykit.theories.noncontrastive import _studies_tian as T

    t = np.linspace(0.0, 20.0, 2001)
    for kappa, p0 in ((0.4, 0.3), (1.5, 0.5)):
        tr = nc.ode_trajectory("euclidean", [p0], t, eta=0.1, sigma2=0.5, beta=math.exp(-kappa), tau0=0.0)
        assert tr["tau"][0, 0] == 0.0
        # trapezoid error of the integral ~ (kappa dt)^2 / 12 relative
        np.testing.assert_allclose(tr["tau"][:, 0], T.eq15_tau(t, tr["p"][:, 0], kappa), atol=5e-5)
    # off the invariant parabola (c != 0) Eq. 15 does not hold: the check can fail
    off = nc.ode_trajectory("euclidean", [0.3], t, s0=[0.3], eta=0.1, sigma2=0.5, beta=math.exp(-0.4), tau0=0.0)
    assert np.max(np.abs(off["tau"][:, 0] - T.eq15_tau(t, off["p"][:, 0], 0.4))) > 1e-3
    run = nc.simulate_sgd("euclidean", dim=8, batch=8, lr=0.05, t_end=0.5, p0=[0.3], eta=0.1, sigma2=0.5, beta=0.5,
                          tau0=0.0, n_record=3, seed=1)
    assert run.observable("tau1")[0] == 0.0 and 0.0 < run.observable("tau1")[-1] < 1.0
    with pytest.raises(InvalidParameterError, match="tau0"):
        nc.simulate_sgd("euclidean", dim=4, batch=2, lr=0.1, t_end=0.2, p0=[1.0], tau0=-1.0)
    with pytest.raises(InvalidParameterError, match="tau0"):
        nc.ode_trajectory("euclidean", [1.0], [0.0, 1.0], beta=0.5, tau0=-1.0)


def test_balance_law_and_the_symmetric_predictor_quadrant():
    D = sp.Symbol("D", real=True)
    for loss in S.LOSSES:
        want = -2 * S.eta_s * D + 2 * (S.eta_p - S.eta_s) * S.p ** 2 / S.alpha_p
        assert sp.expand(S.balance_drift(loss) - want) == 0
    alphas, ratios = np.array([0.6, 0.9, 1.5, 2.5]), np.array([0.5, 0.9, 2.5])
    pd = nc.symmetric_predictor_grid(alphas, 0.01 * ratios, eta_s=0.01, sigma2=0.5, eps=0.2, t_end=200.0)
    collapsed = pd.labels.astype(bool)
    assert collapsed[:2, :2].all() and not collapsed[2:].any()
    # the same outcome in SGD with a symmetric predictor (negative group: p0 = -eps) at two points
    for a, collapses in ((0.6, True), (2.0, False)):
        run = nc.simulate_sgd("euclidean", dim=8, batch=32, lr=0.02, t_end=200.0, p0=[0.2, -0.2], s0=[0.04, 0.04],
                              sigma2=0.5, alpha_p=a, eta_p=0.01, eta_s=0.01, symmetric_predictor=True, n_record=3,
                              seed=2)
        assert (nc.group_series(run, "s")[-1, 1] < 0.004) == collapses


def test_cosine_drift_with_self_consistent_norms_is_the_weight_decay():
    assert S.cosine_self_consistent_drift() == (0, 0)
    # the frozen-norm sextic at the same state has a drift that does not vanish away from its roots
    red = A.compiled_ode("cosine", reduced=True)
    nu_u, nu_v = A.frozen_norms(1.0, 0.5)
    f = red.rhs(0.0, np.array([0.5]), A.pack(red, dict(eta=0.0, sigma2=0.5, alpha_p=1.0, nu_u=nu_u, nu_v=nu_v,
                                                        rho=0.0)))
    assert abs(f[0]) > 0.05


def test_simulate_matrices_checks_its_start():
    W, Wp = np.eye(3), np.diag([0.3, 0.4, 0.5])
    run = nc.simulate_matrices(W, Wp, batch=4, lr=0.01, t_end=0.05, n_record=2, seed=0)
    assert run.observable("comm2")[0] == 0.0 and {"W_01", "P_02", "comm2"} <= set(run.names)
    for bad, msg in (((np.eye(3), np.eye(2)), "square"), ((np.eye(3), np.triu(np.ones((3, 3)))), "symmetric"),
                     ((np.full((3, 3), np.nan), np.eye(3)), "finite")):
        with pytest.raises(InvalidParameterError, match=msg):
            nc.simulate_matrices(*bad, batch=4, lr=0.01, t_end=0.05)


def test_degrees_come_out_of_the_derivation():
    eu, co = S.reduce_mode("euclidean"), S.reduce_mode("cosine")
    assert eu.degree == 3 and sp.Poly(eu.rhs, S.p).degree() == 3
    assert co.degree == 6 and sp.Poly(co.rhs, S.p).degree() == 6
    # the leading coefficients are negative (bounded dynamics for p > 0)
    vals = {S.sigma2: 0.5, S.alpha_p: 1.0, S.nu_u: 0.7, S.nu_v: 0.9, S.rho: 0.0, S.eta: 0.1}
    assert float(eu.poly.LC().subs(vals)) < 0 and float(co.poly.LC().subs(vals)) < 0


def test_conserved_quantity_and_numerical_check():
    for loss in S.LOSSES:
        r = S.reduce_mode(loss)
        assert sp.simplify(r.lam - 1 / S.alpha_p) == 0
        assert sp.simplify(r.decay + 2 * S.eta) == 0
    # independent numerical check on the Euclidean (p, s) flow from an off-manifold start
    eta, sigma2, alpha_p = 0.07, 0.3, 2.0
    t = np.linspace(0, 8, 9)
    tr = A.ode_trajectory("euclidean", [0.8], t, s0=[1.1], eta=eta, sigma2=sigma2, alpha_p=alpha_p)
    c = (tr["s"][:, 0] - tr["p"][:, 0] ** 2 / alpha_p) * np.exp(2 * eta * t)
    np.testing.assert_allclose(c, c[0], rtol=1e-6)


def test_euclidean_fixed_points_match_paper_closed_form_and_stability():
    csys = A.compiled_ode("euclidean", reduced=True)
    for sigma2 in (0.0, 0.5, 2.0):
        ec = 1 / (4 * (1 + sigma2))
        assert A.euclidean_critical_eta(sigma2) == pytest.approx(ec, rel=1e-14)
        for eta in (0.2 * ec, 0.6 * ec, 0.95 * ec):
            ref = _paper_roots(eta, sigma2)
            got = A.euclidean_fixed_points(eta, sigma2)
            np.testing.assert_allclose(got, ref, rtol=1e-12)
            roots = A.reduced_fixed_points("euclidean", {"eta": eta, "sigma2": sigma2})
            assert [r for r, _ in roots] == pytest.approx([0.0, *ref], abs=1e-10)
            assert [st for _, st in roots] == [True, False, True]
            prm = csys.pack_params({"eta": eta, "sigma2": sigma2})
            slopes = [csys.jac(0.0, np.array([y]), prm)[0, 0] for y in (0.0, *ref)]
            assert slopes[0] < 0 and slopes[1] > 0 and slopes[2] < 0
        assert A.euclidean_fixed_points(1.05 * ec, sigma2) is None


@pytest.mark.parametrize("alpha_p", [0.5, 2.0])
def test_equilibria_and_stability_of_the_full_mode_system(alpha_p):
    """(p, s): eigenvalues are -2 eta (decay of the conserved quantity) and the slope of the cubic
    -eta + 2p - 3(1+sigma2)p^2 (written here from the paper's cubic), whatever alpha_p; with an EMA target
    the collapsed state, the saddle p- and the stable p+ persist for every beta."""
    eta, sigma2 = 0.1, 0.5
    pm, pp = _paper_roots(eta, sigma2)
    fps = nc.equilibria("euclidean", eta=eta, sigma2=sigma2, alpha_p=alpha_p)
    assert [round(float(f.y[0]), 9) for f in fps] == pytest.approx([0.0, pm, pp], abs=1e-8)
    for f, p in zip(fps, (0.0, pm, pp)):
        assert f.y[1] == pytest.approx(p * p / alpha_p, abs=1e-10)
        slope = -eta + 2 * p - 3 * (1 + sigma2) * p ** 2
        np.testing.assert_allclose(np.sort(f.eigenvalues.real), np.sort([-2 * eta, slope]), atol=1e-9)
    assert [f.stable for f in fps] == [True, False, True]
    for beta in (0.05, 0.5, 0.95):
        fb = nc.equilibria("euclidean", eta=eta, sigma2=sigma2, alpha_p=alpha_p, beta=beta)
        assert [f.stable for f in fb[1:]] == [False, True]
        assert fb[2].y[2] == pytest.approx(1.0, abs=1e-10)
        # collapsed state: tau* = kappa / (kappa - eta), kappa = -ln beta; in the tau direction its
        # eigenvalue is eta - kappa (p, s -> 0 either way; tau = a/w grows when the EMA is slower than decay)
        kappa = -math.log(beta)
        assert fb[0].y[2] == pytest.approx(kappa / (kappa - eta), rel=1e-8)
        np.testing.assert_allclose(np.sort(fb[0].eigenvalues.real), np.sort([-eta, -2 * eta, eta - kappa]), atol=1e-9)


def test_cosine_fold_and_emergence():
    sigma2 = 0.5
    nu_u, nu_v = A.frozen_norms(1.0, sigma2)
    ef = A.cosine_fold_eta(sigma2, 1.0, 1.0, nu_u, nu_v)
    base = {"sigma2": sigma2, "alpha_p": 1.0, "nu_u": nu_u, "nu_v": nu_v, "rho": 0.0}
    pos = lambda e: [r for r, _ in A.reduced_fixed_points("cosine", {**base, "eta": e}) if r > 1e-12]  # noqa: E731
    assert len(pos(0.98 * ef)) == 2 and len(pos(1.02 * ef)) == 0
    # shrinking every weight by lam scales nu_u by lam^2 and nu_v by lam: the fold rises as lam^-2
    lam = 0.5
    ef2 = A.cosine_fold_eta(sigma2, 1.0, 1.0, lam ** 2 * nu_u, lam * nu_v)
    assert ef2 == pytest.approx(ef / lam ** 2, rel=1e-12)
    assert len(pos(1.5 * ef)) == 0
    assert len([r for r, _ in A.reduced_fixed_points("cosine", {**base, "nu_u": lam ** 2 * nu_u, "nu_v": lam * nu_v,
                                                                   "eta": 1.5 * ef}) if r > 0]) == 2


@pytest.mark.parametrize("loss", ["euclidean", "cosine"])
def test_small_symbolic_matrices_stay_aligned_and_follow_the_eigenmode_flow(loss):
    """General 2x2 matrices: from diagonal (aligned) weights the off-diagonal drift vanishes and the
    diagonal drift equals the eigenmode system (two groups of one mode each)."""
    dWp, dW, m = nc.matrix_flow(loss, 2)
    rng = np.random.default_rng(5)
    p, w, a = rng.uniform(0.3, 1.2, 2), rng.uniform(0.3, 1.2, 2), rng.uniform(0.3, 1.2, 2)
    vals = {S.eta: 0.07, S.sigma2: 0.4, S.alpha_p: 1.3}
    for i in range(2):
        for j in range(2):
            vals[m["Wp"][i, j]] = p[i] if i == j else 0.0
            vals[m["W"][i, j]] = w[i] if i == j else 0.0
            vals[m["Wt"][i, j]] = a[i] if i == j else 0.0
    assert abs(float(dWp[0, 1].subs(vals))) < 1e-12 and abs(float(dWp[1, 0].subs(vals))) < 1e-12
    assert abs(float(dW[0, 1].subs(vals))) < 1e-12 and abs(float(dW[1, 0].subs(vals))) < 1e-12
    for i in range(2):
        sysm = S.eigenmode_system(loss, 2 if loss == "cosine" else 1, byol=True)
        if loss == "cosine":
            y = {"p1": p[0], "s1": w[0] ** 2, "tau1": a[0] / w[0], "p2": p[1], "s2": w[1] ** 2, "tau2": a[1] / w[1]}
            prm = {"eta": 0.07, "sigma2": 0.4, "alpha_p": 1.3, "beta": 0.5, "f1": 0.5, "f2": 0.5}
            k = i + 1
        else:
            y = {"p1": p[i], "s1": w[i] ** 2, "tau1": a[i] / w[i]}
            prm = {"eta": 0.07, "sigma2": 0.4, "alpha_p": 1.3, "beta": 0.5}
            k = 1
        csys = compile_system(sysm, backend="numpy")
        f = dict(zip(csys.state_names, csys.rhs(0.0, y, prm)))
        assert float(dWp[i, i].subs(vals)) == pytest.approx(f[f"p{k}"], rel=1e-10)
        assert 2 * w[i] * float(dW[i, i].subs(vals)) == pytest.approx(f[f"s{k}"], rel=1e-10)


def test_cosine_shape_system_is_free_of_weight_decay_and_stable():
    shp = S.cosine_shape_system()
    assert "eta" not in shp.param_names
    cs = A.compiled_ode("cosine", shape=True)
    for s2, ap_, f1 in ((0.0, 1.0, 0.5), (1.5, 0.4, 0.3), (0.7, 2.5, 0.8)):
        prm = cs.pack_params({"sigma2": s2, "alpha_p": ap_, "f1": f1})
        assert abs(cs.rhs(0.0, np.array([1.0]), prm)[0]) < 1e-12
        assert cs.jac(0.0, np.array([1.0]), prm)[0, 0] == pytest.approx(-ap_ / (1 + s2), rel=1e-9)
    # from a nearly collapsed group 1 the shape returns to the equal state
    from theorykit.solve import solve

    sol = solve(cs, np.array([0.2]), (0.0, 200.0), cs.pack_params({"sigma2": 0.5, "alpha_p": 1.0, "f1": 0.5}))
    assert sol.y[-1, 0] == pytest.approx(1.0, abs=1e-4)


def test_cosine_flow_is_scale_invariant():
    """Cosine loss gradients are orthogonal to the weights: sum_k f_k p_k p_k' = -eta sum_k f_k p_k^2."""
    csys = A.compiled_ode("cosine", 2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.uniform(0.2, 1.5, 4)
        f1, eta = rng.uniform(0.2, 0.8), rng.uniform(0, 0.3)
        prm = A.pack(csys, A.hyper(eta, 0.7, 1.3, 0.0, fractions=[f1, 1 - f1]))
        f = csys.rhs(0.0, y, prm)
        lhs = f1 * y[0] * f[0] + (1 - f1) * y[2] * f[2]
        assert lhs == pytest.approx(-eta * (f1 * y[0] ** 2 + (1 - f1) * y[2] ** 2), rel=1e-10, abs=1e-12)


@pytest.mark.numba
@pytest.mark.parametrize("loss, d, batch, lr, tol", [("euclidean", 32, 16, 0.02, 0.03),
                                                     ("cosine", 32, 64, 0.01, 0.05)])
def test_ode_matches_sgd_small_case(loss, d, batch, lr, tol):
    """Fixed seed: SGD group eigenvalues stay within ``tol`` of the eigenmode ODE up to t = 4."""
    run = nc.simulate_sgd(loss, dim=d, batch=batch, lr=lr, t_end=4.0, p0=[1.0, 0.4], eta=0.05, sigma2=0.5,
                          n_record=9, seed=11)
    ode = nc.ode_trajectory(loss, [1.0, 0.4], run.t, eta=0.05, sigma2=0.5)
    err = max(np.abs(nc.group_series(run, "p") - ode["p"]).max(), np.abs(nc.group_series(run, "s") - ode["s"]).max())
    assert err < tol
    # compare() pairs the run's observables with the solution's states by name: the same error
    sol = nc.ode_solution(loss, [1.0, 0.4], run.t, eta=0.05, sigma2=0.5)
    assert compare(sol, run, ("p1", "p2", "s1", "s2")).max_error() == err
    # and the prediction is not trivially satisfied: the eigenvalues moved by much more than tol
    assert np.abs(ode["p"][-1] - ode["p"][0]).max() > 4 * tol


@pytest.mark.numba
def test_byol_target_and_collapse_outcomes():
    # EMA target: tau stays close to the ODE
    run = nc.simulate_sgd("euclidean", dim=32, batch=32, lr=0.02, t_end=4.0, p0=[1.0], eta=0.05, sigma2=0.5,
                          beta=0.3, n_record=5, seed=2)
    ode = nc.ode_trajectory("euclidean", [1.0], run.t, eta=0.05, sigma2=0.5, beta=0.3)
    assert np.abs(nc.group_series(run, "tau") - ode["tau"]).max() < 0.03
    assert np.abs(nc.group_series(run, "p") - ode["p"]).max() < 0.03
    # strong weight decay: Euclidean collapses, the normalised cosine representation does not
    eta, sigma2 = 0.4, 0.5
    assert A.predicted_euclidean_collapse(eta, sigma2, 1.0)
    e = nc.simulate_sgd("euclidean", dim=16, batch=16, lr=0.05, t_end=60.0, p0=[1.0, 0.4], eta=eta,
                        sigma2=sigma2, n_record=3, seed=4)
    c = nc.simulate_sgd("cosine", dim=16, batch=16, lr=0.05, t_end=3 / eta, p0=[1.0, 0.4], eta=eta,
                        sigma2=sigma2, n_record=3, seed=5)
    assert np.abs(nc.group_series(e, "p")[-1]).max() < 0.05
    assert A.normalised_ratio(nc.group_series(c, "p")[-1:])[0] > 0.5


def _numpy_sgd_steps(loss, W, Wp, Wt, E, sigma, eta_p, eta_s, alpha_p, keep, lr, symmetric=False):
    """Reference minibatch SGD written with numpy from the model's definition, on given noise E[step]."""
    d = W.shape[0]
    losses = []
    for e in E:
        x1, x2 = (e[0] + sigma * e[1], e[0] + sigma * e[2]) if len(e) == 3 else (e[0], e[0])
        z = x1 @ W.T
        u, v = z @ Wp.T, x2 @ Wt.T
        if loss == "euclidean":
            g = u - v
            losses.append(0.5 * np.sum(g**2) / g.size)
        else:
            nu, nv = np.linalg.norm(u, axis=1)[:, None], np.linalg.norm(v, axis=1)[:, None]
            c = np.sum(u * v, axis=1)[:, None]
            g = d * (-v / (nu * nv) + c * u / (nu**3 * nv))
            losses.append(-np.mean(c / (nu * nv)))
        b = len(x1)
        g_wp, g_w = g.T @ z / b, (g @ Wp).T @ x1 / b
        if symmetric:
            g_wp = (g_wp + g_wp.T) / 2
        Wp = Wp - lr * (alpha_p * g_wp + eta_p * Wp)
        W = W - lr * (g_w + eta_s * W)
        Wt = keep * Wt + (1 - keep) * W
    return W, Wp, Wt, losses


@pytest.mark.numba
@pytest.mark.parametrize("n_draw", [3, 1])
@pytest.mark.parametrize("loss, symmetric", [("euclidean", False), ("cosine", False), ("euclidean", True)])
def test_sgd_kernel_matches_numpy_steps_on_the_same_noise(loss, symmetric, n_draw):
    """The kernel's steps on pre-drawn noise equal a plain numpy implementation of the same updates (n_draw = 1:
    no augmentation, both views are the clean sample)."""
    from theorykit.theories.noncontrastive import _kernels as K

    rng = np.random.default_rng(3)
    d, batch, steps = 6, 5, 4
    W, Wp, Wt = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
    E = rng.standard_normal((steps, n_draw, batch, d))
    sigma, eta_p, eta_s, alpha_p, keep, lr = 0.7 if n_draw == 3 else 0.0, 0.05, 0.02, 1.5, 0.3, 0.1
    ref_W, ref_Wp, ref_Wt, ref_loss = _numpy_sgd_steps(loss, W, Wp, Wt, E, sigma, eta_p, eta_s, alpha_p, keep, lr,
                                                       symmetric)
    Wk, Wpk, Wtk = W.copy(), Wp.copy(), Wt.copy()
    code = K.EUCLIDEAN if loss == "euclidean" else K.COSINE
    out_loss = np.zeros(steps)
    K.sgd_steps(Wk, Wpk, Wtk, code, eta_p, eta_s, sigma, alpha_p, keep, lr, symmetric, E, out_loss)
    np.testing.assert_allclose(Wk, ref_W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Wpk, ref_Wp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Wtk, ref_Wt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_loss, ref_loss, rtol=1e-12)
    # the recorded predictor eigen-observable is the mean diagonal of W_p in the basis U = I
    out_p, out_s, out_tau = np.zeros(1), np.zeros(1), np.zeros(1)
    K.project(Wk, Wpk, Wtk, np.eye(d), np.zeros(d, dtype=np.int64), 1, out_p, out_s, out_tau)
    assert out_p[0] == pytest.approx(np.trace(ref_Wp) / d, rel=1e-12)


@pytest.mark.numba
def test_sgd_kernel_with_the_online_network_as_its_own_target():
    """``simulate_matrices`` passes W itself as the target (SimSiam, keep = 0): same steps as a separate copy."""
    from theorykit.theories.noncontrastive import _kernels as K

    rng = np.random.default_rng(4)
    d, batch, steps = 5, 4, 3
    W, Wp = rng.standard_normal((d, d)) / np.sqrt(d), rng.standard_normal((d, d)) / np.sqrt(d)
    E = rng.standard_normal((steps, 3, batch, d))
    ref_W, ref_Wp, _, ref_loss = _numpy_sgd_steps("euclidean", W, Wp, W, E, 0.4, 0.01, 0.02, 1.0, 0.0, 0.1, True)
    Wk, Wpk, out_loss = W.copy(), Wp.copy(), np.zeros(steps)
    K.sgd_steps(Wk, Wpk, Wk, K.EUCLIDEAN, 0.01, 0.02, 0.4, 1.0, 0.0, 0.1, True, E, out_loss)
    np.testing.assert_allclose(Wk, ref_W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Wpk, ref_Wp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_loss, ref_loss, rtol=1e-12)


def test_sgd_replicates_in_threads_equal_the_single_runs():
    kw = dict(dim=8, batch=4, lr=0.05, t_end=1.0, p0=[1.0, 0.5], eta=0.05, sigma2=0.5, n_record=3)
    runs = nc.simulate_sgd_replicates("euclidean", [2, 3, 4], threads=2, **kw)
    for seed, run in zip([2, 3, 4], runs):
        single = nc.simulate_sgd("euclidean", seed=seed, **kw)
        for name in single.names:
            np.testing.assert_array_equal(run.observable(name), single.observable(name))
    with pytest.raises(InvalidParameterError, match="seeds"):
        nc.simulate_sgd_replicates("euclidean", [], **kw)


@pytest.mark.numba
@pytest.mark.parametrize("sigma2", [0.5, 0.0])
def test_sgd_is_reproducible_from_its_seed_and_independent_of_chunking(monkeypatch, sigma2):
    import theorykit.simulate._driver as driver

    kw = dict(dim=8, batch=4, lr=0.05, t_end=3.0, p0=[1.0, 0.5], eta=0.05, sigma2=sigma2, n_record=7)
    a = nc.simulate_sgd("euclidean", seed=7, **kw)
    b = nc.simulate_sgd("euclidean", seed=7, **kw)
    c = nc.simulate_sgd("euclidean", seed=8, **kw)
    assert a.names == ("p1", "p2", "s1", "s2", "tau1", "tau2", "loss") and a.interval_means == {"loss"}
    for name in a.names:
        np.testing.assert_array_equal(a.observable(name), b.observable(name))
    assert np.abs(a.observable("p1") - c.observable("p1")).max() > 1e-6
    # a chunk of 4 steps (8 * 4 * 3 floats each) instead of the 10 steps between records: the same noise stream
    monkeypatch.setattr(driver, "CHUNK_BYTES", 4 * 8 * (3 if sigma2 else 1) * 8 * 4)
    d = nc.simulate_sgd("euclidean", seed=7, **kw)
    for name in a.names:
        np.testing.assert_array_equal(d.observable(name), a.observable(name))


def test_phase_grid_labels():
    """Euclidean: ODE labels agree with the closed-form boundary away from it; cosine: never collapses; the
    'initially collapsed' cosine region lies beyond the frozen-norm fold."""
    etas, sig = np.array([0.05, 0.12, 0.3, 0.45]), np.array([0.0, 1.0, 2.0])
    g = A.phase_grid(etas, sig, t_end=150.0)
    ec = 1 / (4 * (1 + sig))
    far = np.abs(etas[None, :] - ec[:, None]) > 0.2 * ec[:, None]
    assert np.array_equal(g["euclidean_collapse"], etas[None, :] > ec[:, None])
    assert np.array_equal(g["euclidean_ode_collapse"][far], g["euclidean_collapse"][far])
    assert not g["cosine_collapse"].any()
    assert g["cosine_initially_collapsed"][1:, -1].all() and not g["cosine_initially_collapsed"][:, 0].any()


@pytest.mark.parametrize("kwargs, name", [({"eta": -0.1}, "eta"), ({"sigma2": -1.0}, "sigma2"),
                                          ({"alpha_p": 0.0}, "alpha_p"), ({"alpha_p": -1.0}, "alpha_p"),
                                          ({"beta": 1.0}, "beta"), ({"beta": -0.1}, "beta")])
def test_bad_parameters_raise_clear_errors(kwargs, name):
    base = dict(eta=0.1, sigma2=0.5, alpha_p=1.0, beta=0.0)
    base.update(kwargs)
    with pytest.raises(InvalidParameterError, match=name):
        nc.check_hyper(**base)
    with pytest.raises(InvalidParameterError, match=name):
        nc.ode_trajectory("euclidean", [1.0], [0.0, 1.0], **base)
    with pytest.raises(InvalidParameterError, match=name):
        nc.simulate_sgd("euclidean", dim=4, batch=2, lr=0.1, t_end=0.2, p0=[1.0], **base)
    if name in ("eta", "sigma2"):
        with pytest.raises(InvalidParameterError, match=name):
            nc.euclidean_fixed_points(base["eta"], base["sigma2"])
    with pytest.raises(InvalidParameterError, match="loss"):
        nc.simulate_sgd("hinge", dim=4, batch=2, lr=0.1, t_end=0.2, p0=[1.0])


def test_builtin_systems_are_the_expected_ones():
    assert {"euclidean_reduced", "cosine_reduced", "euclidean_mode", "euclidean_byol", "cosine_modes",
            "cosine_shape", "euclidean_2decays", "alignment_3x3"} <= set(nc.systems())


def test_cli_analysis_commands_on_builtin_systems(tmp_path, capsys):
    from theorykit.cli import main

    assert main(["fixed-points", "noncontrastive.euclidean_reduced", "--out", str(tmp_path / "fp")]) == 0
    out = capsys.readouterr().out
    assert "3 fixed point(s)" in out
    assert main(["continue", "noncontrastive.euclidean_reduced", "-p", "sigma2=0.5",
                 "--out", str(tmp_path / "cont")]) == 0
    out = capsys.readouterr().out
    assert "fold" in out and "0.1666666" in out
    assert (tmp_path / "cont" / "bifurcation.png").exists()


def test_derivation_document_is_up_to_date():
    spec = importlib.util.spec_from_file_location("nc_derivation", ROOT / "derivations" / "noncontrastive.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = (ROOT / "derivations" / "noncontrastive.md").read_text()
    assert mod.render() == committed, "run: python derivations/noncontrastive.py"
