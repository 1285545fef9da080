"""Tests of the imbalanced-data contrastive theory: encoder gradients, pruning, symbolic gradient, stages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from theorykit.errors import InvalidParameterError
from theorykit.theories import imbalanced_pruning as ip
from theorykit.theories.imbalanced_pruning import _theory as th

ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(d=16, n_major=2, n_minor=2, p=0.15, width=16, n_tokens=2, batch=16, tau=1.0, lam=0.01, steps=600,
             record_every=10)


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("eps", [0.0, 1.0, -0.1, 1.5])
def test_eps_outside_unit_interval_rejected(eps):
    with pytest.raises(InvalidParameterError, match="eps_min"):
        ip.Config(eps_min=eps)


def test_negative_nsr_rejected():
    with pytest.raises(InvalidParameterError, match="nsr"):
        ip.Config(nsr=-0.1)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.2])
def test_prune_rate_outside_range_rejected(rate):
    with pytest.raises(InvalidParameterError, match="prune_rate"):
        ip.Config(prune_rate=rate)
    with pytest.raises(InvalidParameterError, match="prune_rate"):
        ip.magnitude_prune(np.ones((3, 4)), rate)


def test_too_many_features_and_probabilities_rejected():
    with pytest.raises(InvalidParameterError, match="n_major"):
        ip.Config(d=4, n_major=3, n_minor=2)
    with pytest.raises(InvalidParameterError, match="sum"):
        ip.Config(p=0.4, n_major=3, n_minor=2, eps_min=0.5)


# ------------------------------------------------------------------------------------------ data
def test_data_model_frequencies_and_noise():
    cfg = ip.Config(d=16, n_major=2, n_minor=2, p=0.2, eps_min=0.25, nsr=0.8, n_tokens=4)
    X, Y, codes = ip.sample_pairs(cfg, 20000, 3)
    freq = np.array([(np.abs(codes) == j + 1).mean() for j in range(cfg.n_features)])
    se = np.sqrt(cfg.feature_probs() * (1 - cfg.feature_probs()) / codes.size)
    assert np.all(np.abs(freq - cfg.feature_probs()) < 5 * se)
    M = ip.feature_matrix(cfg)
    # subtract the signed feature to recover the noise, whose norm^2 has mean nsr^2
    sig = np.zeros_like(X)
    nz = codes != 0
    sig[nz] = np.sign(codes[nz])[:, None] * M[np.abs(codes[nz]) - 1]
    noise = X - sig
    assert abs(np.mean(np.sum(noise**2, axis=-1)) - cfg.nsr**2) < 0.02
    # the positive view shares the features and has independent noise
    ny = Y - sig
    assert abs(np.mean(np.sum(noise * ny, axis=-1))) < 0.02


# ------------------------------------------------------------------------------------------ encoder
def _loss_only(cfg, W, X, Y, bias, W_sg):
    return ip.loss_and_grad(cfg, W, X, Y, bias=bias, W_sg=W_sg, bias_sg=bias)[0]


@pytest.mark.numba
def test_encoder_gradient_matches_finite_differences():
    cfg = ip.Config(**{**SMALL, "beta": 2.0, "tau": 0.7})
    rng = np.random.default_rng(0)
    W = rng.standard_normal((cfg.width, cfg.d)) * 0.5
    X, Y, _ = ip.sample_pairs(cfg, cfg.batch, 5)
    bias = np.abs(rng.standard_normal(cfg.width)) * 0.05
    _, g = ip.loss_and_grad(cfg, W, X, Y, bias=bias)
    h = 1e-6
    checked = 0
    for i, c in [(0, 0), (3, 5), (7, 2), (11, 15), (15, 9)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, c] += h
        Wm[i, c] -= h
        fd = (_loss_only(cfg, Wp, X, Y, bias, W) - _loss_only(cfg, Wm, X, Y, bias, W)) / (2 * h)
        assert abs(fd - g[i, c]) <= 1e-5 * max(1.0, abs(fd)), (i, c, fd, g[i, c])
        checked += 1
    assert checked == 5
    # the stop-gradient matters: differentiating through both branches gives a different result
    Wp = W.copy()
    Wp[0, 0] += h
    Wm = W.copy()
    Wm[0, 0] -= h
    fd_both = (_loss_only(cfg, Wp, X, Y, bias, Wp) - _loss_only(cfg, Wm, X, Y, bias, Wm)) / (2 * h)
    assert abs(fd_both - g[0, 0]) > 1e-3


def test_encoder_reduces_to_brelu_for_one_token():
    cfg = ip.Config(**{**SMALL, "n_tokens": 1})
    rng = np.random.default_rng(1)
    W = rng.standard_normal((cfg.width, cfg.d))
    X, _, _ = ip.sample_pairs(cfg, 50, 2)
    F = ip.encode(cfg, W, X)
    b = cfg.kappa * cfg.sigma * np.linalg.norm(W, axis=1)
    s = X[:, 0, :] @ W.T
    expected = np.maximum(s - b, 0) - np.maximum(-s - b, 0)
    np.testing.assert_allclose(F, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ pruning
@pytest.mark.parametrize("mode", ["neuron", "weight"])
@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 0.9])
def test_pruning_removes_exact_fraction_by_magnitude(mode, rate):
    rng = np.random.default_rng(4)
    W = rng.standard_normal((20, 8))
    mask = ip.magnitude_prune(W, rate, mode)
    if mode == "neuron":
        norms = np.linalg.norm(W, axis=1)
        removed = ~mask.any(axis=1)
        assert np.all(mask[removed] == 0) and np.all(mask[~removed] == 1)
        assert removed.sum() == int(np.floor(rate * 20))
        if 0 < removed.sum() < 20:
            assert norms[removed].max() <= norms[~removed].min()
    else:
        removed = mask.reshape(-1) == 0
        assert removed.sum() == int(np.floor(rate * W.size))
        mags = np.abs(W.reshape(-1))
        if 0 < removed.sum() < W.size:
            assert mags[removed].max() <= mags[~removed].min()
    # a second pruning counts only the surviving units
    mask2 = ip.magnitude_prune(W, 0.5, mode, mask=mask)
    if mode == "neuron":
        alive1, alive2 = mask.any(axis=1).sum(), mask2.any(axis=1).sum()
    else:
        alive1, alive2 = mask.sum(), mask2.sum()
    assert alive1 - alive2 == int(np.floor(0.5 * alive1))


@pytest.mark.numba
def test_training_keeps_pruned_weights_at_zero_and_matches_until_pruning():
    cfg = ip.Config(**SMALL)
    plain = ip.train(cfg, 7)
    pruned = ip.train(cfg.with_(prune_rate=0.5, prune_mode="neuron", prune_at=0.5), 7)
    k = np.searchsorted(plain.steps, pruned.prune_step)
    np.testing.assert_allclose(plain.proj[:k], pruned.proj[:k])
    assert not np.allclose(plain.proj[k:], pruned.proj[k:])
    dead = ~pruned.alive
    assert dead.sum() == cfg.width // 2
    assert np.all(pruned.W[dead] == 0)
    assert np.all(np.abs(pruned.proj[-1][dead]) == 0)


@pytest.mark.numba
def test_pruning_does_not_reduce_minority_neuron_count_fixed_seed():
    cfg = ip.default_config(quick=True).with_(steps=1600, eps_min=0.1, prune_rate=0.5)
    plain = ip.train(cfg.with_(prune_rate=0.0), 13)
    pruned = ip.train(cfg, 13)
    assert (pruned.mask == 0).sum() == pruned.mask.size // 2
    c0 = ip.feature_metrics(plain)["count_minor"]
    c1 = ip.feature_metrics(pruned)["count_minor"]
    assert c1 >= c0


@pytest.mark.numba
def test_weights_at_pruning_are_those_of_the_unpruned_twin():
    cfg = ip.Config(**SMALL).with_(prune_rate=0.3, prune_mode="weight", prune_at=0.5)
    pruned = ip.train(cfg, 5)
    twin = ip.train(cfg.with_(prune_rate=0.0, steps=pruned.prune_step), 5)
    np.testing.assert_array_equal(pruned.W_at_prune, twin.W)
    assert ip.train(cfg.with_(prune_rate=0.0), 5).W_at_prune is None
    # the metrics of a run equal those computed from its projections and norms
    m = ip.feature_metrics(pruned)
    m2 = ip.projection_metrics(pruned.W @ pruned.M.T, np.linalg.norm(pruned.W, axis=1), cfg.n_major)
    assert m == pytest.approx(m2, rel=1e-12)


@pytest.mark.numba
def test_population_flow_predicts_pruning_raising_minority_cosine():
    cfg = ip.default_config(quick=True).with_(eps_min=0.1, nsr=1.0, prune_rate=0.5)
    plain, pruned = ip.train(cfg.with_(prune_rate=0.0), 1), ip.train(cfg, 1)
    measured = ip.feature_metrics(pruned)["maxcos_minor"] - ip.feature_metrics(plain)["maxcos_minor"]
    predicted = ip.pruning_flow_effect(pruned)["flow_delta_maxcos_minor"]
    assert measured > 0.005 and predicted > 0.005
    assert abs(predicted - measured) <= 0.5 * measured
    assert ip.pruning_flow_effect(plain) == {"flow_delta_count_minor": 0.0, "flow_delta_maxcos_minor": 0.0}


def test_pruning_flow_effect_rejects_weight_pruning_in_a_rotated_basis():
    cfg = ip.Config(**SMALL).with_(basis="random", prune_rate=0.3, prune_mode="weight", steps=20)
    with pytest.raises(InvalidParameterError, match="basis"):
        ip.pruning_flow_effect(ip.train(cfg, 0))


# ------------------------------------------------------------------------------------------ symbolic
def test_brelu_mean_matches_quadrature():
    H = sp.lambdify((th.MU, th.V, th.BIAS), th.brelu_mean(), "mpmath")
    for mu, v, b in [(0.7, 0.5, 0.3), (-0.2, 1.3, 0.9), (2.0, 0.1, 1.0)]:
        f = lambda g: (max(mu + v * g - b, 0) - max(-mu - v * g - b, 0)) * mpmath.npdf(g)  # noqa: E731
        kinks = sorted([(b - mu) / v, (-b - mu) / v])
        ref = mpmath.quad(f, [-mpmath.inf, *kinks, mpmath.inf])
        assert abs(float(H(mu, v, b)) - float(ref)) < 1e-10


def test_assembled_gradient_matches_full_symbolic_system():
    """The O(K) assembly of the compiled slopes equals the fully symbolic K-feature gradient."""
    cfg = ip.Config(d=16, n_major=1, n_minor=1, p=0.3, eps_min=0.4, nsr=0.9, kappa=1.2, lam=0.02, tau=0.8,
                    n_tokens=2, batch=16)
    D = th.derive(2)
    pars = th.flow_params(cfg)
    subs = {th.C: pars["c"], th.LAM: pars["lambda"], th.SIGMA: cfg.sigma, th.KAPPA: cfg.kappa,
            D.pi[0]: pars["pi1"], D.pi[1]: pars["pi2"]}
    f = sp.lambdify((*D.a, D.r), [g.subs(subs) for g in (*D.grad_feature, D.grad_noise)], "mpmath")
    for a, r in [((0.3, -0.1), 0.4), ((1.2, 0.05), 0.2)]:
        ref = np.array([float(x) for x in f(*a, r)])
        np.testing.assert_allclose(ip.projected_gradient(cfg, np.array(a), r), ref, rtol=1e-9, atol=1e-14)


@pytest.mark.numba
def test_projected_population_gradient_matches_monte_carlo():
    cfg = ip.Config(d=16, n_major=2, n_minor=1, p=0.25, eps_min=0.5, nsr=1.0, n_tokens=1, tau=20.0, lam=0.0,
                    batch=64, kappa=1.0)
    sym, mc, se = ip.mc_gradient_check(cfg, np.array([0.6, -0.3, 0.4]), 0.5, 200, seed=3)
    # within 4 standard errors plus the O(|f|^2 / tau) linearisation bias (a few per cent)
    assert np.all(np.abs(sym - mc) <= 4 * se + 0.03 * np.abs(sym)), (sym, mc, se)
    # and it is not trivially small: the dominant projection is many standard errors from zero
    assert abs(sym[0]) > 20 * se[0]


# ------------------------------------------------------------------------------------------ saturation
def _closure_loss(xp, xs, xo, n_s, n_r):
    return -xp + np.log(np.exp(xp) + n_s * np.exp(xs) + n_s * np.exp(xo) + n_r)


def test_saturation_factor_matches_finite_differences_of_the_closure_loss():
    q = sp.lambdify((th.LOGIT, th.N_SAME, th.N_REST), th.saturation_factor(), "numpy")
    h = 1e-6
    for e, n_s, n_r in [(0.0, 2.0, 27.0), (0.7, 1.3, 20.4), (3.0, 4.0, 23.0), (-0.5, 0.5, 10.0)]:
        d_pos = (_closure_loss(e + h, e, -e, n_s, n_r) - _closure_loss(e - h, e, -e, n_s, n_r)) / (2 * h)
        d_same = (_closure_loss(e, e + h, -e, n_s, n_r) - _closure_loss(e, e - h, -e, n_s, n_r)) / (2 * h)
        d_opp = (_closure_loss(e, e, -e + h, n_s, n_r) - _closure_loss(e, e, -e - h, n_s, n_r)) / (2 * h)
        assert q(e, n_s, n_r) == pytest.approx(-(d_pos + d_same - d_opp), rel=1e-7, abs=1e-9)
    # the linearised weight (B - 1)/B at e = 0, and saturation for a learned feature
    B, rho = 32, 0.27
    n_s, n_r = (B - 1) * rho / 2, (B - 1) * (1 - rho)
    assert q(0.0, n_s, n_r) == pytest.approx((B - 1) / B, rel=1e-12)
    assert q(10.0, n_s, n_r) < 1e-3 * q(0.0, n_s, n_r)


def _flow_rhs_by_hand(cfg, A, r, saturation=True):
    """The coupled flow written out with scipy's erf (independent of the SymPy pipeline)."""
    from scipy.special import erf

    def phi(x):
        return np.exp(-x * x / 2) / np.sqrt(2 * np.pi)

    def R(m):
        return m / 2 * (1 + erf(m / np.sqrt(2))) + phi(m)

    k, s = cfg.kappa, cfg.sigma
    pis = cfg.feature_probs()
    rho = 1 - (1 - pis) ** cfg.n_tokens
    n_s, n_r = (cfg.batch - 1) * rho / 2, (cfg.batch - 1) * (1 - rho)
    v = s * np.sqrt((A * A).sum(1) + r * r)
    z = A / v[:, None]
    h = R(z - k) - R(-z - k)
    s_mu = 2 * h * (1 - erf((k - z) / np.sqrt(2)) / 2 - erf((k + z) / np.sqrt(2)) / 2)
    s_v = 2 * h * (phi(z - k) - phi(z + k))
    e = (v[:, None] ** 2 * h**2).sum(0) / cfg.tau if saturation else np.zeros(A.shape[1])
    q = (n_r + 2 * n_s * np.exp(-e)) / ((1 + n_s) * np.exp(e) + n_s * np.exp(-e) + n_r)
    c = cfg.n_tokens / (2 * cfg.tau)
    D = (q * pis * s_v).sum(1)
    dA = -cfg.eta * (-c * (q * pis * v[:, None] * s_mu + s * s * A * D[:, None]) + cfg.lam * A)
    dr = -cfg.eta * (-c * s * s * r * D + cfg.lam * r)
    return np.concatenate([dA.ravel(), dr])


@pytest.mark.numba
@pytest.mark.parametrize("saturation", [True, False])
def test_network_flow_rhs_matches_hand_written_formulas(saturation):
    cfg = ip.Config(d=16, n_major=2, n_minor=1, p=0.2, eps_min=0.3, nsr=0.8, kappa=1.3, tau=0.7, lam=0.02, batch=24,
                    n_tokens=2)
    rng = np.random.default_rng(4)
    A = rng.normal(scale=0.6, size=(5, 3))
    r = np.abs(rng.normal(scale=0.3, size=5))
    csys = th.compiled_network(5, 3)
    out = np.empty(20)
    csys.rhs_into(0.0, np.concatenate([A.ravel(), r]), th.network_params(cfg, saturation=saturation), out)
    np.testing.assert_allclose(out, _flow_rhs_by_hand(cfg, A, r, saturation), rtol=1e-10, atol=1e-14)
    # the linearised flow of one neuron is the projected population gradient of derive()
    if not saturation:
        for i in range(5):
            g = ip.projected_gradient(cfg, A[i], r[i])
            np.testing.assert_allclose(out[i * 3:(i + 1) * 3], -cfg.eta * g[:-1], rtol=1e-10, atol=1e-14)
            assert out[15 + i] == pytest.approx(-cfg.eta * g[-1], rel=1e-10, abs=1e-14)


@pytest.mark.numba
def test_population_flow_saturates_only_with_the_closure():
    cfg = ip.default_config(quick=True).with_(eps_min=0.2)
    start = ip.train(cfg.with_(steps=1), 0)
    W0 = start.proj[0], start.noise[0]
    t = np.linspace(0.0, 2400.0, 121)
    P, N = ip.population_flow(cfg, W0[0], W0[1], t)
    top = np.abs(P).max(axis=1)  # [n_t, K]: the largest projection on each feature
    assert np.all(top[-1, :cfg.n_major] > 5 * top[0, :cfg.n_major])  # majority features are learned ...
    maj = slice(0, cfg.n_major)
    assert np.all(np.abs(top[-1, maj] - top[-10, maj]) <= 0.02 * top[-1, maj])  # ... and have converged
    P_lin, _ = ip.population_flow(cfg, W0[0], W0[1], t[:61], saturation=False)
    assert np.abs(P_lin[-1]).max() > 3 * np.abs(P[60]).max()  # without saturation growth goes on
    with pytest.raises(InvalidParameterError, match="a0"):
        ip.population_flow(cfg, W0[0][:, :2], W0[1], t)
    with pytest.raises(InvalidParameterError, match="t_eval"):
        ip.population_flow(cfg, W0[0], W0[1], t[::-1])


# ------------------------------------------------------------------------------------------ stages
def test_detect_stages_on_synthetic_trajectories():
    t = np.linspace(0, 100, 1001)
    dom = 0.01 * np.exp(0.2 * t) / (1 + 0.01 * np.exp(0.2 * t) / 2)  # logistic growth to 2
    noise = np.exp(-0.02 * t)
    nondom = 0.05 + 0 * t
    T1, T2, T3 = ip.detect_stages(t, dom, nondom, noise)
    assert abs(dom[np.searchsorted(t, T1)] - noise[np.searchsorted(t, T1)]) < 0.02
    assert T1 < T2 < T3
    assert dom[np.searchsorted(t, T2)] >= 3 * max(nondom[0], noise[np.searchsorted(t, T2)])
    # T3: the first time within 10% of the plateau 2, i.e. dom = 1.8
    assert T3 == pytest.approx(t[np.flatnonzero(dom >= 1.8)[0]], abs=0.11)
    # SGD-like fluctuations of +-5% around the plateau do not move T3
    wobble = dom * (1 + 0.05 * np.sin(7 * t))
    assert ip.detect_stages(t, wobble, nondom, noise)[2] == pytest.approx(T3, abs=1.0)
    # a trajectory that never converges has no T3; one that never separates has neither T2 nor T3
    assert np.isnan(ip.detect_stages(t, np.exp(0.05 * t), nondom, noise)[2])
    assert np.all(np.isnan(ip.detect_stages(t, dom, dom, noise)[1:]))
    with pytest.raises(InvalidParameterError, match="length"):
        ip.detect_stages(t, dom[:-1], nondom, noise)


def test_learned_neurons_selects_grown_and_aligned_neurons():
    n_t = 5
    proj = np.zeros((n_t, 4, 2))
    noise = np.full((n_t, 4), 0.1)
    proj[-1, 0] = [0.5, 0.01]  # grew 5x along feature 0, aligned
    proj[-1, 1] = [0.01, 0.15]  # grew only 1.5x along feature 1
    proj[-1, 2] = [0.4, 0.4]  # grew but cosine 0.69 with feature 0 or 1: still aligned enough
    proj[-1, 3] = [0.0, 0.0]
    noise[-1, 3] = 0.0  # pruned
    neurons, feats = ip.learned_neurons(proj, noise)
    assert list(neurons) == [0, 2] and feats[0] == 0


@pytest.mark.numba
def test_stage_detection_on_small_run():
    cfg = ip.default_config(quick=True).with_(steps=1600, eps_min=0.2)
    run = ip.train(cfg, 1)
    st = ip.stage_summary(run)
    T = st.measured_major
    assert T.shape[0] >= 5
    full = np.all(np.isfinite(T), axis=1)
    assert full.mean() >= 0.8
    assert np.all(T[full, 0] <= T[full, 1]) and np.all(T[full, 1] <= T[full, 2])
    # the population flow from the same initial projections predicts the stage times
    for k, tol in enumerate((0.3, 0.3, 0.4)):
        ok = np.isfinite(st.predicted_major[:, k]) & np.isfinite(T[:, k])
        assert ok.sum() >= 5
        med = np.median(T[ok, k])
        assert abs(np.median(st.predicted_major[ok, k]) - med) <= tol * med, k


def test_stage_time_scales_formula():
    s = ip.stage_time_scales(1000, 0.1, 0.2)
    d = 1000
    expect = d * np.log(d) / (0.1 * np.log(np.log(d)))
    assert s["T1_major"] == pytest.approx(expect)
    assert s["T1_minor"] == pytest.approx(expect / 0.2)


# ------------------------------------------------------------------------------------------ derivation
def test_derivation_markdown_is_up_to_date():
    path = ROOT / "derivations" / "imbalanced_pruning.py"
    spec = importlib.util.spec_from_file_location("_deriv_imbalanced_pruning", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = (ROOT / "derivations" / "imbalanced_pruning.md").read_text()
    assert mod.render() == committed


@pytest.mark.slow
def test_reproduce_quick(tmp_path):
    report = ip.reproduce(tmp_path, quick=True, seed=0)
    assert {c.name for c in report.claims} >= {"minority_smaller_magnitude", "pruning_lowers_downstream_error"}
    for fig in report.figures:
        assert (tmp_path / fig).exists()
