"""Trained attention in the imbalanced-data encoder: gradient in the attention matrix, the fixed path is
unchanged, a trained run moves A, and the new settings are validated."""

from __future__ import annotations

import numpy as np
import pytest

from theorykit.errors import InvalidParameterError
from theorykit.theories import imbalanced_pruning as ip
from theorykit.theories.imbalanced_pruning import _kernels as K

SMALL = dict(d1=16, n_major=2, n_minor=2, p=0.15, width=16, n_tokens=3, batch=16, tau=1.0, lam=0.01, steps=300,
             record_every=10)


# ------------------------------------------------------------------------------------------ gradient
@pytest.mark.numba
def test_attention_gradient_matches_finite_differences():
    cfg = ip.Config(d1=6, n_major=2, n_minor=2, p=0.15, width=10, n_tokens=3, batch=8, tau=0.7, lam=0.01, beta=2.0)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((cfg.width, cfg.d1)) * 0.7
    X, Y, _ = ip.sample_pairs(cfg, cfg.batch, 5)
    bias = np.abs(rng.standard_normal(cfg.width)) * 0.05
    # away from beta I, so that every entry of A (not only the diagonal) is exercised
    A = cfg.initial_attention() + 0.5 * rng.standard_normal((cfg.d1, cfg.d1))
    # the stop-gradient branch is frozen at (W, bias, A): the loss is then a function of A on the X branch
    frozen = dict(bias=bias, W_sg=W.copy(), bias_sg=bias, A_sg=A.copy())
    _, gW, gA = ip.loss_and_attention_grad(cfg, W, A, X, Y, **frozen)
    h = 1e-6
    fd = np.empty_like(A)
    for c in range(cfg.d1):
        for e in range(cfg.d1):
            Ap, Am = A.copy(), A.copy()
            Ap[c, e] += h
            Am[c, e] -= h
            fd[c, e] = (ip.loss_and_attention_grad(cfg, W, Ap, X, Y, **frozen)[0]
                        - ip.loss_and_attention_grad(cfg, W, Am, X, Y, **frozen)[0]) / (2 * h)
    assert np.linalg.norm(gA) > 1e-3
    assert np.linalg.norm(fd - gA) / np.linalg.norm(fd) < 1e-5
    # the W-gradient of the general path is the one of loss_and_grad with the same attention
    np.testing.assert_array_equal(gW, ip.loss_and_grad(cfg, W, X, Y, A=A, **frozen)[1])
    # differentiating through the Y branch as well gives a different result: the stop-gradient is in place
    Ap, Am = A.copy(), A.copy()
    Ap[0, 1] += h
    Am[0, 1] -= h
    both = (ip.loss_and_attention_grad(cfg, W, Ap, X, Y, bias=bias, W_sg=W, bias_sg=bias)[0]
            - ip.loss_and_attention_grad(cfg, W, Am, X, Y, bias=bias, W_sg=W, bias_sg=bias)[0]) / (2 * h)
    assert abs(both - gA[0, 1]) > 1e-4 * max(1.0, abs(gA[0, 1]))


# ------------------------------------------------------------------------------------------ fixed path
@pytest.mark.numba
def test_general_attention_with_beta_identity_matches_fixed_attention():
    cfg = ip.Config(**{**SMALL, "beta": 2.5})  # not a power of two, so the two paths round differently
    rng = np.random.default_rng(2)
    W = rng.standard_normal((cfg.width, cfg.d1)) * 0.5
    X, Y, _ = ip.sample_pairs(cfg, cfg.batch, 3)
    A = cfg.initial_attention()
    np.testing.assert_allclose(ip.encode(cfg, W, X, A), ip.encode(cfg, W, X), rtol=1e-12, atol=1e-12)
    l0, g0 = ip.loss_and_grad(cfg, W, X, Y)
    l1, g1 = ip.loss_and_grad(cfg, W, X, Y, A=A)
    assert abs(l1 - l0) <= 1e-12 * abs(l0)
    np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-12)


@pytest.mark.numba
def test_fixed_run_equals_general_path_with_frozen_beta_identity(monkeypatch):
    cfg = ip.Config(**{**SMALL, "beta": 2.5, "prune_rate": 0.5, "prune_at": 0.5})
    fixed = ip.simulate_sgd(cfg, 4)
    assert cfg.attention == "fixed" and ip.run_attention(fixed) is None and "attention" not in fixed.names

    # the same run, every chunk through the trained-attention path with A = beta I and step size 0
    kernel = K.sgd_steps

    def general(W, A, mask, M, pi, u, xi, t0, h, out_loss):
        assert not h.train_attention  # a fixed config asks for fixed attention
        return kernel(W, h.beta * np.eye(W.shape[1]), mask, M, pi, u, xi, t0,
                      h._replace(train_attention=True, eta_A=0.0), out_loss)

    monkeypatch.setattr(K, "sgd_steps", general)
    via_general = ip.simulate_sgd(cfg, 4)
    assert via_general.names == fixed.names
    for name in fixed.names:
        if name != "mask":
            np.testing.assert_allclose(via_general.observable(name), fixed.observable(name), rtol=1e-12, atol=1e-12,
                                       err_msg=name)
    np.testing.assert_array_equal(via_general.observable("mask"), fixed.observable("mask"))


@pytest.mark.numba
def test_default_config_takes_the_fixed_path(monkeypatch):
    def refuse(*args):
        raise AssertionError("the trained-attention kernel ran for a fixed-attention config")

    kernel = K.sgd_steps

    def fixed_only(W, A, mask, M, pi, u, xi, t0, h, out_loss):
        if h.train_attention:
            raise AssertionError("the trained-attention path ran for a fixed-attention config")
        return kernel(W, A, mask, M, pi, u, xi, t0, h, out_loss)

    monkeypatch.setattr(K, "sgd_steps", fixed_only)
    monkeypatch.setattr(K, "encode_attention", refuse)
    monkeypatch.setattr(K, "attention_general", refuse)
    cfg = ip.Config(**{**SMALL, "steps": 40})
    assert ip.Config().attention == "fixed"
    run = ip.simulate_sgd(cfg, 0)
    assert ip.run_attention(run) is None
    assert np.isfinite(ip.positive_pair_cosine(run, n=32)) and np.isfinite(ip.downstream_mse(run, 64, 64))
    X, Y, _ = ip.sample_pairs(cfg, 8, 1)
    ip.loss_and_grad(cfg, run.observable("W")[-1], X, Y)


# ------------------------------------------------------------------------------------------ trained runs
@pytest.mark.numba
def test_trained_run_moves_attention_and_stays_finite():
    cfg = ip.Config(**{**SMALL, "attention": "trained", "eta_attention": 1.0, "prune_rate": 0.5})
    run = ip.simulate_sgd(cfg, 5)
    fixed = ip.simulate_sgd(cfg.with_(attention="fixed"), 5)
    A0 = cfg.initial_attention()
    A = ip.run_attention(run)
    assert A.shape == (cfg.d1, cfg.d1) and np.all(np.isfinite(A))
    assert np.linalg.norm(A - A0) > 1e-4 * np.linalg.norm(A0)
    np.testing.assert_array_equal(run.observable("attention")[0], A0)  # recorded from the start
    for name in run.names:
        assert np.all(np.isfinite(run.observable(name))), name
    # same data stream and initial weights: the first batch loss is the fixed run's, later ones differ
    assert run.observable("loss")[0] == fixed.observable("loss")[0]
    assert not np.allclose(run.observable("W")[-1], fixed.observable("W")[-1])
    # pruning acts on the MLP weights only, as in the fixed run
    mask = run.observable("mask")[-1]
    assert (mask == 0).sum() == mask.size // 2
    # the metrics encode with the trained A
    X, _, _ = ip.sample_pairs(cfg, 16, 9)
    W = ip.forward_weights(run)
    assert not np.allclose(ip.encode(cfg, W, X, A), ip.encode(cfg, W, X))
    assert np.isfinite(ip.positive_pair_cosine(run, n=64)) and np.isfinite(ip.downstream_mse(run, 128, 128))


@pytest.mark.numba
def test_eta_attention_defaults_to_eta():
    cfg = ip.Config(**{**SMALL, "steps": 40, "attention": "trained"})
    assert cfg.attention_step == cfg.eta
    a = ip.simulate_sgd(cfg, 6)
    b = ip.simulate_sgd(cfg.with_(eta_attention=cfg.eta), 6)
    np.testing.assert_array_equal(ip.run_attention(a), ip.run_attention(b))
    np.testing.assert_array_equal(a.observable("W"), b.observable("W"))


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("value", ["learned", "Fixed", None, 1])
def test_invalid_attention_rejected(value):
    with pytest.raises(InvalidParameterError, match="attention.*'fixed' or 'trained'"):
        ip.Config(attention=value)


@pytest.mark.parametrize("value", [0.0, -0.1, float("nan"), float("inf"), "fast"])
def test_invalid_eta_attention_rejected(value):
    with pytest.raises(InvalidParameterError, match="eta_attention"):
        ip.Config(eta_attention=value)


def test_attention_matrix_shape_checked():
    cfg = ip.Config(**SMALL)
    X = np.zeros((2, cfg.n_tokens, cfg.d1))
    with pytest.raises(InvalidParameterError, match=r"A must have shape \(16, 16\)"):
        ip.encode(cfg, np.ones((cfg.width, cfg.d1)), X, np.eye(cfg.d1 + 1))
    with pytest.raises(InvalidParameterError, match="A must be"):
        ip.loss_and_attention_grad(cfg, np.ones((cfg.width, cfg.d1)), None, X, X)
    with pytest.raises(InvalidParameterError, match="X must have shape"):
        ip.encode(cfg, np.ones((cfg.width, cfg.d1)), np.zeros((2, cfg.n_tokens, cfg.d1 + 1)))
