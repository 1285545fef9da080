"""Tests of the closed-form-predictor theory: every derived eigenvalue ODE against finite differences of its
expected loss (exact traces for the Euclidean losses, Monte Carlo for the cosine ones), the SGD kernel
against finite differences of the minibatch loss, closed forms, the claims of the studies, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from theorykit import theories
from theorykit.compile import compile_system
from theorykit.errors import InvalidParameterError
from theorykit.theories import closed_form_predictor as cfp
from theorykit.theories.closed_form_predictor import _analysis as A
from theorykit.theories.closed_form_predictor import _kernels as K
from theorykit.theories.closed_form_predictor import _studies as St
from theorykit.theories.closed_form_predictor import _symbolic as S
from theorykit.validate import Claim

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------- independent reference helpers
def _networks(rng, M, N, s, tau):
    """``W = U diag(sqrt s) V^T``, target ``U diag(tau sqrt s) V^T`` with the M modes in len(s) equal groups."""
    grp = np.repeat(np.arange(len(s)), M // len(s))
    U = np.linalg.qr(rng.standard_normal((M, M)))[0]
    V = np.linalg.qr(rng.standard_normal((N, N)))[0][:M]
    w = np.sqrt(np.asarray(s))[grp]
    return U, V, grp, (U * w) @ V, (U * (np.asarray(tau)[grp] * w)) @ V


def _predictor(F, alpha, epsilon):
    d, U = np.linalg.eigh(F)
    return (U * (np.abs(d) ** alpha + epsilon * d.max())) @ U.T


def _euclidean_expected_loss(loss, W, Wref, T, P, so, st):
    """E over x ~ N(0, I), views x + xi_i (variances so, st), as traces; Wref, T, P are behind the stop-gradient."""
    if loss == "euclidean":
        PW = P @ W
        return 0.5 * ((1 + so) * np.sum(PW ** 2) - 2 * np.sum(PW * T) + (1 + st) * np.sum(T ** 2))
    # iso: 1/2 |z1 - sg(z2 + z1 - p)|^2 up to a constant
    return 0.5 * (1 + so) * np.sum(W ** 2) - np.sum(W * T) - (1 + so) * np.sum(W * (Wref - P @ Wref))


def _cosine_sample_loss(loss, W, Wref, T, P, X1, X2, M):
    """Mean over the samples of ``-M cos`` (or the cosine IsoLoss) with the stopped factors taken at Wref."""
    Z1, Z2, Zr = X1 @ W.T, X2 @ T.T, X1 @ Wref.T
    p, pr = Z1 @ P, Zr @ P
    nz = np.linalg.norm(Z2, axis=1)
    if loss == "cosine":
        return -M * np.mean(np.sum(p * Z2, 1) / (np.linalg.norm(p, axis=1) * nz))
    npr = np.linalg.norm(pr, axis=1)
    c = np.sum(pr * Z2, 1) / (npr ** 3 * nz)
    return -M * np.mean(np.sum(Z1 * Z2, 1) / (npr * nz) - 0.5 * c * np.sum(Z1 * p, 1))


def _fd_drift(L, W, U, V, grp, G, h=1e-5):
    """Per-mode -dL/dw of each group by central differences along sum_{j in group} u_j v_j^T."""
    out = []
    for k in range(G):
        D = (U[:, grp == k]) @ V[grp == k]
        out.append(-(L(W + h * D) - L(W - h * D)) / (2 * h) / np.sum(grp == k))
    return np.array(out)


def _derived_drift(loss, predictor, s, tau, params):
    """dw/dt of each group from the derived system (ds/dt = 2 w dw/dt), EMA target ratios tau."""
    csys = compile_system(S.mode_system(loss, predictor, len(s), ema=True), backend="numpy")
    y = np.ravel(np.column_stack([s, tau]))
    return csys.rhs(0.0, y, A.packed(csys, params))[0::2] / (2 * np.sqrt(s))


# ------------------------------------------------------------------------- derivation vs the losses
@pytest.mark.parametrize("loss", ["euclidean", "iso_euclidean"])
@pytest.mark.parametrize("predictor", S.PREDICTORS)
def test_euclidean_flows_match_finite_differences_of_the_expected_loss(loss, predictor):
    rng = np.random.default_rng(1)
    M, N, s, tau = 6, 9, np.array([1.3, 0.6, 0.2]), np.array([0.8, 1.1, 0.5])
    params = dict(eta=0.07, sigma2_o=0.4, sigma2_t=0.9, alpha=0.7, epsilon=0.3, beta=1.0, f1=1 / 3, f2=1 / 3)
    U, V, grp, W, T = _networks(rng, M, N, s, tau)
    alpha, eps = (0.5, params["epsilon"]) if predictor == "directpred" else (params["alpha"], 0.0)
    F = (1 + params["sigma2_o"]) * W @ W.T if predictor == "directpred" else W @ W.T
    P = _predictor(F, alpha, eps)
    L = lambda X: _euclidean_expected_loss(loss, X, W, T, P, params["sigma2_o"], params["sigma2_t"])  # noqa: E731
    fd = _fd_drift(L, W, U, V, grp, 3) - params["eta"] * np.sqrt(s)
    np.testing.assert_allclose(_derived_drift(loss, predictor, s, tau, params), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss", ["cosine", "iso_cosine"])
def test_cosine_flows_match_finite_differences_of_the_sampled_loss_at_large_width(loss):
    """The cosine flows close the norms at their means (exact as M grows): Monte Carlo expected loss with
    common samples; the relative error of the derived drift falls like 1/M (about 3/M here)."""
    rng = np.random.default_rng(2)
    s, tau = np.array([1.4, 0.5]), np.array([0.9, 0.7])
    params = dict(eta=0.0, sigma2_o=0.3, sigma2_t=0.5, alpha=0.5, beta=1.0, f1=0.5)
    errors = []
    for M in (16, 64):
        U, V, grp, W, T = _networks(rng, M, M, s, tau)
        P = _predictor(W @ W.T, params["alpha"], 0.0)
        X = rng.standard_normal((40_000, M))
        X1 = X + np.sqrt(params["sigma2_o"]) * rng.standard_normal(X.shape)
        X2 = X + np.sqrt(params["sigma2_t"]) * rng.standard_normal(X.shape)
        L = lambda Wx: _cosine_sample_loss(loss, Wx, W, T, P, X1, X2, M)  # noqa: E731
        fd = _fd_drift(L, W, U, V, grp, 2)
        derived = _derived_drift(loss, "closed_form", s, tau, params)
        errors.append(np.max(np.abs(derived - fd)) / np.max(np.abs(fd)))
    assert errors[1] < 0.07 and errors[1] < 0.4 * errors[0], errors


def _evaluate(expr, **values):
    return float(expr.xreplace({x: values[x.name] for x in expr.free_symbols}))


def test_transit_time_matches_quadrature():
    rate = lambda lam, a: -2 * a * lam ** 2 * (lam - 1)  # noqa: E731  (Halvagal's Euclidean lambda')
    for a, l0, l1 in ((1.0, 0.1, 0.5), (0.5, 0.3, 0.9)):
        ref = quad(lambda lam: 1 / rate(lam, a), l0, l1)[0]
        got = _evaluate(S.transit_time("euclidean"), alpha=a, lambda0=l0, lambda1=l1)
        assert got == pytest.approx(ref, rel=1e-10)
        iso = _evaluate(S.transit_time("iso_euclidean"), alpha=a, lambda0=l0, lambda1=l1)
        assert iso == pytest.approx(quad(lambda lam: -1 / (2 * a * lam * (lam - 1)), l0, l1)[0], rel=1e-10)


def test_cosine_flow_conserves_the_norm_and_decays_it_with_weight_decay():
    csys = A.compiled("cosine", n_groups=3)
    y = np.array([1.5, 0.7, 0.2])
    for eta in (0.0, 0.13):
        f = csys.rhs(0.0, y, A.packed(csys, dict(eta=eta, sigma2_o=0.3, sigma2_t=0.6, alpha=0.5, f1=0.2, f2=0.5)))
        fr = np.array([0.2, 0.5, 0.3])
        assert np.sum(fr * f) == pytest.approx(-2 * eta * np.sum(fr * y), abs=1e-13)


# ------------------------------------------------------------------------------------- SGD kernel
def _minibatch_loss(code, W, Wref, P, X1, X2, M):
    Z1, Z2, Zr = X1 @ W.T, X2 @ Wref.T, X1 @ Wref.T
    p, pr = Z1 @ P, Zr @ P
    if code == K.EUCLIDEAN:
        return 0.5 * np.mean(np.sum((p - Z2) ** 2, 1))
    if code == K.ISO_EUCLIDEAN:
        return 0.5 * np.mean(np.sum((Z1 - (Z2 + Zr - pr)) ** 2, 1))
    return _cosine_sample_loss("cosine" if code == K.COSINE else "iso_cosine", W, Wref, Wref, P, X1, X2, M)


def _kernel_steps(W, Wt, F, E, code, alpha, epsilon=0.0, rho=0.5, running=False, lr=1e-3, eta=0.0, keep=0.0,
                  sigma_o=0.0, sigma_t=1.0, polar_iter=30):
    """The kernel's steps on copies of the state; returns ``(W, Wt, F, P, lam, max |cos(grad, W)|)``."""
    W, Wt, F = W.copy(), Wt.copy(), F.copy()
    M = W.shape[0]
    P, lam = np.empty((M, M)), np.empty(M)
    K.prepare(W, F, P, lam, running, alpha, epsilon)
    worst = K.sgd_chunk(W, Wt, F, P, lam, E, sigma_o, sigma_t, code, alpha, epsilon, rho, running, lr, eta, keep,
                        float(M), polar_iter)
    return W, Wt, F, P, lam, worst


def _numpy_steps(W, Wt, F, E, code, alpha, epsilon, rho, running, lr, eta, keep, sigma_o, sigma_t):
    """Reference steps written with numpy from the model's definition (predictor by eigen-decomposition)."""
    M = W.shape[0]
    worst = 0.0
    for e in E:
        X1, X2 = e[0] + sigma_o * e[1], e[0] + sigma_t * e[2]
        B = len(X1)
        Z1, Z2 = X1 @ W.T, X2 @ Wt.T
        F = rho * F + (1 - rho) * Z1.T @ Z1 / B if running else W @ W.T
        P = _predictor(F, alpha, epsilon)
        p = Z1 @ P
        G = p - Z2
        if code in (K.COSINE, K.ISO_COSINE):
            n_p, n_z = np.linalg.norm(p, axis=1)[:, None], np.linalg.norm(Z2, axis=1)[:, None]
            c = np.sum(p * Z2, axis=1)[:, None]
            G = -M * (Z2 / (n_p * n_z) - c * p / (n_p ** 3 * n_z))
        if code in (K.EUCLIDEAN, K.COSINE):
            G = G @ P
        grad = G.T @ X1 / B
        worst = max(worst, abs(np.sum(grad * W)) / (np.linalg.norm(grad) * np.linalg.norm(W)))
        W = W - lr * (grad + eta * W)
        Wt = keep * Wt + (1 - keep) * W
    return W, Wt, F, worst


@pytest.mark.numba
@pytest.mark.parametrize("code", [K.EUCLIDEAN, K.COSINE, K.ISO_EUCLIDEAN, K.ISO_COSINE])
@pytest.mark.parametrize("predictor", ["closed_form alpha=0.7", "closed_form alpha=1", "closed_form alpha=0.5",
                                       "directpred"])
@pytest.mark.parametrize("B", [6, 11])
def test_sgd_kernel_matches_numpy_steps_on_the_same_noise(code, predictor, B):
    """A few steps of the kernel equal a plain numpy implementation of the same updates (to rounding); alpha = 1
    takes the kernel's shortcut P = W W^T and alpha = 1/2 the polar factor of W, the reference still goes through
    the eigen-decomposition. A batch larger than the input width (B = 11 > N = 7) takes the kernel's other
    association of the products."""
    rng = np.random.default_rng(5)
    M, N, steps = 5, 7, 4
    W = rng.standard_normal((M, N)) / 2
    Wt = W + 0.1 * rng.standard_normal((M, N))
    F = 1.3 * W @ W.T
    E = rng.standard_normal((steps, 3, B, N))
    running = predictor == "directpred"
    alpha, epsilon = (0.5, 0.2) if running else (float(predictor.split("=")[1]), 0.0)
    kw = dict(rho=0.8, running=running, lr=0.01, eta=0.03, keep=0.4, sigma_o=0.3, sigma_t=0.6)
    got = _kernel_steps(W, Wt, F, E, code, alpha, epsilon, **kw)
    ref_W, ref_Wt, ref_F, ref_worst = _numpy_steps(W, Wt, F, E, code, alpha, epsilon, **kw)
    if not running:  # the kernel keeps F and P of the final state, ready for a record and the next step
        ref_F = ref_W @ ref_W.T
    for name, a, b in zip(("W", "Wt", "F"), got[:3], (ref_W, ref_Wt, ref_F)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(got[3], _predictor(ref_F, alpha, epsilon), rtol=1e-12, atol=1e-13)
    assert got[5] == pytest.approx(ref_worst, rel=1e-12, abs=1e-13)


def _polar_predictor(W, max_iter=30):
    """``(converged, P)`` of :func:`K.sqrt_gram_by_polar` (``P`` stays NaN when it does not converge)."""
    M, N = W.shape
    P = np.full((M, M), np.nan)
    ok = K.sqrt_gram_by_polar(W, W @ W.T, P, np.empty((M, N)), np.empty((M, N)), np.empty((M, M)), max_iter)
    return ok, P


def _with_singular_values(rng, sigma, N):
    """``(W, exact (W W^T)^(1/2))`` for W = U diag(sigma) V^T with random orthogonal U, V (M = len(sigma) <= N)."""
    M = len(sigma)
    U = np.linalg.qr(rng.standard_normal((M, M)))[0]
    V = np.linalg.qr(rng.standard_normal((N, M)))[0]
    return (U * sigma) @ V.T, (U * sigma) @ U.T


@pytest.mark.numba
@pytest.mark.parametrize("spectrum", ["random", "degenerate", "near-degenerate", "zeros"])
@pytest.mark.parametrize("shape", [(6, 6), (5, 9), (16, 16)])
def test_polar_square_root_equals_the_eigen_decomposition_to_rounding(spectrum, shape):
    """The alpha = 1/2 predictor from the polar factor of W equals sqrt(W W^T) built from eigh, and the exact
    square root U diag(sigma) U^T of a W built with known singular values: repeated (two groups, as the
    simulations start), split by 1e-10, or with exact zeros (rank-deficient W)."""
    rng = np.random.default_rng(8)
    M, N = shape
    sigma = {"random": rng.uniform(0.2, 2.0, M),
             "degenerate": np.repeat([0.9, 0.4], [M // 2, M - M // 2]),
             "near-degenerate": 0.7 * (1.0 + 1e-10 * np.arange(M)),
             "zeros": np.concatenate([rng.uniform(0.5, 1.5, M - 2), [0.0, 0.0]])}[spectrum]
    W, exact = _with_singular_values(rng, sigma, N)
    ok, P = _polar_predictor(W)
    assert ok
    np.testing.assert_allclose(P, exact, rtol=0, atol=1e-13 * np.abs(exact).max())
    assert np.array_equal(P, P.T)
    if spectrum == "zeros":
        # eigh of W W^T meets the zero eigenvalues only to rounding, eps |F|, and sqrt amplifies that to
        # about sqrt(eps |F|): the eigen-decomposition route is the less accurate one here
        np.testing.assert_allclose(_predictor(W @ W.T, 0.5, 0.0), exact, rtol=0, atol=1e-7)
    else:
        np.testing.assert_allclose(P, _predictor(W @ W.T, 0.5, 0.0), rtol=0, atol=1e-12 * np.abs(exact).max())


def test_polar_square_root_reports_what_it_cannot_do():
    rng = np.random.default_rng(9)
    W, _ = _with_singular_values(rng, np.array([1.0, 0.5, 1e-9]), 4)  # about 56 iterations for 1e-9
    assert not _polar_predictor(W)[0] and _polar_predictor(W, max_iter=80)[0]
    assert not _polar_predictor(np.full((3, 4), np.nan))[0]
    assert not _polar_predictor(np.zeros((3, 4)))[0]


@pytest.mark.numba
def test_sgd_kernel_falls_back_to_the_eigen_decomposition_where_the_polar_factor_is_slow():
    """With too few polar iterations for its spectrum the kernel decomposes F instead, from the first step
    on, and gives exactly the steps of the eigen-decomposition route."""
    rng = np.random.default_rng(10)
    W, _ = _with_singular_values(rng, np.array([1.0, 0.8, 0.01, 0.5]), 6)
    E = rng.standard_normal((3, 3, 5, 6))
    slow = _kernel_steps(W, W, W @ W.T, E, K.EUCLIDEAN, 0.5, polar_iter=3)
    eigh = _kernel_steps(W, W, W @ W.T, E, K.EUCLIDEAN, 0.5, polar_iter=0)
    polar = _kernel_steps(W, W, W @ W.T, E, K.EUCLIDEAN, 0.5)
    for a, b, c in zip(slow[:4], eigh[:4], polar[:4]):
        assert np.array_equal(a, b)
        np.testing.assert_allclose(c, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [0.7, 1.0])
@pytest.mark.parametrize("code", [K.EUCLIDEAN, K.COSINE, K.ISO_EUCLIDEAN, K.ISO_COSINE])
def test_sgd_step_is_minus_lr_times_the_minibatch_gradient(code, alpha):
    rng = np.random.default_rng(3)
    M, N, B, lr = 4, 6, 5, 1e-3
    W = rng.standard_normal((M, N)) / 2
    E = rng.standard_normal((1, 3, B, N))
    X1, X2 = E[0, 0], E[0, 0] + E[0, 2]  # the views of the step (sigma_o = 0, sigma_t = 1)
    Wn, Wt, *_ = _kernel_steps(W, W, np.zeros((M, M)), E, code, alpha, lr=lr)
    P = _predictor(W @ W.T, alpha, 0.0)
    grad = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        D = np.zeros_like(W)
        D[idx] = 1e-6
        grad[idx] = (_minibatch_loss(code, W + D, W, P, X1, X2, M)
                     - _minibatch_loss(code, W - D, W, P, X1, X2, M)) / 2e-6
    np.testing.assert_allclose((W - Wn) / lr, grad, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(Wt, Wn)  # SimSiam: the target follows W


def test_directpred_running_estimate_and_predictor():
    rng = np.random.default_rng(4)
    W, F0 = rng.standard_normal((3, 5)), np.eye(3)
    E = np.zeros((1, 3, 7, 5))
    E[0, 0] = X = rng.standard_normal((7, 5))
    _, _, F, P, lam, _ = _kernel_steps(W, W, F0, E, K.EUCLIDEAN, 0.5, 0.2, rho=0.9, running=True)
    np.testing.assert_allclose(F, 0.9 * F0 + 0.1 * (X @ W.T).T @ (X @ W.T) / 7, rtol=1e-12)
    d = np.linalg.eigvalsh(F)
    np.testing.assert_allclose(np.sort(lam), np.sort(np.sqrt(d) + 0.2 * d.max()), rtol=1e-12)
    np.testing.assert_allclose(P, _predictor(F, 0.5, 0.2), atol=1e-12)


def test_observe_matches_numpy_group_means():
    rng = np.random.default_rng(6)
    M, N = 6, 8
    W, Wt = rng.standard_normal((M, N)), rng.standard_normal((M, N))
    U = np.linalg.qr(rng.standard_normal((M, M)))[0]
    P = _predictor(W @ W.T, 0.5, 0.0)
    group = np.array([0, 0, 1, 1, 1, 0], dtype=np.int64)
    out = [np.zeros(2) for _ in range(3)]
    mean_s = K.observe(W, Wt, P, U, group, 2, *out)
    A, C = U.T @ W, U.T @ Wt
    s, lam, tau = np.sum(A ** 2, 1), np.diag(U.T @ P @ U), np.sum(C * A, 1) / np.sum(A ** 2, 1)
    for got, want in zip(out, (s, lam, tau)):
        np.testing.assert_allclose(got, [want[group == g].mean() for g in range(2)], rtol=1e-12)
    assert mean_s == pytest.approx(np.sum(W ** 2) / M, rel=1e-12)


def test_diverged_weights_raise_instead_of_running_on():
    W = np.full((3, 4), np.inf)
    for alpha in (0.5, 1.0):  # the eigen-decomposition and its alpha = 1 shortcut alike
        with pytest.raises(np.linalg.LinAlgError, match="infs or NaNs"):
            K.prepare(W, np.zeros((3, 3)), np.empty((3, 3)), np.empty(3), False, alpha, 0.0)


def test_replicates_in_threads_equal_the_single_runs():
    kw = dict(dim=6, batch=4, lr=0.01, t_end=0.2, s0=[1.0, 0.3], sigma2_t=0.3, n_record=3)
    runs = cfp.simulate_replicates("cosine", seeds=[3, 4, 5], threads=2, alpha=0.5, **kw)
    for seed, run in zip([3, 4, 5], runs):
        single = cfp.simulate("cosine", alpha=0.5, seed=seed, **kw)
        assert run.seed == single.seed
        for name in single.names:
            np.testing.assert_array_equal(run.observable(name), single.observable(name))
    with pytest.raises(InvalidParameterError, match="seeds"):
        cfp.simulate_replicates("cosine", seeds=[], **kw)
    with pytest.raises(InvalidParameterError, match="threads"):
        cfp.simulate_replicates("cosine", seeds=[1], threads=0, **kw)


def test_sgd_with_ema_target_follows_the_derived_ode():
    s0, prm = [0.6, 0.2], dict(sigma2_o=0.2, sigma2_t=0.2, eta=0.02, alpha=1.0, beta=2.0)
    run = cfp.simulate("euclidean", dim=32, batch=64, lr=0.005, t_end=3.0, s0=s0, ema_rate=2.0, n_record=13,
                       seed=5, **{k: v for k, v in prm.items() if k != "beta"})
    csys = compile_system(S.mode_system("euclidean", "closed_form", 2, ema=True))
    from theorykit.solve import solve

    y = solve(csys, np.array([0.6, 1.0, 0.2, 1.0]), (0.0, run.t[-1]), A.packed(csys, prm), t_eval=run.t).y
    assert np.max(np.abs(cfp.group_series(run, "s") - y[:, 0::2])) < 0.02
    assert np.max(np.abs(cfp.group_series(run, "tau") - y[:, 1::2])) < 0.02


def test_sgd_run_is_a_reproducible_particle_run_independent_of_chunking(monkeypatch):
    from theorykit.simulate import ParticleRun, _driver

    kw = dict(dim=6, batch=4, lr=0.01, t_end=0.3, s0=[1.0, 0.3], sigma2_t=0.3, n_record=4, seed=7)
    a = cfp.simulate("cosine", alpha=0.5, **kw)
    assert isinstance(a, ParticleRun)
    assert {"s1", "lambda2", "tau1", "mean_s", "spectrum", "max_inner"} <= set(a.names)
    assert a.observable("spectrum").shape == (4, 6)
    monkeypatch.setattr(_driver, "CHUNK_BYTES", 1)  # one step per chunk
    b = cfp.simulate("cosine", alpha=0.5, **kw)
    for name in a.names:
        np.testing.assert_array_equal(a.observable(name), b.observable(name))
    assert np.max(np.abs(a.observable("spectrum") - cfp.simulate("cosine", alpha=0.5, **{**kw, "seed": 8})
                         .observable("spectrum"))) > 1e-6


@pytest.mark.parametrize("kwargs, name", [
    (dict(loss="hinge"), "loss"), (dict(predictor="learned"), "predictor"), (dict(lr=0.0), "lr"),
    (dict(s0=[1.0, -1.0]), "s0"), (dict(fractions=[0.3, 0.3]), "fractions"), (dict(rho=1.0), "rho"),
    (dict(predictor="directpred", epsilon=-0.1), "epsilon"), (dict(ema_rate=-1.0), "ema_rate"),
    (dict(dim=1), "dim"), (dict(eta=-0.1), "eta"), (dict(n_in=1), "n_in"), (dict(epsilon=0.1), "epsilon"),
    (dict(predictor="directpred", alpha=1.0), "alpha"), (dict(alpha=0.0), "alpha")])
def test_bad_input_names_the_parameter(kwargs, name):
    base = dict(loss="euclidean", dim=4, batch=2, lr=0.1, t_end=0.2, s0=[1.0, 0.5])
    base.update(kwargs)
    with pytest.raises(InvalidParameterError, match=name):
        cfp.simulate(base.pop("loss"), **base)


# -------------------------------------------------------------------------- claims, systems, docs
@pytest.mark.parametrize("study", ["derivation_study", "stability_study"])
def test_analytic_claims_pass(study):
    for c in getattr(St, study)()["claims"]:
        assert Claim(**c).passed, Claim(**c).describe_failure()


@pytest.mark.slow
@pytest.mark.parametrize("study", ["euclidean_study", "cosine_study", "directpred_study", "width_study"])
def test_sgd_claims_pass_at_seed_0(study):
    for c in getattr(St, study)(0)["claims"]:
        assert Claim(**c).passed, Claim(**c).describe_failure()


def test_builtin_systems_reach_their_fixed_points():
    from theorykit.solve import solve

    final = {}
    for key, b in cfp.systems().items():
        csys = compile_system(b.build(), backend="numpy")
        final[key] = solve(csys, b.y0, (0.0, 150.0), b.params, method="lsoda").final
    assert final["euclidean_lambda"][0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(final["euclidean_modes"], 1.0, atol=1e-6)
    np.testing.assert_allclose(final["cosine_modes"], 0.8, atol=1e-6)  # isotropic at the initial mean s
    p_plus = St.tian_roots(0.1, 0.2)[1]
    np.testing.assert_allclose(final["directpred_ema"], [p_plus ** 2 / 1.2, 1.0], atol=1e-4)


def test_builtin_systems_solve_through_the_cli(tmp_path, capsys):
    from theorykit.cli import main

    assert "closed_form_predictor" in theories.theory_names()
    assert {"closed_form_predictor.euclidean_lambda", "closed_form_predictor.directpred_modes"} <= set(
        theories.builtin_systems())
    assert main(["solve", "closed_form_predictor.iso_euclidean_lambda", "--out", str(tmp_path)]) == 0
    assert "lambda = 0.99999" in capsys.readouterr().out


def test_derivation_document_is_up_to_date():
    spec = importlib.util.spec_from_file_location("cfp_derivation", ROOT / "derivations" / "closed_form_predictor.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == (ROOT / "derivations" / "closed_form_predictor.md").read_text(), \
        "run: python derivations/closed_form_predictor.py"
