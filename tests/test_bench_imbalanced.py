"""The numpy baseline of benchmarks/bench_imbalanced.py computes the same loss and gradient as theorykit."""

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
    cfg = ip.Config(d=10, n_major=2, n_minor=2, width=7, n_tokens=3, batch=6, p=0.2, eps_min=0.5, beta=2.0,
                    tau=0.7, lam=0.05, kappa=1.0)
    rng = np.random.default_rng(3)
    M = np.eye(cfg.d)[: cfg.n_features]
    n_active = 0
    for trial in range(4):
        W = rng.standard_normal((cfg.width, cfg.d)) * scale
        if trial % 2:  # a batch drawn by theorykit's sampler, fed to both
            X, Y, _ = ip.sample_pairs(cfg, cfg.batch, trial)
        else:  # a batch drawn by the numpy baseline, fed to both
            X, Y = bench.numpy_sample_pairs(rng, M, cfg.feature_probs(), cfg.sigma, cfg.batch, cfg.n_tokens)
        loss, grad = bench.numpy_loss_and_grad(W, X, Y, beta=cfg.beta, tau=cfg.tau, lam=cfg.lam,
                                               kappa_sigma=cfg.kappa * cfg.sigma)
        loss_tk, grad_tk = ip.loss_and_grad(cfg, W, X, Y)
        assert loss == pytest.approx(loss_tk, rel=1e-10)
        np.testing.assert_allclose(grad, grad_tk, rtol=0, atol=1e-10 * np.max(np.abs(grad_tk)))
        n_active += int(np.count_nonzero(grad - cfg.lam * W))
    assert n_active > 0  # the InfoNCE part of the gradient was exercised, not only the L2 term


def test_numpy_sgd_step_updates_in_place():
    bench = _bench()
    cfg = ip.Config(d=8, n_major=2, n_minor=1, width=5, batch=4, eta=0.1)
    M = np.eye(cfg.d)[: cfg.n_features]
    W = bench.initial_weights(cfg, 0)
    W_before = W.copy()
    loss = bench.numpy_sgd_step(W, np.random.default_rng(1), cfg, M)
    assert np.isfinite(loss)
    assert not np.array_equal(W, W_before)
