"""The numpy baseline of benchmarks/bench_imbalanced.py computes the same loss, gradient and batches as theorykit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from theorykit.theories import imbalanced_pruning as ip

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_imbalanced.py"


def _bench():
    spec = importlib.util.spec_from_file_location("_bench_imbalanced", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.numba
@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_numpy_loss_and_grad_match_theorykit(scale):
    bench = _bench()
    cfg = ip.Config(d1=10, n_major=2, n_minor=2, width=7, n_tokens=3, batch=6, p=0.3, eps_min=0.5, beta=2.0,
                    tau=0.7, lam=0.05)
    rng = np.random.default_rng(3)
    M = ip.feature_matrix(cfg)
    T, shape = cfg.batch * cfg.n_tokens, (cfg.batch, cfg.n_tokens, cfg.d1)
    n_active = 0
    for trial in range(4):
        W = rng.standard_normal((cfg.width, cfg.d1)) * scale
        if trial % 2:  # a batch drawn by theorykit's sampler, fed to both
            X, Y, _ = ip.sample_pairs(cfg, cfg.batch, trial)
            X, Y = X.reshape(T, cfg.d1), Y.reshape(T, cfg.d1)
        else:  # a batch drawn by the numpy baseline, fed to both
            X, Y, _ = bench.numpy_tokens(rng.random((T, cfg.d)), rng.standard_normal((2, T, cfg.d1)), M,
                                         cfg.feature_probs(), cfg.sigma)
        loss, grad = bench.numpy_loss_and_grad(W, X, Y, L=cfg.n_tokens, beta=cfg.beta, tau=cfg.tau, lam=cfg.lam,
                                               bias_sigma=cfg.bias_scale * cfg.sigma)
        loss_tk, grad_tk = ip.loss_and_grad(cfg, W, X.reshape(shape), Y.reshape(shape))
        assert loss == pytest.approx(loss_tk, rel=1e-10)
        np.testing.assert_allclose(grad, grad_tk, rtol=0, atol=1e-10 * np.max(np.abs(grad_tk)))
        n_active += int(np.count_nonzero(grad - cfg.lam * W))
    assert n_active > 0  # the InfoNCE part of the gradient was exercised, not only the L2 term


def test_numpy_tokens_match_theorykit_sampler():
    bench = _bench()
    cfg = ip.Config(d1=9, n_major=2, n_minor=1, n_tokens=2, p=0.4, eps_min=0.5, basis="random")
    M = ip.feature_matrix(cfg, 4)
    rng = np.random.default_rng(0)
    u, xi = rng.random((1, 100, cfg.d)), rng.standard_normal((1, 2, 100, cfg.d1))  # 50 inputs of 2 tokens
    X, Y, Z = bench.numpy_tokens(u[0], xi[0], M, cfg.feature_probs(), cfg.sigma)
    X_tk, Y_tk, Z_tk = ip.sample_pairs(cfg, 50, 1, M=M)  # other draws: compare the construction, not the values
    XY, Z2 = np.empty((200, cfg.d1)), np.empty((100, cfg.d))
    from theorykit.theories.imbalanced_pruning import _kernels as K

    K.tokens_from_draws(u[0], xi[0], M, cfg.feature_probs(), cfg.sigma, XY, Z2)
    np.testing.assert_allclose(XY, np.concatenate([X, Y]), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(Z2, Z)
    assert X_tk.shape == (50, 2, cfg.d1) and Z_tk.shape == (50, 2, cfg.d)


def test_flops_and_peak_are_positive():
    bench = _bench()
    cfg = ip.Config()
    T = cfg.batch * cfg.n_tokens
    assert bench.flops_per_step(cfg) > 6 * T * cfg.d1 * cfg.width
    assert bench.matmul_peak(n=64, repeats=1) > 0
