"""The imbalanced-data SGD kernels against the numpy reference of benchmarks/bench_imbalanced.py, step by step:
plain SGD, Algorithm 1's forward-mask pruning and one-shot hard pruning; replicates in threads and chunking do
not change a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import theorykit.simulate._driver as driver
from theorykit.theories import imbalanced_pruning as ip
from theorykit.theories.imbalanced_pruning import _kernels as K
from theorykit.theories.imbalanced_pruning import _simulate as sim

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_imbalanced.py"
SMALL = ip.Config(d1=12, n_major=2, n_minor=2, p=0.3, eps_min=0.5, width=9, n_tokens=3, batch=6, tau=0.7, lam=0.05,
                  eta=0.3, steps=8, record_every=1, init_scale=1.0)


def _bench():
    spec = importlib.util.spec_from_file_location("_bench_imbalanced", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _kernel_steps(cfg, W0, draws):
    """Run the kernel over the given per-step draws; returns the weights and the mask after every step."""
    W, mask, A = W0.copy(), np.ones_like(W0), cfg.initial_attention()
    M = ip.feature_matrix(cfg)
    out = []
    for t, (u, xi) in enumerate(draws):
        K.sgd_steps(W, A, mask, M, cfg.feature_probs(), u[None], xi[None], t, sim.kernel_hyper(cfg), np.empty(1))
        out.append((W.copy(), mask.copy()))
    return out


def _reference_steps(bench, cfg, W0, draws):
    W, mask = W0.copy(), np.ones_like(W0)
    M = ip.feature_matrix(cfg)
    out = []
    for t, (u, xi) in enumerate(draws):
        W, mask = bench.numpy_algorithm1_step(W, mask, t, u, xi, cfg, M)
        out.append((W.copy(), mask.copy()))
    return out


def _draws(cfg, seed):
    rng = np.random.default_rng(seed)
    T = cfg.batch * cfg.n_tokens
    u, xi = rng.random((cfg.steps, T, cfg.d)), rng.standard_normal((cfg.steps, 2, T, cfg.d1))
    return list(zip(u, xi))


@pytest.mark.numba
@pytest.mark.parametrize("prune", [None, "forward_mask", "hard"])
def test_sgd_kernel_matches_numpy_reference_step_by_step(prune):
    bench = _bench()
    cfg = SMALL if prune is None else SMALL.with_(prune=prune, prune_rate=0.4, prune_at=0.3, prune_every=2)
    W0 = bench.initial_weights(cfg, 1)
    draws = _draws(cfg, 2)
    got, ref = _kernel_steps(cfg, W0, draws), _reference_steps(bench, cfg, W0, draws)
    scale = np.max(np.abs(W0))
    for t, ((W, mask), (W_ref, mask_ref)) in enumerate(zip(got, ref)):
        np.testing.assert_array_equal(mask, mask_ref, err_msg=f"mask after step {t}")
        np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-12 * scale, err_msg=f"weights after step {t}")
    W_first = got[0][0]
    assert not np.allclose(W_first, W0)  # the steps did move the weights
    if prune is not None:
        start = cfg.prune_step
        assert start == 2 and np.all(got[start - 1][1] == 1) and (got[start][1] == 0).sum() == int(0.4 * W0.size)
        masked = got[-1][1] == 0
        if prune == "forward_mask":  # Algorithm 1: masked weights keep their values and still receive gradients
            assert np.all(got[-1][0][masked] != 0)
            always = np.all([m == 0 for _, m in got[start:]], axis=0)
            assert always.sum() > 0
            decay_only = (1 - cfg.eta * cfg.lam) ** (cfg.steps - start) * got[start - 1][0]
            assert np.max(np.abs(got[-1][0][always] - decay_only[always])) > 1e-6
        else:  # hard pruning: masked weights are zero for good and the mask never changes
            assert np.all(got[-1][0][masked] == 0)
            assert np.array_equal(got[-1][1], got[start][1])


@pytest.mark.numba
@pytest.mark.parametrize("L", [1, 3, 4, 5, 9])  # the scores go four at a time: none, one, one and one left, two
def test_attention_kernels_match_numpy_for_any_number_of_tokens(L):
    bench = _bench()
    rng = np.random.default_rng(L)
    T, d1 = 5 * L, 7
    X, V = rng.standard_normal((T, d1)), rng.standard_normal((T, d1))
    U, P = np.empty((T, d1)), np.empty((T, L))
    K.softmax_mix(X, V, 0.7, L, U, P)
    X3, V3 = X.reshape(-1, L, d1), V.reshape(-1, L, d1)
    sc = 0.7 * (X3 @ V3.transpose(0, 2, 1))
    P_ref = np.exp(sc - sc.max(axis=-1, keepdims=True))
    P_ref /= P_ref.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(P, P_ref.reshape(T, L), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(U, (P_ref @ X3).reshape(T, d1), rtol=1e-13, atol=1e-14)
    K.attention_scaled(X, L, 1.3, U)
    np.testing.assert_allclose(U, bench.numpy_attention(X, L, 1.3), rtol=1e-13, atol=1e-14)


@pytest.mark.numba
def test_forward_mask_is_recomputed_on_schedule():
    bench = _bench()
    cfg = SMALL.with_(prune="forward_mask", prune_rate=0.5, prune_at=0.25, prune_every=3, steps=12)
    W0 = bench.initial_weights(cfg, 3)
    got = _kernel_steps(cfg, W0, _draws(cfg, 4))
    start = cfg.prune_step
    for t in range(start, cfg.steps):
        W_before = W0 if t == 0 else got[t - 1][0]
        if (t - start) % cfg.prune_every == 0:
            np.testing.assert_array_equal(got[t][1], ip.magnitude_prune(W_before, cfg.prune_rate))
        else:
            np.testing.assert_array_equal(got[t][1], got[t - 1][1])


@pytest.mark.numba
def test_simulation_is_independent_of_chunking_and_threads(monkeypatch):
    cfg = ip.Config(d1=10, n_major=2, n_minor=1, width=6, batch=5, steps=30, record_every=5, prune_rate=0.3)
    runs = ip.simulate_replicates(cfg, [3, 4, 5], threads=2)
    for s, run in zip([3, 4, 5], runs):
        one = ip.simulate_sgd(cfg, s)
        assert run.names == one.names
        for name in run.names:
            np.testing.assert_array_equal(run.observable(name), one.observable(name), err_msg=name)
    monkeypatch.setattr(driver, "CHUNK_BYTES", 1)  # one step per chunk
    chunked = ip.simulate_sgd(cfg, 3)
    for name in ("W", "mask", "loss", "a_1_1", "r_6"):
        np.testing.assert_array_equal(chunked.observable(name), runs[0].observable(name), err_msg=name)


@pytest.mark.numba
def test_records_are_the_forward_weights_of_each_step():
    """The records are taken between chunks of steps: at a record step the mask of that step (recomputed there on
    Algorithm 1's schedule) gives the forward weights of that step, which the projections describe."""
    cfg = SMALL.with_(prune="forward_mask", prune_rate=0.4, prune_at=0.3, prune_every=2, steps=8, record_every=2)
    run = ip.simulate_sgd(cfg, 1)
    assert list(run.t) == [0, 2, 4, 6, 8] and cfg.prune_step == 2
    W, mask, M = run.observable("W"), run.observable("mask"), run.params["features"]
    np.testing.assert_array_equal(mask[0], 1.0)
    for k, t in enumerate(run.t[:-1]):
        if t >= cfg.prune_step:  # a mask step: the mask recomputed from the weights of that step
            np.testing.assert_array_equal(mask[k], ip.magnitude_prune(W[k], cfg.prune_rate))
    proj, noise = ip.network_trajectories(run, cfg.width, cfg.d)
    forward = W * mask
    np.testing.assert_allclose(proj, forward @ M.T, rtol=1e-12, atol=1e-14)
    full = np.linalg.norm(forward, axis=2) ** 2
    np.testing.assert_allclose(noise ** 2, full - np.sum(proj ** 2, axis=2), rtol=1e-9, atol=1e-14)
    # the last record keeps the mask of the last step (step 7 keeps the mask of step 6), not a fresh one, so that
    # the final metrics see the forward pass the run ended with
    np.testing.assert_array_equal(mask[-1], mask[3])
    assert not np.array_equal(mask[-1], ip.magnitude_prune(W[-1], cfg.prune_rate))
    np.testing.assert_array_equal(ip.forward_weights(run), W[-1] * mask[-1])
    assert ip.weights_at_prune(run) is not None and np.array_equal(ip.weights_at_prune(run), W[1])
