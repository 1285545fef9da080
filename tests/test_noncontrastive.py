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
        x1 = e[0] + sigma * e[1]
        x2 = e[0] + sigma * e[2]
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
@pytest.mark.parametrize("loss, symmetric", [("euclidean", False), ("cosine", False), ("euclidean", True)])
def test_sgd_kernel_matches_numpy_steps_on_the_same_noise(loss, symmetric):
    """The kernel's steps on pre-drawn noise equal a plain numpy implementation of the same updates."""
    from theorykit.theories.noncontrastive import _kernels as K

    rng = np.random.default_rng(3)
    d, batch, steps = 6, 5, 4
    W, Wp, Wt = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
    E = rng.standard_normal((steps, 3, batch, d))
    sigma, eta_p, eta_s, alpha_p, keep, lr = 0.7, 0.05, 0.02, 1.5, 0.3, 0.1
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
            "cosine_shape"} <= set(nc.systems())


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
