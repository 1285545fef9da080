"""Tests of the imbalanced-data contrastive theory: data model, encoder gradients, pruning, symbolic gradient,
population flow and descent, stages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from theorykit.errors import InvalidParameterError
from theorykit.theories import imbalanced_pruning as ip
from theorykit.theories.imbalanced_pruning._studies import one_token_config
from theorykit.theories.imbalanced_pruning import _symbolic as S

ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(d1=16, n_major=2, n_minor=2, p=0.15, width=16, n_tokens=2, batch=16, tau=1.0, lam=0.01, steps=600,
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


def test_too_many_features_and_bad_choices_rejected():
    with pytest.raises(InvalidParameterError, match="n_major"):
        ip.Config(d1=4, n_major=3, n_minor=2)
    for name in ("prune", "prune_mode", "bias", "basis", "attention"):
        with pytest.raises(InvalidParameterError, match=name):
            ip.Config(**{name: "nonsense"})
    with pytest.raises(InvalidParameterError, match="prune_every"):
        ip.Config(prune_every=0)
    with pytest.raises(InvalidParameterError, match="bias='schedule'"):
        ip.Config(n_major=1, n_minor=0)
    assert ip.Config(n_major=1, n_minor=0, bias="norm").bias_scale == 1.5


def test_defaults_are_the_papers_setting():
    cfg = ip.Config()
    assert cfg.prune == "forward_mask" and cfg.prune_mode == "weight" and cfg.prune_every == 1
    assert cfg.beta == 1.0 and cfg.attention == "fixed"  # W_Q = W_K = W_V = I
    assert cfg.bias == "schedule" and cfg.bias_scale == pytest.approx(np.sqrt(2 * np.log(cfg.d)))
    assert cfg.d == cfg.n_major + cfg.n_minor and cfg.sigma == pytest.approx(cfg.nsr / np.sqrt(cfg.d1))


# ------------------------------------------------------------------------------------------ data
@pytest.mark.parametrize("basis", ["coordinate", "random"])
def test_data_model_frequencies_and_noise(basis):
    cfg = ip.Config(d1=24, n_major=2, n_minor=2, p=0.3, eps_min=0.5, nsr=0.8, n_tokens=4, basis=basis)
    M = ip.feature_matrix(cfg, 5)
    assert M.shape == (cfg.d, cfg.d1)
    np.testing.assert_allclose(M @ M.T, np.eye(cfg.d), atol=1e-12)  # M (d1 x d in the paper) column-orthogonal
    X, Y, Z = ip.sample_pairs(cfg, 20000, 3, M=M)
    assert X.shape == Y.shape == (20000, cfg.n_tokens, cfg.d1) and Z.shape == (20000, cfg.n_tokens, cfg.d)
    freq = (Z != 0).reshape(-1, cfg.d).mean(axis=0)
    se = np.sqrt(cfg.feature_probs() * (1 - cfg.feature_probs()) / (Z.size / cfg.d))
    assert np.all(np.abs(freq - cfg.feature_probs()) < 5 * se)
    assert abs(np.mean(Z[Z != 0])) < 0.02  # random signs
    # features are independent: tokens with several features occur as often as the product rule says
    several = np.mean(np.sum(Z != 0, axis=-1) >= 2)
    pi = cfg.feature_probs()
    p_none = np.prod(1 - pi)
    p_one = sum(pi[j] * np.prod(np.delete(1 - pi, j)) for j in range(cfg.d))
    assert several == pytest.approx(1 - p_none - p_one, abs=0.01) and several > 0.1
    # x = M z + xi: the noise has mean squared norm nsr^2 and is independent between the views
    noise, ny = X - Z @ M, Y - Z @ M
    assert abs(np.mean(np.sum(noise**2, axis=-1)) - cfg.nsr**2) < 0.02
    assert abs(np.mean(np.sum(noise * ny, axis=-1))) < 0.02


# ------------------------------------------------------------------------------------------ encoder
def _loss_only(cfg, W, X, Y, bias, W_sg):
    return ip.loss_and_grad(cfg, W, X, Y, bias=bias, W_sg=W_sg, bias_sg=bias)[0]


@pytest.mark.numba
def test_encoder_gradient_matches_finite_differences():
    cfg = ip.Config(**{**SMALL, "beta": 2.0, "tau": 0.7})
    rng = np.random.default_rng(0)
    W = rng.standard_normal((cfg.width, cfg.d1)) * 0.5
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
    W = rng.standard_normal((cfg.width, cfg.d1))
    X, _, _ = ip.sample_pairs(cfg, 50, 2)
    F = ip.encode(cfg, W, X)
    b = cfg.bias_scale * cfg.sigma * np.linalg.norm(W, axis=1)
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
def test_hard_pruning_keeps_pruned_weights_at_zero_and_matches_until_pruning():
    cfg = ip.Config(**SMALL)
    plain = ip.simulate_sgd(cfg, 7)
    pruned = ip.simulate_sgd(cfg.with_(prune="hard", prune_rate=0.5, prune_mode="neuron", prune_at=0.5), 7)
    k = np.searchsorted(plain.t, pruned.params["prune_step"])
    proj_plain, proj = ip.network_trajectories(plain, cfg.width, cfg.d)[0], ip.network_trajectories(pruned, cfg.width,
                                                                                                    cfg.d)[0]
    np.testing.assert_allclose(proj_plain[:k], proj[:k])
    assert not np.allclose(proj_plain[k:], proj[k:])
    dead = ~pruned.observable("mask")[-1].any(axis=1)
    assert dead.sum() == cfg.width // 2
    assert np.all(pruned.observable("W")[-1][dead] == 0)
    assert np.all(np.abs(proj[-1][dead]) == 0)


@pytest.mark.numba
def test_forward_mask_prunes_the_forward_pass_only():
    cfg = ip.Config(**SMALL).with_(prune_rate=0.5, prune_at=0.5)  # Algorithm 1, weight level
    run = ip.simulate_sgd(cfg, 7)
    W_all, mask = run.observable("W")[-1], run.observable("mask")[-1]
    masked = mask == 0
    assert masked.sum() == mask.size // 2
    assert np.all(W_all[masked] != 0)  # the weights outside the mask keep their values ...
    np.testing.assert_array_equal(ip.forward_weights(run), W_all * mask)  # ... and the forward pass does not see them
    # the metrics are those of the forward weights
    W, M = ip.forward_weights(run), run.params["features"]
    m = ip.feature_metrics(run)
    assert m == pytest.approx(ip.projection_metrics(W @ M.T, np.linalg.norm(W, axis=1), cfg.n_major), rel=1e-12)


@pytest.mark.numba
def test_weights_at_pruning_are_those_of_the_unpruned_twin():
    cfg = ip.Config(**SMALL).with_(prune_rate=0.3, prune_at=0.5)
    pruned = ip.simulate_sgd(cfg, 5)
    twin = ip.simulate_sgd(cfg.with_(prune_rate=0.0, steps=pruned.params["prune_step"]), 5)
    np.testing.assert_array_equal(ip.weights_at_prune(pruned), twin.observable("W")[-1])


@pytest.mark.numba
@pytest.mark.parametrize("settings", [dict(bias="schedule", prune="forward_mask", prune_mode="weight"),
                                      dict(bias="norm", prune="hard", prune_mode="neuron")])
def test_sgd_obeys_the_temperature_scaling_of_the_loss(settings):
    # sim / tau is homogeneous of degree 2 in W, the thresholds of degree 1 and the magnitude masks of degree 0,
    # so with W = sqrt(tau) V the loss at (tau, lam) is the loss of V at (1, lam tau) and SGD at (eta, tau, lam)
    # from W0 is sqrt(tau) times SGD at (eta / tau, 1, lam tau) from W0 / sqrt(tau): same draws, same masks
    cfg = ip.Config(**SMALL).with_(prune_rate=0.5, prune_at=0.3, steps=300, record_every=50, **settings)
    W0 = np.random.default_rng(3).standard_normal((cfg.width, cfg.d1)) * (cfg.init_scale / np.sqrt(cfg.d1))
    for tau in (0.4, 3.0):
        a, b = cfg.with_(tau=tau), cfg.with_(tau=1.0, eta=cfg.eta / tau, lam=cfg.lam * tau)
        run_a, run_b = ip.simulate_sgd(a, 5, W0=W0), ip.simulate_sgd(b, 5, W0=W0 / np.sqrt(tau))
        np.testing.assert_allclose(run_a.observable("W"), np.sqrt(tau) * run_b.observable("W"), rtol=0,
                                   atol=1e-13 * np.abs(run_a.observable("W")).max())
        np.testing.assert_array_equal(run_a.observable("mask"), run_b.observable("mask"))
        np.testing.assert_allclose(run_a.observable("loss"), run_b.observable("loss"), rtol=1e-12)
    # a temperature that is not compensated changes the run: the check above can fail
    moved = ip.simulate_sgd(cfg.with_(tau=3.0, eta=cfg.eta / 3.0), 5, W0=W0 / np.sqrt(3.0))
    assert not np.allclose(run_a.observable("W")[-1], np.sqrt(3.0) * moved.observable("W")[-1], rtol=1e-3)
    assert ip.weights_at_prune(ip.simulate_sgd(cfg.with_(prune_rate=0.0), 5)) is None


@pytest.mark.numba
def test_population_descent_predicts_the_hard_pruning_effect():
    cfg = one_token_config(ip.default_config(quick=True)).with_(eps_min=0.1, prune_rate=0.5, prune="hard")
    plain, pruned = ip.simulate_sgd(cfg.with_(prune_rate=0.0), 1), ip.simulate_sgd(cfg, 1)
    measured = ip.feature_metrics(pruned)["maxcos_minor"] - ip.feature_metrics(plain)["maxcos_minor"]
    predicted = ip.pruning_flow_effect(pruned)["flow_delta_maxcos_minor"]
    assert measured > 0.005 and predicted > 0.005
    assert abs(predicted - measured) <= 0.35 * measured
    assert ip.pruning_flow_effect(plain) == {"flow_delta_count_minor": 0.0, "flow_delta_maxcos_minor": 0.0}


@pytest.mark.numba
def test_masked_weights_never_reenter_in_the_population_descent():
    """A masked weight has zero mean gradient: Algorithm 1's descent keeps its first mask, like hard pruning."""
    cfg = ip.Config(d1=12, n_major=2, n_minor=2, width=8, prune_rate=0.5, steps=200)
    run = ip.simulate_sgd(cfg.with_(prune_rate=0.0), 3)
    W0 = run.observable("W")[-1]
    forward = ip.population_descent(cfg, W0, run.params["features"], 150, prune="forward_mask")
    hard = ip.population_descent(cfg, W0, run.params["features"], 150, prune="hard")
    mask0 = ip.magnitude_prune(W0, cfg.prune_rate)
    np.testing.assert_array_equal(ip.magnitude_prune(forward, cfg.prune_rate), mask0)
    np.testing.assert_allclose(forward * mask0, hard, rtol=1e-12, atol=1e-15)
    # the masked weights of Algorithm 1 only decay
    decay = (1 - cfg.eta * cfg.lam) ** 150
    np.testing.assert_allclose(forward[mask0 == 0], decay * W0[mask0 == 0], rtol=1e-12)


@pytest.mark.numba
def test_population_descent_step_by_hand():
    """One step of the descent: the compiled population gradient at the forward weights, applied to every weight."""
    cfg = ip.Config(d1=8, n_major=2, n_minor=1, width=4, p=0.2, eps_min=0.5, lam=0.05, eta=0.1, prune_rate=0.5)
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((cfg.width, cfg.d1))
    M = ip.feature_matrix(cfg)
    We = W0 * ip.magnitude_prune(W0, cfg.prune_rate)
    k, m = cfg.d, cfg.width
    pars = ip.network_params(cfg)
    dy = np.empty(m * (k + 1))
    r = np.linalg.norm(We[:, k:], axis=1)
    ip.compiled_network(m, k).rhs_into(0.0, np.concatenate([We[:, :k].ravel(), r]), pars, dy)
    expected = np.empty_like(W0)
    for i in range(m):
        g_a = -dy[i * k:(i + 1) * k] / cfg.eta - cfg.lam * We[i, :k]
        g_r = -dy[m * k + i] / cfg.eta - cfg.lam * r[i]
        g = np.concatenate([g_a, g_r / r[i] * We[i, k:]])
        expected[i] = (1 - cfg.eta * cfg.lam) * W0[i] - cfg.eta * g
    np.testing.assert_allclose(ip.population_descent(cfg, W0, M, 1, prune="forward_mask"), expected, rtol=1e-12,
                               atol=1e-15)
    # without a mask the descent is the Euler discretisation of the flow
    y0 = np.concatenate([W0[:, :k].ravel(), np.linalg.norm(W0[:, k:], axis=1)])
    ip.compiled_network(m, k).rhs_into(0.0, y0, pars, dy)
    W1 = ip.population_descent(cfg, W0, M, 1)
    np.testing.assert_allclose(W1[:, :k].ravel(), y0[:m * k] + dy[:m * k], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(W1[:, k:], axis=1), y0[m * k:] + dy[m * k:], rtol=1e-12)


def test_pruning_flow_effect_rejects_a_rotated_basis():
    cfg = ip.Config(**SMALL).with_(basis="random", prune_rate=0.3, steps=20)
    with pytest.raises(InvalidParameterError, match="basis"):
        ip.pruning_flow_effect(ip.simulate_sgd(cfg, 0))


# ------------------------------------------------------------------------------------------ symbolic
def test_brelu_mean_matches_quadrature():
    H = sp.lambdify((S.MU, S.V, S.BIAS), S.brelu_mean(), "mpmath")
    for mu, v, b in [(0.7, 0.5, 0.3), (-0.2, 1.3, 0.9), (2.0, 0.1, 1.0)]:
        f = lambda g: (max(mu + v * g - b, 0) - max(-mu - v * g - b, 0)) * mpmath.npdf(g)  # noqa: E731
        kinks = sorted([(b - mu) / v, (-b - mu) / v])
        ref = mpmath.quad(f, [-mpmath.inf, *kinks, mpmath.inf])
        assert abs(float(H(mu, v, b)) - float(ref)) < 1e-10


def test_assembled_gradient_matches_full_symbolic_system():
    """The O(K) assembly of the compiled slopes equals the fully symbolic K-feature gradient."""
    cfg = ip.Config(d1=16, n_major=1, n_minor=1, p=0.3, eps_min=0.4, nsr=0.9, bias="norm", kappa=1.2, lam=0.02,
                    tau=0.8, n_tokens=2, batch=16)
    D = ip.population_gradient(2)
    pars = ip.flow_params(cfg)
    subs = {S.C: pars["c"], S.LAM: pars["lambda"], S.SIGMA: cfg.sigma, S.KAPPA: cfg.bias_scale,
            D.pi[0]: pars["pi1"], D.pi[1]: pars["pi2"]}
    f = sp.lambdify((*D.a, D.r), [g.subs(subs) for g in (*D.grad_feature, D.grad_noise)], "mpmath")
    for a, r in [((0.3, -0.1), 0.4), ((1.2, 0.05), 0.2)]:
        ref = np.array([float(x) for x in f(*a, r)])
        np.testing.assert_allclose(ip.projected_gradient(cfg, np.array(a), r), ref, rtol=1e-9, atol=1e-14)


@pytest.mark.numba
def test_projected_population_gradient_matches_monte_carlo():
    cfg = ip.Config(d1=16, n_major=2, n_minor=1, p=0.25, eps_min=0.5, nsr=1.0, n_tokens=1, tau=20.0, lam=0.0,
                    batch=64, bias="norm", kappa=1.0)
    a = np.array([0.6, -0.3, 0.4])
    sym, mc, se = ip.mc_gradient_check(cfg, a, 0.5, 200, seed=3)
    # within 4 standard errors plus the O(|f|^2 / tau) linearisation bias (a few per cent)
    assert np.all(np.abs(sym - mc) <= 4 * se + 0.03 * np.abs(sym)), (sym, mc, se)
    # and it is not trivially small: the dominant projection is many standard errors from zero
    assert abs(sym[0]) > 20 * se[0]
    # the first-order gradient of the flow misses the tokens with two features: visibly so on feature 2, whose
    # growth comes mostly from co-occurring with the strong feature 1
    first = ip.projected_gradient(cfg, a, 0.5)
    assert abs(first[1] - mc[1]) > 6 * se[1]


def test_exact_gradient_tends_to_first_order_for_rare_features():
    a, r = np.array([0.6, -0.3, 0.4]), 0.5
    rel = []
    for p in (0.1, 0.01, 0.001):
        cfg = ip.Config(d1=16, n_major=2, n_minor=1, p=p, eps_min=0.5, n_tokens=1, tau=20.0, lam=0.0, batch=64)
        exact, first = ip.projected_gradient(cfg, a, r, exact=True), ip.projected_gradient(cfg, a, r)
        rel.append(np.max(np.abs(exact - first)) / np.max(np.abs(first)))
    assert rel[1] < 0.2 * rel[0] and rel[2] < 0.2 * rel[1]  # the difference is O(p)
    assert rel[2] < 1e-2


# ------------------------------------------------------------------------------------------ saturation
def _closure_loss(xp, xs, xo, n_s, n_r):
    return -xp + np.log(np.exp(xp) + n_s * np.exp(xs) + n_s * np.exp(xo) + n_r)


def test_saturation_factor_matches_finite_differences_of_the_closure_loss():
    q = sp.lambdify((S.LOGIT, S.N_SAME, S.N_REST), S.saturation_factor(), "numpy")
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

    k, s = cfg.bias_scale, cfg.sigma
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
    cfg = ip.Config(d1=16, n_major=2, n_minor=1, p=0.2, eps_min=0.3, nsr=0.8, bias="norm", kappa=1.3, tau=0.7,
                    lam=0.02, batch=24, n_tokens=2)
    rng = np.random.default_rng(4)
    P = rng.normal(scale=0.6, size=(5, 3))
    r = np.abs(rng.normal(scale=0.3, size=5))
    csys = ip.compiled_network(5, 3)
    out = np.empty(20)
    csys.rhs_into(0.0, np.concatenate([P.ravel(), r]), ip.network_params(cfg, saturation=saturation), out)
    np.testing.assert_allclose(out, _flow_rhs_by_hand(cfg, P, r, saturation), rtol=1e-10, atol=1e-14)
    # the linearised flow of one neuron is the projected population gradient of population_gradient()
    if not saturation:
        for i in range(5):
            g = ip.projected_gradient(cfg, P[i], r[i])
            np.testing.assert_allclose(out[i * 3:(i + 1) * 3], -cfg.eta * g[:-1], rtol=1e-10, atol=1e-14)
            assert out[15 + i] == pytest.approx(-cfg.eta * g[-1], rel=1e-10, abs=1e-14)


@pytest.mark.numba
def test_population_flow_saturates_only_with_the_closure():
    cfg = ip.default_config(quick=True).with_(eps_min=0.2)
    start = ip.simulate_sgd(cfg.with_(steps=1), 0)
    W0 = [x[0] for x in ip.network_trajectories(start, cfg.width, cfg.d)]
    t = np.linspace(0.0, 2400.0, 121)
    sol = ip.flow_solution(cfg, W0[0], W0[1], t)
    assert sol.state_names == ip.network_state_names(cfg.width, cfg.d)  # the names of the SGD observables
    P, N = ip.network_trajectories(sol, cfg.width, cfg.d)
    top = np.abs(P).max(axis=1)  # [n_t, K]: the largest projection on each feature
    assert np.all(top[-1, :cfg.n_major] > 5 * top[0, :cfg.n_major])  # majority features are learned ...
    maj = slice(0, cfg.n_major)
    assert np.all(np.abs(top[-1, maj] - top[-10, maj]) <= 0.02 * top[-1, maj])  # ... and have converged
    P_lin, _ = ip.network_trajectories(ip.flow_solution(cfg, W0[0], W0[1], t[:61], saturation=False), cfg.width,
                                       cfg.d)
    assert np.abs(P_lin[-1]).max() > 3 * np.abs(P[60]).max()  # without saturation growth goes on
    with pytest.raises(InvalidParameterError, match="a0"):
        ip.flow_solution(cfg, W0[0][:, :2], W0[1], t)
    with pytest.raises(InvalidParameterError, match="non-zero"):
        ip.flow_solution(cfg, np.vstack([np.zeros((1, cfg.d)), W0[0][1:]]), np.append(0.0, W0[1][1:]), t)
    with pytest.raises(InvalidParameterError, match="t_eval"):
        ip.flow_solution(cfg, W0[0], W0[1], t[::-1])


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
    # the derivation's setting: one token per input, so attention does not mix tokens
    cfg = one_token_config(ip.default_config(quick=True)).with_(steps=1600, eps_min=0.2)
    run = ip.simulate_sgd(cfg, 1)
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
    s = ip.stage_time_scales(500, 40, 0.1, 0.2)
    expect = 500 * np.log(40) / (0.1 * np.log(np.log(40)))
    assert s["T1_major"] == pytest.approx(expect)
    assert s["T1_minor"] == pytest.approx(expect / 0.2)


def test_stage1_rate_is_the_linearised_growth():
    from scipy.special import erfc

    cfg = ip.Config()
    k = cfg.bias_scale
    c = (1 - 1 / cfg.batch) * cfg.n_tokens / cfg.tau
    assert ip.stage1_rate(cfg) == pytest.approx(cfg.eta * (c / 2 * cfg.p * 2 * erfc(k / np.sqrt(2)) ** 2 - cfg.lam),
                                                rel=1e-12)
    # and it is the slope of the projected gradient at a = 0
    h = 1e-7
    a = np.zeros(cfg.d)
    a[0] = h
    assert -cfg.eta * ip.projected_gradient(cfg, a, 1.0)[0] / h == pytest.approx(ip.stage1_rate(cfg), rel=1e-5)


# ------------------------------------------------------------------------------------------ statistics
def test_paired_slope_is_least_squares_with_a_prefactor_per_replicate():
    from scipy import stats

    from theorykit.theories.imbalanced_pruning._studies import fit_paired_slope, fit_slope

    rng = np.random.default_rng(0)
    x = np.array([0.125, 0.25, 0.5])
    offsets = rng.normal(scale=0.5, size=6)  # replicate levels, much larger than the noise along x
    y = np.exp(offsets[None, :] - 0.15 * np.log(x)[:, None] + 0.05 * rng.normal(size=(3, 6)))
    fit = fit_paired_slope(x, y)
    # reference: ordinary least squares with one indicator column per replicate
    design = np.column_stack([np.tile(np.log(x), 6), np.kron(np.eye(6), np.ones((3, 1)))])
    coef, rss, *_ = np.linalg.lstsq(design, np.log(y).T.ravel(), rcond=None)
    dof = 18 - 7
    se = np.sqrt(rss[0] / dof * np.linalg.inv(design.T @ design)[0, 0])
    assert fit["slope"] == pytest.approx(coef[0], rel=1e-12)
    assert fit["slope_ci95"] == pytest.approx([coef[0] - stats.t.ppf(0.975, dof) * se,
                                               coef[0] + stats.t.ppf(0.975, dof) * se], rel=1e-10)
    assert fit["n_points"] == 18 and fit["n_replicates"] == 6
    # the pooled fit (seeds as repeated x) sees the replicate levels as noise: a much wider interval
    wide = fit_slope(np.broadcast_to(x[:, None], y.shape), y)
    assert np.diff(wide["slope_ci95"])[0] > 3 * np.diff(fit["slope_ci95"])[0]
    # failed points (NaN, non-positive) are left out; a replicate left with one point drops out
    y[0, 1], y[1, 1], y[2, 2] = np.nan, 0.0, np.inf
    part = fit_paired_slope(x, y)
    assert part["n_points"] == 14 and part["n_replicates"] == 5 and np.isfinite(part["slope"])
    assert np.isnan(fit_paired_slope(x, y[:, :1] * np.array([[1.0], [np.nan], [np.nan]]))["slope"])


# ------------------------------------------------------------------------------------------ derivation
def test_derivation_markdown_is_up_to_date():
    path = ROOT / "derivations" / "imbalanced_pruning.py"
    spec = importlib.util.spec_from_file_location("_deriv_imbalanced_pruning", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = (ROOT / "derivations" / "imbalanced_pruning.md").read_text()
    assert mod.render() == committed
