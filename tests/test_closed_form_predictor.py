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


@pytest.mark.parametrize("code", [K.EUCLIDEAN, K.COSINE, K.ISO_EUCLIDEAN, K.ISO_COSINE])
def test_sgd_step_is_minus_lr_times_the_minibatch_gradient(code):
    rng = np.random.default_rng(3)
    M, N, B, lr = 4, 6, 5, 1e-3
    W = rng.standard_normal((M, N)) / 2
    X1, X2 = rng.standard_normal((B, N)), rng.standard_normal((B, N))
    Wn, Wt, F = W.copy(), W.copy(), np.zeros((M, M))
    K.sgd_step(Wn, Wt, F, X1, X2, code, 0.7, 0.0, 0.5, False, lr, 0.0, 0.0, float(M))
    P = _predictor(W @ W.T, 0.7, 0.0)
    grad = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        E = np.zeros_like(W)
        E[idx] = 1e-6
        grad[idx] = (_minibatch_loss(code, W + E, W, P, X1, X2, M)
                     - _minibatch_loss(code, W - E, W, P, X1, X2, M)) / 2e-6
    np.testing.assert_allclose((W - Wn) / lr, grad, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(Wt, Wn)  # SimSiam: the target follows W


def test_directpred_running_estimate_and_predictor():
    rng = np.random.default_rng(4)
    W, F0 = rng.standard_normal((3, 5)), np.eye(3)
    X = rng.standard_normal((7, 5))
    F = F0.copy()
    K.sgd_step(W.copy(), W.copy(), F, X, X, K.EUCLIDEAN, 0.5, 0.2, 0.9, True, 1e-3, 0.0, 0.0, 3.0)
    np.testing.assert_allclose(F, 0.9 * F0 + 0.1 * (X @ W.T).T @ (X @ W.T) / 7, rtol=1e-12)
    P, lam = K.predictor(F, 0.5, 0.2)
    d = np.linalg.eigvalsh(F)
    np.testing.assert_allclose(np.sort(lam), np.sort(np.sqrt(d) + 0.2 * d.max()), rtol=1e-12)
    np.testing.assert_allclose(P, _predictor(F, 0.5, 0.2), atol=1e-12)


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
